"""The analyzer cannot tell the backends apart: the sample traces loaded into DuckDB and
into ClickHouse give the same stats, entities, partial-failure report, SLO report and,
for every entity value and every trace, the same sequence diagram (SPEC JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_clickhouse import BACKENDS, StoreMaker, load_samples, require_chdb

from analyzer.failures_store import store_failure_report
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore

EVERYTHING = (0, 1 << 62)


@pytest.fixture(scope="module", params=BACKENDS)
def sources(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalSource, LocalSource]]:
    """The samples in DuckDB and in ClickHouse (loaded once per backend for the module)."""
    if request.param != "live":
        require_chdb()
    duck = DuckDBStore(tmp_path_factory.mktemp("parity") / "samples.duckdb")
    load_samples(duck.write)
    maker = StoreMaker(request.param)
    clickhouse = maker()
    load_samples(clickhouse.write)
    yield LocalSource(duck), LocalSource(clickhouse)
    duck.close()
    maker.teardown()


def assert_same_keys(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Entity keys agree: the same keys with the same span and service counts; the
    distinct counts of values and traces are estimates in both stores (DuckDB's
    HyperLogLog, ClickHouse's uniq), so they agree within a few percent."""
    mine = {k["key"]: k for k in got["keys"]}
    theirs = {k["key"]: k for k in expected["keys"]}
    assert sorted(mine) == sorted(theirs)
    for key, want in theirs.items():
        have = mine[key]
        assert (have["spans"], have["services"]) == (want["spans"], want["services"]), key
        for field in ("values", "traces"):
            assert abs(have[field] - want[field]) <= max(2, 0.05 * want[field]), (key, field)


def _slo_spec(source: LocalSource) -> str:  # also used by test_clickhouse_otel
    """Availability and latency SLOs for every root operation of the samples."""
    roots = {(t["service_name"], t["name"]) for t in source.recent_traces(1000)["traces"]}
    slos = []
    for i, (service, operation) in enumerate(sorted(roots)):
        slos.append(
            {
                "name": f"slo-{i}-availability",
                "service": service,
                "operation": operation,
                "sli": "availability",
                "objective": 99.0,
                "window": "30d",
            }
        )
        slos.append(
            {
                "name": f"slo-{i}-latency",
                "service": service,
                "operation": operation,
                "sli": "latency",
                "threshold_ms": 250,
                "objective": 95.0,
                "window": "7d",
            }
        )
    return json.dumps({"slos": slos})


def test_reports_are_identical(sources: tuple[LocalSource, LocalSource]) -> None:
    duck, clickhouse = sources
    assert clickhouse.stats() == duck.stats()
    assert duck.stats()["spans"] > 0
    assert clickhouse.failures() == duck.failures()
    assert clickhouse.failures(*EVERYTHING) == duck.failures(*EVERYTHING)
    assert duck.failures(*EVERYTHING)["traces"], "the samples hold failures"
    for service in duck.stats()["services"]:
        assert clickhouse.failures(*EVERYTHING, service=service) == duck.failures(
            *EVERYTHING, service=service
        ), service
    assert clickhouse.recent_traces(1000) == duck.recent_traces(1000)
    assert clickhouse.throughput() == duck.throughput()
    assert clickhouse.service_map() == duck.service_map()
    spec = _slo_spec(duck)
    assert clickhouse.slo(spec) == duck.slo(spec)


def test_cut_failure_reports_are_identical(sources: tuple[LocalSource, LocalSource]) -> None:
    """Listing fewer failing traces than there are picks the same ones in both stores."""
    duck, clickhouse = sources
    for limit in (0, 1, 3):
        cut = store_failure_report(duck.reader, *EVERYTHING, limit=limit)
        assert cut["omitted_traces"] > 0
        assert store_failure_report(clickhouse.reader, *EVERYTHING, limit=limit) == cut


def test_entities_are_identical(sources: tuple[LocalSource, LocalSource]) -> None:
    duck, clickhouse = sources
    keys = duck.entities(limit=1000)
    assert_same_keys(clickhouse.entities(limit=1000), keys)
    assert keys["keys"], "the samples carry entities"
    for key in (k["key"] for k in keys["keys"]):
        assert clickhouse.entities(key, limit=10_000) == duck.entities(key, limit=10_000), key


def _entity_values(source: LocalSource) -> list[str]:
    out = []
    for key in (k["key"] for k in source.entities(limit=1000)["keys"]):
        out.extend(f"{key}={v['value']}" for v in source.entities(key, limit=10_000)["values"])
    return out


def test_every_entity_diagram_is_identical(sources: tuple[LocalSource, LocalSource]) -> None:
    duck, clickhouse = sources
    entities = _entity_values(duck)
    assert any(e.startswith("order.id=") for e in entities)
    for entity in entities:
        expected: Any = duck.diagram(entity=entity, fmt="json")
        assert clickhouse.diagram(entity=entity, fmt="json") == expected, entity
        assert expected["messages"], entity
    entity = next(e for e in entities if e.startswith("order.id="))
    for fmt in ("mermaid", "plantuml", "markdown"):
        assert clickhouse.diagram(entity=entity, fmt=fmt) == duck.diagram(entity=entity, fmt=fmt)


def test_every_trace_is_identical(sources: tuple[LocalSource, LocalSource]) -> None:
    duck, clickhouse = sources
    trace_ids = [t["trace_id"] for t in duck.recent_traces(1000)["traces"]]
    assert len(trace_ids) == duck.stats()["traces"]
    for trace_id in trace_ids:
        assert clickhouse.trace(trace_id) == duck.trace(trace_id)
        assert clickhouse.trace_otlp(trace_id) == duck.trace_otlp(trace_id)
        assert clickhouse.diagram(trace_id=trace_id, fmt="json") == duck.diagram(
            trace_id=trace_id, fmt="json"
        )


def test_service_map_is_aggregated_in_clickhouse(
    sources: tuple[LocalSource, LocalSource],
) -> None:
    """ClickHouse returns the map's figures itself (service_map.sql), and they give the map
    of its own span frame, over the whole store and over parts of it."""
    from analyzer.failures import CANCEL_MESSAGE_PATTERN, CANCEL_TYPE_PATTERN
    from analyzer.servicemap import service_map

    duck, clickhouse = sources
    reader: Any = clickhouse.reader
    assert reader.service_map(*EVERYTHING, CANCEL_TYPE_PATTERN, CANCEL_MESSAGE_PATTERN) is not None
    starts = reader.span_frame(*EVERYTHING, whole_traces=False).get_column("start_unix_nano")
    middle = (starts.min() + starts.max()) // 2
    for start, end in (EVERYTHING, (0, middle), (middle, EVERYTHING[1]), (middle, middle + 1)):
        frame_map = service_map(reader.span_frame(start, end, whole_traces=False))
        assert clickhouse.service_map(start, end) == frame_map
        assert duck.service_map(start, end) == frame_map
