"""The diagram builder on hand-built spans: one rule of docs/diagrams.md per test."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from analyzer.diagram import FORMATS, build_diagram, render, to_dict
from analyzer.diagram.model import Diagram, Message
from analyzer.diagram.text import TIMES
from analyzer.diagram.tree import MAX_DEPTH
from spanstore.model import AttrValue, Span, SpanEvent, SpanKind, SpanLink, StatusCode

T0 = 1_795_165_200_000_000_000  # 2026-11-20T09:00:00Z
MS = 1_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def sid(number: int) -> str:
    return f"{number:016x}"


def make_span(
    span_id: int,
    parent: int | None,
    service: str,
    kind: SpanKind,
    name: str,
    start_ms: float,
    end_ms: float,
    *,
    trace: str = TRACE,
    attrs: Mapping[str, AttrValue] | None = None,
    status: StatusCode = "UNSET",
    message: str = "",
    events: Sequence[SpanEvent] = (),
    links: Sequence[SpanLink] = (),
    resource: Mapping[str, AttrValue] | None = None,
) -> Span:
    return Span(
        trace_id=trace,
        span_id=sid(span_id),
        parent_span_id=sid(parent) if parent is not None else None,
        name=name,
        kind=kind,
        start_unix_nano=T0 + int(start_ms * MS),
        end_unix_nano=T0 + int(end_ms * MS),
        service_name=service,
        status_code=status,
        status_message=message,
        attributes=dict(attrs or {}),
        resource_attributes={"service.name": service, **(resource or {})},
        events=tuple(events),
        links=tuple(links),
    )


def checkout_call(server_status: StatusCode = "UNSET") -> list[Span]:
    """frontend's root request calls checkout, which inserts into orders-db."""
    return [
        make_span(1, None, "frontend", "SERVER", "POST /api/checkout", 0, 100,
                  attrs={"http.request.method": "POST", "http.route": "/api/checkout",
                         "http.response.status_code": 200}),
        make_span(2, 1, "frontend", "CLIENT", "POST", 5, 95,
                  attrs={"http.request.method": "POST", "url.template": "/api/orders",
                         "peer.service": "checkout", "server.address": "checkout"}),
        make_span(3, 2, "checkout", "SERVER", "POST /api/orders", 10, 90, status=server_status,
                  attrs={"http.request.method": "POST", "http.route": "/api/orders",
                         "http.response.status_code": 201}),
        make_span(4, 3, "checkout", "CLIENT", "INSERT orders", 20, 30,
                  attrs={"db.system": "postgresql", "db.name": "orders",
                         "db.operation": "INSERT", "db.sql.table": "orders",
                         "server.address": "orders-db"}),
    ]  # fmt: skip


def arrows(diagram: Diagram) -> list[tuple[str, str, str, str]]:
    return [(m.source, m.target, m.kind, m.label) for m in diagram.messages]


def by_span(diagram: Diagram, span_id: int, kind: str) -> list[Message]:
    return [m for m in diagram.messages if m.span_id == sid(span_id) and m.kind == kind]


# --- calls and returns --------------------------------------------------------------------


def test_client_answered_by_server_is_one_call_and_one_return() -> None:
    diagram = build_diagram(checkout_call(), ("order.id", "ORD-1"))
    assert arrows(diagram) == [
        ("client", "frontend", "call", "POST /api/checkout"),
        ("frontend", "checkout", "call", "POST /api/orders"),
        ("checkout", "orders-db", "call", "INSERT orders"),
        ("orders-db", "checkout", "return", "ok"),
        ("checkout", "frontend", "return", "201"),
        ("frontend", "client", "return", "200"),
    ]
    call = by_span(diagram, 2, "call")[0]
    assert call.server_span_id == sid(3)
    assert call.start_unix_nano == T0 + 5 * MS and call.duration_ns == 90 * MS
    assert [(p.id, p.kind) for p in diagram.participants] == [
        ("client", "external"),
        ("frontend", "service"),
        ("checkout", "service"),
        ("orders-db", "database"),
    ]
    assert diagram.participants[0].implicit
    assert diagram.participant("orders-db") is not None
    assert diagram.participants[3].label == "orders-db (postgresql)"


def test_root_caller_id_avoids_a_service_called_client() -> None:
    spans = [make_span(1, None, "client", "SERVER", "GET /", 0, 10)]
    diagram = build_diagram(spans)
    assert arrows(diagram)[0][:2] == ("caller", "client")
    assert diagram.participants[0].id == "caller"
    assert diagram.participants[0].implicit


def test_error_is_marked_with_the_status_message_or_the_exception() -> None:
    spans = checkout_call(server_status="ERROR")
    exception = SpanEvent(
        "exception",
        T0,
        {"exception.type": "psycopg.errors.DeadlockDetected",
         "exception.message": "deadlock detected\nDETAIL: process 1 waits"},
    )  # fmt: skip
    spans[2] = make_span(3, 2, "checkout", "SERVER", "POST /api/orders", 10, 90,
                         status="ERROR", events=[exception],
                         attrs={"http.route": "/api/orders", "http.request.method": "POST",
                                "http.response.status_code": 500})  # fmt: skip
    diagram = build_diagram(spans)
    call = by_span(diagram, 2, "call")[0]
    answer = by_span(diagram, 2, "return")[0]
    assert call.status == answer.status == "error"
    assert answer.error == "DeadlockDetected: deadlock detected"
    assert answer.label == "500"
    assert by_span(diagram, 1, "call")[0].status == "ok"


def test_client_side_error_marks_the_call_even_when_the_server_is_fine() -> None:
    spans = checkout_call()
    attrs = {"http.request.method": "GET", "http.response.status_code": 404}
    spans[1] = make_span(
        2, 1, "frontend", "CLIENT", "GET", 5, 95, status="ERROR", message="404 Not Found",
        attrs=attrs,
    )  # fmt: skip
    diagram = build_diagram(spans)
    answer = by_span(diagram, 2, "return")[0]
    assert (answer.status, answer.error) == ("error", "404 Not Found")


# --- peers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"db.system": "redis", "db.operation": "GET", "server.address": "redis-cache"},
         ("redis-cache", "database", "redis-cache")),
        ({"db.system.name": "postgresql", "db.namespace": "shop"},
         ("shop", "database", "shop (postgresql)")),
        ({"db.system": "mysql"}, ("mysql", "database", "mysql")),
        ({"peer.service": "payprovider", "server.address": "api.payprovider.example",
          "http.request.method": "POST"}, ("payprovider", "external", "payprovider")),
        ({"rpc.service": "stripe.Charges", "rpc.method": "Create"},
         ("stripe.Charges", "external", "stripe.Charges")),
        ({"url.full": "https://api.mailer.example:443/v3/send", "http.request.method": "POST"},
         ("api.mailer.example", "external", "api.mailer.example")),
        ({"server.address": "payment"}, ("payment", "service", "payment")),
        ({}, ("unknown", "external", "unknown peer")),
    ],
)  # fmt: skip
def test_peer_without_spans_is_named_from_semantic_conventions(
    attrs: dict[str, AttrValue], expected: tuple[str, str, str]
) -> None:
    spans = [
        make_span(1, None, "checkout", "SERVER", "POST /x", 0, 100),
        make_span(2, 1, "checkout", "CLIENT", "call", 10, 20, attrs=attrs),
        make_span(3, None, "payment", "SERVER", "POST /pay", 200, 300, trace=OTHER_TRACE),
    ]
    diagram = build_diagram(spans)
    call = by_span(diagram, 2, "call")[0]
    peer = diagram.participant(call.target)
    assert peer is not None
    assert (peer.id, peer.kind, peer.label) == expected


def test_client_library_reporting_under_its_own_service_is_called_by_the_parent() -> None:
    """HotROD: ``mysql`` and ``redis-manual`` CLIENT spans nested in other services' spans."""
    spans = [
        make_span(1, None, "customer", "SERVER", "GET /customer", 0, 100),
        make_span(2, 1, "mysql", "CLIENT", "SQL SELECT", 10, 90,
                  attrs={"db.system.name": "mysql", "db.operation.name": "SELECT"}),
    ]  # fmt: skip
    diagram = build_diagram(spans)
    assert arrows(diagram)[1:3] == [
        ("customer", "mysql", "call", "SQL SELECT"),
        ("mysql", "customer", "return", "ok"),
    ]
    mysql = diagram.participant("mysql")
    assert mysql is not None and mysql.kind == "database"


# --- async hops and links -----------------------------------------------------------------


def kafka_spans(*, consumer_links_producer: bool = True, consumer_attrs: bool = True) -> list[Span]:
    messaging = {"messaging.system": "kafka", "messaging.destination.name": "order-events"}
    producer_links = () if consumer_links_producer else (SpanLink(OTHER_TRACE, sid(20)),)
    consumer_links = (SpanLink(TRACE, sid(2)),) if consumer_links_producer else ()
    return [
        make_span(1, None, "checkout", "SERVER", "POST /api/orders", 0, 50),
        make_span(2, 1, "checkout", "PRODUCER", "publish order-events", 40, 45,
                  attrs={**messaging, "messaging.operation": "publish"}, links=producer_links),
        make_span(20, None, "fulfillment", "CONSUMER", "process order-events", 300, 400,
                  trace=OTHER_TRACE, links=consumer_links,
                  attrs={**messaging, "messaging.operation": "process"} if consumer_attrs else {}),
        make_span(21, 20, "fulfillment", "CLIENT", "INSERT shipments", 310, 320,
                  trace=OTHER_TRACE, attrs={"db.system": "postgresql", "server.address": "db"}),
    ]  # fmt: skip


@pytest.mark.parametrize("consumer_links_producer", [True, False])
def test_producer_to_consumer_is_an_async_hop_via_the_queue(consumer_links_producer: bool) -> None:
    spans = kafka_spans(consumer_links_producer=consumer_links_producer, consumer_attrs=False)
    diagram = build_diagram(spans)
    assert diagram.traces == (TRACE, OTHER_TRACE)
    hops = [(m.source, m.target, m.label) for m in diagram.messages if m.kind == "async"]
    assert hops == [
        ("checkout", "order-events", "publish order-events"),
        ("order-events", "fulfillment", "process order-events"),
    ]
    queue = diagram.participant("order-events")
    assert queue is not None and queue.kind == "queue" and queue.label == "order-events (kafka)"
    consumed = by_span(diagram, 20, "async")[0]
    produced = by_span(diagram, 2, "async")[0]
    assert consumed.link is not None and consumed.link.span_id == sid(2)
    assert produced.link is not None and produced.link.span_id == sid(20)


def test_consumer_in_the_same_trace_follows_its_producer() -> None:
    spans = [
        make_span(1, None, "checkout", "SERVER", "POST /orders", 0, 50),
        make_span(2, 1, "checkout", "PRODUCER", "publish", 10, 12,
                  attrs={"messaging.destination.name": "orders"}),
        make_span(3, 2, "mailer", "CONSUMER", "process", 60, 70),
    ]  # fmt: skip
    diagram = build_diagram(spans)
    assert arrows(diagram) == [
        ("client", "checkout", "call", "POST /orders"),
        ("checkout", "orders", "async", "publish"),
        ("orders", "mailer", "async", "process"),
        ("checkout", "client", "return", "ok"),
    ]


# --- internal spans -----------------------------------------------------------------------


def with_internal(status: StatusCode = "UNSET") -> list[Span]:
    return [
        make_span(1, None, "payment", "SERVER", "POST /pay", 0, 100),
        make_span(2, 1, "payment", "INTERNAL", "charge card", 10, 90, status=status,
                  message="card declined" if status == "ERROR" else ""),
        make_span(3, 2, "payment", "CLIENT", "POST", 20, 80,
                  attrs={"peer.service": "payprovider", "http.request.method": "POST",
                         "url.template": "/v1/charges"}),
    ]  # fmt: skip


def test_internal_spans_are_hidden_by_default_and_self_calls_on_request() -> None:
    hidden = build_diagram(with_internal())
    assert [m.label for m in hidden.messages if m.kind == "self"] == []
    assert ("payment", "payprovider", "call", "POST /v1/charges") in arrows(hidden)
    shown = build_diagram(with_internal(), show_internal=True)
    assert arrows(shown)[1] == ("payment", "payment", "self", "charge card")
    assert arrows(shown)[2] == ("payment", "payprovider", "call", "POST /v1/charges")


def test_a_failed_internal_span_is_shown_even_when_internals_are_hidden() -> None:
    diagram = build_diagram(with_internal("ERROR"))
    self_calls = [m for m in diagram.messages if m.kind == "self"]
    assert [(m.label, m.error) for m in self_calls] == [("charge card", "card declined")]


# --- partial traces, skew, gaps -----------------------------------------------------------


def test_partial_trace_orphans_are_drawn_at_top_level_in_time_order() -> None:
    spans = [
        make_span(3, 99, "checkout", "SERVER", "POST /api/orders", 10, 90),  # parent missing
        make_span(4, 3, "checkout", "CLIENT", "INSERT orders", 20, 30,
                  attrs={"db.system": "postgresql", "server.address": "orders-db"}),
        make_span(7, 98, "cart", "SERVER", "GetCart", 5, 8),  # parent missing, earlier
    ]  # fmt: skip
    diagram = build_diagram(spans)
    assert arrows(diagram) == [
        ("client", "cart", "call", "GetCart"),
        ("cart", "client", "return", "ok"),
        ("client", "checkout", "call", "POST /api/orders"),
        ("checkout", "orders-db", "call", "INSERT orders"),
        ("orders-db", "checkout", "return", "ok"),
        ("checkout", "client", "return", "ok"),
    ]
    notes = [n for n in diagram.notes if n.kind == "partial"]
    assert len(notes) == 1 and "2 span(s) whose parent is missing" in notes[0].text


def test_clock_skew_is_corrected_like_jaeger_with_a_note() -> None:
    spans = checkout_call()
    # checkout's clock runs 500 ms behind: its server span starts before the client's call.
    spans[2] = make_span(3, 2, "checkout", "SERVER", "POST /api/orders", -490, -410)
    db = {"db.system": "postgresql", "server.address": "orders-db"}
    spans[3] = make_span(4, 3, "checkout", "CLIENT", "INSERT orders", -480, -470, attrs=db)
    diagram = build_diagram(spans)
    call = by_span(diagram, 2, "call")[0]
    insert = by_span(diagram, 4, "call")[0]
    # Centred in the 90 ms client span: (90 - 80) / 2 = 5 ms after it starts, i.e. at 10 ms.
    assert insert.start_unix_nano == T0 + 20 * MS
    assert call.start_unix_nano <= insert.start_unix_nano
    skew = [n for n in diagram.notes if n.kind == "skew"]
    assert [n.text for n in skew] == ["clock skew corrected: checkout shifted by +500.0 ms"]
    assert skew[0].participants == ("checkout",)
    unskewed = build_diagram(spans, skew_correction=False)
    assert by_span(unskewed, 4, "call")[0].start_unix_nano == T0 - 480 * MS
    assert not [n for n in unskewed.notes if n.kind == "skew"]


def test_same_host_clock_is_not_corrected() -> None:
    spans = checkout_call()
    host = {"host.name": "node-1"}
    spans = [
        make_span(2, None, "frontend", "CLIENT", "POST", 5, 95, resource=host,
                  attrs={"peer.service": "checkout"}),
        make_span(3, 2, "checkout", "SERVER", "POST /api/orders", 0, 200, resource=host),
    ]  # fmt: skip
    diagram = build_diagram(spans)
    assert not [n for n in diagram.notes if n.kind == "skew"]


def test_long_gap_between_traces_becomes_a_divider() -> None:
    day = 24 * 3600 * 1000
    spans = [
        make_span(1, None, "frontend", "SERVER", "POST /checkout", 0, 100),
        make_span(2, None, "fulfillment", "SERVER", "POST /webhooks/carrier",
                  2 * day + 4 * 3600 * 1000, 2 * day + 4 * 3600 * 1000 + 50, trace=OTHER_TRACE),
    ]  # fmt: skip
    diagram = build_diagram(spans)
    gaps = [n for n in diagram.notes if n.kind == "gap"]
    assert [(g.index, g.text) for g in gaps] == [(2, "2 days 4 h later")]
    assert gaps[0].gap_ns is not None and gaps[0].gap_ns > 2 * day * MS
    assert [s.trace_id for s in diagram.sections] == [TRACE, OTHER_TRACE]
    assert (diagram.sections[1].first, diagram.sections[1].last) == (2, 3)


def test_short_gap_has_no_divider() -> None:
    spans = [
        make_span(1, None, "frontend", "SERVER", "GET /a", 0, 100),
        make_span(2, None, "frontend", "SERVER", "GET /b", 30_000, 30_100, trace=OTHER_TRACE),
    ]
    assert not build_diagram(spans).notes


# --- retries, parallel calls, collapsing --------------------------------------------------


def charges(count: int, failures: int, *, spacing: float = 10.0) -> list[Span]:
    spans = [make_span(1, None, "payment", "SERVER", "POST /pay", 0, 10 + count * spacing)]
    for n in range(count):
        failed = n < failures
        spans.append(
            make_span(10 + n, 1, "payment", "CLIENT", "POST", 5 + n * spacing, 10 + n * spacing,
                      status="ERROR" if failed else "UNSET",
                      message="503 Service Unavailable" if failed else "",
                      attrs={"peer.service": "payprovider", "http.request.method": "POST",
                             "url.template": "/v1/charges",
                             "http.response.status_code": 503 if failed else 200})
        )  # fmt: skip
    return spans


def test_retries_stay_one_message_each_grouped_in_a_loop() -> None:
    diagram = build_diagram(charges(3, 2))
    loops = [b for b in diagram.blocks if b.kind == "loop"]
    assert len(loops) == 1
    loop = loops[0]
    assert (loop.first, loop.last, loop.label) == (1, 6, "retry: 3 attempts, 2 failed")
    inside = diagram.messages[loop.first : loop.last + 1]
    assert [m.kind for m in inside] == ["call", "return"] * 3
    assert [m.status for m in inside if m.kind == "return"] == ["error", "error", "ok"]
    assert all(m.count == 1 for m in inside)


def test_repetition_without_failures_is_a_plain_loop() -> None:
    loop = next(b for b in build_diagram(charges(4, 0)).blocks if b.kind == "loop")
    assert loop.label == "4 times"


def test_overlapping_sibling_calls_are_grouped_in_par() -> None:
    spans = [
        make_span(1, None, "frontend", "SERVER", "GET /product", 0, 100),
        make_span(2, 1, "frontend", "CLIENT", "GetCart", 5, 40,
                  attrs={"rpc.service": "cart.CartService", "rpc.method": "GetCart"}),
        make_span(3, 1, "frontend", "CLIENT", "List", 6, 60,
                  attrs={"rpc.service": "recommendation.RecommendationService",
                         "rpc.method": "ListRecommendations"}),
        make_span(4, 2, "cart", "SERVER", "cart.CartService/GetCart", 10, 35,
                  attrs={"rpc.service": "cart.CartService", "rpc.method": "GetCart"}),
        make_span(5, 1, "frontend", "INTERNAL", "render", 70, 90),
    ]  # fmt: skip
    diagram = build_diagram(spans)
    pars = [b for b in diagram.blocks if b.kind == "par"]
    assert len(pars) == 1
    assert (pars[0].first, pars[0].last, pars[0].branches) == (1, 4, (1, 3))
    assert [m.label for m in diagram.messages[1:5]] == [
        "CartService/GetCart",
        "OK" if False else "ok",
        "RecommendationService/ListRecommendations",
        "ok",
    ]


def test_thousands_of_identical_calls_collapse_into_one_counted_message() -> None:
    diagram = build_diagram(charges(3000, 2))
    calls = [m for m in diagram.messages if m.kind == "call" and m.target == "payprovider"]
    assert len(calls) == 1
    assert (calls[0].count, calls[0].failed, calls[0].label) == (
        3000,
        2,
        f"POST /v1/charges {TIMES}3000",
    )
    assert calls[0].error == "2 of 3000 failed: 503 Service Unavailable"
    loop = next(b for b in diagram.blocks if b.kind == "loop")
    assert loop.label == "3000 times, 2 failed, collapsed"
    assert len(diagram.messages) == 4


def test_max_messages_caps_the_drawing_with_a_note() -> None:
    spans = [make_span(1, None, "api", "SERVER", "GET /", 0, 100_000)]
    for n in range(1000):
        spans.append(make_span(10 + n, 1, "api", "CLIENT", f"GET /item/{n}", n * 10, n * 10 + 5,
                               attrs={"peer.service": "items"}))  # fmt: skip
    diagram = build_diagram(spans, max_messages=500)
    assert len(diagram.messages) == 500
    assert diagram.omitted_messages == 2002 - 500
    omitted = [n for n in diagram.notes if n.kind == "omitted"]
    assert [(n.index, n.text) for n in omitted] == [(500, "1502 more messages omitted (limit 500)")]
    assert all(b.last < 500 for b in diagram.blocks)
    assert len(build_diagram(spans, max_messages=0).messages) == 2002


# --- robustness ---------------------------------------------------------------------------


def test_the_diagram_does_not_depend_on_input_order() -> None:
    spans = checkout_call() + charges(3, 1) + kafka_spans()
    expected = to_dict(build_diagram(spans))
    shuffled = list(spans)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert to_dict(build_diagram(shuffled)) == expected


def test_spans_delivered_twice_are_drawn_once() -> None:
    spans = checkout_call()
    assert to_dict(build_diagram(spans + spans)) == to_dict(build_diagram(spans))


def test_a_parent_loop_is_broken_instead_of_hanging() -> None:
    spans = [
        make_span(1, 2, "a", "SERVER", "one", 0, 10),
        make_span(2, 1, "b", "SERVER", "two", 1, 9),
        make_span(3, 3, "c", "SERVER", "self-parent", 20, 30),
    ]
    diagram = build_diagram(spans)
    assert {p.id for p in diagram.participants} >= {"a", "b", "c"}
    assert len([m for m in diagram.messages if m.kind == "call"]) == 3


def test_very_deep_trees_do_not_exhaust_the_stack() -> None:
    depth = 3 * MAX_DEPTH
    spans = [make_span(1, None, "s1", "SERVER", "op", 0, depth * 2)]
    for n in range(2, depth + 1):
        spans.append(make_span(n, n - 1, f"s{n % 2}", "SERVER", "op", n, depth * 2 - n))
    diagram = build_diagram(spans, max_messages=0)
    assert any("deeper than" in note.text for note in diagram.notes)
    assert len(diagram.messages) == 2 * depth


def test_empty_input_is_an_empty_diagram_in_every_format() -> None:
    diagram = build_diagram([], ("order.id", "ORD-0"))
    assert (diagram.traces, diagram.participants, diagram.messages) == ((), (), ())
    for fmt in FORMATS:
        assert render(diagram, fmt)


# --- labels and the JSON shape --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "attrs", "label"),
    [
        ("HTTP GET", {"http.request.method": "GET", "http.route": "/customer"}, "GET /customer"),
        ("HTTP GET", {"http.method": "GET", "url.full": "http://x:8/route?a=1"}, "GET /route"),
        ("custom", {"rpc.method": "driver.DriverService/FindNearest"},
         "DriverService/FindNearest"),
        ("x", {"rpc.service": "oteldemo.CartService", "rpc.method": "AddItem"},
         "CartService/AddItem"),
        ("INSERT", {"db.system": "postgresql", "db.operation": "INSERT", "db.sql.table": "orders"},
         "INSERT orders"),
        ("GetDriver", {"db.system": "redis", "db.operation.name": "GET"}, "GetDriver"),
        ("a\nb\tc  d", {}, "a b c d"),
        ("x" * 80, {}, "x" * 59 + "…"),
        ("", {}, "(unnamed)"),
    ],
)  # fmt: skip
def test_labels_follow_semantic_conventions_and_stay_short(
    name: str, attrs: dict[str, AttrValue], label: str
) -> None:
    spans = [make_span(1, None, "svc", "SERVER", name, 0, 10, attrs=attrs)]
    assert build_diagram(spans).messages[0].label == label


SPEC_MESSAGE_KEYS = {
    "from", "to", "label", "kind", "status", "error", "start_unix_nano", "duration_ns",
    "trace_id", "span_id",
}  # fmt: skip


def test_json_has_the_spec_shape_plus_added_fields() -> None:
    spans = checkout_call() + charges(3, 2) + kafka_spans()
    data: dict[str, Any] = json.loads(render(build_diagram(spans, ("order.id", "ORD-1")), "json"))
    assert data == to_dict(build_diagram(spans, ("order.id", "ORD-1")))
    assert {"entity", "traces", "participants", "messages", "blocks"} <= set(data)
    assert data["entity"] == {"key": "order.id", "value": "ORD-1"}
    for participant in data["participants"]:
        assert {"id", "label", "kind"} <= set(participant)
        assert participant["kind"] in ("service", "database", "queue", "external")
    for message in data["messages"]:
        assert set(message) >= SPEC_MESSAGE_KEYS
        assert message["kind"] in ("call", "return", "async", "self")
        assert message["status"] in ("ok", "error")
        assert (message["error"] is None) == (message["status"] == "ok")
        assert isinstance(message["start_unix_nano"], int)
        assert isinstance(message["duration_ns"], int)
        assert len(message["trace_id"]) == 32 and len(message["span_id"]) == 16
    for block in data["blocks"]:
        assert {"kind", "label", "first", "last"} <= set(block)
        assert 0 <= block["first"] <= block["last"] < len(data["messages"])
    participant_ids = {p["id"] for p in data["participants"]}
    assert {m["from"] for m in data["messages"]} | {m["to"] for m in data["messages"]} <= (
        participant_ids
    )
    starts = [min(s.start_unix_nano for s in spans if s.trace_id == t) for t in data["traces"]]
    assert starts == sorted(starts)


def test_render_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'png'"):
        render(build_diagram(checkout_call()), "png")
