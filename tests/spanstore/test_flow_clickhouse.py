"""Flows on ClickHouse (chdb, both layouts) equal flows on DuckDB for the sample traces:
the root operations, the variants of every root operation and of an entity key, and a busy
entity's diagram path. ClickHouse has no fingerprint queries: the reader answers None and
analyzer.flow folds span objects (NOT_IN_CLICKHOUSE in test_dialects.py)."""

from __future__ import annotations

from typing import Any

from test_clickhouse_parity import EVERYTHING, sources  # noqa: F401  (fixture)

from analyzer.source import LocalSource


def test_flows_are_identical(sources: tuple[LocalSource, LocalSource]) -> None:  # noqa: F811
    duck, clickhouse = sources
    roots = duck.flow_roots(*EVERYTHING)["roots"]
    assert clickhouse.flow_roots(*EVERYTHING)["roots"] == roots
    assert len(roots) >= 5
    for root in roots:
        name = f"{root['service']}: {root['operation']}"
        expected: Any = duck.flow(root=name, start=EVERYTHING[0], end=EVERYTHING[1])
        got: Any = clickhouse.flow(root=name, start=EVERYTHING[0], end=EVERYTHING[1])
        assert expected["traces"] == root["traces"], name
        summary = [
            (v["id"], v["count"], v["ok"], v["partial"], v["failed"]) for v in expected["variants"]
        ]
        assert [
            (v["id"], v["count"], v["ok"], v["partial"], v["failed"]) for v in got["variants"]
        ] == summary
        for mine, theirs in zip(got["variants"], expected["variants"], strict=True):
            counts = [
                (m["label"], m["count"], m["errors"], m["p95_ns"]) for m in theirs["messages"]
            ]
            assert [
                (m["label"], m["count"], m["errors"], m["p95_ns"]) for m in mine["messages"]
            ] == counts
    by_key: Any = duck.flow(key="order.id", start=EVERYTHING[0], end=EVERYTHING[1])
    assert clickhouse.flow(key="order.id", start=EVERYTHING[0], end=EVERYTHING[1]) == by_key
