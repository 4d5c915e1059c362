"""The service map aggregated in the store (spanstore service_map.sql, through
``LocalSource.service_map``) equals the map of the range's span frame
(``analyzer.servicemap.service_map``), which it replaces: on the shop incident, the public
captures and random traces written to a real DuckDB store (calls across services, through
queues, to databases and peers, errors by status, HTTP code and cancellation, medians of
even and odd counts)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.servicemap import service_map
from analyzer.source import LocalSource
from collector.files import read_trace_file
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import HOUR_NS, Span, SpanEvent
from spanstore.rows import request_from_spans

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "sample_traces").glob("*.json"))
REAL = sorted((REPO / "tests" / "data" / "real_traces").glob("*.json"))
MS = 1_000_000
T0 = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z
WINDOW = 4 * HOUR_NS
_examples = itertools.count(1)

SERVICES = ("front", "pay", "ship")
KINDS = ("SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER")
#: Peer-naming attributes: a known service, a database (with a numeric db.name, which is
#: no name), a queue, an RPC service, or nothing that names the peer.
PEERS: tuple[dict[str, Any], ...] = (
    {},
    {"server.address": "pay"},
    {"peer.service": "ship"},
    {"db.system": "redis", "db.name": "0"},
    {"db.system": "postgresql", "db.name": "orders", "server.address": "orders-db"},
    {"messaging.system": "kafka", "messaging.destination.name": "events"},
    {"messaging.destination.name": "jobs"},
    {"messaging.system": "rabbitmq"},
    {"rpc.service": "Payments"},
    {"server.address": "api.example.com"},
    {"peer.service": "events"},
)


def frame_map(store: DuckDBStore, start: int, end: int) -> dict[str, Any]:
    """The map as LocalSource made it before: the range's spans in one frame."""
    return service_map(store.span_frame(start, end, whole_traces=False))


def store_map(store: DuckDBStore, start: int, end: int) -> dict[str, Any]:
    figures = store.service_map(start, end, "x", "y")
    assert figures is not None  # DuckDB aggregates in SQL
    result: dict[str, Any] = LocalSource(store).service_map(start, end)
    return result


@st.composite
def traces(draw: st.DrawFn, example: int, window: int) -> list[Span]:
    spans: list[Span] = []
    for t in range(draw(st.integers(1, 5))):
        trace_id = f"{example:08x}{t:04x}{draw(st.integers(0, 2**80 - 1)):020x}"
        ids: list[str] = []
        for n in range(draw(st.integers(1, 8))):
            span_id = f"{draw(st.integers(0, 255)):02x}{t:02x}{n:012x}"
            parent = None if n == 0 else draw(st.sampled_from([*ids, *ids, "00000000deadbeef"]))
            start = window + draw(st.sampled_from([-MS, 0, 0, 3 * MS, 7 * MS, HOUR_NS]))
            status = draw(st.sampled_from(("UNSET", "OK", "ERROR")))
            attributes: dict[str, Any] = dict(draw(st.sampled_from(PEERS)))
            http = draw(st.sampled_from([None, None, 200, 404, 499, 503]))
            if http is not None:
                attributes["http.response.status_code"] = http
            events: tuple[SpanEvent, ...] = ()
            if status == "ERROR" and draw(st.booleans()):
                exception = draw(st.sampled_from(["ValueError", "CancelledError"]))
                events = (
                    SpanEvent(
                        "exception",
                        start,
                        {"exception.type": exception, "exception.message": "it broke"},
                    ),
                )
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name="op",
                    kind=draw(st.sampled_from(KINDS)),
                    start_unix_nano=start,
                    end_unix_nano=start + draw(st.integers(0, 9)) * MS // 2,
                    service_name=(service := draw(st.sampled_from(SERVICES))),
                    status_code=status,
                    status_message=(
                        draw(st.sampled_from(["", "boom", "context canceled"]))
                        if status == "ERROR"
                        else ""
                    ),
                    attributes=attributes,
                    events=events,
                    resource_attributes={"service.name": service},
                )
            )
            ids.append(span_id)
    return spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    duck = DuckDBStore(tmp_path_factory.mktemp("servicemap") / "random.duckdb")
    yield duck
    duck.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_store_map_equals_the_frame_map(store: DuckDBStore, data: st.DataObject) -> None:
    example = next(_examples)
    window = T0 + example * WINDOW
    store.write(request_from_spans(data.draw(traces(example, window))))
    start, end = window, window + HOUR_NS
    assert store_map(store, start, end) == frame_map(store, start, end)


@pytest.mark.parametrize("files", [SAMPLES, REAL], ids=["shop", "real"])
def test_store_map_equals_the_frame_map_on_recorded_traces(
    tmp_path: Path, files: list[Path]
) -> None:
    assert files
    with DuckDBStore(tmp_path / "recorded.duckdb") as duck:
        for file in files:
            for request in read_trace_file(file):
                duck.write(request)
        starts = duck.span_frame(0, 2**62, whole_traces=False).get_column("start_unix_nano")
        whole = store_map(duck, 0, 2**62)
        assert whole["edges"] and whole == frame_map(duck, 0, 2**62)
        middle = (starts.min() + starts.max()) // 2  # type: ignore[operator]
        for start, end in ((0, middle), (middle, 2**62), (middle, middle + 1)):
            assert store_map(duck, start, end) == frame_map(duck, start, end)


def test_store_map_pins_the_median_and_the_errors(tmp_path: Path) -> None:
    """Hand-computed: four calls front -> pay of 1, 2, 4 and 10 ms (the median between the
    two middle ones: 3.0 ms), one a 503 on the client span, one cancelled (no error)."""
    spans: list[Span] = []
    for n, (ms, http, message) in enumerate(
        [(1, None, ""), (2, 503, ""), (4, None, "context canceled"), (10, None, "")]
    ):
        trace = f"{n + 1:032x}"
        begin = T0 + n * MS
        status = "ERROR" if message else "UNSET"
        client_attributes: dict[str, Any] = {"server.address": "pay"}
        if http is not None:
            client_attributes["http.response.status_code"] = http
        front, pay = {"service.name": "front"}, {"service.name": "pay"}
        spans += [
            Span(
                trace,
                "00000000000000a1",
                None,
                "GET /",
                "SERVER",
                begin,
                begin + 20 * MS,
                "front",
                resource_attributes=front,
            ),
            Span(
                trace,
                "00000000000000a2",
                "00000000000000a1",
                "POST",
                "CLIENT",
                begin,
                begin + ms * MS,
                "front",
                status,
                message,
                client_attributes,
                resource_attributes=front,
            ),
            Span(
                trace,
                "00000000000000b1",
                "00000000000000a2",
                "POST /",
                "SERVER",
                begin,
                begin + MS // 2,
                "pay",
                resource_attributes=pay,
            ),
        ]
    with DuckDBStore(tmp_path / "pinned.duckdb") as duck:
        duck.write(request_from_spans(spans))
        result = store_map(duck, 0, 2**62)
        assert result == frame_map(duck, 0, 2**62)
    assert result["edges"] == [
        {"from": "front", "to": "pay", "calls": 4, "errors": 1, "error_rate": 0.25, "p50_ms": 3.0}
    ]
    assert result["nodes"] == [
        {"id": "front", "kind": "service", "spans": 8, "errors": 1},
        {"id": "pay", "kind": "service", "spans": 4, "errors": 0},
    ]


def test_a_queue_named_by_a_producer_is_a_queue_however_else_it_is_called(
    tmp_path: Path,
) -> None:
    """``events`` is called by an earlier CLIENT span naming it with ``peer.service`` (an
    external peer) and fed by a producer whose consumer reads it: the producer decides
    (the frame path takes the queue's kind first), in the store as in the frame."""
    front, ship = {"service.name": "front"}, {"service.name": "ship"}
    queue = {"messaging.system": "kafka", "messaging.destination.name": "events"}
    spans = [
        Span(
            f"{1:032x}",
            "00000000000000a1",
            None,
            "GET /",
            "CLIENT",
            T0,
            T0 + MS,
            "front",
            attributes={"peer.service": "events"},
            resource_attributes=front,
        ),
        Span(
            f"{2:032x}",
            "00000000000000b1",
            None,
            "send",
            "PRODUCER",
            T0 + MS,
            T0 + 2 * MS,
            "front",
            attributes=queue,
            resource_attributes=front,
        ),
        Span(
            f"{2:032x}",
            "00000000000000b2",
            "00000000000000b1",
            "receive",
            "CONSUMER",
            T0 + 3 * MS,
            T0 + 4 * MS,
            "ship",
            attributes=queue,
            resource_attributes=ship,
        ),
    ]
    with DuckDBStore(tmp_path / "queue.duckdb") as duck:
        duck.write(request_from_spans(spans))
        result = store_map(duck, 0, 2**62)
        assert result == frame_map(duck, 0, 2**62)
    assert {n["id"]: n["kind"] for n in result["nodes"]}["events"] == "queue"
    assert {(e["from"], e["to"]): e["calls"] for e in result["edges"]} == {
        ("front", "events"): 2,
        ("events", "ship"): 1,
    }
