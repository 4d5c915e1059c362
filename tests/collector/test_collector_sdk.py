"""The OpenTelemetry Python SDK's own OTLP exporters (gRPC and HTTP/protobuf) send to a
running collector with the real DuckDBStore; every span is read back and compared field
by field with what the SDK recorded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from test_collector_support import open_store, running_collector

from collector import Collector
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import Span

TOKEN = "sdk-test-token"
BULK_SPANS = 3000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with open_store(tmp_path) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store, ingest_token=TOKEN) as c:
        yield c


def emit(exporter: SpanExporter, service: str) -> list[ReadableSpan]:
    """Record a small realistic workload through ``exporter``; return what the SDK recorded."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": service,
                "deployment.environment": "test",
                "host.cores": 2,
                "process.command_args": ["python", "-m", "shop"],
            }
        )
    )
    # NOTES: the default queue (2048) drops spans under load; the bulk part sends 3000.
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=100_000, max_export_batch_size=512)
    )
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer(
        "shop.checkout", "1.4.2", schema_url="https://opentelemetry.io/schemas/1.21.0"
    )

    with tracer.start_as_current_span("warmup") as earlier:
        earlier_context = earlier.get_span_context()
    with tracer.start_as_current_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "http.response.status_code": 500,
            "order.id": "ord-1001",
            "cart.total": 99.5,
            "user.vip": True,
            "tags": ["a", "b"],
            "quantities": [1, 2, 3],
            "weights": [0.5, 1.25],
            "flags": [True, False],
            "empty.string": "",
        },
        links=[Link(earlier_context, {"link.reason": "retry-of", "link.attempt": 2})],
    ) as root:
        root.add_event("cart.loaded", {"items": 3, "cart.id": "c-9"})
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "payments")
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                child.record_exception(exc, {"payment.attempt": 1})
                child.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as producer:
            producer.set_status(Status(StatusCode.OK))
        root.set_status(Status(StatusCode.ERROR, "payment failed"))
    with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER):
        pass
    for n in range(BULK_SPANS):
        with tracer.start_as_current_span("bulk", attributes={"n": n, "order.id": f"ord-{n % 50}"}):
            pass

    assert provider.force_flush(30_000)
    provider.shutdown()
    return list(recorded.get_finished_spans())


def plain(value: Any) -> Any:
    """SDK attribute values use tuples for arrays; the read model uses lists."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def compare(sent: Sequence[ReadableSpan], stored: Sequence[Span]) -> None:
    by_id = {(s.trace_id, s.span_id): s for s in stored}
    assert len(by_id) == len(stored) == len(sent)
    for expected in sent:
        ctx = expected.get_span_context()
        assert ctx is not None
        got = by_id[(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")]
        assert got.name == expected.name
        assert got.parent_span_id == (
            f"{expected.parent.span_id:016x}" if expected.parent is not None else None
        )
        assert got.kind == expected.kind.name
        assert got.start_unix_nano == expected.start_time
        assert got.end_unix_nano == expected.end_time
        assert got.status_code == expected.status.status_code.name
        assert got.status_message == (expected.status.description or "")
        assert got.attributes == plain(dict(expected.attributes or {}))
        assert got.resource_attributes == plain(dict(expected.resource.attributes))
        assert got.service_name == expected.resource.attributes["service.name"]
        scope = expected.instrumentation_scope
        assert scope is not None
        assert (got.scope_name, got.scope_version) == (scope.name, scope.version)
        # The Python exporter sends only the is-remote bits (0x100 "known", 0x200 "remote").
        assert got.flags == 0x100 | (0x200 if expected.parent and expected.parent.is_remote else 0)
        assert len(got.events) == len(expected.events)
        for got_event, event in zip(got.events, expected.events, strict=True):
            assert got_event.name == event.name
            assert got_event.time_unix_nano == event.timestamp
            assert got_event.attributes == plain(dict(event.attributes or {}))
        assert len(got.links) == len(expected.links)
        for got_link, link in zip(got.links, expected.links, strict=True):
            assert got_link.trace_id == f"{link.context.trace_id:032x}"
            assert got_link.span_id == f"{link.context.span_id:016x}"
            assert got_link.attributes == plain(dict(link.attributes or {}))


def check_round_trip(store: DuckDBStore, sent: list[ReadableSpan]) -> None:
    trace_ids = sorted({f"{s.get_span_context().trace_id:032x}" for s in sent})  # type: ignore[union-attr]
    stored = store.spans(trace_ids)
    compare(sent, stored)
    exception = next(s for s in stored if s.name == "charge card").events[0]
    assert exception.name == "exception"
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.attributes["exception.message"] == "card declined"
    assert "Traceback" in str(exception.attributes["exception.stacktrace"])


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_python_sdk_grpc_exporter(
    collector: Collector, store: DuckDBStore, compressed: bool
) -> None:
    import grpc

    exporter = GrpcExporter(
        endpoint=f"http://{collector.addresses['otlp-grpc']}",
        insecure=True,
        headers={"authorization": f"Bearer {TOKEN}"},
        compression=grpc.Compression.Gzip if compressed else None,
        timeout=30,
    )
    sent = emit(exporter, "py-grpc")
    assert len(sent) == BULK_SPANS + 5
    check_round_trip(store, sent)
    assert store.stats().spans == len(sent)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_python_sdk_http_exporter(
    collector: Collector, store: DuckDBStore, compressed: bool
) -> None:
    exporter = HttpExporter(
        endpoint=f"http://{collector.addresses['otlp-http']}/v1/traces",
        headers={"Authorization": f"Bearer {TOKEN}"},
        compression=HttpCompression.Gzip if compressed else HttpCompression.NoCompression,
        timeout=30,
    )
    sent = emit(exporter, "py-http")
    check_round_trip(store, sent)
    assert store.stats().spans == len(sent)


def test_exporter_without_token_stores_nothing(collector: Collector, store: DuckDBStore) -> None:
    exporter = HttpExporter(
        endpoint=f"http://{collector.addresses['otlp-http']}/v1/traces", timeout=5
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("denied"):
        pass
    provider.shutdown()
    assert store.stats().spans == 0
    assert collector.counters().spans_accepted == 0
    _ = trace  # the API module is imported for its types only
