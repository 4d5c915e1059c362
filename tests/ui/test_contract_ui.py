"""The Contracts page (ui/pages/contracts.py) under streamlit.testing's AppTest."""

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

    path = tmp_path_factory.mktemp("contracts-ui") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    return path


def page(monkeypatch: pytest.MonkeyPatch, db: Path) -> AppTest:
    monkeypatch.delenv("SEQTRACE_API", raising=False)
    monkeypatch.setenv("SEQTRACE_DB", str(db))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_draft_check_and_diff(monkeypatch: pytest.MonkeyPatch, shop_db: Path) -> None:
    at = page(monkeypatch, shop_db)
    at.text_input(key="contract_draft_entity").set_value("order.id=ORD-1003")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "from order.id=ORD-1003" in at.text_area(key="contract_text").value
    metrics = {m.label: m.value for m in at.get("metric")}
    assert metrics["Entities checked"] == "13"
    table = at.dataframe[0].value
    assert "order.id=ORD-1005" in table["entity"].to_list()
    # a violating entity's diff: Mermaid text in a code block and the differences
    at.selectbox(key="contract_diff_entity").set_value("order.id=ORD-1005").run()
    assert not at.exception
    mermaid = at.code[0].value
    assert mermaid.startswith("sequenceDiagram") and "❌ missing: INSERT order_items" in mermaid
    differences = at.dataframe[1].value
    assert "status" in differences["difference"].to_list()


def test_one_entity_and_a_syntax_error(monkeypatch: pytest.MonkeyPatch, shop_db: Path) -> None:
    at = page(monkeypatch, shop_db)
    at.radio(key="contract_scope").set_value("One entity").run()
    at.text_input(key="contract_entity").set_value("order.id=ORD-1003").run()
    assert not at.exception
    at.text_area(key="contract_text").set_value("sequenceDiagram\n    a-->>>b: x\n").run()
    assert not at.exception
    assert "contract.mmd:2:6: unknown arrow '-->>>'" in at.code[0].value


def test_hostile_text_is_never_html(monkeypatch: pytest.MonkeyPatch, shop_db: Path) -> None:
    at = page(monkeypatch, shop_db)
    at.text_input(key="contract_draft_entity").set_value("order.id=ORD-1666").run()
    at.button[0].click().run()
    assert not at.exception
    for element in at.get("markdown"):
        assert "<img" not in str(element.value)
