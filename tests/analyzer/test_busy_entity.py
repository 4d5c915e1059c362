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

import analyzer.flow.busy as busy
from analyzer.diagram import build_diagram
from analyzer.flow.busy import FEW_TRACES, SPANS_READ_WHOLE, diagram_of_busy_entity
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
    # The label says the count once, at its end (the UI draws the label as it is).
    for message in folded:
        assert message["label"].endswith(f" \u00d7{message['count']}"), message["label"]
        assert message["label"].count("\u00d7") == 1, message["label"]
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


def recorded_diagram(
    store: DuckDBStore, entity: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[str]]:
    """The entity's diagram through LocalSource, and the names of the queries it ran."""
    ran: list[str] = []
    table = store._dialect.table

    def recording(name: str, params: Any) -> Any:
        ran.append(name)
        return table(name, params)

    monkeypatch.setattr(store._dialect, "table", recording)
    diagram = LocalSource(store).diagram(entity=entity, start=0, end=1 << 62)
    monkeypatch.undo()
    assert isinstance(diagram, dict)
    return diagram, ran


def test_busy_entity_reads_the_stored_spans_once(
    busy_store: Path, busy_spans: list[Span], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One query brings the fingerprints and the spans drawn: the store's spans are not
    searched again by trace id (each search reads the trace_id column of the whole store)."""
    assert ORDERS > FEW_TRACES  # fingerprinted first
    with DuckDBStore(busy_store, read_only=True) as store:
        diagram, ran = recorded_diagram(store, "customer.id=CUST-BUSY", monkeypatch)
        check_busy_diagram(diagram, busy_spans)
        # Read whole first (as an entity in few traces is), then fingerprinted: the same.
        monkeypatch.setattr(busy, "FEW_TRACES", ORDERS)
        again, ran_again = recorded_diagram(store, "customer.id=CUST-BUSY", monkeypatch)
    assert ran.count("flow_trace_shapes") == 1
    assert "spans_of_traces" not in ran, ran
    assert ran_again.count("flow_trace_shapes") == ran_again.count("spans_of_traces") == 1
    assert again == diagram


def test_a_small_entity_is_not_fingerprinted(
    busy_store: Path, busy_spans: list[Span], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order (one trace) is drawn from one read of its spans, as before folding existed."""
    few = [s for s in busy_spans if s.attributes.get("order.id") == "ORD-7"]
    with DuckDBStore(busy_store, read_only=True) as store:
        diagram, ran = recorded_diagram(store, "order.id=ORD-7", monkeypatch)
    assert "flow_trace_shapes" not in ran and ran.count("spans_of_traces") == 1, ran
    from analyzer.diagram import to_dict

    assert diagram == to_dict(build_diagram(few, ("order.id", "ORD-7")))


def test_shapes_and_spans_bring_the_traces_drawn(busy_store: Path, busy_spans: list[Span]) -> None:
    """flow_trace_shapes_and_spans: flow_trace_shapes' rows, and the spans (as ``spans``
    reads them) of the first trace of each fingerprint, of the failing traces when asked,
    and of every trace when they are few enough."""
    trace_ids = sorted({s.trace_id for s in busy_spans})
    failing = failed_trace_ids(busy_spans)
    with DuckDBStore(busy_store, read_only=True) as store:
        plain = store.flow_trace_shapes(trace_ids)
        assert plain is not None
        firsts = {
            rows["trace_id"][0] for rows in plain.partition_by("fingerprint", maintain_order=True)
        }
        assert plain["fingerprint"].null_count() == 0
        assert len(firsts) == 2  # the clean orders, the failed ones (one shape each)
        for kwargs, wanted in (
            ({}, firsts),
            ({"failing": True}, firsts | failing),
            ({"whole_spans": len(busy_spans)}, set(trace_ids)),
            ({"whole_spans": len(busy_spans) - 1}, firsts),
        ):
            found = store.flow_trace_shapes_and_spans(trace_ids, **kwargs)
            assert found is not None
            frame, spans = found
            assert frame.equals(plain)
            assert {s.trace_id for s in spans} == wanted, kwargs
            assert spans == store.spans(sorted(wanted))


def test_a_diagram_is_kept_until_the_store_changes(
    busy_store: Path, busy_spans: list[Span], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's LocalSource answers the same entity again from what it kept, while the
    store's data versions say nothing changed around its traces: a write elsewhere keeps
    it; a late span of one of its traces, or a new trace of the entity, makes it read the
    store again."""
    import shutil

    path = tmp_path / "copy.duckdb"
    shutil.copyfile(busy_store, path)
    entity = "customer.id=CUST-BUSY"
    with DuckDBStore(path) as store:
        source = LocalSource(store)
        ran: list[str] = []
        table = store._dialect.table

        def recording(name: str, params: Any) -> Any:
            ran.append(name)
            return table(name, params)

        monkeypatch.setattr(store._dialect, "table", recording)
        first = source.diagram(entity=entity, start=0, end=1 << 62)
        assert ran.count("flow_trace_shapes") == 1
        assert source.diagram(entity=entity, start=0, end=1 << 62) == first
        assert ran.count("flow_trace_shapes") == 1  # kept
        assert source.diagram(entity=entity, start=0, end=1 << 62, show_internal=True)
        assert ran.count("flow_trace_shapes") == 2  # another diagram
        # Ingest elsewhere (another trace, a day after the customer's orders): kept.
        elsewhere = Span(
            "e" * 32, "e" * 16, None, "GET /health", "SERVER", BASE + 86_400 * 10**9,
            BASE + 86_400 * 10**9 + MS, "probe", "UNSET",
        )  # fmt: skip
        store.write(request_from_spans([elsewhere]))
        store.flush()
        assert source.diagram(entity=entity, start=0, end=1 << 62) == first
        assert ran.count("flow_trace_shapes") == 2
        # A late span of one of its traces (without the entity, in that trace's hour):
        # the diagram is made again.
        quiet = next(s for s in busy_spans if s.parent_span_id is None and not s.is_error)
        late = Span(
            quiet.trace_id, "f" * 16, quiet.span_id, "audit", "INTERNAL",
            quiet.start_unix_nano + 5 * MS, quiet.start_unix_nano + 6 * MS, "frontend", "UNSET",
        )  # fmt: skip
        store.write(request_from_spans([late]))
        store.flush()
        source.diagram(entity=entity, start=0, end=1 << 62)
        assert ran.count("flow_trace_shapes") == 3
        extra = order_spans(7, random.Random(7))  # one more failed order of the customer
        store.write(request_from_spans(extra))
        store.flush()
        after = source.diagram(entity=entity, start=0, end=1 << 62)
    assert ran.count("flow_trace_shapes") == 4
    assert isinstance(first, dict) and isinstance(after, dict)
    assert len(after["traces"]) == len(first["traces"]) + 1 == ORDERS + 1
    errors = [m for m in after["messages"] if m["status"] == "error"]
    assert extra[0].trace_id in {m["trace_id"] for m in errors}
