"""analyzer.servicemap: nodes and edges from the span frame."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import pytest

from analyzer.servicemap import service_map
from spanstore.frame import FRAME_SCHEMA


def span(
    trace: str,
    span_id: str,
    parent: str | None,
    service: str,
    kind: str = "INTERNAL",
    *,
    start: int = 0,
    duration_ms: float = 1.0,
    status: str = "UNSET",
    **columns: Any,
) -> dict[str, Any]:
    duration = int(duration_ms * 1_000_000)
    row: dict[str, Any] = dict.fromkeys(FRAME_SCHEMA)
    row.update(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=f"{service} {kind}",
        kind=kind,
        start_unix_nano=start,
        end_unix_nano=start + duration,
        duration_ns=duration,
        status_code=status,
        status_message="",
    )
    row.update(columns)
    return row


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FRAME_SCHEMA)


def edges_of(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["from"], e["to"]): e for e in result["edges"]}


def nodes_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in result["nodes"]}


def checkout_trace(trace: str = "t1", db_error: bool = False) -> list[dict[str, Any]]:
    return [
        span(trace, "a", None, "frontend", "SERVER", duration_ms=50),
        span(trace, "b", "a", "frontend", "CLIENT", duration_ms=40, server_address="checkout"),
        span(trace, "c", "b", "checkout", "SERVER", duration_ms=38),
        span(
            trace,
            "d",
            "c",
            "checkout",
            "CLIENT",
            duration_ms=4,
            status="ERROR" if db_error else "UNSET",
            db_system="postgresql",
            db_name="orders",
            server_address="orders-db",
        ),
    ]


def test_empty_frame_gives_an_empty_map() -> None:
    assert service_map(frame([])) == {"nodes": [], "edges": []}


def test_service_to_service_and_database_edges() -> None:
    result = service_map(frame(checkout_trace(db_error=True)))
    edges = edges_of(result)
    assert set(edges) == {("frontend", "checkout"), ("checkout", "orders-db")}
    call = edges[("frontend", "checkout")]
    assert call["calls"] == 1
    assert call["errors"] == 0
    assert call["p50_ms"] == pytest.approx(40.0)  # the caller's CLIENT span
    db = edges[("checkout", "orders-db")]
    assert (db["calls"], db["errors"], db["error_rate"]) == (1, 1, 1.0)
    nodes = nodes_of(result)
    assert nodes["orders-db"]["kind"] == "database"
    assert nodes["frontend"] == {"id": "frontend", "kind": "service", "spans": 2, "errors": 0}
    assert nodes["checkout"]["errors"] == 1  # its CLIENT span failed


def test_counts_and_median_over_many_traces() -> None:
    rows = []
    for i in range(5):
        trace = checkout_trace(f"t{i}", db_error=i == 0)
        trace[1]["duration_ns"] = (i + 1) * 10_000_000
        rows += trace
    edges = edges_of(service_map(frame(rows)))
    assert edges[("frontend", "checkout")]["calls"] == 5
    assert edges[("frontend", "checkout")]["p50_ms"] == pytest.approx(30.0)
    assert edges[("checkout", "orders-db")]["errors"] == 1
    assert edges[("checkout", "orders-db")]["error_rate"] == pytest.approx(0.2)


def test_a_failed_client_span_over_a_fine_server_span_is_a_failed_call() -> None:
    rows = checkout_trace()
    rows[1]["status_code"] = "ERROR"  # the caller timed out; the server span looks fine
    assert edges_of(service_map(frame(rows)))[("frontend", "checkout")]["errors"] == 1


def test_producer_and_consumer_in_one_trace_go_through_the_queue() -> None:
    rows = [
        span("t", "p", None, "checkout", "SERVER"),
        span(
            "t",
            "q",
            "p",
            "checkout",
            "PRODUCER",
            messaging_system="kafka",
            messaging_destination="order-events",
        ),
        span(
            "t",
            "r",
            "q",
            "fulfillment",
            "CONSUMER",
            messaging_system="kafka",
            messaging_destination="order-events",
        ),
    ]
    result = service_map(frame(rows))
    assert set(edges_of(result)) == {
        ("checkout", "order-events"),
        ("order-events", "fulfillment"),
    }
    assert nodes_of(result)["order-events"]["kind"] == "queue"


def test_consumer_in_its_own_trace_is_fed_by_the_queue() -> None:
    rows = [
        span("t1", "p", None, "checkout", "SERVER"),
        span(
            "t1",
            "q",
            "p",
            "checkout",
            "PRODUCER",
            messaging_system="kafka",
            messaging_destination="order-events",
        ),
        span(
            "t2",
            "r",
            None,
            "fulfillment",
            "CONSUMER",
            messaging_system="kafka",
            messaging_destination="order-events",
        ),
    ]
    edges = edges_of(service_map(frame(rows)))
    assert set(edges) == {("checkout", "order-events"), ("order-events", "fulfillment")}


def test_a_queue_seen_only_from_the_consumer_side_is_a_node() -> None:
    rows = [
        span(
            "t2",
            "r",
            None,
            "fulfillment",
            "CONSUMER",
            messaging_system="kafka",
            messaging_destination="order-events",
        )
    ]
    result = service_map(frame(rows))
    assert nodes_of(result)["order-events"]["kind"] == "queue"
    assert set(edges_of(result)) == {("order-events", "fulfillment")}


def test_external_peer_names_follow_the_conventions() -> None:
    rows = [
        span("t", "a", None, "payment", "SERVER"),
        span(
            "t",
            "b",
            "a",
            "payment",
            "CLIENT",
            status="ERROR",
            peer_service="payprovider",
            server_address="api.payprovider.example",
        ),
        span("t", "c", "a", "payment", "CLIENT", server_address="api.mailer.example"),
        span("t", "d", "a", "payment", "CLIENT", rpc_service="fraud.Check"),
        span("t", "e", "a", "payment", "CLIENT"),  # names nothing: no edge
    ]
    result = service_map(frame(rows))
    assert set(edges_of(result)) == {
        ("payment", "payprovider"),
        ("payment", "api.mailer.example"),
        ("payment", "fraud.Check"),
    }
    assert edges_of(result)[("payment", "payprovider")]["errors"] == 1
    assert {n["kind"] for n in result["nodes"] if n["id"] != "payment"} == {"external"}


def test_database_naming_skips_redis_database_numbers() -> None:
    rows = [
        span("t", "a", None, "cart", "SERVER"),
        span("t", "b", "a", "cart", "CLIENT", db_system="redis", db_name="0"),
        span("t", "c", "a", "cart", "CLIENT", db_system="postgresql", db_name="carts"),
    ]
    assert set(edges_of(service_map(frame(rows)))) == {("cart", "redis"), ("cart", "carts")}


def test_a_peer_named_like_an_instrumented_service_is_that_service() -> None:
    rows = [
        span("t1", "a", None, "frontend", "SERVER"),
        span("t1", "b", "a", "frontend", "CLIENT", peer_service="checkout"),
        span("t2", "c", None, "checkout", "SERVER"),
    ]
    result = service_map(frame(rows))
    assert ("frontend", "checkout") in edges_of(result)
    assert [n["id"] for n in result["nodes"] if n["kind"] != "service"] == []


def test_calls_inside_one_service_make_no_edge() -> None:
    rows = [
        span("t", "a", None, "checkout", "SERVER"),
        span("t", "b", "a", "checkout", "INTERNAL"),
        span("t", "c", "b", "checkout", "INTERNAL"),
    ]
    result = service_map(frame(rows))
    assert result["edges"] == []
    assert [n["id"] for n in result["nodes"]] == ["checkout"]


def test_hand_built_frames_may_lack_semantic_columns() -> None:
    rows = pl.DataFrame(
        {
            "trace_id": ["t", "t"],
            "span_id": ["a", "b"],
            "parent_span_id": [None, "a"],
            "service_name": ["x", "y"],
            "kind": ["CLIENT", "SERVER"],
            "status_code": ["UNSET", "ERROR"],
            "start_unix_nano": [0, 1],
            "end_unix_nano": [10, 9],
            "duration_ns": [10, 8],
        }
    )
    edges = edges_of(service_map(rows))
    assert edges[("x", "y")]["errors"] == 1


def test_sample_shop_map(sample_db: Any) -> None:
    from analyzer.source import open_database

    source = open_database(str(sample_db))
    result = source.service_map(0, 2**62)
    edges = edges_of(result)
    nodes = nodes_of(result)
    for pair in [
        ("frontend", "checkout"),
        ("checkout", "payment"),
        ("payment", "payprovider"),
        ("checkout", "orders-db"),
        ("checkout", "order-events"),
        ("order-events", "fulfillment"),
        ("notification", "mailer"),
        ("cart", "redis-cache"),
    ]:
        assert pair in edges, pair
    assert nodes["payprovider"]["kind"] == "external"
    assert nodes["order-events"]["kind"] == "queue"
    assert nodes["redis-cache"]["kind"] == "database"
    # the two 503s from the payment provider (ORD-1002's retries)
    assert edges[("payment", "payprovider")]["errors"] == 2


def test_vectorised_on_a_large_frame() -> None:
    rows: dict[str, list[Any]] = {name: [] for name in FRAME_SCHEMA}
    n_traces = 25_000  # 100k spans
    for column, values in {
        "trace_id": [f"t{i}" for i in range(n_traces) for _ in range(4)],
        "span_id": [f"t{i}s{j}" for i in range(n_traces) for j in range(4)],
        "parent_span_id": [
            p for i in range(n_traces) for p in (None, f"t{i}s0", f"t{i}s1", f"t{i}s2")
        ],
        "service_name": ["frontend", "frontend", "checkout", "checkout"] * n_traces,
        "kind": ["SERVER", "CLIENT", "SERVER", "CLIENT"] * n_traces,
        "status_code": ["UNSET", "UNSET", "UNSET", "ERROR"] * n_traces,
        "duration_ns": [5_000_000, 4_000_000, 3_000_000, 1_000_000] * n_traces,
        "db_system": [None, None, None, "postgresql"] * n_traces,
        "server_address": [None, "checkout", None, "orders-db"] * n_traces,
    }.items():
        rows[column] = values
    size = 4 * n_traces
    for column in FRAME_SCHEMA:
        if not rows[column]:
            rows[column] = [None] * size
    big = pl.DataFrame(rows, schema=FRAME_SCHEMA)
    began = time.perf_counter()
    result = service_map(big)
    elapsed = time.perf_counter() - began
    edges = edges_of(result)
    assert edges[("frontend", "checkout")]["calls"] == n_traces
    assert edges[("checkout", "orders-db")]["errors"] == n_traces
    assert elapsed < 3.0, f"service_map took {elapsed:.2f}s on {size} spans"
