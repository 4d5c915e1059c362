"""The SLO report over the store's narrow SLO rows equals the report over whole traces."""

from __future__ import annotations

from pathlib import Path

from test_slo import slo_report

from analyzer.slo import load_slo_spec, slo_frame_start, slo_report_spans
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import SAMPLES


def test_slo_spans_give_the_same_report_as_whole_traces(sample_db: Path) -> None:
    spec = load_slo_spec((SAMPLES / "slo.yaml").read_text(), "slo.yaml")
    with DuckDBStore(sample_db, read_only=True) as store:
        at = (store.last_unix_nano() or 0) + 1
        start = slo_frame_start(spec, at)
        whole = store.span_frame(start, at + 1)
        narrow = store.slo_spans(
            start, at + 1, [s.service for s in spec.slos], [s.operation for s in spec.slos]
        )
        assert 0 < narrow.height < whole.height
        entities = store.trace_entities(whole.get_column("trace_id").unique().to_list())
        expected = slo_report(spec, whole, entities, at)
        assert slo_report_spans(spec, narrow, store.trace_entities, at) == expected
        report = LocalSource(store).slo((SAMPLES / "slo.yaml").read_text(), None, "slo.yaml")
    by_name = {slo["name"]: slo for slo in report["slos"]}
    # ORD-1005's checkout failed at the frontend: one bad event among the checkouts.
    checkout = by_name["checkout-availability"]
    assert checkout["bad"] == 1 and checkout["total"] > 1
    assert checkout["partial"] == 1  # ORD-1002: the payment provider failed twice beneath
    assert by_name["payments-availability"]["total"] >= 3
