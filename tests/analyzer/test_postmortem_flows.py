"""A postmortem bundle shows, for each root operation of the entity's traces, the flow's
variants over the incident range, failing variants marked and the incident's own marked."""

from __future__ import annotations

from pathlib import Path

from analyzer.postmortem import build_postmortem
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore


def test_bundle_marks_the_failing_variant(sample_db: Path) -> None:
    with DuckDBStore(sample_db, read_only=True) as store:
        source = LocalSource(store)
        deadlock = source.diagram(entity="order.id=ORD-1005", fmt="json")
        assert isinstance(deadlock, dict)
        bundle = build_postmortem(source, ["order.id=ORD-1005"])
    text = bundle.files["postmortem.md"]
    flows = text.split("## Flows", 1)[1].split("## Failures", 1)[0]
    assert "### frontend: POST /api/checkout" in flows
    rows = [line for line in flows.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 3  # 9 clean checkouts, the deadlock, the retried payment
    assert "| 9 | 9 | 0 | 0 |" in rows[0] and "failing" not in rows[0]
    assert "**failing**; this incident: `" in rows[1]
    assert deadlock["traces"][0] in rows[1]
    assert rows[2].endswith("| **failing** |")
    assert "## Variant 1" in bundle.files["flow-1.md"]
