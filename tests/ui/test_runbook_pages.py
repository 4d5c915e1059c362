"""Runbooks on the Contracts page (AppTest): beside the violation count, escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, sample_files

PAGE = str(ROOT / "ui" / "pages" / "contracts.py")


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("runbook-ui") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    return path


def test_a_violated_contract_shows_its_runbook(
    monkeypatch: pytest.MonkeyPatch, shop_db: Path
) -> None:
    monkeypatch.delenv("SEQTRACE_API", raising=False)
    monkeypatch.setenv("SEQTRACE_DB", str(shop_db))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.text_input(key="contract_draft_entity").set_value("order.id=ORD-1003")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    drafted = at.text_area(key="contract_text").value
    at.text_area(key="contract_text").set_value(
        "%% runbook: https://wiki.example.com/orders_runbook\n" + drafted
    ).run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any(
        "runbook [https://wiki.example.com/orders\\_runbook]"
        "(https://wiki.example.com/orders_runbook)" in w
        for w in warnings
    ), warnings
    at.text_area(key="contract_text").set_value("%% runbook: ops/<b>x</b>.md\n" + drafted).run()
    assert any("runbook ops/\\<b\\>x\\</b\\>\\.md" in w.value for w in at.warning)
