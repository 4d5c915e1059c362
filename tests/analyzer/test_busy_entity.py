"""Busy entities (SPEC "Busy entities", #16): a diagram never leaves out a failure.

A customer with 170 orders, 8 of them failed, 2,210 spans: far over the 500-message cap.
Read from a real DuckDB file through LocalSource (the store's fingerprint path) and from
spans in memory, every failed order must have an error message naming its trace, folded
messages must carry counts and trace ids, and ``omitted_messages`` counts only successes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analyzer.diagram import build_diagram
from analyzer.flow.busy import SPANS_READ_WHOLE, diagram_of_busy_entity
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import Span
from spanstore.rows import request_from_spans

MS = 1_000_000
BASE = 1_790_000_000_000_000_000
ORDERS = 170
FAILED = {7, 30, 55, 81, 99, 120, 141, 166}  # order numbers whose payment fails
CUSTOMER = ("customer.id", "CUST-BUSY")


def order_spans(number: int, rng: random.Random) -> list[Span]:
    """frontend -> checkout -> (cart, stock x2, payment -> bank), 13 spans."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(40))
    t = number * 60_000  # a minute apart
    fails = number in FAILED
    spans: list[Span] = []

    def add(parent: str | None, service: str, name: str, kind: str, start: int, end: int,
            error: bool = False, **attrs: Any) -> str:  # fmt: skip
        span_id = next(ids)
        spans.append(
            Span(
                trace_id=trace_id, span_id=span_id, parent_span_id=parent,
                service_name=service, name=name, kind=kind,
                start_unix_nano=BASE + start * MS, end_unix_nano=BASE + end * MS,
                status_code="ERROR" if error else "UNSET",
                status_message="card declined" if error else "",
                attributes={"customer.id": CUSTOMER[1], "order.id": f"ORD-{number}", **attrs},
                resource_attributes={"service.name": service},
            )
        )  # fmt: skip
        return span_id

    root = add(None, "frontend", "POST /checkout", "SERVER", t, t + 100, fails,
               **{"http.request.method": "POST", "http.route": "/checkout"})  # fmt: skip

    def call(parent: str, caller: str, callee: str, route: str, start: int, end: int,
             error: bool = False) -> str:  # fmt: skip
        attrs = {"http.request.method": "POST", "http.route": route, "peer.service": callee}
        client = add(parent, caller, f"POST {route}", "CLIENT", start, end, error, **attrs)
        return add(client, callee, f"POST {route}", "SERVER", start + 1, end - 1, error, **attrs)

    checkout = call(root, "frontend", "checkout", "/orders", t + 2, t + 98, fails)
    call(checkout, "checkout", "cart", "/cart", t + 5, t + 15)
    call(checkout, "checkout", "stock", "/stock/reserve", t + 20, t + 30)
    call(checkout, "checkout", "stock", "/stock/reserve", t + 32, t + 42)
    payment = call(checkout, "checkout", "payment", "/pay", t + 45, t + 90, fails)
    call(payment, "payment", "bank", "/charge", t + 50, t + 85, fails)
    return spans


@pytest.fixture(scope="module")
def busy_spans() -> list[Span]:
    rng = random.Random(170)
    return [span for n in range(ORDERS) for span in order_spans(n, rng)]


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory: pytest.TempPathFactory, busy_spans: list[Span]) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("busy") / "busy.duckdb"
    with DuckDBStore(path) as store:
        for start in range(0, len(busy_spans), 500):
            store.write(request_from_spans(busy_spans[start : start + 500]))
    yield path


def failed_trace_ids(spans: list[Span]) -> set[str]:
    return {s.trace_id for s in spans if s.is_error}


def check_busy_diagram(diagram: dict[str, Any], spans: list[Span]) -> None:
    failing = failed_trace_ids(spans)
    assert len(failing) == len(FAILED)
    errors = [m for m in diagram["messages"] if m["status"] == "error"]
    named = {m["trace_id"] for m in errors} | {t for m in errors for t in m.get("trace_ids", [])}
    assert failing <= named, "a failed order has no error message naming it"
    assert len(diagram["messages"]) <= 500
    # Every failed message of the unfolded diagram is drawn, and no failed one is counted
    # as omitted: the failed messages drawn equal the failed messages there are.
    full = build_diagram(spans, CUSTOMER, max_messages=0)
    assert len(full.messages) > 2000
    full_errors = sorted((m.trace_id, m.span_id, m.kind) for m in full.messages if m.is_error)
    drawn_errors = sorted((m["trace_id"], m["span_id"], m["kind"]) for m in errors)
    assert drawn_errors == full_errors
    # Folded: the 162 clean orders are one drawing whose messages stand for all of them.
    folded = [m for m in diagram["messages"] if m.get("trace_ids")]
    assert folded, "nothing was folded"
    head = folded[0]
    assert head["count"] == ORDERS - len(FAILED)
    assert len(head["trace_ids"]) == 20 and head["errors"] == 0
    stock = [m for m in folded if m["label"].startswith("POST /stock/reserve")]
    assert stock[0]["count"] == 2 * (ORDERS - len(FAILED))  # a loop: 2 calls per order
    # omitted_messages counts only successes: drawn + omitted covers every message of the
    # drawings, and the total of the drawn counts reconciles with the unfolded diagram.
    assert diagram["omitted_messages"] >= 0
    drawn_calls = sum(m["count"] for m in diagram["messages"])
    assert drawn_calls + diagram["omitted_messages"] == len(full.messages)
    assert diagram["traces"] == sorted(diagram["traces"], key=diagram["traces"].index)
    assert len(diagram["traces"]) == ORDERS
    notes = " ".join(n["text"] for n in diagram["notes"])
    assert "162 traces that made the same calls are folded into 1 drawing(s)" in notes


def test_busy_entity_from_the_store_keeps_every_failure(
    busy_store: Path, busy_spans: list[Span]
) -> None:
    assert len(busy_spans) > SPANS_READ_WHOLE  # the fingerprint path
    with DuckDBStore(busy_store, read_only=True) as store:
        diagram = LocalSource(store).diagram(entity="customer.id=CUST-BUSY", start=0, end=1 << 62)
        assert isinstance(diagram, dict)
        check_busy_diagram(diagram, busy_spans)
        mermaid = LocalSource(store).diagram(
            entity="customer.id=CUST-BUSY", start=0, end=1 << 62, fmt="mermaid"
        )
    assert isinstance(mermaid, str) and "\u00d7162" in mermaid


def test_busy_entity_in_memory_keeps_every_failure(busy_spans: list[Span]) -> None:
    from analyzer.diagram import to_dict

    diagram = to_dict(diagram_of_busy_entity(busy_spans, CUSTOMER))
    check_busy_diagram(diagram, busy_spans)


def test_a_small_entity_is_drawn_as_before(busy_spans: list[Span]) -> None:
    """Under the cap nothing folds: the diagram is build_diagram's, byte for byte."""
    from analyzer.diagram import render

    few = [s for s in busy_spans if s.attributes.get("order.id") in ("ORD-7", "ORD-8")]
    assert render(diagram_of_busy_entity(few, CUSTOMER), "json") == render(
        build_diagram(few, CUSTOMER), "json"
    )


def test_the_entity_diagram_reads_the_store_around_the_entity_only(
    busy_store: Path, busy_spans: list[Span], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is asked for the traces' spans within TRACE_REACH_NS of the entity's
    first span in them (zone maps skip the rest of a big store: issue 20), and the
    diagram still has every span."""
    from analyzer.source import TRACE_REACH_NS

    with DuckDBStore(busy_store, read_only=True) as store:
        asked: list[tuple[int | None, int | None]] = []
        shapes = store.flow_trace_shapes

        def spy(ids: Any, start: int | None = None, end: int | None = None) -> Any:
            asked.append((start, end))
            return shapes(ids, start, end)

        monkeypatch.setattr(store, "flow_trace_shapes", spy)
        diagram = LocalSource(store).diagram(entity="customer.id=CUST-BUSY", start=0, end=1 << 62)
        assert isinstance(diagram, dict)
        check_busy_diagram(diagram, busy_spans)
    firsts = [s.start_unix_nano for s in busy_spans if s.parent_span_id is None]
    assert asked == [(min(firsts) - TRACE_REACH_NS, max(firsts) + TRACE_REACH_NS)]
