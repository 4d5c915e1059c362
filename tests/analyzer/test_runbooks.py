"""Runbooks: `runbook:` in SLO specs, `%% runbook:` in contracts, carried to the JSON,
the text, the Markdown and the postmortem bundle, escaped everywhere."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.contracts import ContractSyntaxError, contract_check, contract_init, parse_contract
from analyzer.postmortem import build_postmortem
from analyzer.slo import SloSpecError, load_slo_spec, markdown_runbook, render_slo_markdown
from analyzer.source import LocalSource
from tests.conftest import SAMPLES, SEQTRACE, sample_files

HOSTILE = "https://x.example/a) <img src=x onerror=alert(1)> [pwn](javascript:alert(1))"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalSource, Path]]:
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("runbooks") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    store = DuckDBStore(path, read_only=True)
    yield LocalSource(store), path
    store.close()


def test_slo_runbook_is_parsed_and_unknown_fields_name_their_line() -> None:
    spec = load_slo_spec((SAMPLES / "slo.yaml").read_text(), "slo.yaml")
    runbooks = {s.name: s.runbook for s in spec.slos}
    assert runbooks["checkout-availability"] == (
        "https://runbooks.example.com/shop/checkout#availability"
    )
    assert runbooks["payments-availability"] == "docs/runbooks/payments.md"
    assert runbooks["checkout-latency"] is None
    text = "slos:\n  - name: a\n    service: s\n    operation: o\n    sli: availability\n" \
        "    objective: 99\n    window: 1d\n    run_book: https://x\n"  # fmt: skip
    with pytest.raises(SloSpecError) as caught:
        load_slo_spec(text, "spec.yaml")
    assert str(caught.value) == (
        'spec.yaml: slo "a": run_book is not a known field (line 8) (did you mean "runbook"?)'
    )
    with pytest.raises(SloSpecError, match="runbook must be a URL or a path"):
        load_slo_spec(text.replace("run_book: https://x", "runbook: 12"), "spec.yaml")


def test_slo_json_text_and_markdown_carry_the_runbook(shop: tuple[LocalSource, Path]) -> None:
    _, path = shop
    out = subprocess.run(
        [*SEQTRACE, "slo", "--db", str(path), "--spec", str(SAMPLES / "slo.yaml"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_name = {s["name"]: s for s in report["slos"]}
    assert by_name["checkout-availability"]["runbook"].startswith("https://runbooks.example")
    assert by_name["payments-availability"]["runbook"] == "docs/runbooks/payments.md"
    assert by_name["order-lookup-availability"]["runbook"] is None
    text = subprocess.run(
        [*SEQTRACE, "slo", "--db", str(path), "--spec", str(SAMPLES / "slo.yaml")],
        capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    assert "payments-availability: runbook docs/runbooks/payments.md" in text
    markdown = render_slo_markdown(report)
    assert (
        # The link text is escaped as every Markdown cell is (analyzer.escaping: "#" too).
        "- Runbook: [https://runbooks.example.com/shop/checkout\\#availability]"
        "(https://runbooks.example.com/shop/checkout#availability)"
    ) in markdown
    assert "- Runbook: docs/runbooks/payments.md" in markdown


def test_markdown_runbook_escapes_user_text() -> None:
    link = markdown_runbook(HOSTILE)
    # The text is escaped; the target cannot be closed early or carry spaces or tags.
    assert link.startswith("[https://x.example/a\\) &lt;img") and "\\[pwn\\]" in link
    target = link[link.rindex("](") + 2 : -1]
    assert " " not in target and "(" not in target and ")" not in target and "<" not in target
    assert markdown_runbook("ops/<b>run</b>_book.md") == "ops/&lt;b&gt;run&lt;/b&gt;\\_book.md"
    assert markdown_runbook("javascript:alert(1)") == "javascript:alert\\(1\\)"  # text, not a link


def test_contract_runbook_reaches_every_violation(shop: tuple[LocalSource, Path]) -> None:
    source, _ = shop
    happy = contract_init(source, "order.id=ORD-1003")
    assert parse_contract(happy, "happy.mmd").runbook is None
    text = happy.replace(
        "sequenceDiagram", "%% runbook: https://wiki.example.com/orders\nsequenceDiagram", 1
    )
    assert parse_contract(text, "happy.mmd").runbook == "https://wiki.example.com/orders"
    result = contract_check(source, [("happy.mmd", text)], entity="order.id=ORD-1002")
    violations = result["contracts"][0]["violations"]
    assert violations and all(v["runbook"] == "https://wiki.example.com/orders" for v in violations)
    clean = contract_check(source, [("happy.mmd", happy)], entity="order.id=ORD-1002")
    assert all(v["runbook"] is None for v in clean["contracts"][0]["violations"])


def test_contract_runbook_errors_name_the_line() -> None:
    body = "sequenceDiagram\n    a->>b: call\n"
    with pytest.raises(ContractSyntaxError, match=r"c.mmd:1:1: '%% runbook:' needs a URL"):
        parse_contract("%% runbook:   \n" + body, "c.mmd")
    twice = "%% runbook: a.md\n" + body + "  %% RUNBOOK: b.md\n"
    with pytest.raises(ContractSyntaxError, match=r"c.mmd:4:3: a second .* on line 1"):
        parse_contract(twice, "c.mmd")
    assert parse_contract("%%runbook: ops/a.md\n" + body, "c.mmd").runbook == "ops/a.md"
    assert parse_contract("%% just a comment\n" + body, "c.mmd").runbook is None


def test_contract_check_cli_json_and_text(shop: tuple[LocalSource, Path], tmp_path: Path) -> None:
    source, path = shop
    contract = tmp_path / "happy.mmd"
    contract.write_text(
        "%% runbook: runbooks/orders.md\n" + contract_init(source, "order.id=ORD-1003")
    )
    base = [*SEQTRACE, "contract", "check", str(contract), "--db", str(path)]
    out = subprocess.run([*base, "--entity", "order.id=ORD-1002", "--json"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 1, out.stderr
    violations = json.loads(out.stdout)["contracts"][0]["violations"]
    assert violations and {v["runbook"] for v in violations} == {"runbooks/orders.md"}
    text = subprocess.run([*base, "--entity", "order.id=ORD-1002"],
                          capture_output=True, text=True, timeout=300).stdout  # fmt: skip
    assert "  runbook: runbooks/orders.md" in text


def test_postmortem_lists_the_runbooks_escaped(shop: tuple[LocalSource, Path]) -> None:
    source, _ = shop
    spec = (
        (SAMPLES / "slo.yaml")
        .read_text()
        .replace("runbook: docs/runbooks/payments.md", f'runbook: "{HOSTILE}"')
    )
    contract = "%% runbook: ops/*orders*.md\n" + contract_init(source, "order.id=ORD-1003")
    bundle = build_postmortem(
        source, ["order.id=ORD-1002"], slo_spec=spec, contracts=[("orders.mmd", contract)]
    )
    markdown = bundle.files["postmortem.md"]
    section = markdown[markdown.index("## Runbooks") : markdown.index("## Affected entities")]
    assert "- SLO checkout-availability" in section
    assert "(https://runbooks.example.com/shop/checkout#availability)" in section
    assert markdown_runbook(HOSTILE) in section and not re.search(r"(?<!\\)<", section)
    assert "- contract orders.mmd: ops/\\*orders\\*.md" in section
    bare = build_postmortem(source, ["order.id=ORD-1002"])
    assert "No runbook named" in bare.files["postmortem.md"]
