"""The committed sample traces: reproducible from the generator, valid OTLP/JSON, and each
scenario shows the feature it exists for.

Everything here reads the files with plain ``json`` so the checks do not depend on the
project's own OTLP code.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_traces"
GENERATOR = SAMPLES / "generate.py"
FILES = (
    "01-happy-orders.json",
    "02-payment-retry.json",
    "03-degraded-recommendations.json",
    "04-checkout-deadlock.json",
    "05-unknown-order-404.json",
    "06-background-noise.json",
    "90-hostile-strings.json",
)
SERVICES = {
    "frontend",
    "checkout",
    "cart",
    "inventory",
    "payment",
    "recommendation",
    "notification",
    "fulfillment",
}
BASE_NS = int(datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()) * 10**9
DAY_NS = 86_400 * 10**9
TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")
UINT64 = re.compile(r"[0-9]+")
INT64 = re.compile(r"-?[0-9]+")

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
UNSET, OK, ERROR = 0, 1, 2


@dataclass
class Span:
    raw: dict[str, Any]
    service: str
    resource: dict[str, Any]
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    @property
    def trace_id(self) -> str:
        return str(self.raw["traceId"])

    @property
    def span_id(self) -> str:
        return str(self.raw["spanId"])

    @property
    def parent_id(self) -> str | None:
        return self.raw.get("parentSpanId") or None

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def kind(self) -> int:
        return int(self.raw["kind"])

    @property
    def start(self) -> int:
        return int(self.raw["startTimeUnixNano"])

    @property
    def end(self) -> int:
        return int(self.raw["endTimeUnixNano"])

    @property
    def status(self) -> int:
        return int(self.raw.get("status", {}).get("code", UNSET))

    @property
    def status_message(self) -> str:
        return str(self.raw.get("status", {}).get("message", ""))


def any_value(value: dict[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [any_value(v) for v in inner.get("values", [])]
    if kind == "kvlistValue":
        return attrs(inner.get("values", []))
    return inner


def attrs(key_values: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: any_value(kv["value"]) for kv in key_values}


@cache
def raw_text(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


@cache
def document(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(raw_text(name))
    return doc


@cache
def spans_of(name: str) -> tuple[Span, ...]:
    spans: list[Span] = []
    for resource_spans in document(name)["resourceSpans"]:
        resource = attrs(resource_spans["resource"]["attributes"])
        for scope_spans in resource_spans["scopeSpans"]:
            for raw in scope_spans["spans"]:
                span = Span(
                    raw, resource["service.name"], resource, attrs(raw.get("attributes", []))
                )
                span.events = [
                    (e["name"], int(e["timeUnixNano"]), attrs(e.get("attributes", [])))
                    for e in raw.get("events", [])
                ]
                spans.append(span)
    return tuple(spans)


def traces_of(name: str) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans_of(name):
        traces[span.trace_id].append(span)
    for spans in traces.values():
        spans.sort(key=lambda s: (s.start, s.span_id))
    return dict(traces)


def traces_with(name: str, key: str, value: str) -> dict[str, list[Span]]:
    return {
        trace_id: spans
        for trace_id, spans in traces_of(name).items()
        if any(s.attributes.get(key) == value for s in spans)
    }


def root_of(spans: list[Span]) -> Span:
    roots = [s for s in spans if s.parent_id is None]
    assert len(roots) == 1, [s.name for s in roots]
    return roots[0]


def depth(span: Span, by_id: dict[str, Span]) -> int:
    d = 0
    while span.parent_id is not None:
        span = by_id[span.parent_id]
        d += 1
    return d


# --------------------------------------------------------------------------- reproducible


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    generated = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert generated == sorted(FILES)
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(FILES)
    # Each scenario's log records (#18), in logs/ under the same name.
    log_files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert log_files == sorted(FILES)
    assert sorted(p.name for p in (SAMPLES / "logs").glob("*.json")) == log_files
    for name in [*FILES, *(f"logs/{n}" for n in log_files)]:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), (
            f"{name} differs from the generator's output; regenerate it with "
            "`.venv/bin/python sample_traces/generate.py` instead of editing it by hand"
        )


# --------------------------------------------------------------------------- valid OTLP/JSON


def _check_ids(obj: dict[str, Any], where: str) -> None:
    assert TRACE_ID.fullmatch(obj["traceId"]), f"{where}: traceId {obj['traceId']!r}"
    assert SPAN_ID.fullmatch(obj["spanId"]), f"{where}: spanId {obj['spanId']!r}"
    if "parentSpanId" in obj:
        assert SPAN_ID.fullmatch(obj["parentSpanId"]), f"{where}: parentSpanId"


def _check_values(key_values: list[dict[str, Any]], where: str) -> None:
    for kv in key_values:
        assert set(kv) == {"key", "value"}, where
        (kind, inner), *rest = kv["value"].items()
        assert not rest, where
        assert kind in {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue"}
        if kind == "intValue":
            assert isinstance(inner, str) and INT64.fullmatch(inner), f"{where}.{kv['key']}"


@pytest.mark.parametrize("name", FILES)
def test_file_is_otlp_json(name: str) -> None:
    text = raw_text(name)
    assert text.endswith("}\n")
    doc = document(name)
    assert list(doc) == ["resourceSpans"]
    assert doc["resourceSpans"], name
    for r, resource_spans in enumerate(doc["resourceSpans"]):
        assert set(resource_spans) <= {"resource", "scopeSpans", "schemaUrl"}
        resource = attrs(resource_spans["resource"]["attributes"])
        assert resource["service.name"] in SERVICES
        assert resource["service.version"]
        assert resource["deployment.environment"] == "production"
        for s, scope_spans in enumerate(resource_spans["scopeSpans"]):
            assert scope_spans["scope"]["name"]
            for i, span in enumerate(scope_spans["spans"]):
                where = f"{name}: resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                _check_ids(span, where)
                assert isinstance(span["kind"], int) and 1 <= span["kind"] <= 5, where
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    assert isinstance(span[key], str) and UINT64.fullmatch(span[key]), where
                assert BASE_NS <= int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
                assert span.get("status", {}).get("code", 0) in (UNSET, OK, ERROR), where
                _check_values(span.get("attributes", []), where)
                for event in span.get("events", []):
                    assert UINT64.fullmatch(event["timeUnixNano"]), where
                    _check_values(event.get("attributes", []), where)
                for link in span.get("links", []):
                    _check_ids(link, f"{where}.links")


@pytest.mark.parametrize("name", FILES)
def test_file_parses_as_an_export_request(name: str) -> None:
    """With ids turned back into proto3 base64, protobuf accepts every field."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service

    def to_b64(tree: Any) -> Any:
        if isinstance(tree, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in {"traceId", "spanId", "parentSpanId"}
                else to_b64(v)
                for k, v in tree.items()
            }
        if isinstance(tree, list):
            return [to_b64(v) for v in tree]
        return tree

    request = json_format.ParseDict(
        to_b64(document(name)), trace_service.ExportTraceServiceRequest()
    )
    count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    assert count == len(spans_of(name))


@pytest.mark.parametrize("name", FILES)
def test_traces_are_well_formed(name: str) -> None:
    ids = [s.span_id for s in spans_of(name)]
    assert len(ids) == len(set(ids)), "span ids are unique"
    for trace_id, spans in traces_of(name).items():
        by_id = {s.span_id: s for s in spans}
        root_of(spans)
        for span in spans:
            if span.parent_id is None:
                continue
            parent = by_id[span.parent_id]  # every parent is in the same trace
            assert parent.start <= span.start <= span.end <= parent.end, (
                f"{trace_id}: {span.name} is not inside {parent.name}"
            )
            if span.kind == SERVER:
                assert parent.kind == CLIENT and parent.service != span.service
            for event_name, at, _ in span.events:
                assert span.start <= at <= span.end, f"{span.name}: event {event_name}"


def test_every_service_and_peer_appears() -> None:
    every = [s for name in FILES for s in spans_of(name)]
    assert {s.service for s in every} == SERVICES
    assert {s.resource["service.version"] for s in every}
    peers = {
        (s.attributes.get("db.system"), s.attributes.get("server.address"))
        for s in every
        if s.kind == CLIENT and "db.system" in s.attributes
    }
    assert peers == {("postgresql", "orders-db"), ("redis", "redis-cache")}
    assert any(s.attributes.get("peer.service") == "payprovider" for s in every)
    assert {s.kind for s in every} == {INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER}


def test_some_trace_makes_parallel_calls() -> None:
    """The product page fetches the cart and recommendations at once (a ``par`` block)."""
    for spans in traces_of("01-happy-orders.json").values():
        by_parent: dict[str, list[Span]] = defaultdict(list)
        for span in spans:
            if span.kind == CLIENT and span.parent_id:
                by_parent[span.parent_id].append(span)
        for calls in by_parent.values():
            calls.sort(key=lambda s: s.start)
            if any(b.start < a.end for a, b in itertools.pairwise(calls)):
                return
    pytest.fail("no overlapping sibling CLIENT spans in 01-happy-orders.json")


# --------------------------------------------------------------------------- scenarios


def test_ord_1001_spans_days_over_several_traces() -> None:
    traces = traces_with("01-happy-orders.json", "order.id", "ORD-1001")
    assert len(traces) >= 4
    spans = [s for t in traces.values() for s in t if s.attributes.get("order.id") == "ORD-1001"]
    assert max(s.end for s in spans) - min(s.start for s in spans) > DAY_NS
    assert not any(s.status == ERROR for t in traces.values() for s in t)
    assert traces_with("01-happy-orders.json", "order.id", "ORD-1003")


def test_consumer_traces_link_to_their_producer() -> None:
    checked = 0
    for name in FILES:
        by_id = {s.span_id: s for s in spans_of(name)}
        for consumer in (s for s in spans_of(name) if s.kind == CONSUMER):
            assert consumer.parent_id is None, "the consumer starts a trace of its own"
            (link,) = consumer.raw["links"]
            producer = by_id[link["spanId"]]
            assert producer.trace_id == link["traceId"] != consumer.trace_id
            assert producer.kind == PRODUCER
            assert producer.attributes["messaging.operation"] == "publish"
            assert consumer.attributes["messaging.operation"] == "process"
            assert producer.attributes["order.id"] == consumer.attributes["order.id"]
            assert producer.end <= consumer.start
            checked += 1
    assert checked >= 10


def test_ord_1002_payment_recovers_on_the_third_attempt() -> None:
    def payprovider_calls(spans: list[Span]) -> list[Span]:
        return [
            s
            for s in spans
            if s.kind == CLIENT and s.attributes.get("server.address") == "api.payprovider.example"
        ]

    traces = traces_with("02-payment-retry.json", "order.id", "ORD-1002").values()
    (spans,) = [t for t in traces if payprovider_calls(t)]
    calls = payprovider_calls(spans)
    assert [s.status for s in calls] == [ERROR, ERROR, UNSET]
    assert [s.attributes["http.response.status_code"] for s in calls] == [503, 503, 200]
    assert [s.attributes.get("http.request.resend_count") for s in calls] == [None, 1, 2]
    for failed in calls[:2]:
        assert failed.status_message == "503 Service Unavailable"
        assert [e[0] for e in failed.events] == ["exception"]
    assert calls[0].end <= calls[1].start and calls[1].end <= calls[2].start
    root = root_of(spans)
    assert root.attributes["order.id"] == "ORD-1002"
    assert root.status != ERROR and root.attributes["http.response.status_code"] == 200
    assert [s.name for s in spans if s.status == ERROR] == ["POST /v1/charges"] * 2


def test_ord_1004_degrades_to_cached_recommendations() -> None:
    traces = traces_with("03-degraded-recommendations.json", "order.id", "ORD-1004")
    degraded = [t for t in traces.values() if any(s.status == ERROR for s in t)]
    (spans,) = degraded
    root = root_of(spans)
    assert root.status != ERROR and root.attributes["http.response.status_code"] == 200
    server = next(s for s in spans if s.service == "recommendation" and s.kind == SERVER)
    assert server.status == ERROR
    assert any(e[2].get("exception.type") == "TimeoutError" for e in server.events)
    fallback = next(s for s in spans if s.name == "recommendations fallback")
    assert fallback.kind == INTERNAL and fallback.attributes["fallback"] == "cache"
    assert fallback.status != ERROR
    # the order itself completed
    assert any(
        s.kind == PRODUCER and s.attributes.get("order.id") == "ORD-1004"
        for t in traces.values()
        for s in t
    )


def test_ord_1005_fails_hard_with_the_deadlock_as_root_cause() -> None:
    (spans,) = traces_with("04-checkout-deadlock.json", "order.id", "ORD-1005").values()
    root = root_of(spans)
    assert root.status == ERROR and root.attributes["http.response.status_code"] == 502
    by_id = {s.span_id: s for s in spans}
    errors = sorted((s for s in spans if s.status == ERROR), key=lambda s: -depth(s, by_id))
    deepest = errors[0]
    assert depth(deepest, by_id) > depth(errors[1], by_id)
    assert deepest.attributes["db.system"] == "postgresql"
    assert deepest.attributes["db.operation"] == "INSERT"
    assert "deadlock detected" in deepest.status_message
    # every error is on the deadlock's path to the root
    path = set()
    span: Span | None = deepest
    while span is not None:
        path.add(span.span_id)
        span = by_id[span.parent_id] if span.parent_id else None
    assert {s.span_id for s in errors} == path
    assert not any(s.kind == PRODUCER for s in spans), "a failed order is not published"


def test_ord_9999_is_a_client_error_not_a_server_error() -> None:
    traces = traces_with("05-unknown-order-404.json", "order.id", "ORD-9999")
    assert traces
    for spans in traces.values():
        servers = [s for s in spans if s.kind == SERVER]
        assert {s.attributes["http.response.status_code"] for s in servers} == {404}
        assert all(s.status == UNSET for s in servers)
        (client,) = [s for s in spans if s.kind == CLIENT and "http.request.method" in s.attributes]
        assert client.status == ERROR and client.attributes["http.response.status_code"] == 404


def test_background_noise_is_healthy() -> None:
    name = "06-background-noise.json"
    assert not any(s.status == ERROR for s in spans_of(name))
    orders = {s.attributes["order.id"] for s in spans_of(name) if "order.id" in s.attributes}
    assert {f"ORD-{n}" for n in range(1006, 1011)} <= orders
    starts = [s.start for s in spans_of(name)]
    assert max(starts) - min(starts) > 45 * 60 * 10**9, "spread over the hour"


def test_hostile_strings_are_present_verbatim() -> None:
    fragments = ("<img src=x onerror=alert(1)>", '"Zoë\'s café → #1; -->"', "\n", "#", ";")
    spans = spans_of("90-hostile-strings.json")
    named = [s for s in spans if all(f in s.name for f in fragments)]
    assert named
    assert any(
        isinstance(v, str) and all(f in v for f in fragments)
        for s in named
        for v in s.attributes.values()
    )
    assert any(s.attributes.get("order.id") == "ORD-1666" for s in named)
