"""Generate the sample incident traces in ``sample_traces/`` with the real OpenTelemetry SDK.

A small web shop (eight services, a PostgreSQL database, a Redis cache, a Kafka topic and two
external HTTP APIs) is simulated by starting and ending real SDK spans with explicit
timestamps. Each service has its own ``TracerProvider`` and ``Resource``; calls between
services go through the W3C trace-context propagator exactly as instrumented HTTP and gRPC
clients and servers do, and the Kafka consumer starts a new trace that links to the
producer span. Spans are captured with ``InMemorySpanExporter``, encoded with the SDK's own
OTLP encoder and written as OTLP/JSON, one file per scenario.

The output is byte-for-byte deterministic: ids come from a seeded ``IdGenerator`` (reseeded
per scenario), latencies from a seeded ``random.Random``, and every span, event and
exception carries an explicit timestamp counted from 2026-11-20T09:00:00Z.

Run from the repository root::

    .venv/bin/python sample_traces/generate.py [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import builtins
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import Logger, LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

Attrs = dict[str, AttributeValue]
Headers = dict[str, str]

#: Every file is generated from this seed (plus the scenario's file name).
SEED: Final = "seqtrace-sample-traces-v1"
#: 2026-11-20T09:00:00Z, the start of the incident hour, in Unix nanoseconds.
BASE_TIME_NS: Final = int(datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC).timestamp()) * 10**9
DEFAULT_OUT: Final = Path(__file__).resolve().parent
#: The services' log records go in this subfolder, one OTLP/JSON ``LogsData`` file per
#: scenario with the scenario's name (``seqtrace load`` and ``up`` read both kinds).
LOGS_DIR: Final = "logs"

#: Pinned so the files do not change when the installed SDK is upgraded.
SDK_VERSION: Final = "1.45.2"
INSTRUMENTATION_VERSION: Final = "0.66b2"

#: The hostile text of ``90-hostile-strings.json``: markup, quotes, comment terminators,
#: separators used by diagram languages, a newline and non-ASCII characters.
HOSTILE_TEXT: Final = (
    '<img src=x onerror=alert(1)> "Zoë\'s café → #1; -->"\nsecond line </script> & {{7*7}} | end ✓'
)

SCOPE_HTTP_SERVER: Final = "opentelemetry.instrumentation.fastapi"
SCOPE_HTTP_CLIENT: Final = "opentelemetry.instrumentation.httpx"
SCOPE_GRPC_SERVER: Final = "opentelemetry.instrumentation.grpc.aio_server"
SCOPE_GRPC_CLIENT: Final = "opentelemetry.instrumentation.grpc.aio_client"
SCOPE_POSTGRES: Final = "opentelemetry.instrumentation.psycopg"
SCOPE_REDIS: Final = "opentelemetry.instrumentation.redis"
SCOPE_KAFKA: Final = "opentelemetry.instrumentation.confluent_kafka"

GRPC_CODE_NAMES: Final = {
    0: "OK",
    2: "UNKNOWN",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}
#: gRPC codes that make a SERVER span an error (semantic conventions for RPC).
GRPC_SERVER_ERRORS: Final = frozenset({2, 4, 12, 13, 14, 15})


# --------------------------------------------------------------------------- the shop


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    version: str
    pod: str
    port: int


SERVICES: Final = {
    s.name: s
    for s in (
        ServiceInfo("frontend", "2.14.0", "frontend-7c9d8f6b5-x2k4p", 8080),
        ServiceInfo("checkout", "1.9.3", "checkout-5b7f9c8d44-q8w2n", 8080),
        ServiceInfo("cart", "3.2.1", "cart-6d5c7b9f8-l4m7z", 50051),
        ServiceInfo("inventory", "1.4.0", "inventory-84f6d7c9b-r2t6h", 50051),
        ServiceInfo("payment", "2.0.7", "payment-59c8b7d6f-v9k3s", 8080),
        ServiceInfo("recommendation", "0.12.4", "recommendation-7f8d9c6b5-p5j8d", 50051),
        ServiceInfo("notification", "1.1.2", "notification-6c7d8e9f4-b3n6c", 8080),
        ServiceInfo("fulfillment", "1.6.0", "fulfillment-5d6e7f8a9-h7g2f", 8080),
    )
}


@dataclass(frozen=True)
class Customer:
    customer_id: str
    client_address: str
    user_agent: str


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class Order:
    order_id: str
    customer: Customer
    cart_id: str
    payment_id: str
    charge_id: str
    shipment_id: str
    items: tuple[Item, ...]
    currency: str = "EUR"

    @property
    def total(self) -> float:
        return round(sum(i.quantity * i.unit_price for i in self.items), 2)


@dataclass(frozen=True)
class Failure:
    """An exception as an instrumented app would record it on a span."""

    exception_type: str
    message: str
    stacktrace: str
    status_message: str

    def exception(self) -> BaseException:
        """A real exception object whose ``module.qualname`` is ``exception_type``."""
        module, _, name = self.exception_type.rpartition(".")
        if not module:
            builtin = getattr(builtins, name)
            assert isinstance(builtin, type) and issubclass(builtin, BaseException)
            return builtin(self.message)
        cls: type[Exception] = type(
            name, (Exception,), {"__module__": module, "__qualname__": name}
        )
        return cls(self.message)


def python_traceback(exception_type: str, message: str, *frames: tuple[str, int, str, str]) -> str:
    """A Python-style traceback with fixed container paths (real ones would leak the host)."""
    lines = ["Traceback (most recent call last):"]
    for path, line, function, code in frames:
        lines.append(f'  File "{path}", line {line}, in {function}')
        lines.append(f"    {code}")
    lines.append(f"{exception_type}: {message}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SDK plumbing


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a seeded PRNG, so the output is reproducible."""

    def __init__(self, seed: str = SEED) -> None:
        self._rng = random.Random(seed)

    def reseed(self, seed: str) -> None:
        self._rng.seed(seed)

    def generate_span_id(self) -> int:
        while True:
            value = self._rng.getrandbits(64)
            if value != trace.INVALID_SPAN_ID:
                return value

    def generate_trace_id(self) -> int:
        while True:
            value = self._rng.getrandbits(128)
            if value != trace.INVALID_TRACE_ID:
                return value


def service_resource(info: ServiceInfo) -> Resource:
    # Resource(...) rather than Resource.create(...): no OTEL_RESOURCE_ATTRIBUTES, no
    # OTEL_SERVICE_NAME and no installed-SDK version can leak into the files.
    return Resource(
        {
            "service.name": info.name,
            "service.namespace": "shop",
            "service.version": info.version,
            "service.instance.id": info.pod,
            "deployment.environment": "production",
            "k8s.namespace.name": "shop",
            "k8s.pod.name": info.pod,
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": SDK_VERSION,
        }
    )


@dataclass
class Op:
    """A started span plus the bookkeeping the helpers need."""

    span: trace.Span
    kind: SpanKind
    start: int
    failed: bool = False
    #: The service's SDK logger: records it emits carry this span's context.
    logger: Logger | None = None

    @property
    def context(self) -> Context:
        return trace.set_span_in_context(self.span, Context())

    def set(self, attributes: Attrs) -> None:
        self.span.set_attributes(attributes)

    def event(self, name: str, at: int, attributes: Attrs | None = None) -> None:
        self.span.add_event(name, attributes=attributes, timestamp=at)

    def log(
        self, at: int, severity: SeverityNumber, body: str, attributes: Attrs | None = None
    ) -> None:
        """A log record written inside this span (the SDK puts its trace and span ids in)."""
        if self.logger is not None:
            emit_log(self.logger, at, severity, body, attributes, self.context)

    def fail(self, at: int, failure: Failure, *, escaped: bool = True) -> None:
        """Record the exception event, mark the span ERROR and set ``error.type``; the
        service logs the failure too."""
        self.log(
            at,
            SeverityNumber.ERROR,
            f"{failure.exception_type}: {failure.status_message}",
            {"exception.type": failure.exception_type},
        )
        self.span.record_exception(
            failure.exception(),
            attributes={"exception.stacktrace": failure.stacktrace},
            timestamp=at,
            escaped=escaped,
        )
        self.error(failure.status_message, failure.exception_type)

    def error(self, message: str, error_type: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, message))
        self.span.set_attribute("error.type", error_type)
        self.failed = True

    def ok(self) -> None:
        self.span.set_status(Status(StatusCode.OK))

    def end(self, at: int) -> int:
        self.span.end(end_time=at)
        return at


@dataclass
class Call:
    """A client span in the caller and the server span it caused in the callee."""

    protocol: str  # "http" or "grpc"
    client: Op
    server: Op
    start: int  # when the server span started


@dataclass(frozen=True)
class Message:
    """A Kafka record as the consumer receives it (headers carry the trace context)."""

    topic: str
    key: str
    partition: int
    offset: int
    headers: Headers
    published_at: int


@dataclass
class Shop:
    """All eight services' tracer providers, sharing one exporter and one id generator."""

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    ids: SeededIdGenerator = field(default_factory=SeededIdGenerator)
    rng: random.Random = field(default_factory=random.Random)
    providers: dict[str, TracerProvider] = field(default_factory=dict)
    propagator: TraceContextTextMapPropagator = field(default_factory=TraceContextTextMapPropagator)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    log_exporter: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    loggers: dict[str, LoggerProvider] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limits = SpanLimits(
            max_attributes=128,
            max_events=128,
            max_links=128,
            max_span_attributes=128,
            max_event_attributes=128,
            max_link_attributes=128,
            max_attribute_length=SpanLimits.UNSET,
            max_span_attribute_length=SpanLimits.UNSET,
        )
        for name, info in SERVICES.items():
            provider = TracerProvider(
                sampler=ALWAYS_ON,
                resource=service_resource(info),
                shutdown_on_exit=False,
                id_generator=self.ids,
                span_limits=limits,
            )
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self.providers[name] = provider
            logger_provider = LoggerProvider(
                resource=service_resource(info), shutdown_on_exit=False
            )
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
            self.loggers[name] = logger_provider

    def reset(self, seed: str) -> None:
        self.exporter.clear()
        self.log_exporter.clear()
        self.ids.reseed(seed)
        self.rng.seed(f"{seed}:latency")
        self.offsets.clear()

    def finished_spans(self) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return sorted(spans, key=lambda s: (s.start_time or 0, s.context.span_id))

    def finished_logs(self) -> list[ReadableLogRecord]:
        logs = list(self.log_exporter.get_finished_logs())
        return sorted(logs, key=lambda r: (r.log_record.timestamp or 0, str(r.log_record.body)))

    def logger(self, service: str) -> Logger:
        return self.loggers[service].get_logger(f"shop.{service}", SERVICES[service].version)

    def untraced_log(
        self, service: str, at: int, severity: SeverityNumber, body: str, attributes: Attrs
    ) -> None:
        """A record outside any trace (a background job's line)."""
        emit_log(self.logger(service), at, severity, body, attributes, Context())

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()
        for logger_provider in self.loggers.values():
            logger_provider.shutdown()

    # ----------------------------------------------------------------- time

    def ms(self, low: float, high: float) -> int:
        """A latency between ``low`` and ``high`` milliseconds, at microsecond resolution."""
        return self.rng.randint(round(low * 1000), round(high * 1000)) * 1000

    def net(self) -> int:
        """One-way in-cluster network latency."""
        return self.ms(0.2, 1.2)

    # ----------------------------------------------------------------- spans

    def tracer(self, service: str, scope: str | None = None) -> Tracer:
        provider = self.providers[service]
        if scope is None:
            return provider.get_tracer(f"shop.{service}", SERVICES[service].version)
        return provider.get_tracer(scope, INSTRUMENTATION_VERSION)

    def start(
        self,
        service: str,
        name: str,
        *,
        kind: SpanKind,
        at: int,
        parent: Context,
        scope: str | None = None,
        attributes: Attrs | None = None,
        links: Sequence[Link] = (),
    ) -> Op:
        span = self.tracer(service, scope).start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=at,
            record_exception=False,
            set_status_on_exception=False,
        )
        return Op(span, kind, at, logger=self.logger(service))

    def internal(self, service: str, name: str, parent: Op, at: int, attributes: Attrs) -> Op:
        return self.start(
            service,
            name,
            kind=SpanKind.INTERNAL,
            at=at,
            parent=parent.context,
            attributes=attributes,
        )

    def _inject(self, op: Op) -> Headers:
        headers: Headers = {}
        self.propagator.inject(headers, context=op.context)
        return headers

    # ----------------------------------------------------------------- HTTP

    def http_server(
        self,
        service: str,
        headers: Headers | None,
        at: int,
        *,
        method: str,
        route: str,
        path: str,
        attributes: Attrs | None = None,
        server_address: str | None = None,
        client_address: str = "10.42.0.17",
        user_agent: str = "python-httpx/0.28.1",
    ) -> Op:
        parent = self.propagator.extract(headers) if headers else Context()
        info = SERVICES[service]
        public = server_address is not None
        op = self.start(
            service,
            f"{method} {route}",
            kind=SpanKind.SERVER,
            at=at,
            parent=parent,
            scope=SCOPE_HTTP_SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "url.scheme": "https" if public else "http",
                "server.address": server_address or service,
                "server.port": 443 if public else info.port,
                "network.protocol.version": "2" if public else "1.1",
                "client.address": client_address,
                "user_agent.original": user_agent,
                **(attributes or {}),
            },
        )
        op.log(at, SeverityNumber.INFO, f"{method} {path}", {"http.route": route})
        return op

    def http_client(
        self,
        caller: str,
        parent: Op,
        at: int,
        *,
        method: str,
        host: str,
        port: int,
        template: str,
        path: str,
        peer_service: str,
        scheme: str = "http",
        attributes: Attrs | None = None,
    ) -> Op:
        default_port = {"http": 80, "https": 443}[scheme]
        authority = host if port == default_port else f"{host}:{port}"
        return self.start(
            caller,
            f"{method} {template}",
            kind=SpanKind.CLIENT,
            at=at,
            parent=parent.context,
            scope=SCOPE_HTTP_CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": f"{scheme}://{authority}{path}",
                "url.path": path,
                "url.template": template,
                "server.address": host,
                "server.port": port,
                "peer.service": peer_service,
                "network.protocol.version": "1.1",
                **(attributes or {}),
            },
        )

    def http_request(
        self,
        caller: str,
        parent: Op,
        at: int,
        *,
        target: str,
        method: str,
        route: str,
        path: str,
    ) -> Call:
        """Start a CLIENT span in ``caller`` and the SERVER span it causes in ``target``."""
        client = self.http_client(
            caller,
            parent,
            at,
            method=method,
            host=target,
            port=SERVICES[target].port,
            template=route,
            path=path,
            peer_service=target,
        )
        start = at + self.net()
        server = self.http_server(
            target,
            self._inject(client),
            start,
            method=method,
            route=route,
            path=path,
            client_address=f"10.42.{1 + list(SERVICES).index(caller)}.23",
        )
        return Call("http", client, server, start)

    def finish_http(self, op: Op, at: int, status: int) -> int:
        """Set the response status the way HTTP instrumentations do, then end the span."""
        op.span.set_attribute("http.response.status_code", status)
        limit = 400 if op.kind is SpanKind.CLIENT else 500
        if status >= limit and not op.failed:
            op.error(f"{status} {HTTPStatus(status).phrase}", str(status))
        return op.end(at)

    def external_http(
        self,
        caller: str,
        parent: Op,
        at: int,
        duration: int,
        *,
        method: str,
        host: str,
        template: str,
        path: str,
        peer_service: str,
        status: int,
        resend_count: int = 0,
        failure: Failure | None = None,
    ) -> int:
        """A CLIENT call to a peer that has no spans of its own; returns the end time."""
        attributes: Attrs = {"http.request.resend_count": resend_count} if resend_count else {}
        op = self.http_client(
            caller,
            parent,
            at,
            method=method,
            host=host,
            port=443,
            template=template,
            path=path,
            peer_service=peer_service,
            scheme="https",
            attributes=attributes,
        )
        end = at + duration
        if failure is not None:
            op.fail(end - self.ms(0.05, 0.2), failure)
        return self.finish_http(op, end, status)

    # ----------------------------------------------------------------- gRPC

    def grpc_request(
        self,
        caller: str,
        parent: Op,
        at: int,
        *,
        target: str,
        rpc_service: str,
        method: str,
    ) -> Call:
        rpc: Attrs = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method}
        client = self.start(
            caller,
            f"{rpc_service}/{method}",
            kind=SpanKind.CLIENT,
            at=at,
            parent=parent.context,
            scope=SCOPE_GRPC_CLIENT,
            attributes={
                **rpc,
                "server.address": target,
                "server.port": SERVICES[target].port,
            },
        )
        start = at + self.net()
        server = self.start(
            target,
            f"{rpc_service}/{method}",
            kind=SpanKind.SERVER,
            at=start,
            parent=self.propagator.extract(self._inject(client)),
            scope=SCOPE_GRPC_SERVER,
            attributes={
                **rpc,
                "server.address": target,
                "server.port": SERVICES[target].port,
                "client.address": f"10.42.{1 + list(SERVICES).index(caller)}.23",
            },
        )
        return Call("grpc", client, server, start)

    def finish_grpc(self, op: Op, at: int, code: int) -> int:
        op.span.set_attribute("rpc.grpc.status_code", code)
        is_error = code != 0 if op.kind is SpanKind.CLIENT else code in GRPC_SERVER_ERRORS
        if is_error and not op.failed:
            op.error(GRPC_CODE_NAMES[code], GRPC_CODE_NAMES[code])
        return op.end(at)

    def respond(self, call: Call, at: int, status: int) -> int:
        """End the server span at ``at`` and the client span one network hop later."""
        finish = self.finish_http if call.protocol == "http" else self.finish_grpc
        finish(call.server, at, status)
        return finish(call.client, at + self.net(), status)

    # ----------------------------------------------------------------- data stores

    def sql(
        self,
        caller: str,
        parent: Op,
        at: int,
        duration: int,
        *,
        operation: str,
        table: str,
        statement: str,
        failure: Failure | None = None,
        sqlstate: str | None = None,
    ) -> int:
        op = self.start(
            caller,
            f"{operation} {table}",
            kind=SpanKind.CLIENT,
            at=at,
            parent=parent.context,
            scope=SCOPE_POSTGRES,
            attributes={
                "db.system": "postgresql",
                "db.name": "orders",
                "db.user": f"{caller}_svc",
                "db.operation": operation,
                "db.sql.table": table,
                "db.statement": statement,
                "server.address": "orders-db",
                "server.port": 5432,
            },
        )
        end = at + duration
        if failure is not None:
            if sqlstate:
                op.set({"db.response.status_code": sqlstate})
            op.fail(end - self.ms(0.02, 0.1), failure)
        return op.end(end)

    def redis(self, caller: str, parent: Op, at: int, statement: str) -> int:
        command = statement.split(" ", 1)[0]
        op = self.start(
            caller,
            command,
            kind=SpanKind.CLIENT,
            at=at,
            parent=parent.context,
            scope=SCOPE_REDIS,
            attributes={
                "db.system": "redis",
                "db.operation": command,
                "db.statement": statement,
                "db.redis.database_index": 0,
                "server.address": "redis-cache",
                "server.port": 6379,
            },
        )
        return op.end(at + self.ms(0.3, 1.6))

    # ----------------------------------------------------------------- Kafka

    def publish(
        self, caller: str, parent: Op, at: int, *, topic: str, key: str, attributes: Attrs
    ) -> tuple[int, Message]:
        partition = sum(key.encode()) % 6
        offset = self.offsets.setdefault((topic, partition), 48_213 + 977 * partition) + 1
        self.offsets[(topic, partition)] = offset
        op = self.start(
            caller,
            f"publish {topic}",
            kind=SpanKind.PRODUCER,
            at=at,
            parent=parent.context,
            scope=SCOPE_KAFKA,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.operation": "publish",
                "messaging.kafka.message.key": key,
                "messaging.kafka.destination.partition": partition,
                "messaging.kafka.message.offset": offset,
                "server.address": "kafka",
                "server.port": 9092,
                **attributes,
            },
        )
        end = op.end(at + self.ms(2.0, 6.5))
        return end, Message(topic, key, partition, offset, self._inject(op), end)

    def consume(self, service: str, message: Message, at: int, attributes: Attrs) -> Op:
        """A CONSUMER span that starts a new trace linked to the producer span."""
        producer = trace.get_current_span(self.propagator.extract(message.headers))
        return self.start(
            service,
            f"process {message.topic}",
            kind=SpanKind.CONSUMER,
            at=at,
            parent=Context(),
            scope=SCOPE_KAFKA,
            links=[Link(producer.get_span_context())],
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": message.topic,
                "messaging.operation": "process",
                "messaging.kafka.consumer.group": service,
                "messaging.kafka.message.key": message.key,
                "messaging.kafka.destination.partition": message.partition,
                "messaging.kafka.message.offset": message.offset,
                "server.address": "kafka",
                "server.port": 9092,
                **attributes,
            },
        )


def at_time(*, days: int = 0, hours: int = 0, minutes: int = 0, seconds: float = 0.0) -> int:
    """Unix nanoseconds, counted from 2026-11-20T09:00:00Z."""
    offset_us = round((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1_000_000)
    return BASE_TIME_NS + offset_us * 1000


# --------------------------------------------------------------------------- failures

PAYPROVIDER_503: Final = Failure(
    exception_type="httpx.HTTPStatusError",
    message=(
        "Server error '503 Service Unavailable' for url "
        "'https://api.payprovider.example/v1/charges'\n"
        "For more information check: "
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503"
    ),
    stacktrace=python_traceback(
        "httpx.HTTPStatusError",
        "Server error '503 Service Unavailable' for url "
        "'https://api.payprovider.example/v1/charges'",
        ("/app/payment/provider.py", 88, "charge", "response.raise_for_status()"),
        (
            "/usr/local/lib/python3.12/site-packages/httpx/_models.py",
            829,
            "raise_for_status",
            "raise HTTPStatusError(message, request=request, response=self)",
        ),
    ),
    status_message="503 Service Unavailable",
)

DEADLOCK: Final = Failure(
    exception_type="psycopg.errors.DeadlockDetected",
    message=(
        "deadlock detected\n"
        "DETAIL:  Process 48213 waits for ShareLock on transaction 9120331; "
        "blocked by process 48190.\n"
        "Process 48190 waits for ShareLock on transaction 9120329; blocked by process 48213.\n"
        "HINT:  See server log for query details."
    ),
    stacktrace=python_traceback(
        "psycopg.errors.DeadlockDetected",
        "deadlock detected",
        ("/app/checkout/handlers.py", 142, "create_order", "await repo.insert_order(order)"),
        ("/app/checkout/repository.py", 57, "insert_order", "await cur.execute(INSERT_ORDER, row)"),
        (
            "/usr/local/lib/python3.12/site-packages/psycopg/cursor_async.py",
            97,
            "execute",
            "raise ex.with_traceback(None)",
        ),
    ),
    status_message="DeadlockDetected: deadlock detected",
)

CHECKOUT_500: Final = Failure(
    exception_type="shop.frontend.errors.UpstreamError",
    message="checkout POST /api/orders returned 500 Internal Server Error",
    stacktrace=python_traceback(
        "shop.frontend.errors.UpstreamError",
        "checkout POST /api/orders returned 500 Internal Server Error",
        (
            "/app/frontend/routes/checkout.py",
            64,
            "post_checkout",
            "order = await checkout.place(cart)",
        ),
        (
            "/app/frontend/clients/checkout.py",
            31,
            "place",
            "raise UpstreamError.from_response(resp)",
        ),
    ),
    status_message="UpstreamError: checkout returned 500",
)

FEATURES_TIMEOUT: Final = Failure(
    exception_type="TimeoutError",
    message="feature store lookup timed out after 200 ms",
    stacktrace=python_traceback(
        "TimeoutError",
        "feature store lookup timed out after 200 ms",
        (
            "/app/recommendation/service.py",
            73,
            "ListRecommendations",
            "features = await self.features(user)",
        ),
        ("/app/recommendation/features.py", 41, "load", "async with asyncio.timeout(0.2):"),
        (
            "/usr/local/lib/python3.12/asyncio/timeouts.py",
            115,
            "__aexit__",
            "raise TimeoutError from exc_val",
        ),
    ),
    status_message="TimeoutError: feature store lookup timed out after 200 ms",
)

RECOMMENDATIONS_DEADLINE: Final = Failure(
    exception_type="grpc.aio.AioRpcError",
    message=(
        "<AioRpcError of RPC that terminated with:\n"
        "\tstatus = StatusCode.DEADLINE_EXCEEDED\n"
        '\tdetails = "feature store lookup timed out after 200 ms"\n>'
    ),
    stacktrace=python_traceback(
        "grpc.aio.AioRpcError",
        "<AioRpcError of RPC that terminated with: status = StatusCode.DEADLINE_EXCEEDED>",
        (
            "/app/frontend/clients/recommendation.py",
            22,
            "list",
            "return await self.stub.ListRecommendations(req)",
        ),
        (
            "/usr/local/lib/python3.12/site-packages/grpc/aio/_call.py",
            327,
            "__await__",
            "raise _create_rpc_error(",
        ),
    ),
    status_message="DEADLINE_EXCEEDED",
)


# --------------------------------------------------------------------------- services


def cart_get(shop: Shop, caller: str, parent: Op, at: int, cart_id: str, customer_id: str) -> int:
    call = shop.grpc_request(
        caller, parent, at, target="cart", rpc_service="cart.CartService", method="GetCart"
    )
    call.server.set({"cart.id": cart_id, "customer.id": customer_id})
    t = shop.redis("cart", call.server, call.start + shop.ms(0.1, 0.4), f"HGETALL cart:{cart_id}")
    return shop.respond(call, t + shop.ms(0.2, 0.8), 0)


def cart_add_item(
    shop: Shop, parent: Op, at: int, cart_id: str, customer_id: str, item: Item
) -> int:
    call = shop.grpc_request(
        "frontend", parent, at, target="cart", rpc_service="cart.CartService", method="AddItem"
    )
    call.server.set({"cart.id": cart_id, "customer.id": customer_id, "product.id": item.sku})
    t = call.start + shop.ms(0.1, 0.4)
    t = shop.redis("cart", call.server, t, f"HINCRBY cart:{cart_id} {item.sku} {item.quantity}")
    t = shop.redis("cart", call.server, t + shop.ms(0.05, 0.2), f"EXPIRE cart:{cart_id} 604800")
    return shop.respond(call, t + shop.ms(0.2, 0.6), 0)


def recommendations_list(
    shop: Shop, parent: Op, at: int, customer_id: str, *, times_out: bool = False
) -> int:
    """frontend -> recommendation; on a time-out the SERVER span ends DEADLINE_EXCEEDED."""
    call = shop.grpc_request(
        "frontend",
        parent,
        at,
        target="recommendation",
        rpc_service="recommendation.RecommendationService",
        method="ListRecommendations",
    )
    srv = call.server
    srv.set({"customer.id": customer_id})
    t = shop.redis("recommendation", srv, call.start + shop.ms(0.1, 0.3), f"GET recs:{customer_id}")
    load = shop.internal(
        "recommendation",
        "load user features",
        srv,
        t + shop.ms(0.1, 0.3),
        {"customer.id": customer_id, "feature_store.name": "user-features"},
    )
    if times_out:
        t = load.start + 200_000_000
        load.fail(t, FEATURES_TIMEOUT)
        load.end(t + shop.ms(0.05, 0.2))
        srv.fail(t + shop.ms(0.3, 0.6), FEATURES_TIMEOUT)
        t = shop.finish_grpc(srv, t + shop.ms(0.8, 1.5), 4) + shop.net()
        call.client.fail(t, RECOMMENDATIONS_DEADLINE)
        return shop.finish_grpc(call.client, t + shop.ms(0.02, 0.08), 4)
    t = load.end(load.start + shop.ms(6, 18))
    score = shop.internal(
        "recommendation",
        "score candidates",
        srv,
        t + shop.ms(0.1, 0.3),
        {"recommendation.model": "als-v7"},
    )
    t = score.end(t + shop.ms(9, 26))
    srv.set({"recommendation.count": 8})
    return shop.respond(call, t + shop.ms(0.3, 0.9), 0)


def inventory_reserve(shop: Shop, parent: Op, at: int, order: Order) -> int:
    call = shop.grpc_request(
        "checkout",
        parent,
        at,
        target="inventory",
        rpc_service="inventory.InventoryService",
        method="ReserveStock",
    )
    call.server.set({"order.id": order.order_id, "inventory.sku_count": len(order.items)})
    t = call.start + shop.ms(0.3, 0.9)
    for _ in order.items:
        t = shop.sql(
            "inventory",
            call.server,
            t,
            shop.ms(1.5, 6.0),
            operation="UPDATE",
            table="stock",
            statement=(
                "UPDATE stock SET reserved = reserved + $1 "
                "WHERE sku = $2 AND on_hand - reserved >= $1"
            ),
        ) + shop.ms(0.05, 0.3)
    return shop.respond(call, t + shop.ms(0.2, 0.6), 0)


def payment_authorize(shop: Shop, parent: Op, at: int, order: Order, *, failures: int = 0) -> int:
    """checkout -> payment -> payprovider, retrying ``failures`` 503s with backoff."""
    call = shop.http_request(
        "checkout",
        parent,
        at,
        target="payment",
        method="POST",
        route="/api/payments",
        path="/api/payments",
    )
    srv = call.server
    srv.set(
        {
            "order.id": order.order_id,
            "customer.id": order.customer.customer_id,
            "payment.id": order.payment_id,
            "payment.amount": order.total,
            "payment.currency": order.currency,
        }
    )
    t = shop.redis(
        "payment",
        srv,
        call.start + shop.ms(0.3, 0.8),
        f"SET idempotency:{order.order_id} {order.payment_id} NX EX 86400",
    )
    charge = shop.internal(
        "payment",
        "charge card",
        srv,
        t + shop.ms(0.1, 0.4),
        {
            "payment.id": order.payment_id,
            "payment.method": "card",
            "payment.provider": "payprovider",
        },
    )
    t = charge.start + shop.ms(0.2, 0.5)
    for attempt in range(failures + 1):
        succeeded = attempt == failures
        t = shop.external_http(
            "payment",
            charge,
            t,
            shop.ms(95, 240) if succeeded else shop.ms(18, 45),
            method="POST",
            host="api.payprovider.example",
            template="/v1/charges",
            path="/v1/charges",
            peer_service="payprovider",
            status=200 if succeeded else 503,
            resend_count=attempt,
            failure=None if succeeded else PAYPROVIDER_503,
        )
        if not succeeded:
            backoff_ms = 100 * 2**attempt
            scheduled = t + shop.ms(0.05, 0.2)
            charge.event(
                "retry scheduled",
                scheduled,
                {
                    "retry.attempt": attempt + 1,
                    "retry.backoff_ms": backoff_ms,
                    "http.response.status_code": 503,
                },
            )
            charge.log(
                scheduled,
                SeverityNumber.WARN,
                f"payprovider answered 503; retry {attempt + 1} in {backoff_ms} ms",
                {"retry.attempt": attempt + 1, "retry.backoff_ms": backoff_ms},
            )
            t += backoff_ms * 1_000_000
    charge.set({"payment.attempts": failures + 1, "payment.charge_id": order.charge_id})
    charge.ok()
    t = charge.end(t + shop.ms(0.2, 0.6))
    t = shop.sql(
        "payment",
        srv,
        t + shop.ms(0.1, 0.4),
        shop.ms(1.8, 5.5),
        operation="INSERT",
        table="payments",
        statement=(
            "INSERT INTO payments (id, order_id, amount, currency, charge_id, status) "
            "VALUES ($1, $2, $3, $4, $5, 'authorized')"
        ),
    )
    return shop.respond(call, t + shop.ms(0.3, 0.9), 201)


def payment_void(shop: Shop, parent: Op, at: int, order: Order) -> int:
    """The compensation after a failed checkout: void the authorised charge."""
    call = shop.http_request(
        "checkout",
        parent,
        at,
        target="payment",
        method="POST",
        route="/api/payments/{paymentId}/void",
        path=f"/api/payments/{order.payment_id}/void",
    )
    call.server.set({"payment.id": order.payment_id, "order.id": order.order_id})
    t = shop.external_http(
        "payment",
        call.server,
        call.start + shop.ms(0.4, 1.0),
        shop.ms(70, 140),
        method="POST",
        host="api.payprovider.example",
        template="/v1/charges/{chargeId}/void",
        path=f"/v1/charges/{order.charge_id}/void",
        peer_service="payprovider",
        status=200,
    )
    t = shop.sql(
        "payment",
        call.server,
        t + shop.ms(0.1, 0.4),
        shop.ms(1.5, 4.0),
        operation="UPDATE",
        table="payments",
        statement="UPDATE payments SET status = 'voided', voided_at = now() WHERE id = $1",
    )
    return shop.respond(call, t + shop.ms(0.3, 0.8), 200)


def notification_send(
    shop: Shop, caller: str, parent: Op, at: int, order: Order, template: str
) -> int:
    call = shop.http_request(
        caller,
        parent,
        at,
        target="notification",
        method="POST",
        route="/api/notifications",
        path="/api/notifications",
    )
    srv = call.server
    srv.set(
        {
            "order.id": order.order_id,
            "customer.id": order.customer.customer_id,
            "notification.channel": "email",
            "notification.template": template,
        }
    )
    render = shop.internal(
        "notification",
        f"render {template}",
        srv,
        call.start + shop.ms(0.3, 0.8),
        {"notification.template": template},
    )
    t = render.end(render.start + shop.ms(2.5, 9.0))
    t = shop.external_http(
        "notification",
        srv,
        t + shop.ms(0.1, 0.4),
        shop.ms(45, 120),
        method="POST",
        host="api.mailer.example",
        template="/v3/mail/send",
        path="/v3/mail/send",
        peer_service="mailer",
        status=202,
    )
    return shop.respond(call, t + shop.ms(0.2, 0.7), 202)


def checkout_get_order(
    shop: Shop, parent: Op, at: int, order_id: str, *, found: bool
) -> tuple[int, int]:
    call = shop.http_request(
        "frontend",
        parent,
        at,
        target="checkout",
        method="GET",
        route="/api/orders/{orderId}",
        path=f"/api/orders/{order_id}",
    )
    call.server.set({"order.id": order_id})
    t = shop.sql(
        "checkout",
        call.server,
        call.start + shop.ms(0.3, 0.9),
        shop.ms(1.2, 4.0),
        operation="SELECT",
        table="orders",
        statement=(
            "SELECT o.id, o.status, o.total, s.tracking_number FROM orders o "
            "LEFT JOIN shipments s ON s.order_id = o.id WHERE o.id = $1"
        ),
    )
    status = 200 if found else 404
    if not found:
        call.server.event("order not found", t + shop.ms(0.05, 0.2), {"order.id": order_id})
    return shop.respond(call, t + shop.ms(0.3, 1.0), status), status


# --------------------------------------------------------------------------- user journeys


def frontend_root(
    shop: Shop,
    customer: Customer,
    at: int,
    *,
    method: str,
    route: str,
    path: str,
    attributes: Attrs,
) -> Op:
    return shop.http_server(
        "frontend",
        None,
        at,
        method=method,
        route=route,
        path=path,
        server_address="shop.example",
        client_address=customer.client_address,
        user_agent=customer.user_agent,
        attributes={"customer.id": customer.customer_id, **attributes},
    )


def browse_product(shop: Shop, at: int, customer: Customer, cart_id: str, sku: str) -> int:
    """The product page: cart and recommendations are fetched in parallel (a ``par`` block)."""
    root = frontend_root(
        shop,
        customer,
        at,
        method="GET",
        route="/product/{productId}",
        path=f"/product/{sku}",
        attributes={"product.id": sku},
    )
    t = at + shop.ms(1.0, 2.5)
    cart_done = cart_get(shop, "frontend", root, t, cart_id, customer.customer_id)
    recs_done = recommendations_list(shop, root, t + shop.ms(0.05, 0.3), customer.customer_id)
    t = max(cart_done, recs_done) + shop.ms(0.2, 0.6)
    render = shop.internal("frontend", "render product page", root, t, {"product.id": sku})
    t = render.end(t + shop.ms(4, 12))
    return shop.finish_http(root, t + shop.ms(0.3, 0.8), 200)


def add_to_cart(shop: Shop, at: int, order: Order, item: Item) -> int:
    customer = order.customer
    root = frontend_root(
        shop,
        customer,
        at,
        method="POST",
        route="/api/cart/items",
        path="/api/cart/items",
        attributes={"cart.id": order.cart_id, "product.id": item.sku},
    )
    t = cart_add_item(shop, root, at + shop.ms(0.8, 2.0), order.cart_id, customer.customer_id, item)
    return shop.finish_http(root, t + shop.ms(0.3, 0.9), 200)


def checkout_create_order(
    shop: Shop,
    parent: Op,
    at: int,
    order: Order,
    *,
    payment_failures: int,
    deadlock: bool,
    note: str | None,
) -> tuple[int, int, Message | None]:
    """frontend -> checkout ``POST /api/orders``.

    Returns the client span's end, the HTTP status and the published Kafka message.
    """
    call = shop.http_request(
        "frontend",
        parent,
        at,
        target="checkout",
        method="POST",
        route="/api/orders",
        path="/api/orders",
    )
    srv = call.server
    srv.set(
        {
            "order.id": order.order_id,
            "customer.id": order.customer.customer_id,
            "cart.id": order.cart_id,
        }
    )
    t = call.start + shop.ms(0.3, 0.9)
    validate = shop.internal(
        "checkout",
        "validate cart",
        srv,
        t,
        {"cart.id": order.cart_id, "cart.item_count": len(order.items)},
    )
    t = cart_get(
        shop, "checkout", validate, t + shop.ms(0.1, 0.3), order.cart_id, order.customer.customer_id
    )
    t = validate.end(t + shop.ms(0.3, 1.2))
    if note is not None:
        annotate = shop.internal(
            "checkout",
            f"attach note {note}",
            srv,
            t + shop.ms(0.05, 0.2),
            {"order.id": order.order_id, "order.note": note},
        )
        annotate.event(
            f"note accepted: {note}", t + shop.ms(0.3, 0.5), {"order.note.length": len(note)}
        )
        t = annotate.end(t + shop.ms(0.6, 1.2))
    totals = shop.internal(
        "checkout",
        "compute totals",
        srv,
        t + shop.ms(0.05, 0.2),
        {"order.id": order.order_id, "order.total": order.total, "order.currency": order.currency},
    )
    t = totals.end(totals.start + shop.ms(0.4, 1.8))
    t = inventory_reserve(shop, srv, t + shop.ms(0.1, 0.4), order)
    t = payment_authorize(shop, srv, t + shop.ms(0.1, 0.4), order, failures=payment_failures)
    t = shop.sql(
        "checkout",
        srv,
        t + shop.ms(0.2, 0.6),
        shop.ms(38, 60) if deadlock else shop.ms(2.0, 6.0),
        operation="INSERT",
        table="orders",
        statement=(
            "INSERT INTO orders (id, customer_id, cart_id, payment_id, total, currency, status) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'placed')"
        ),
        failure=DEADLOCK if deadlock else None,
        sqlstate="40P01" if deadlock else None,
    )
    if deadlock:
        t = payment_void(shop, srv, t + shop.ms(0.3, 0.9), order)
        srv.fail(t + shop.ms(0.2, 0.5), DEADLOCK)
        return shop.respond(call, t + shop.ms(0.8, 1.6), 500), 500, None
    t = shop.sql(
        "checkout",
        srv,
        t + shop.ms(0.1, 0.3),
        shop.ms(1.5, 4.5),
        operation="INSERT",
        table="order_items",
        statement=(
            "INSERT INTO order_items (order_id, sku, quantity, unit_price) "
            "SELECT * FROM unnest($1, $2, $3, $4)"
        ),
    )
    t, message = shop.publish(
        "checkout",
        srv,
        t + shop.ms(0.2, 0.6),
        topic="order-events",
        key=order.order_id,
        attributes={"order.id": order.order_id, "order.event": "order.placed"},
    )
    return shop.respond(call, t + shop.ms(0.3, 0.9), 201), 201, message


def place_order(
    shop: Shop,
    at: int,
    order: Order,
    *,
    payment_failures: int = 0,
    deadlock: bool = False,
    note: str | None = None,
) -> tuple[int, Message | None]:
    """The checkout button: frontend ``POST /api/checkout`` and everything behind it."""
    customer = order.customer
    attributes: Attrs = {"cart.id": order.cart_id}
    if note is not None:
        attributes["order.note"] = note
    root = frontend_root(
        shop,
        customer,
        at,
        method="POST",
        route="/api/checkout",
        path="/api/checkout",
        attributes=attributes,
    )
    t, status, message = checkout_create_order(
        shop,
        root,
        at + shop.ms(1.5, 3.5),
        order,
        payment_failures=payment_failures,
        deadlock=deadlock,
        note=note,
    )
    if status >= 500:
        root.fail(t + shop.ms(0.2, 0.5), CHECKOUT_500)
        return shop.finish_http(root, t + shop.ms(0.8, 1.5), 502), None
    root.set({"order.id": order.order_id})
    return shop.finish_http(root, t + shop.ms(0.5, 1.5), 200), message


def fulfil_order(shop: Shop, at: int, order: Order, message: Message) -> int:
    """The fulfillment consumer: a new trace, linked to the checkout's PRODUCER span."""
    root = shop.consume("fulfillment", message, at, {"order.id": order.order_id})
    allocate = shop.internal(
        "fulfillment",
        "allocate warehouse",
        root,
        at + shop.ms(0.3, 0.9),
        {
            "order.id": order.order_id,
            "shipment.id": order.shipment_id,
            "fulfillment.warehouse": "AMS-2",
        },
    )
    t = shop.sql(
        "fulfillment",
        allocate,
        allocate.start + shop.ms(0.2, 0.5),
        shop.ms(3.0, 9.0),
        operation="SELECT",
        table="stock",
        statement=(
            "SELECT warehouse, on_hand - reserved AS free FROM stock "
            "WHERE sku = ANY($1) ORDER BY free DESC"
        ),
    )
    t = allocate.end(t + shop.ms(0.2, 0.8))
    t = shop.sql(
        "fulfillment",
        root,
        t + shop.ms(0.1, 0.3),
        shop.ms(1.5, 4.0),
        operation="INSERT",
        table="shipments",
        statement=(
            "INSERT INTO shipments (id, order_id, warehouse, status) "
            "VALUES ($1, $2, $3, 'allocated')"
        ),
    )
    t = shop.sql(
        "fulfillment",
        root,
        t + shop.ms(0.1, 0.3),
        shop.ms(1.2, 3.5),
        operation="UPDATE",
        table="orders",
        statement="UPDATE orders SET status = 'fulfilling', updated_at = now() WHERE id = $1",
    )
    t = notification_send(
        shop, "fulfillment", root, t + shop.ms(0.2, 0.6), order, "order-confirmation"
    )
    return root.end(t + shop.ms(0.3, 0.9))


def order_status(
    shop: Shop, at: int, customer: Customer, order_id: str, *, found: bool = True
) -> int:
    """The order page polls ``GET /api/orders/{orderId}``; unknown orders answer 404."""
    root = frontend_root(
        shop,
        customer,
        at,
        method="GET",
        route="/api/orders/{orderId}",
        path=f"/api/orders/{order_id}",
        attributes={"order.id": order_id},
    )
    t, status = checkout_get_order(shop, root, at + shop.ms(0.8, 2.0), order_id, found=found)
    return shop.finish_http(root, t + shop.ms(0.3, 0.8), status)


def order_confirmation_page(
    shop: Shop, at: int, order: Order, *, recommendations_time_out: bool
) -> int:
    """Order details and recommendations in parallel; a failed recommendation call is
    replaced by the cached list, and the page still answers 200."""
    customer = order.customer
    root = frontend_root(
        shop,
        customer,
        at,
        method="GET",
        route="/orders/{orderId}/confirmation",
        path=f"/orders/{order.order_id}/confirmation",
        attributes={"order.id": order.order_id},
    )
    t = at + shop.ms(0.8, 2.0)
    details_done, _ = checkout_get_order(shop, root, t, order.order_id, found=True)
    recs_start = t + shop.ms(0.05, 0.3)
    recs_done = recommendations_list(
        shop, root, recs_start, customer.customer_id, times_out=recommendations_time_out
    )
    t = max(details_done, recs_done) + shop.ms(0.1, 0.4)
    if recommendations_time_out:
        fallback = shop.internal(
            "frontend",
            "recommendations fallback",
            root,
            t,
            {"fallback": "cache", "customer.id": customer.customer_id, "recommendation.count": 8},
        )
        fallback.event(
            "serving cached recommendations", t + shop.ms(0.05, 0.1), {"cache.key": "recs:popular"}
        )
        done = shop.redis("frontend", fallback, t + shop.ms(0.1, 0.3), "GET recs:popular")
        t = fallback.end(done + shop.ms(0.1, 0.4))
    render = shop.internal(
        "frontend",
        "render confirmation page",
        root,
        t + shop.ms(0.1, 0.3),
        {"order.id": order.order_id},
    )
    t = render.end(render.start + shop.ms(3, 9))
    return shop.finish_http(root, t + shop.ms(0.3, 0.8), 200)


def carrier_shipped(shop: Shop, at: int, order: Order, tracking: str) -> int:
    """The carrier's webhook marks the order shipped (a root SERVER span in fulfillment)."""
    root = shop.http_server(
        "fulfillment",
        None,
        at,
        method="POST",
        route="/webhooks/carrier",
        path="/webhooks/carrier",
        server_address="hooks.shop.example",
        client_address="198.51.100.40",
        user_agent="ParcelCarrier-Webhooks/2.1",
        attributes={"shipment.id": order.shipment_id},
    )
    t = shop.sql(
        "fulfillment",
        root,
        at + shop.ms(0.5, 1.2),
        shop.ms(1.2, 3.0),
        operation="SELECT",
        table="shipments",
        statement="SELECT id, order_id, status FROM shipments WHERE tracking_number = $1",
    )
    root.set({"order.id": order.order_id})
    apply = shop.internal(
        "fulfillment",
        "apply carrier event",
        root,
        t + shop.ms(0.1, 0.3),
        {
            "shipment.id": order.shipment_id,
            "order.id": order.order_id,
            "shipment.carrier": "parcelcarrier",
        },
    )
    apply.event(
        "shipment status changed",
        t + shop.ms(0.4, 0.8),
        {
            "shipment.status.from": "allocated",
            "shipment.status.to": "shipped",
            "shipment.tracking_number": tracking,
        },
    )
    t = shop.sql(
        "fulfillment",
        apply,
        t + shop.ms(0.9, 1.4),
        shop.ms(1.5, 4.0),
        operation="UPDATE",
        table="shipments",
        statement="UPDATE shipments SET status = 'shipped', shipped_at = $2 WHERE id = $1",
    )
    t = shop.sql(
        "fulfillment",
        apply,
        t + shop.ms(0.1, 0.3),
        shop.ms(1.2, 3.5),
        operation="UPDATE",
        table="orders",
        statement="UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $1",
    )
    t = apply.end(t + shop.ms(0.2, 0.6))
    t = notification_send(shop, "fulfillment", root, t + shop.ms(0.2, 0.6), order, "order-shipped")
    return shop.finish_http(root, t + shop.ms(0.3, 0.9), 204)


def order_then_fulfil(shop: Shop, at: int, order: Order, **kwargs: Any) -> int:
    """Place an order and, if it was published, consume it 20-80 ms after the publish."""
    end, message = place_order(shop, at, order, **kwargs)
    if message is None:
        return end
    return fulfil_order(shop, message.published_at + shop.ms(20, 80), order, message)


# --------------------------------------------------------------------------- the cast

CHROME: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SAFARI: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
FIREFOX: Final = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

LAMP = Item("SKU-LAMP-01", 1, 49.90)
MUG = Item("SKU-MUG-12", 2, 12.50)
KETTLE = Item("SKU-KETTLE-3", 1, 79.00)
RUG = Item("SKU-RUG-7", 1, 129.00)
CANDLE = Item("SKU-CANDLE-5", 3, 8.90)
CHAIR = Item("SKU-CHAIR-2", 1, 189.00)


def _order(number: int, customer: str, address: str, agent: str, items: tuple[Item, ...]) -> Order:
    suffix = f"{number * 7919 % 0xFFFFFF:06x}"
    return Order(
        order_id=f"ORD-{number}",
        customer=Customer(customer, address, agent),
        cart_id=f"CART-{suffix}",
        payment_id=f"PAY-{number * 31 % 100000:05d}",
        charge_id=f"ch_3Q{suffix.upper()}a7Lx",
        shipment_id=f"SHP-{number * 53 % 100000:05d}",
        items=items,
    )


ORD_1001 = _order(1001, "CUST-48213", "203.0.113.24", CHROME, (LAMP, MUG))
ORD_1002 = _order(1002, "CUST-50310", "203.0.113.87", SAFARI, (KETTLE,))
ORD_1003 = _order(1003, "CUST-51877", "198.51.100.12", FIREFOX, (RUG, CANDLE))
ORD_1004 = _order(1004, "CUST-49902", "203.0.113.140", CHROME, (MUG, CANDLE))
ORD_1005 = _order(1005, "CUST-47128", "198.51.100.77", SAFARI, (CHAIR,))
ORD_1666 = _order(1666, "CUST-46660", "203.0.113.66", FIREFOX, (CANDLE,))
NOISE_ORDERS = (
    (
        at_time(minutes=5, seconds=40.218),
        _order(1006, "CUST-52001", "198.51.100.31", CHROME, (LAMP,)),
    ),
    (
        at_time(minutes=17, seconds=22.905),
        _order(1007, "CUST-52118", "203.0.113.201", SAFARI, (MUG, KETTLE)),
    ),
    (
        at_time(minutes=28, seconds=9.377),
        _order(1008, "CUST-52240", "198.51.100.148", FIREFOX, (CANDLE,)),
    ),
    (
        at_time(minutes=44, seconds=51.062),
        _order(1009, "CUST-52395", "203.0.113.9", CHROME, (RUG,)),
    ),
    (
        at_time(minutes=56, seconds=30.741),
        _order(1010, "CUST-52417", "198.51.100.203", SAFARI, (CHAIR, LAMP)),
    ),
)
UNKNOWN_ORDER_CUSTOMER = Customer("CUST-53390", "198.51.100.66", CHROME)


# --------------------------------------------------------------------------- scenarios


def scenario_happy_orders(shop: Shop) -> None:
    o = ORD_1001
    browse_product(shop, at_time(seconds=5.231), o.customer, o.cart_id, LAMP.sku)
    add_to_cart(shop, at_time(minutes=1, seconds=12.408), o, LAMP)
    add_to_cart(shop, at_time(minutes=1, seconds=40.116), o, MUG)
    order_then_fulfil(shop, at_time(minutes=2, seconds=31.002), o)
    order_status(shop, at_time(hours=1, minutes=3, seconds=10.550), o.customer, o.order_id)
    carrier_shipped(shop, at_time(days=2, hours=5, minutes=32, seconds=7.315), o, "PC1Z99A0412093")

    o = ORD_1003
    browse_product(shop, at_time(minutes=10, seconds=2.644), o.customer, o.cart_id, RUG.sku)
    add_to_cart(shop, at_time(minutes=11, seconds=5.090), o, RUG)
    order_then_fulfil(shop, at_time(minutes=12, seconds=44.871), o)


def scenario_payment_retry(shop: Shop) -> None:
    o = ORD_1002
    add_to_cart(shop, at_time(minutes=19, seconds=55.310), o, KETTLE)
    order_then_fulfil(shop, at_time(minutes=21, seconds=7.460), o, payment_failures=2)


def scenario_degraded_recommendations(shop: Shop) -> None:
    o = ORD_1004
    end = order_then_fulfil(shop, at_time(minutes=33, seconds=50.128), o)
    order_confirmation_page(shop, end + 412_337_000, o, recommendations_time_out=True)


def scenario_checkout_deadlock(shop: Shop) -> None:
    o = ORD_1005
    add_to_cart(shop, at_time(minutes=40, seconds=2.775), o, CHAIR)
    place_order(shop, at_time(minutes=41, seconds=18.304), o, deadlock=True)


def scenario_unknown_order(shop: Shop) -> None:
    customer = UNKNOWN_ORDER_CUSTOMER
    order_status(shop, at_time(minutes=46, seconds=40.872), customer, "ORD-0987")
    order_status(shop, at_time(minutes=47, seconds=3.119), customer, "ORD-9999", found=False)
    order_status(shop, at_time(minutes=47, seconds=9.604), customer, "ORD-9999", found=False)


def scenario_background_noise(shop: Shop) -> None:
    for start, order in NOISE_ORDERS:
        browse_product(
            shop, start - 64_117_000_000, order.customer, order.cart_id, order.items[0].sku
        )
        add_to_cart(shop, start - 31_508_000_000, order, order.items[0])
        order_then_fulfil(shop, start, order)
    browse_only = Customer("CUST-52560", "203.0.113.177", FIREFOX)
    browse_product(shop, at_time(minutes=8, seconds=15.402), browse_only, "CART-0a9e51", KETTLE.sku)
    browse_product(shop, at_time(minutes=38, seconds=40.913), browse_only, "CART-0a9e51", CHAIR.sku)
    order_status(shop, at_time(minutes=50, seconds=12.226), NOISE_ORDERS[1][1].customer, "ORD-1007")
    shop.untraced_log(
        "recommendation",
        at_time(minutes=30),
        SeverityNumber.INFO,
        "nightly price index rebuilt: 1,284 products",
        {"job.name": "price-index", "products": 1284},
    )
    shop.untraced_log(
        "inventory",
        at_time(minutes=45, seconds=3.5),
        SeverityNumber.WARN,
        "stock sync lagging: last warehouse feed 9 min old",
        {"job.name": "stock-sync", "lag_s": 540},
    )


def scenario_hostile_strings(shop: Shop) -> None:
    o = ORD_1666
    order_then_fulfil(shop, at_time(minutes=51, seconds=30.487), o, note=HOSTILE_TEXT)
    shop.untraced_log(
        "checkout",
        at_time(minutes=51, seconds=40),
        SeverityNumber.ERROR,
        HOSTILE_TEXT,
        {HOSTILE_TEXT: HOSTILE_TEXT},
    )


SCENARIOS: Final[dict[str, Callable[[Shop], None]]] = {
    "01-happy-orders.json": scenario_happy_orders,
    "02-payment-retry.json": scenario_payment_retry,
    "03-degraded-recommendations.json": scenario_degraded_recommendations,
    "04-checkout-deadlock.json": scenario_checkout_deadlock,
    "05-unknown-order-404.json": scenario_unknown_order,
    "06-background-noise.json": scenario_background_noise,
    "90-hostile-strings.json": scenario_hostile_strings,
}


# --------------------------------------------------------------------------- OTLP/JSON

_ID_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId"})


def _ids_to_hex(tree: Any) -> Any:
    """proto3 JSON writes bytes as base64; OTLP/JSON wants trace and span ids as hex."""
    if isinstance(tree, dict):
        return {
            key: base64.b64decode(value).hex() if key in _ID_KEYS else _ids_to_hex(value)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [_ids_to_hex(item) for item in tree]
    return tree


def emit_log(
    logger: Logger,
    at: int,
    severity: SeverityNumber,
    body: str,
    attributes: Attrs | None,
    context: Context,
) -> None:
    logger.emit(
        LogRecord(
            timestamp=at,
            observed_timestamp=at,
            context=context,
            severity_text=SEVERITY_TEXT[severity],
            severity_number=severity,
            body=body,
            attributes=attributes,
        )
    )


SEVERITY_TEXT: Final = {
    SeverityNumber.INFO: "INFO",
    SeverityNumber.WARN: "WARN",
    SeverityNumber.ERROR: "ERROR",
}


def otlp_logs_json(logs: Sequence[ReadableLogRecord]) -> str:
    request = encode_logs(logs)
    tree = MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_ids_to_hex(tree), indent=1, ensure_ascii=False) + "\n"


def otlp_json(spans: Sequence[ReadableSpan]) -> str:
    request = encode_spans(spans)
    tree = MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_ids_to_hex(tree), indent=1, ensure_ascii=False) + "\n"


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    shop = Shop()
    written: list[Path] = []
    try:
        for file_name, scenario in SCENARIOS.items():
            shop.reset(f"{SEED}:{file_name}")
            scenario(shop)
            path = out_dir / file_name
            path.write_bytes(otlp_json(shop.finished_spans()).encode("utf-8"))
            written.append(path)
            logs = shop.finished_logs()
            if logs:  # the services' log records, correlated with the spans above
                log_path = out_dir / LOGS_DIR / file_name
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_bytes(otlp_logs_json(logs).encode("utf-8"))
                written.append(log_path)
    finally:
        shop.shutdown()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory to write into (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
