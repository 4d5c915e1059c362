"""Properties of the diagram over random span trees (hypothesis).

The strategy builds valid traces across random (often hostile) service names: SERVER
roots, CLIENT spans answered by SERVER spans in other services or by peers without spans,
PRODUCER spans consumed in the same trace or in a new trace joined by a span link,
INTERNAL spans, overlapping and sequential children, random errors.
"""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_diagram import T0
from test_diagram_render import (
    _ENTITY,
    _MERMAID_LINE,
    _PUML_LINE,
    _UNICODE,
    HOSTILE,
    expected_statements,
    svg_texts,
)

from analyzer.diagram import build_diagram, render, to_dict
from analyzer.diagram.model import Diagram
from spanstore.model import AttrValue, Span, SpanKind, SpanLink, StatusCode

SERVICES = ("frontend", "checkout", "payment", "end", "a;b#c", "<img src=x>", "Zoë", "x\ny")
NAMES = ("GET /a", "POST /orders", "publish", "INSERT orders", *HOSTILE)
PEERS: tuple[dict[str, AttrValue], ...] = (
    {"db.system": "postgresql", "server.address": "orders-db", "db.operation": "INSERT"},
    {"peer.service": "payprovider", "http.request.method": "POST"},
    {"rpc.service": "x.Service", "rpc.method": "Do"},
    {"peer.service": HOSTILE[0]},
    {},
)
MAX_DEPTH = 4


@dataclass
class Forest:
    draw: Callable[[st.SearchStrategy[Any]], Any]
    spans: list[Span] = field(default_factory=list)
    counter: int = 0
    traces: int = 0

    def new_id(self) -> str:
        self.counter += 1
        return f"{self.counter:016x}"

    def new_trace(self) -> str:
        self.traces += 1
        return f"{self.traces:032x}"

    def add(
        self,
        trace: str,
        parent: str | None,
        service: str,
        kind: SpanKind,
        window: tuple[int, int],
        attrs: dict[str, AttrValue] | None = None,
        links: tuple[SpanLink, ...] = (),
    ) -> str:
        span_id = self.new_id()
        failed = self.draw(st.integers(0, 5)) == 0
        status: StatusCode = "ERROR" if failed else "UNSET"
        self.spans.append(
            Span(
                trace_id=trace,
                span_id=span_id,
                parent_span_id=parent,
                name=self.draw(st.sampled_from(NAMES)),
                kind=kind,
                start_unix_nano=T0 + window[0],
                end_unix_nano=T0 + window[1],
                service_name=service,
                status_code=status,
                status_message=self.draw(st.sampled_from(NAMES)) if failed else "",
                attributes=attrs or {},
                links=links,
            )
        )
        return span_id

    def window(self, start: int, end: int) -> tuple[int, int]:
        first = self.draw(st.integers(start, end))
        return first, self.draw(st.integers(first, end))

    def other_service(self, service: str) -> str:
        return self.draw(st.sampled_from([s for s in SERVICES if s != service]))

    def children(self, trace: str, parent: str, service: str, window: tuple[int, int], depth: int):
        if depth >= MAX_DEPTH:
            return
        for _ in range(self.draw(st.integers(0, 3))):
            child = self.window(*window)
            choice = self.draw(st.sampled_from(["internal", "call", "call", "produce"]))
            if choice == "internal":
                span_id = self.add(trace, parent, service, "INTERNAL", child)
                self.children(trace, span_id, service, child, depth + 1)
            elif choice == "call":
                self.call(trace, parent, service, child, depth)
            else:
                self.produce(trace, parent, service, child, depth)

    def call(self, trace: str, parent: str, service: str, window: tuple[int, int], depth: int):
        if self.draw(st.booleans()):
            client = self.add(trace, parent, service, "CLIENT", window)
            callee = self.other_service(service)
            inner = self.window(*window)
            server = self.add(trace, client, callee, "SERVER", inner)
            self.children(trace, server, callee, inner, depth + 1)
        else:
            self.add(
                trace, parent, service, "CLIENT", window, dict(self.draw(st.sampled_from(PEERS)))
            )

    def produce(self, trace: str, parent: str, service: str, window: tuple[int, int], depth: int):
        topic: dict[str, AttrValue] = {"messaging.destination.name": "order-events"}
        producer = self.add(trace, parent, service, "PRODUCER", window, topic)
        consumer_service = self.other_service(service)
        later = (window[1], window[1] + self.draw(st.integers(0, 10_000)))
        if self.draw(st.booleans()):
            consumer = self.add(trace, producer, consumer_service, "CONSUMER", later)
            self.children(trace, consumer, consumer_service, later, depth + 1)
            return
        linked = self.new_trace()
        link = (SpanLink(trace, producer),)
        consumer = self.add(linked, None, consumer_service, "CONSUMER", later, links=link)
        self.children(linked, consumer, consumer_service, later, depth + 1)


@st.composite
def span_forests(draw: st.DrawFn) -> list[Span]:
    forest = Forest(draw)
    for _ in range(draw(st.integers(1, 3))):
        trace = forest.new_trace()
        start = draw(st.integers(0, 10**12))
        window = (start, start + draw(st.integers(0, 10**9)))
        service = draw(st.sampled_from(SERVICES))
        root = forest.add(trace, None, service, "SERVER", window)
        forest.children(trace, root, service, window, 1)
    return forest.spans


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNLIMITED = {"max_messages": 0, "collapse_repeats": 10**6}


def descendants(spans: list[Span]) -> dict[str, set[str]]:
    """(trace, span) key -> keys of every span beneath it."""
    children: dict[str, list[str]] = {}
    for span in spans:
        if span.parent_span_id:
            children.setdefault(span.trace_id + span.parent_span_id, []).append(
                span.trace_id + span.span_id
            )
    result: dict[str, set[str]] = {}

    def collect(key: str) -> set[str]:
        if key not in result:
            below: set[str] = set()
            for child in children.get(key, []):
                below |= {child} | collect(child)
            result[key] = below
        return result[key]

    for span in spans:
        collect(span.trace_id + span.span_id)
    return result


@PROPERTY
@given(span_forests())
def test_every_client_server_pair_is_exactly_one_call_and_one_return(spans: list[Span]) -> None:
    diagram = build_diagram(spans, **UNLIMITED)
    by_id = {s.span_id: s for s in spans}
    for server in spans:
        client = by_id.get(server.parent_span_id or "")
        if server.kind != "SERVER" or client is None or client.kind != "CLIENT":
            continue
        assert client.service_name != server.service_name
        for kind in ("call", "return"):
            found = [
                m
                for m in diagram.messages
                if m.kind == kind and m.span_id == client.span_id
                and m.server_span_id == server.span_id
            ]  # fmt: skip
            assert len(found) == 1, (kind, client.name, server.name)
            assert {found[0].source, found[0].target} == {client.service_name, server.service_name}


@PROPERTY
@given(span_forests())
def test_messages_keep_causal_order(spans: list[Span]) -> None:
    diagram = build_diagram(spans, **UNLIMITED)
    opening: dict[str, int] = {}
    closing: dict[str, int] = {}
    drawn: dict[str, list[int]] = {}
    for index, message in enumerate(diagram.messages):
        for span_id in filter(None, (message.span_id, message.server_span_id)):
            key = message.trace_id + span_id
            drawn.setdefault(key, []).append(index)
            if message.kind == "return":
                closing[key] = index
            else:
                opening.setdefault(key, index)
    for key, below in descendants(spans).items():
        # A call answered by a SERVER span is that span's message too: not "beneath" it.
        own = set(drawn.get(key, []))
        inner = [i for child in below for i in drawn.get(child, []) if i not in own]
        if key in opening:
            assert all(index > opening[key] for index in inner)
        if key in closing:
            assert all(index < closing[key] for index in inner)
    trace_order = [diagram.traces.index(m.trace_id) for m in diagram.messages]
    assert trace_order == sorted(trace_order)


@PROPERTY
@given(span_forests())
def test_no_participant_is_lost(spans: list[Span]) -> None:
    diagram = build_diagram(spans, **UNLIMITED)
    ids = [p.id for p in diagram.participants]
    assert len(ids) == len(set(ids))
    assert {s.service_name for s in spans} <= set(ids)
    targets = {m.target for m in diagram.messages}
    assert {s.service_name for s in spans if s.kind in ("SERVER", "CONSUMER")} <= targets
    assert {m.source for m in diagram.messages} | targets <= set(ids)
    assert set(diagram.traces) == {s.trace_id for s in spans}


@PROPERTY
@given(span_forests(), st.randoms(use_true_random=False))
def test_the_diagram_is_deterministic(spans: list[Span], rng: random.Random) -> None:
    shuffled = list(spans)
    rng.shuffle(shuffled)
    assert to_dict(build_diagram(shuffled)) == to_dict(build_diagram(spans))


def assert_blocks_nest(diagram: Diagram) -> None:
    for block in diagram.blocks:
        assert 0 <= block.first <= block.last < len(diagram.messages)
        for other in diagram.blocks:
            disjoint = other.last < block.first or block.last < other.first
            nested = (block.first <= other.first and other.last <= block.last) or (
                other.first <= block.first and block.last <= other.last
            )
            assert disjoint or nested


@PROPERTY
@given(span_forests(), st.sampled_from([0, 7, 500]), st.booleans())
def test_hostile_strings_never_escape_their_labels(
    spans: list[Span], max_messages: int, show_internal: bool
) -> None:
    diagram = build_diagram(
        spans, (HOSTILE[0], HOSTILE[3]), max_messages=max_messages, show_internal=show_internal
    )
    assert_blocks_nest(diagram)
    if max_messages:
        assert len(diagram.messages) <= max_messages

    mermaid = render(diagram, "mermaid").splitlines()
    assert len(mermaid) == 2 + expected_statements(diagram)
    for line in mermaid:
        assert _MERMAID_LINE.fullmatch(_ENTITY.sub("", line.strip())), line

    plantuml = render(diagram, "plantuml").splitlines()
    assert len(plantuml) == 6 + expected_statements(diagram)
    for line in plantuml:
        assert _PUML_LINE.fullmatch(_UNICODE.sub("", line.strip())), line

    texts = svg_texts(render(diagram, "svg"))
    for message in diagram.messages:
        assert any(text.startswith(message.label) for text in texts)

    assert json.loads(render(diagram, "json")) == json.loads(json.dumps(to_dict(diagram)))
    table = [line for line in render(diagram, "markdown").splitlines() if line.startswith("| ")]
    for row in table:
        assert len(re.findall(r"(?<!\\)\|", row)) == 11, row
    ET.fromstring(render(diagram, "svg").encode("utf-8"))
