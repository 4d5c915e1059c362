"""Build a realistic span store through the real ingest path, fast.

    .venv/bin/python bench/make_store.py --spans 10000000 --out /tmp/bench10m.duckdb

The traffic is a web shop of 15 services (the one `sample_traces/` describes, grown by
catalog, search, pricing, fraud, shipping, accounting and auth) over 7 days with a diurnal
rate: product pages, searches, logins, add-to-cart, checkouts, Kafka consumers linked to
their producer, order-status lookups, carrier webhooks and cancellations; PostgreSQL, Redis
and Elasticsearch CLIENT spans; external HTTPS APIs (payprovider, carrier, mailer, risk);
retries that recovered, degraded fallbacks, failed branches and hard failures.

Every span reaches the store through ``DuckDBStore.write`` as a serialized OTLP
``ExportTraceServiceRequest`` of ~512 spans (the bytes the receivers hand over), with the
store's decoder processes set as ``seqtrace serve`` sets them, from several threads so
that the store's group commit works as it does behind the receivers.

How it stays fast: protobuf construction in Python is the bottleneck, so a few
hundred *trace templates* are built once as real protobuf messages whose ids, timestamps
and entity values are placeholders of the final byte length. Each template is serialized
once and split at the placeholders into a ``bytes`` %-format; an instance is then one
``fmt % values`` per (service, scope) group of a trace, and a request is those fragments
wrapped in hand-written ResourceSpans/ScopeSpans framing. That produces requests at several
hundred thousand spans per second per core (``--measure-generator``), in worker processes,
so the store's ingest path, not the generator, sets the pace.

The output is deterministic per ``--seed``: the plan comes from one numpy generator, the
templates from one ``random.Random``, and the ids of trace number *k* from
``shake_128(seed, k)``, so the same spans are stored whatever the thread interleaving.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import queue
import random
import re
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.pool import AsyncResult
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

Attr = str | int | float | bool
Attrs = list[tuple[str, Attr]]
AttrSeq = Sequence[tuple[str, Attr]]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

NS_PER_MS: Final = 1_000_000
HOUR_NS: Final = 3_600 * 1_000_000_000
DAY_NS: Final = 24 * HOUR_NS
#: The stored week ends at 2026-11-25T00:00:00Z.
DEFAULT_END: Final = int(datetime(2026, 11, 25, tzinfo=UTC).timestamp()) * 1_000_000_000
REQUEST_SPANS: Final = 512
SDK_VERSION: Final = "1.45.2"
INSTRUMENTATION_VERSION: Final = "0.66b2"

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 1, 2, 3, 4, 5
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

SCOPE_HTTP_SERVER: Final = "opentelemetry.instrumentation.fastapi"
SCOPE_HTTP_CLIENT: Final = "opentelemetry.instrumentation.httpx"
SCOPE_GRPC_SERVER: Final = "opentelemetry.instrumentation.grpc.aio_server"
SCOPE_GRPC_CLIENT: Final = "opentelemetry.instrumentation.grpc.aio_client"
SCOPE_POSTGRES: Final = "opentelemetry.instrumentation.psycopg"
SCOPE_REDIS: Final = "opentelemetry.instrumentation.redis"
SCOPE_ES: Final = "opentelemetry.instrumentation.elasticsearch"
SCOPE_KAFKA: Final = "opentelemetry.instrumentation.confluent_kafka"

# --------------------------------------------------------------------------- placeholders
# Entity values have fixed widths so that a placeholder of the same length can stand in
# for them in the serialized template (the length prefixes stay valid).
ORDER: Final = "\x1b\x1bORDER\x1b\x1b\x1b\x1b"  # ORD-1234567
CUSTOMER: Final = "\x1b\x1bCUSTO\x1b\x1b\x1b\x1b"  # CUST-123456
PAYMENT: Final = "\x1b\x1bPAYMT\x1b\x1b\x1b\x1b"  # PAY-1234567
SHIPMENT: Final = "\x1b\x1bSHIPM\x1b\x1b\x1b\x1b"  # SHP-1234567
CART: Final = "\x1b\x1bCARTI\x1b\x1b\x1b\x1b"  # CART-1a2b3c
PRODUCT: Final = "\x1b\x1bSKUID\x1b\x1b"  # SKU-12345
ENTITY_MARKERS: Final = (ORDER, CUSTOMER, PAYMENT, SHIPMENT, CART, PRODUCT)
ENTITY_WIDTH: Final = {ORDER: 11, CUSTOMER: 11, PAYMENT: 11, SHIPMENT: 11, CART: 11, PRODUCT: 9}
assert all(len(marker) == width for marker, width in ENTITY_WIDTH.items())

_ID_MARK: Final = b"\xee\xdd"  # + 2 slot bytes + 12 x \xee: a 16-byte id
_U64_MARK: Final = b"\xee\xdc"  # + 2 slot bytes + 4 x \xee: 8 bytes (span id or fixed64 time)
_MARKER_RE: Final = re.compile(
    rb"\xee\xdd([\x01-\x7f]{2})\xee{12}|\xee\xdc([\x01-\x7f]{2})\xee{4}|("
    + b"|".join(re.escape(m.encode()) for m in ENTITY_MARKERS)
    + rb")"
)


def _slot_bytes(slot: int) -> bytes:
    if not 0 <= slot < 127 * 127:
        raise ValueError(f"slot {slot} out of range")
    return bytes((1 + slot // 127, 1 + slot % 127))


def _slot_of(two: bytes) -> int:
    return (two[0] - 1) * 127 + (two[1] - 1)


def id_marker(slot: int) -> bytes:
    return _ID_MARK + _slot_bytes(slot) + b"\xee" * 12


def u64_marker(slot: int) -> bytes:
    return _U64_MARK + _slot_bytes(slot) + b"\xee" * 4


def u64_marker_int(slot: int) -> int:
    return int.from_bytes(u64_marker(slot), "little")


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


# --------------------------------------------------------------------------- the shop


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    version: str
    language: str
    port: int
    pods: tuple[str, ...]


def _service(name: str, version: str, language: str, port: int, pod_hash: str) -> ServiceInfo:
    pods = tuple(f"{name}-{pod_hash}-{suffix}" for suffix in ("x2k4p", "q8w2n", "l4m7z"))
    return ServiceInfo(name, version, language, port, pods)


SERVICES: Final = {
    s.name: s
    for s in (
        _service("frontend", "2.14.0", "python", 8080, "7c9d8f6b5"),
        _service("checkout", "1.9.3", "python", 8080, "5b7f9c8d44"),
        _service("cart", "3.2.1", "go", 50051, "6d5c7b9f8"),
        _service("inventory", "1.4.0", "go", 50051, "84f6d7c9b"),
        _service("payment", "2.0.7", "python", 8080, "59c8b7d6f"),
        _service("recommendation", "0.12.4", "python", 50051, "7f8d9c6b5"),
        _service("notification", "1.1.2", "nodejs", 8080, "6c7d8e9f4"),
        _service("fulfillment", "1.6.0", "java", 8080, "5d6e7f8a9"),
        _service("catalog", "4.0.2", "go", 50051, "8a7b6c5d4"),
        _service("search", "2.3.0", "java", 8080, "9b8c7d6e5"),
        _service("pricing", "1.2.5", "go", 50051, "4c5d6e7f8"),
        _service("fraud", "0.9.1", "python", 8080, "3d4e5f6a7"),
        _service("shipping", "1.3.4", "java", 50051, "2e3f4a5b6"),
        _service("accounting", "1.0.8", "dotnet", 50051, "1f2a3b4c5"),
        _service("auth", "2.5.0", "go", 8080, "6a5b4c3d2"),
    )
}
SERVICE_NAMES: Final = tuple(SERVICES)
USER_AGENTS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "ShopApp/5.2.1 (iOS 18.1; iPhone15,2)",
)


@dataclass(frozen=True)
class Failure:
    exception_type: str
    message: str
    status_message: str
    stack: tuple[str, ...] = ()

    def stacktrace(self) -> str:
        lines = ["Traceback (most recent call last):"]
        for frame in self.stack:
            path, line, function = frame.split(":")
            lines.append(f'  File "{path}", line {line}, in {function}')
        lines.append(f"{self.exception_type}: {self.message}")
        return "\n".join(lines) + "\n"


PAYPROVIDER_503: Final = Failure(
    "httpx.HTTPStatusError",
    "Server error '503 Service Unavailable' for url 'https://api.payprovider.example/v1/charges'",
    "503 Service Unavailable",
    (
        "/app/payment/provider.py:88:charge",
        "/usr/local/lib/python3.12/site-packages/httpx/_models.py:829:raise_for_status",
    ),
)
PAYMENT_502: Final = Failure(
    "shop.payment.errors.ProviderUnavailable",
    "payprovider unavailable after 3 attempts",
    "ProviderUnavailable: payprovider unavailable after 3 attempts",
    ("/app/payment/handlers.py:51:create_payment", "/app/payment/provider.py:97:charge"),
)
DEADLOCK: Final = Failure(
    "psycopg.errors.DeadlockDetected",
    "deadlock detected",
    "DeadlockDetected: deadlock detected",
    ("/app/checkout/handlers.py:142:create_order", "/app/checkout/repository.py:57:insert_order"),
)
STOCK_DEADLOCK: Final = Failure(
    "pgx.PgError",
    "ERROR: deadlock detected (SQLSTATE 40P01)",
    "deadlock detected (SQLSTATE 40P01)",
    ("/app/inventory/reserve.go:77:Reserve",),
)
CHECKOUT_500: Final = Failure(
    "shop.frontend.errors.UpstreamError",
    "checkout POST /api/orders returned 500 Internal Server Error",
    "UpstreamError: checkout returned 500",
    (
        "/app/frontend/routes/checkout.py:64:post_checkout",
        "/app/frontend/clients/checkout.py:31:place",
    ),
)
CHECKOUT_502: Final = Failure(
    "shop.frontend.errors.UpstreamError",
    "checkout POST /api/orders returned 502 Bad Gateway",
    "UpstreamError: checkout returned 502",
    (
        "/app/frontend/routes/checkout.py:64:post_checkout",
        "/app/frontend/clients/checkout.py:31:place",
    ),
)
FEATURES_TIMEOUT: Final = Failure(
    "TimeoutError",
    "feature store lookup timed out after 200 ms",
    "TimeoutError: feature store lookup timed out after 200 ms",
    (
        "/app/recommendation/service.py:73:ListRecommendations",
        "/app/recommendation/features.py:41:load",
    ),
)
FRAUD_TIMEOUT: Final = Failure(
    "httpx.ReadTimeout",
    "timed out reading from https://api.riskcheck.example/v2/score",
    "ReadTimeout",
    (
        "/app/fraud/scoring.py:112:score",
        "/usr/local/lib/python3.12/site-packages/httpx/_transports/default.py:86:map_httpcore_exceptions",
    ),
)
CARRIER_TIMEOUT: Final = Failure(
    "java.net.http.HttpTimeoutException",
    "request timed out",
    "HttpTimeoutException: request timed out",
    ("/app/shipping/CarrierClient.java:58:quote",),
)
MAILER_500: Final = Failure(
    "Error",
    "mailer responded 500 Internal Server Error",
    "500 Internal Server Error",
    ("/app/notification/mailer.js:44:send",),
)
MAILER_429: Final = Failure(
    "Error",
    "mailer responded 429 Too Many Requests",
    "429 Too Many Requests",
    ("/app/notification/mailer.js:44:send",),
)

# --------------------------------------------------------------------------- templates


@dataclass
class TEvent:
    name: str
    at: int
    attrs: Attrs


@dataclass
class TSpan:
    service: str
    scope: str
    name: str
    kind: int
    parent: int
    start: int
    end: int = 0
    attrs: Attrs = field(default_factory=list)
    status: int = STATUS_UNSET
    message: str = ""
    events: list[TEvent] = field(default_factory=list)
    link: bool = False


class TraceBuilder:
    """Builds one trace shape with SDK-like conventions (see sample_traces/README.md)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.spans: list[TSpan] = []
        self.ua = rng.choice(USER_AGENTS)
        self.client_ip = f"203.0.113.{rng.randint(2, 250)}"

    # -- time
    def ms(self, low: float, high: float) -> int:
        return round(self.rng.uniform(low, high) * 1000) * 1000

    def net(self) -> int:
        return self.ms(0.2, 1.2)

    # -- spans
    def start(
        self,
        service: str,
        scope: str,
        name: str,
        kind: int,
        parent: int,
        at: int,
        attrs: AttrSeq,
        link: bool = False,
    ) -> int:
        self.spans.append(TSpan(service, scope, name, kind, parent, at, at, list(attrs), link=link))
        return len(self.spans) - 1

    def end(self, index: int, at: int) -> int:
        self.spans[index].end = at
        return at

    def set(self, index: int, attrs: Attrs) -> None:
        self.spans[index].attrs.extend(attrs)

    def event(self, index: int, name: str, at: int, attrs: Attrs) -> None:
        self.spans[index].events.append(TEvent(name, at, attrs))

    def error(self, index: int, message: str, error_type: str) -> None:
        span = self.spans[index]
        if span.status == STATUS_ERROR:
            return
        span.status = STATUS_ERROR
        span.message = message
        span.attrs.append(("error.type", error_type))

    def fail(self, index: int, at: int, failure: Failure) -> None:
        self.event(
            index,
            "exception",
            at,
            [
                ("exception.type", failure.exception_type),
                ("exception.message", failure.message),
                ("exception.stacktrace", failure.stacktrace()),
                ("exception.escaped", True),
            ],
        )
        self.error(index, failure.status_message, failure.exception_type)

    def internal(self, service: str, name: str, parent: int, at: int, attrs: Attrs) -> int:
        return self.start(
            service,
            f"shop.{service}",
            name,
            KIND_INTERNAL,
            parent,
            at,
            [
                ("code.function", name.replace(" ", "_")),
                ("code.namespace", f"shop.{service}"),
                *attrs,
            ],
        )

    # -- HTTP
    def http_server(
        self,
        service: str,
        parent: int,
        at: int,
        method: str,
        route: str,
        path: str,
        attrs: AttrSeq = (),
        public: bool = False,
        client: str = "10.42.3.23",
    ) -> int:
        info = SERVICES[service]
        return self.start(
            service,
            SCOPE_HTTP_SERVER,
            f"{method} {route}",
            KIND_SERVER,
            parent,
            at,
            [
                ("http.request.method", method),
                ("http.route", route),
                ("url.path", path),
                ("url.scheme", "https" if public else "http"),
                ("server.address", "shop.example" if public else service),
                ("server.port", 443 if public else info.port),
                ("network.protocol.version", "2" if public else "1.1"),
                ("client.address", self.client_ip if public else client),
                ("user_agent.original", self.ua if public else "python-httpx/0.28.1"),
                *attrs,
            ],
        )

    def http_client(
        self,
        caller: str,
        parent: int,
        at: int,
        method: str,
        host: str,
        template: str,
        path: str,
        peer: str,
        scheme: str = "http",
        port: int = 8080,
        attrs: AttrSeq = (),
    ) -> int:
        authority = host if port in (80, 443) else f"{host}:{port}"
        return self.start(
            caller,
            SCOPE_HTTP_CLIENT,
            f"{method} {template}",
            KIND_CLIENT,
            parent,
            at,
            [
                ("http.request.method", method),
                ("url.full", f"{scheme}://{authority}{path}"),
                ("url.template", template),
                ("server.address", host),
                ("server.port", port),
                ("peer.service", peer),
                ("network.protocol.version", "1.1"),
                *attrs,
            ],
        )

    def http_call(
        self,
        caller: str,
        parent: int,
        at: int,
        target: str,
        method: str,
        route: str,
        path: str,
        server_attrs: AttrSeq = (),
    ) -> tuple[int, int, int]:
        client = self.http_client(
            caller, parent, at, method, target, route, path, target, port=SERVICES[target].port
        )
        start = at + self.net()
        server = self.http_server(
            target,
            client,
            start,
            method,
            route,
            path,
            server_attrs,
            client=f"10.42.{1 + SERVICE_NAMES.index(caller)}.23",
        )
        return client, server, start

    def finish_http(self, index: int, at: int, status: int) -> int:
        span = self.spans[index]
        span.attrs.append(("http.response.status_code", status))
        limit = 400 if span.kind == KIND_CLIENT else 500
        if status >= limit:
            self.error(index, f"{status} {_REASONS.get(status, 'Error')}", str(status))
        return self.end(index, at)

    def respond_http(self, client: int, server: int, at: int, status: int) -> int:
        self.finish_http(server, at, status)
        return self.finish_http(client, at + self.net(), status)

    def external(
        self,
        caller: str,
        parent: int,
        at: int,
        duration: int,
        method: str,
        host: str,
        template: str,
        path: str,
        peer: str,
        status: int,
        resend: int = 0,
        failure: Failure | None = None,
    ) -> int:
        attrs: Attrs = [("http.request.resend_count", resend)] if resend else []
        index = self.http_client(
            caller, parent, at, method, host, template, path, peer, "https", 443, attrs
        )
        end = at + duration
        if failure is not None:
            self.fail(index, end - self.ms(0.05, 0.2), failure)
        return self.finish_http(index, end, status)

    # -- gRPC
    def grpc_call(
        self,
        caller: str,
        parent: int,
        at: int,
        target: str,
        rpc_service: str,
        method: str,
        server_attrs: AttrSeq = (),
    ) -> tuple[int, int, int]:
        rpc: Attrs = [
            ("rpc.system", "grpc"),
            ("rpc.service", rpc_service),
            ("rpc.method", method),
            ("server.address", target),
            ("server.port", SERVICES[target].port),
            ("network.protocol.name", "http"),
            ("network.protocol.version", "2"),
        ]
        client = self.start(
            caller, SCOPE_GRPC_CLIENT, f"{rpc_service}/{method}", KIND_CLIENT, parent, at, rpc
        )
        start = at + self.net()
        server = self.start(
            target,
            SCOPE_GRPC_SERVER,
            f"{rpc_service}/{method}",
            KIND_SERVER,
            client,
            start,
            [
                *rpc,
                ("client.address", f"10.42.{1 + SERVICE_NAMES.index(caller)}.23"),
                *server_attrs,
            ],
        )
        return client, server, start

    def respond_grpc(self, client: int, server: int, at: int, code: int) -> int:
        names = {0: "OK", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 13: "INTERNAL", 14: "UNAVAILABLE"}
        for index, end in ((server, at), (client, at + self.net())):
            span = self.spans[index]
            span.attrs.append(("rpc.grpc.status_code", code))
            is_error = code != 0 if span.kind == KIND_CLIENT else code in (2, 4, 13, 14)
            if is_error:
                self.error(index, names.get(code, str(code)), names.get(code, str(code)))
            self.end(index, end)
        return at + self.net()

    # -- data stores
    def sql(
        self,
        caller: str,
        parent: int,
        at: int,
        duration: int,
        operation: str,
        table: str,
        statement: str,
        db: str = "orders",
        failure: Failure | None = None,
    ) -> int:
        index = self.start(
            caller,
            SCOPE_POSTGRES,
            f"{operation} {table}",
            KIND_CLIENT,
            parent,
            at,
            [
                ("db.system", "postgresql"),
                ("db.name", db),
                ("db.user", f"{caller}_svc"),
                ("db.operation", operation),
                ("db.sql.table", table),
                ("db.statement", statement),
                ("server.address", f"{db}-db"),
                ("server.port", 5432),
                ("network.peer.address", f"10.43.0.{11 + len(db)}"),
            ],
        )
        end = at + duration
        if failure is not None:
            self.set(index, [("db.response.status_code", "40P01")])
            self.fail(index, end - self.ms(0.02, 0.1), failure)
        return self.end(index, end)

    def redis(self, caller: str, parent: int, at: int, statement: str) -> int:
        command = statement.split(" ", 1)[0]
        index = self.start(
            caller,
            SCOPE_REDIS,
            command,
            KIND_CLIENT,
            parent,
            at,
            [
                ("db.system", "redis"),
                ("db.operation", command),
                ("db.statement", statement),
                ("db.redis.database_index", 0),
                ("server.address", "redis-cache"),
                ("server.port", 6379),
                ("network.peer.address", "10.43.0.7"),
            ],
        )
        return self.end(index, at + self.ms(0.2, 1.4))

    def elasticsearch(self, caller: str, parent: int, at: int, duration: int) -> int:
        index = self.start(
            caller,
            SCOPE_ES,
            "search",
            KIND_CLIENT,
            parent,
            at,
            [
                ("db.system", "elasticsearch"),
                ("db.name", "products"),
                ("db.operation", "search"),
                ("db.statement", '{"query":{"multi_match":{"query":"?"}}}'),
                ("url.full", "http://es-cluster:9200/products/_search"),
                ("http.request.method", "POST"),
                ("server.address", "es-cluster"),
                ("server.port", 9200),
            ],
        )
        return self.end(index, at + duration)

    # -- Kafka
    def publish(self, caller: str, parent: int, at: int, topic: str, key: str, attrs: Attrs) -> int:
        index = self.start(
            caller,
            SCOPE_KAFKA,
            f"publish {topic}",
            KIND_PRODUCER,
            parent,
            at,
            [
                ("messaging.system", "kafka"),
                ("messaging.destination.name", topic),
                ("messaging.operation", "publish"),
                ("messaging.client_id", f"{caller}-producer"),
                ("messaging.kafka.message.key", key),
                ("messaging.kafka.destination.partition", self.rng.randrange(12)),
                ("server.address", "kafka"),
                ("server.port", 9092),
                *attrs,
            ],
        )
        return self.end(index, at + self.ms(1.5, 6.5))

    def consume(self, service: str, at: int, topic: str, key: str, attrs: Attrs) -> int:
        return self.start(
            service,
            SCOPE_KAFKA,
            f"process {topic}",
            KIND_CONSUMER,
            -1,
            at,
            [
                ("messaging.system", "kafka"),
                ("messaging.destination.name", topic),
                ("messaging.operation", "process"),
                ("messaging.kafka.consumer.group", service),
                ("messaging.kafka.message.key", key),
                ("messaging.kafka.destination.partition", self.rng.randrange(12)),
                ("server.address", "kafka"),
                ("server.port", 9092),
                *attrs,
            ],
            link=True,
        )


_REASONS: Final = {
    200: "OK",
    201: "Created",
    401: "Unauthorized",
    402: "Payment Required",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# --------------------------------------------------------------------------- the flows
# Each flow writes one trace into a TraceBuilder; ``variant`` picks the failure mode.


def flow_product_page(t: TraceBuilder, variant: str) -> None:
    logged_in = t.rng.random() < 0.6
    ents: Attrs = [("product.id", PRODUCT)]
    if logged_in:
        ents.append(("customer.id", CUSTOMER))
    root = t.http_server(
        "frontend", -1, 0, "GET", "/product/{productId}", f"/product/{PRODUCT}", ents, public=True
    )
    at = t.ms(0.3, 1.0)
    c, s, st = t.grpc_call("frontend", root, at, "catalog", "catalog.CatalogService", "GetProduct")
    end = t.sql(
        "catalog",
        s,
        st + t.ms(0.1, 0.4),
        t.ms(0.8, 4.0),
        "SELECT",
        "products",
        "SELECT id, name, price_cents, description FROM products WHERE sku = $1",
        "catalog",
    )
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.3), 0)
    # cart and recommendations in parallel
    c1, s1, st1 = t.grpc_call("frontend", root, at, "cart", "cart.CartService", "GetCart")
    e1 = t.redis("cart", s1, st1 + t.ms(0.05, 0.2), "HGETALL cart:?")
    e1 = t.respond_grpc(c1, s1, e1 + t.ms(0.1, 0.3), 0)
    c2, s2, st2 = t.grpc_call(
        "frontend",
        root,
        at + t.ms(0.05, 0.2),
        "recommendation",
        "oteldemo.RecommendationService",
        "ListRecommendations",
    )
    feats = t.internal("recommendation", "load user features", s2, st2 + t.ms(0.1, 0.3), [])
    if variant == "degraded":
        fend = t.spans[feats].start + 200 * NS_PER_MS + t.ms(0.1, 0.5)
        t.fail(feats, fend, FEATURES_TIMEOUT)
        t.end(feats, fend)
        t.spans[s2].attrs.append(("rpc.grpc.status_code", 4))
        t.error(s2, FEATURES_TIMEOUT.status_message, "TimeoutError")
        t.end(s2, fend + t.ms(0.1, 0.3))
        cend = fend + t.ms(0.5, 1.0)
        t.spans[c2].attrs.append(("rpc.grpc.status_code", 4))
        t.error(c2, "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED")
        t.end(c2, cend)
        fb = t.internal(
            "frontend",
            "recommendations fallback",
            root,
            cend + t.ms(0.05, 0.2),
            [("fallback", "cache")],
        )
        t.event(fb, "serving cached recommendations", t.spans[fb].start + 20_000, [])
        r = t.redis("frontend", fb, t.spans[fb].start + t.ms(0.05, 0.1), "GET recs:popular")
        e2 = t.end(fb, r + t.ms(0.05, 0.2))
    else:
        r = t.redis(
            "recommendation", feats, t.spans[feats].start + t.ms(0.05, 0.2), "GET features:?"
        )
        fend = t.end(feats, r + t.ms(0.5, 3.0))
        e2 = t.respond_grpc(c2, s2, fend + t.ms(0.2, 1.5), 0)
    at = max(e1, e2) + t.ms(0.1, 0.3)
    render = t.internal("frontend", "render product page", root, at, [("template", "product.html")])
    at = t.end(render, at + t.ms(2.0, 9.0))
    t.finish_http(root, at + t.ms(0.1, 0.4), 200)


def flow_search(t: TraceBuilder, variant: str) -> None:
    ents: Attrs = [("customer.id", CUSTOMER)] if t.rng.random() < 0.5 else []
    root = t.http_server("frontend", -1, 0, "GET", "/api/search", "/api/search", ents, public=True)
    c, s, st = t.http_call(
        "frontend", root, t.ms(0.3, 1.0), "search", "GET", "/v1/search", "/v1/search"
    )
    end = t.elasticsearch("search", s, st + t.ms(0.2, 0.6), t.ms(4.0, 30.0))
    c2, s2, st2 = t.grpc_call(
        "search", s, end + t.ms(0.1, 0.3), "catalog", "catalog.CatalogService", "GetProducts"
    )
    e2 = t.sql(
        "catalog",
        s2,
        st2 + t.ms(0.1, 0.3),
        t.ms(1.0, 6.0),
        "SELECT",
        "products",
        "SELECT id, name, price_cents FROM products WHERE sku = ANY($1)",
        "catalog",
    )
    e2 = t.respond_grpc(c2, s2, e2 + t.ms(0.1, 0.3), 0)
    at = t.respond_http(c, s, e2 + t.ms(0.2, 0.8), 200)
    t.finish_http(root, at + t.ms(0.5, 3.0), 200)


def flow_login(t: TraceBuilder, variant: str) -> None:
    root = t.http_server(
        "frontend",
        -1,
        0,
        "POST",
        "/api/login",
        "/api/login",
        [("customer.id", CUSTOMER)],
        public=True,
    )
    c, s, st = t.http_call(
        "frontend",
        root,
        t.ms(0.3, 1.0),
        "auth",
        "POST",
        "/v1/sessions",
        "/v1/sessions",
        [("customer.id", CUSTOMER)],
    )
    end = t.sql(
        "auth",
        s,
        st + t.ms(0.1, 0.4),
        t.ms(0.8, 3.5),
        "SELECT",
        "users",
        "SELECT id, password_hash FROM users WHERE email = $1",
        "accounts",
    )
    verify = t.internal(
        "auth", "verify password", s, end + t.ms(0.05, 0.1), [("hash.algorithm", "argon2id")]
    )
    end = t.end(verify, t.spans[verify].start + t.ms(25.0, 60.0))
    status = 401 if variant == "unauthorized" else 201
    if status == 201:
        end = t.redis("auth", s, end + t.ms(0.1, 0.3), "SET session:? ? EX 86400")
    at = t.respond_http(c, s, end + t.ms(0.1, 0.5), status)
    t.finish_http(root, at + t.ms(0.2, 1.0), status)


def flow_add_to_cart(t: TraceBuilder, variant: str) -> None:
    ents: Attrs = [("customer.id", CUSTOMER), ("cart.id", CART), ("product.id", PRODUCT)]
    root = t.http_server(
        "frontend", -1, 0, "POST", "/api/cart/items", "/api/cart/items", ents, public=True
    )
    c, s, st = t.grpc_call(
        "frontend", root, t.ms(0.3, 1.0), "inventory", "inventory.InventoryService", "CheckStock"
    )
    end = t.sql(
        "inventory",
        s,
        st + t.ms(0.1, 0.3),
        t.ms(0.6, 3.0),
        "SELECT",
        "stock",
        "SELECT available FROM stock WHERE sku = $1",
        "inventory",
    )
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.2), 0)
    c, s, st = t.grpc_call(
        "frontend", root, at, "cart", "cart.CartService", "AddItem", [("cart.id", CART)]
    )
    end = t.redis("cart", s, st + t.ms(0.05, 0.2), "HINCRBY cart:? ? ?")
    end = t.redis("cart", s, end + t.ms(0.05, 0.2), "EXPIRE cart:? 604800")
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.3), 0)
    t.finish_http(root, at + t.ms(0.2, 0.8), 200)


def flow_checkout(t: TraceBuilder, variant: str) -> int:
    """Returns the index of the PRODUCER span (-1 when nothing is published)."""
    items = t.rng.choice((1, 1, 1, 2, 2, 3, 4))
    frontend_ents: Attrs = [("customer.id", CUSTOMER), ("cart.id", CART)]
    root = t.http_server(
        "frontend", -1, 0, "POST", "/api/checkout", "/api/checkout", frontend_ents, public=True
    )
    ents: Attrs = [("order.id", ORDER), ("customer.id", CUSTOMER)]
    c0, s0, at = t.http_call(
        "frontend", root, t.ms(0.4, 1.2), "checkout", "POST", "/api/orders", "/api/orders", ents
    )
    # validate cart
    v = t.internal(
        "checkout",
        "validate cart",
        s0,
        at + t.ms(0.1, 0.3),
        [("order.id", ORDER), ("cart.items", items)],
    )
    c, s, st = t.grpc_call(
        "checkout", v, t.spans[v].start + t.ms(0.05, 0.2), "cart", "cart.CartService", "GetCart"
    )
    end = t.redis("cart", s, st + t.ms(0.05, 0.2), "HGETALL cart:?")
    end = t.respond_grpc(c, s, end + t.ms(0.1, 0.3), 0)
    at = t.end(v, end + t.ms(0.1, 0.4))
    # prices
    c, s, st = t.grpc_call(
        "checkout", s0, at + t.ms(0.1, 0.3), "pricing", "pricing.PricingService", "Quote"
    )
    end = t.sql(
        "pricing",
        s,
        st + t.ms(0.1, 0.3),
        t.ms(0.8, 4.0),
        "SELECT",
        "prices",
        "SELECT sku, price_cents, currency FROM prices WHERE sku = ANY($1)",
        "catalog",
    )
    at = t.respond_grpc(c, s, end + t.ms(0.2, 1.5), 0)
    # shipping quote (sometimes degraded to a flat rate)
    if variant != "noquote":
        c, s, st = t.grpc_call(
            "checkout", s0, at + t.ms(0.1, 0.3), "shipping", "shipping.ShippingService", "GetQuote"
        )
        if variant == "degraded_shipping":
            ext = t.external(
                "shipping",
                s,
                st + t.ms(0.2, 0.5),
                1500 * NS_PER_MS,
                "POST",
                "api.carrier.example",
                "/v1/rates",
                "/v1/rates",
                "carrier-api",
                504,
                failure=CARRIER_TIMEOUT,
            )
            fb = t.internal(
                "shipping",
                "flat rate fallback",
                s,
                ext + t.ms(0.05, 0.2),
                [("fallback", "flat_rate")],
            )
            end = t.end(fb, t.spans[fb].start + t.ms(0.05, 0.2))
        else:
            end = t.external(
                "shipping",
                s,
                st + t.ms(0.2, 0.5),
                t.ms(40.0, 180.0),
                "POST",
                "api.carrier.example",
                "/v1/rates",
                "/v1/rates",
                "carrier-api",
                200,
            )
        at = t.respond_grpc(c, s, end + t.ms(0.1, 0.5), 0)
    # fraud score for larger baskets (degraded: the risk API times out, rules fallback)
    if variant == "degraded_fraud" or t.rng.random() < 0.5:
        at = _fraud_check(t, s0, at, variant)
    # stock reservation, one UPDATE per item (a deadlock retried once in `retried_stock`)
    c, s, st = t.grpc_call(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        "inventory",
        "inventory.InventoryService",
        "ReserveStock",
        [("order.id", ORDER)],
    )
    end = st + t.ms(0.1, 0.3)
    for item in range(items):
        stmt = "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2 AND available >= $1"
        if variant == "retried_stock" and item == 0:
            end = t.sql(
                "inventory",
                s,
                end,
                t.ms(20.0, 60.0),
                "UPDATE",
                "stock",
                stmt,
                "inventory",
                failure=STOCK_DEADLOCK,
            ) + t.ms(5.0, 15.0)
        end = t.sql(
            "inventory", s, end, t.ms(0.8, 4.0), "UPDATE", "stock", stmt, "inventory"
        ) + t.ms(0.05, 0.2)
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.3), 0)
    # payment
    pay_ents: Attrs = [("order.id", ORDER), ("payment.id", PAYMENT)]
    c, s, st = t.http_call(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        "payment",
        "POST",
        "/api/payments",
        "/api/payments",
        pay_ents,
    )
    end = t.redis("payment", s, st + t.ms(0.05, 0.2), "SET idem:? 1 NX EX 86400")
    charge = t.internal(
        "payment",
        "charge card",
        s,
        end + t.ms(0.05, 0.2),
        [("payment.id", PAYMENT), ("payment.method", "card")],
    )
    at = t.spans[charge].start + t.ms(0.1, 0.3)
    attempts = {"retried_payment": t.rng.choice((2, 2, 3)), "failed_payment": 3}.get(variant, 1)
    declined = variant == "declined"
    for attempt in range(attempts):
        last = attempt == attempts - 1
        if last and variant != "failed_payment":
            status = 402 if declined else 200
            at = t.external(
                "payment",
                charge,
                at,
                t.ms(80.0, 260.0),
                "POST",
                "api.payprovider.example",
                "/v1/charges",
                "/v1/charges",
                "payprovider",
                status,
                resend=attempt,
            )
        else:
            at = t.external(
                "payment",
                charge,
                at,
                t.ms(20.0, 90.0),
                "POST",
                "api.payprovider.example",
                "/v1/charges",
                "/v1/charges",
                "payprovider",
                503,
                resend=attempt,
                failure=PAYPROVIDER_503,
            )
            if not last:
                backoff = 100 * NS_PER_MS * (attempt + 1)
                t.event(
                    charge,
                    "retry scheduled",
                    at + 50_000,
                    [("retry.backoff_ms", backoff // NS_PER_MS)],
                )
                at += backoff
    if variant == "failed_payment":
        t.fail(charge, at + t.ms(0.05, 0.1), PAYMENT_502)
        t.end(charge, at + t.ms(0.1, 0.3))
        at = t.respond_http(c, s, at + t.ms(0.3, 0.8), 502)
        t.fail(
            s0,
            at + t.ms(0.1, 0.2),
            Failure(
                "shop.checkout.errors.PaymentFailed",
                "payment returned 502",
                "PaymentFailed: payment returned 502",
            ),
        )
        at = t.respond_http(c0, s0, at + t.ms(0.3, 0.8), 502)
        t.fail(root, at + t.ms(0.1, 0.2), CHECKOUT_502)
        t.finish_http(root, at + t.ms(0.3, 0.9), 502)
        return -1
    if declined:
        t.set(charge, [("payment.declined", True)])
        t.end(charge, at + t.ms(0.1, 0.3))
        at = t.respond_http(c, s, at + t.ms(0.3, 0.8), 402)
        at = t.respond_http(c0, s0, at + t.ms(0.3, 0.8), 402)
        t.finish_http(root, at + t.ms(0.3, 0.9), 402)
        return -1
    t.set(charge, [("payment.attempts", attempts)])
    t.spans[charge].status = STATUS_OK
    at = t.end(charge, at + t.ms(0.1, 0.3))
    at = t.sql(
        "payment",
        s,
        at + t.ms(0.05, 0.2),
        t.ms(1.0, 5.0),
        "INSERT",
        "payments",
        "INSERT INTO payments (id, order_id, amount_cents, status) VALUES ($1, $2, $3, $4)",
        "payments",
    )
    at = t.respond_http(c, s, at + t.ms(0.2, 0.8), 201)
    # the order itself
    if variant == "failed_deadlock":
        at = t.sql(
            "checkout",
            s0,
            at + t.ms(0.1, 0.3),
            t.ms(30.0, 60.0),
            "INSERT",
            "orders",
            "INSERT INTO orders (id, customer_id, total_cents, currency) VALUES ($1, $2, $3, $4)",
            failure=DEADLOCK,
        )
        c, s, st = t.http_call(
            "checkout",
            s0,
            at + t.ms(0.2, 0.6),
            "payment",
            "POST",
            "/api/payments/{paymentId}/void",
            f"/api/payments/{PAYMENT}/void",
            pay_ents,
        )
        end = t.external(
            "payment",
            s,
            st + t.ms(0.1, 0.3),
            t.ms(60.0, 150.0),
            "POST",
            "api.payprovider.example",
            "/v1/charges/{chargeId}/void",
            "/v1/charges/ch_3PqRsTuV/void",
            "payprovider",
            200,
        )
        end = t.sql(
            "payment",
            s,
            end + t.ms(0.1, 0.3),
            t.ms(1.0, 3.0),
            "UPDATE",
            "payments",
            "UPDATE payments SET status = 'voided' WHERE id = $1",
            "payments",
        )
        at = t.respond_http(c, s, end + t.ms(0.2, 0.6), 200)
        t.fail(s0, at + t.ms(0.1, 0.2), DEADLOCK)
        at = t.respond_http(c0, s0, at + t.ms(0.3, 0.8), 500)
        t.fail(root, at + t.ms(0.1, 0.2), CHECKOUT_500)
        t.finish_http(root, at + t.ms(0.3, 0.9), 502)
        return -1
    at = t.sql(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        t.ms(1.5, 6.0),
        "INSERT",
        "orders",
        "INSERT INTO orders (id, customer_id, total_cents, currency) VALUES ($1, $2, $3, $4)",
    )
    at = t.sql(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "INSERT",
        "order_items",
        "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) "
        "VALUES ($1, $2, $3, $4)",
    )
    producer = len(t.spans)
    at = t.publish(
        "checkout", s0, at + t.ms(0.1, 0.3), "order-events", ORDER, [("order.id", ORDER)]
    )
    at = t.respond_http(c0, s0, at + t.ms(0.3, 1.0), 201)
    t.set(root, [("order.id", ORDER)])
    t.finish_http(root, at + t.ms(0.5, 2.0), 200)
    return producer


def _fraud_check(t: TraceBuilder, s0: int, at: int, variant: str) -> int:
    c, s, st = t.http_call(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        "fraud",
        "POST",
        "/v1/score",
        "/v1/score",
        [("order.id", ORDER)],
    )
    end = t.redis("fraud", s, st + t.ms(0.05, 0.2), "GET velocity:?")
    if variant == "degraded_fraud":
        end = t.external(
            "fraud",
            s,
            end + t.ms(0.1, 0.3),
            800 * NS_PER_MS,
            "POST",
            "api.riskcheck.example",
            "/v2/score",
            "/v2/score",
            "riskcheck",
            504,
            failure=FRAUD_TIMEOUT,
        )
        fb = t.internal(
            "fraud",
            "rules fallback",
            s,
            end + t.ms(0.05, 0.2),
            [("fallback", "rules"), ("order.id", ORDER)],
        )
        end = t.end(fb, t.spans[fb].start + t.ms(0.3, 1.5))
    else:
        end = t.external(
            "fraud",
            s,
            end + t.ms(0.1, 0.3),
            t.ms(30.0, 120.0),
            "POST",
            "api.riskcheck.example",
            "/v2/score",
            "/v2/score",
            "riskcheck",
            200,
        )
    return t.respond_http(c, s, end + t.ms(0.1, 0.5), 200)


def _notify(t: TraceBuilder, caller: str, parent: int, at: int, template: str, variant: str) -> int:
    c, s, st = t.http_call(
        caller,
        parent,
        at,
        "notification",
        "POST",
        "/api/notifications",
        "/api/notifications",
        [("order.id", ORDER), ("customer.id", CUSTOMER)],
    )
    render = t.internal(
        "notification", f"render {template}", s, st + t.ms(0.2, 0.5), [("template", template)]
    )
    end = t.end(render, t.spans[render].start + t.ms(1.0, 6.0))
    if variant == "retried_mail":
        end = t.external(
            "notification",
            s,
            end + t.ms(0.1, 0.3),
            t.ms(10.0, 40.0),
            "POST",
            "api.mailer.example",
            "/v3/mail/send",
            "/v3/mail/send",
            "mailer",
            429,
            failure=MAILER_429,
        )
        end += 250 * NS_PER_MS
        end = t.external(
            "notification",
            s,
            end,
            t.ms(40.0, 120.0),
            "POST",
            "api.mailer.example",
            "/v3/mail/send",
            "/v3/mail/send",
            "mailer",
            202,
            resend=1,
        )
        return t.respond_http(c, s, end + t.ms(0.2, 0.6), 202)
    if variant == "failed_mail":
        end = t.external(
            "notification",
            s,
            end + t.ms(0.1, 0.3),
            t.ms(30.0, 90.0),
            "POST",
            "api.mailer.example",
            "/v3/mail/send",
            "/v3/mail/send",
            "mailer",
            500,
            failure=MAILER_500,
        )
        return t.respond_http(c, s, end + t.ms(0.2, 0.6), 502)
    end = t.external(
        "notification",
        s,
        end + t.ms(0.1, 0.3),
        t.ms(40.0, 120.0),
        "POST",
        "api.mailer.example",
        "/v3/mail/send",
        "/v3/mail/send",
        "mailer",
        202,
    )
    return t.respond_http(c, s, end + t.ms(0.2, 0.6), 202)


def flow_fulfillment(t: TraceBuilder, variant: str) -> None:
    root = t.consume("fulfillment", 0, "order-events", ORDER, [("order.id", ORDER)])
    at = t.sql(
        "fulfillment",
        root,
        t.ms(0.2, 0.6),
        t.ms(1.0, 5.0),
        "SELECT",
        "stock",
        "SELECT warehouse_id, available FROM stock WHERE sku = ANY($1)",
        "inventory",
    )
    at = t.sql(
        "fulfillment",
        root,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "INSERT",
        "shipments",
        "INSERT INTO shipments (id, order_id, warehouse_id, status) VALUES ($1, $2, $3, 'pending')",
    )
    t.set(root, [("shipment.id", SHIPMENT)])
    c, s, st = t.grpc_call(
        "fulfillment",
        root,
        at + t.ms(0.1, 0.3),
        "shipping",
        "shipping.ShippingService",
        "CreateShipment",
        [("shipment.id", SHIPMENT)],
    )
    end = t.external(
        "shipping",
        s,
        st + t.ms(0.2, 0.5),
        t.ms(60.0, 240.0),
        "POST",
        "api.carrier.example",
        "/v1/shipments",
        "/v1/shipments",
        "carrier-api",
        201,
    )
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.4), 0)
    if t.rng.random() < 0.6:  # invoiced orders are recorded in the ledger right away
        c, s, st = t.grpc_call(
            "fulfillment",
            root,
            at + t.ms(0.1, 0.3),
            "accounting",
            "accounting.LedgerService",
            "RecordSale",
            [("order.id", ORDER)],
        )
        end = t.sql(
            "accounting",
            s,
            st + t.ms(0.1, 0.3),
            t.ms(1.0, 5.0),
            "INSERT",
            "ledger_entries",
            "INSERT INTO ledger_entries (order_id, account, amount_cents) VALUES ($1, $2, $3)",
            "ledger",
        )
        at = t.respond_grpc(c, s, end + t.ms(0.1, 0.4), 0)
    at = t.sql(
        "fulfillment",
        root,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "UPDATE",
        "orders",
        "UPDATE orders SET status = 'fulfilling' WHERE id = $1",
    )
    at = _notify(t, "fulfillment", root, at + t.ms(0.1, 0.3), "order-confirmation", variant)
    t.end(root, at + t.ms(0.2, 0.8))


def flow_order_status(t: TraceBuilder, variant: str) -> None:
    ents: Attrs = [("order.id", ORDER), ("customer.id", CUSTOMER)]
    root = t.http_server(
        "frontend", -1, 0, "GET", "/api/orders/{orderId}", f"/api/orders/{ORDER}", ents, public=True
    )
    c, s, st = t.http_call(
        "frontend",
        root,
        t.ms(0.3, 1.0),
        "checkout",
        "GET",
        "/api/orders/{orderId}",
        f"/api/orders/{ORDER}",
        [("order.id", ORDER)],
    )
    end = t.sql(
        "checkout",
        s,
        st + t.ms(0.1, 0.3),
        t.ms(0.8, 5.0),
        "SELECT",
        "orders",
        "SELECT id, status, total_cents FROM orders WHERE id = $1",
    )
    end = t.sql(
        "checkout",
        s,
        end + t.ms(0.1, 0.3),
        t.ms(0.8, 5.0),
        "SELECT",
        "order_items",
        "SELECT sku, quantity FROM order_items WHERE order_id = $1",
    )
    if variant == "tracking":
        c2, s2, st2 = t.grpc_call(
            "checkout",
            s,
            end + t.ms(0.1, 0.3),
            "shipping",
            "shipping.ShippingService",
            "GetTracking",
            [("shipment.id", SHIPMENT)],
        )
        e2 = t.external(
            "shipping",
            s2,
            st2 + t.ms(0.2, 0.5),
            t.ms(50.0, 220.0),
            "GET",
            "api.carrier.example",
            "/v1/tracking/{trackingId}",
            "/v1/tracking/1Z999AA10123456784",
            "carrier-api",
            200,
        )
        end = t.respond_grpc(c2, s2, e2 + t.ms(0.1, 0.3), 0)
    at = t.respond_http(c, s, end + t.ms(0.2, 0.6), 200)
    t.finish_http(root, at + t.ms(0.3, 1.5), 200)


def flow_webhook(t: TraceBuilder, variant: str) -> None:
    event = "delivered" if variant == "delivered" else "shipped"
    ents: Attrs = [("order.id", ORDER), ("shipment.id", SHIPMENT)]
    root = t.http_server(
        "fulfillment", -1, 0, "POST", "/webhooks/carrier", "/webhooks/carrier", ents, public=True
    )
    t.set(root, [("carrier.event", event)])
    at = t.sql(
        "fulfillment",
        root,
        t.ms(0.3, 0.8),
        t.ms(1.0, 4.0),
        "UPDATE",
        "shipments",
        "UPDATE shipments SET status = $1, updated_at = now() WHERE id = $2",
    )
    at = t.sql(
        "fulfillment",
        root,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "UPDATE",
        "orders",
        "UPDATE orders SET status = $1 WHERE id = $2",
    )
    at = _notify(t, "fulfillment", root, at + t.ms(0.1, 0.3), f"order-{event}", "ok")
    t.finish_http(root, at + t.ms(0.2, 0.8), 204)


def flow_cancel(t: TraceBuilder, variant: str) -> None:
    ents: Attrs = [("order.id", ORDER), ("customer.id", CUSTOMER)]
    root = t.http_server(
        "frontend",
        -1,
        0,
        "POST",
        "/api/orders/{orderId}/cancel",
        f"/api/orders/{ORDER}/cancel",
        ents,
        public=True,
    )
    c0, s0, at = t.http_call(
        "frontend",
        root,
        t.ms(0.3, 1.0),
        "checkout",
        "POST",
        "/api/orders/{orderId}/cancel",
        f"/api/orders/{ORDER}/cancel",
        [("order.id", ORDER)],
    )
    at = t.sql(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "SELECT",
        "orders",
        "SELECT id, status FROM orders WHERE id = $1 FOR UPDATE",
    )
    c, s, st = t.http_call(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        "payment",
        "POST",
        "/api/payments/{paymentId}/refund",
        f"/api/payments/{PAYMENT}/refund",
        [("order.id", ORDER), ("payment.id", PAYMENT)],
    )
    end = t.external(
        "payment",
        s,
        st + t.ms(0.1, 0.3),
        t.ms(80.0, 240.0),
        "POST",
        "api.payprovider.example",
        "/v1/refunds",
        "/v1/refunds",
        "payprovider",
        200,
    )
    end = t.sql(
        "payment",
        s,
        end + t.ms(0.1, 0.3),
        t.ms(1.0, 3.0),
        "UPDATE",
        "payments",
        "UPDATE payments SET status = 'refunded' WHERE id = $1",
        "payments",
    )
    at = t.respond_http(c, s, end + t.ms(0.2, 0.6), 200)
    c, s, st = t.grpc_call(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        "inventory",
        "inventory.InventoryService",
        "ReleaseStock",
        [("order.id", ORDER)],
    )
    end = t.sql(
        "inventory",
        s,
        st + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "UPDATE",
        "stock",
        "UPDATE stock SET reserved = reserved - $1 WHERE sku = $2",
        "inventory",
    )
    at = t.respond_grpc(c, s, end + t.ms(0.1, 0.3), 0)
    at = t.sql(
        "checkout",
        s0,
        at + t.ms(0.1, 0.3),
        t.ms(1.0, 4.0),
        "UPDATE",
        "orders",
        "UPDATE orders SET status = 'cancelled' WHERE id = $1",
    )
    at = t.publish(
        "checkout", s0, at + t.ms(0.1, 0.3), "order-events", ORDER, [("order.id", ORDER)]
    )
    at = t.respond_http(c0, s0, at + t.ms(0.3, 1.0), 200)
    t.finish_http(root, at + t.ms(0.3, 1.0), 200)


@dataclass(frozen=True)
class FlowSpec:
    name: str
    build: Callable[[TraceBuilder, str], Any]
    #: variant -> (weight, number of templates)
    variants: dict[str, tuple[float, int]]


FLOWS: Final = {
    f.name: f
    for f in (
        FlowSpec("product_page", flow_product_page, {"ok": (0.95, 24), "degraded": (0.05, 6)}),
        FlowSpec("search", flow_search, {"ok": (1.0, 12)}),
        FlowSpec("login", flow_login, {"ok": (0.94, 8), "unauthorized": (0.06, 4)}),
        FlowSpec("add_to_cart", flow_add_to_cart, {"ok": (1.0, 12)}),
        FlowSpec(
            "checkout",
            flow_checkout,
            {
                "ok": (0.45, 40),
                "noquote": (0.35, 24),
                "retried_payment": (0.06, 10),
                "retried_stock": (0.025, 6),
                "degraded_fraud": (0.03, 6),
                "degraded_shipping": (0.02, 6),
                "declined": (0.03, 6),
                "failed_deadlock": (0.015, 6),
                "failed_payment": (0.02, 6),
            },
        ),
        FlowSpec(
            "fulfillment",
            flow_fulfillment,
            {"ok": (0.94, 20), "retried_mail": (0.03, 4), "failed_mail": (0.03, 4)},
        ),
        FlowSpec("order_status", flow_order_status, {"ok": (0.7, 12), "tracking": (0.3, 8)}),
        FlowSpec("webhook", flow_webhook, {"shipped": (0.5, 8), "delivered": (0.5, 8)}),
        FlowSpec("cancel", flow_cancel, {"ok": (1.0, 6)}),
    )
}
#: Checkout variants after which the order exists (and is published to Kafka).
CHECKOUT_PLACED: Final = frozenset(
    {"ok", "noquote", "retried_payment", "retried_stock", "degraded_fraud", "degraded_shipping"}
)


# --------------------------------------------------------------------------- compiling


def _any_value(value: Attr) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _key_values(attrs: AttrSeq) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_value(v)) for k, v in attrs]


@dataclass
class Template:
    """One trace shape, compiled to %-formats per (service, scope) group."""

    index: int
    flow: str
    variant: str
    n_spans: int
    time_offsets: list[int]  # ns after the trace start, one per time slot
    entity_kinds: list[str]  # placeholder per entity slot
    has_link: bool
    producer: int  # index of the PRODUCER span, -1 if none
    producer_end: int  # its end offset
    duration: int
    error_spans: int
    #: (service, scope, %-format, getter of the values it needs)
    groups: list[tuple[str, str, bytes, Callable[[list[bytes]], tuple[bytes, ...]]]]


def compile_template(
    index: int, flow: str, variant: str, spans: list[TSpan], producer: int
) -> Template:
    n = len(spans)
    if not 1 <= n <= 127 * 2:
        raise ValueError(f"{flow}/{variant}: {n} spans")
    times: list[int] = []
    entity_kinds = [m for m in ENTITY_MARKERS if any(m in _texts(s) for s in spans)]
    has_link = any(s.link for s in spans)
    # slot numbering: 0 trace id, 1..n span ids, then times, then entities, then links
    first_time = 1 + n

    def time_slot(offset: int) -> int:
        times.append(offset)
        return first_time + len(times) - 1

    protos: list[Span] = []
    for j, s in enumerate(spans):
        proto = Span(
            name=s.name,
            kind=s.kind,  # type: ignore[arg-type]
            start_time_unix_nano=0,
            end_time_unix_nano=0,
            attributes=_key_values(s.attrs),
        )
        proto.trace_id = id_marker(0)
        proto.span_id = u64_marker(1 + j)[:8]
        if s.parent >= 0:
            proto.parent_span_id = u64_marker(1 + s.parent)[:8]
        proto.start_time_unix_nano = u64_marker_int(time_slot(s.start))
        proto.end_time_unix_nano = u64_marker_int(time_slot(s.end))
        for ev in s.events:
            event = proto.events.add()
            event.name = ev.name
            event.time_unix_nano = u64_marker_int(time_slot(ev.at))
            event.attributes.extend(_key_values(ev.attrs))
        if s.status:
            proto.status.CopyFrom(Status(code=s.status, message=s.message))  # type: ignore[arg-type]
        protos.append(proto)
    first_entity = first_time + len(times)
    first_link = first_entity + len(entity_kinds)
    for proto, s in zip(protos, spans, strict=True):
        if s.link:
            link = proto.links.add()
            link.trace_id = id_marker(first_link)
            link.span_id = u64_marker(first_link + 1)
    entity_slot = {m: first_entity + e for e, m in enumerate(entity_kinds)}
    groups: dict[tuple[str, str], list[bytes]] = {}
    for proto, s in zip(protos, spans, strict=True):
        groups.setdefault((s.service, s.scope), []).append(
            field_bytes(2, proto.SerializeToString())
        )
    compiled: list[tuple[str, str, bytes, Callable[[list[bytes]], tuple[bytes, ...]]]] = []
    for (service, scope), parts in groups.items():
        blob = b"".join(parts)
        fmt: list[bytes] = []
        slots: list[int] = []
        pos = 0
        for match in _MARKER_RE.finditer(blob):
            fmt.append(blob[pos : match.start()].replace(b"%", b"%%"))
            fmt.append(b"%b")
            if match.group(1) is not None:
                slots.append(_slot_of(match.group(1)))
            elif match.group(2) is not None:
                slots.append(_slot_of(match.group(2)))
            else:
                slots.append(entity_slot[match.group(3).decode()])
            pos = match.end()
        fmt.append(blob[pos:].replace(b"%", b"%%"))
        getter = itemgetter(*slots) if len(slots) > 1 else _single(slots[0])
        compiled.append((service, scope, b"".join(fmt), getter))
    return Template(
        index=index,
        flow=flow,
        variant=variant,
        n_spans=n,
        time_offsets=times,
        entity_kinds=entity_kinds,
        has_link=has_link,
        producer=producer,
        producer_end=spans[producer].end if producer >= 0 else 0,
        duration=max(s.end for s in spans),
        error_spans=sum(1 for s in spans if s.status == STATUS_ERROR),
        groups=compiled,
    )


def _single(slot: int) -> Callable[[list[bytes]], tuple[bytes, ...]]:
    def get(values: list[bytes]) -> tuple[bytes, ...]:
        return (values[slot],)

    return get


def _texts(span: TSpan) -> str:
    parts = [span.name]
    parts.extend(v for _, v in span.attrs if isinstance(v, str))
    return "\x00".join(parts)


def build_templates(seed: int) -> tuple[list[Template], dict[tuple[str, str], list[int]]]:
    """Every template, and (flow, variant) -> template indexes."""
    rng = random.Random(f"seqtrace-bench-templates:{seed}")
    templates: list[Template] = []
    by_kind: dict[tuple[str, str], list[int]] = {}
    for flow in FLOWS.values():
        for variant, (_, count) in flow.variants.items():
            for _ in range(count):
                builder = TraceBuilder(random.Random(rng.getrandbits(64)))
                result = flow.build(builder, variant)
                producer = result if isinstance(result, int) else -1
                template = compile_template(
                    len(templates), flow.name, variant, builder.spans, producer
                )
                by_kind.setdefault((flow.name, variant), []).append(template.index)
                templates.append(template)
    return templates, by_kind


def resource_bytes(service: str, pod: int) -> bytes:
    info = SERVICES[service]
    attrs: Attrs = [
        ("service.name", service),
        ("service.namespace", "shop"),
        ("service.version", info.version),
        ("service.instance.id", info.pods[pod]),
        ("deployment.environment.name", "production"),
        ("k8s.namespace.name", "shop"),
        ("k8s.pod.name", info.pods[pod]),
        ("host.name", f"node-{(SERVICE_NAMES.index(service) + pod) % 6 + 1}"),
        ("telemetry.sdk.language", info.language),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.version", SDK_VERSION),
    ]
    raw: bytes = Resource(attributes=_key_values(attrs)).SerializeToString()
    return raw


def scope_bytes(scope: str) -> bytes:
    if scope.startswith("shop."):
        version = SERVICES[scope.removeprefix("shop.")].version
    else:
        version = INSTRUMENTATION_VERSION
    raw: bytes = InstrumentationScope(name=scope, version=version).SerializeToString()
    return raw


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """Every trace of the store, sorted by start time (numpy columns)."""

    start: I64  # trace start, Unix ns
    template: I32
    key: I64  # stable trace number: ids derive from it
    order: I32  # -1: none
    customer: I32
    product: I32
    scale: F64  # latency factor applied to every offset of the template
    link_key: I64  # -1: no link; else the producer trace's key
    link_template: I32
    request_bounds: I64  # trace index where each request starts (+ the end)


def diurnal_times(rng: np.random.Generator, n: int, start: int, end: int) -> I64:
    """``n`` times in [start, end), denser in the afternoon (UTC), lighter at weekends."""
    minutes = max(1, (end - start) // (60 * 1_000_000_000))
    m = np.arange(minutes, dtype=np.float64)
    stamp = start + m * 60e9
    hour = (stamp / 3.6e12) % 24
    weekday = ((stamp / 8.64e13).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weights = (1.0 + 0.62 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)) * np.where(
        weekday >= 5, 0.8, 1.0
    )
    weights /= weights.sum()
    chosen = rng.choice(minutes, size=n, p=weights)
    jitter = rng.integers(0, 60 * 1_000_000_000, size=n)
    out: I64 = (start + chosen.astype(np.int64) * 60 * 1_000_000_000 + jitter).astype(np.int64)
    return out


def make_plan(
    spans: int,
    seed: int,
    end: int,
    days: float,
    templates: list[Template],
    by_kind: dict[tuple[str, str], list[int]],
) -> Plan:
    rng = np.random.default_rng(seed)
    start = end - int(days * DAY_NS)
    sizes = np.array([t.n_spans for t in templates], dtype=np.int64)
    n_orders = max(1, spans // 55)
    n_customers = max(1, n_orders // 4)
    n_products = 5000

    def pick(flow: str, n: int) -> I32:
        """Template indexes for ``n`` traces of ``flow``, variants by weight."""
        spec = FLOWS[flow]
        names = list(spec.variants)
        weights = np.array([spec.variants[v][0] for v in names])
        variant = rng.choice(len(names), size=n, p=weights / weights.sum())
        out = np.empty(n, dtype=np.int32)
        for i, name in enumerate(names):
            mask = variant == i
            options = np.array(by_kind[(flow, name)], dtype=np.int32)
            out[mask] = rng.choice(options, size=int(mask.sum()))
        return out

    cols: dict[str, list[npt.NDArray[Any]]] = {
        k: []
        for k in ("start", "template", "order", "customer", "link_key", "link_template", "scale")
    }

    def add(
        t0: I64,
        tmpl: I32,
        order: I32,
        customer: I32,
        link_key: I64 | None = None,
        link_template: I32 | None = None,
    ) -> I64:
        """Append traces; returns their keys (positions in the unsorted plan)."""
        base = sum(len(a) for a in cols["start"])
        n = len(t0)
        cols["start"].append(t0)
        cols["template"].append(tmpl)
        cols["order"].append(order)
        cols["customer"].append(customer)
        cols["link_key"].append(link_key if link_key is not None else np.full(n, -1, np.int64))
        cols["link_template"].append(
            link_template if link_template is not None else np.full(n, -1, np.int32)
        )
        scale = rng.lognormal(0.0, 0.28, size=n)
        slow = rng.random(n) < 0.02  # the tail: GC pauses, cold caches, noisy neighbours
        scale[slow] *= rng.uniform(3.0, 12.0, size=int(slow.sum()))
        cols["scale"].append(scale)
        return np.arange(base, base + n, dtype=np.int64)

    # -- orders: checkout, its linked fulfillment consumer, status checks, carrier webhooks
    orders = np.arange(n_orders, dtype=np.int32)
    # a few customers order a lot (skewed), most order once or twice
    customer_of = (n_customers * rng.random(n_orders) ** 1.6).astype(np.int32)
    t_checkout = diurnal_times(rng, n_orders, start, end)
    checkout_tmpl = pick("checkout", n_orders)
    checkout_keys = add(t_checkout, checkout_tmpl, orders, customer_of)
    producers = np.array([t.producer for t in templates], dtype=np.int64)
    producer_end = np.array([t.producer_end for t in templates], dtype=np.int64)
    placed = producers[checkout_tmpl] >= 0
    variant_names = np.array([t.variant for t in templates])
    placed &= np.isin(variant_names[checkout_tmpl], list(CHECKOUT_PLACED))
    # fulfillment: a consumer trace linked to the producer span, ms to seconds later
    po = orders[placed]
    delay = (rng.exponential(0.4, size=len(po)) * 1e9).astype(np.int64) + 3 * NS_PER_MS
    checkout_scale = cols["scale"][0]
    t_ful = (
        t_checkout[placed]
        + (producer_end[checkout_tmpl[placed]] * checkout_scale[placed]).astype(np.int64)
        + delay
    )
    add(
        t_ful,
        pick("fulfillment", len(po)),
        po,
        customer_of[po],
        checkout_keys[placed],
        checkout_tmpl[placed],
    )
    # status checks: 0-2, minutes to hours after the order
    n_status = rng.choice(3, size=len(po), p=[0.6, 0.28, 0.12])
    so = np.repeat(po, n_status)
    t_status = np.repeat(t_checkout[placed], n_status) + (
        rng.exponential(3.0, size=len(so)) * HOUR_NS + 60e9
    ).astype(np.int64)
    add(t_status, pick("order_status", len(so)), so, customer_of[so])
    # carrier webhooks: shipped 0.5-2.5 days later, delivered 1-3 days after that
    shipped = rng.random(len(po)) < 0.7
    wo = po[shipped]
    t_ship = t_checkout[placed][shipped] + (rng.uniform(0.4, 2.5, size=len(wo)) * DAY_NS).astype(
        np.int64
    )
    ship_tmpl = rng.choice(np.array(by_kind[("webhook", "shipped")], np.int32), size=len(wo))
    add(t_ship, ship_tmpl, wo, customer_of[wo])
    delivered = rng.random(len(wo)) < 0.6
    do = wo[delivered]
    t_del = t_ship[delivered] + (rng.uniform(0.8, 3.0, size=len(do)) * DAY_NS).astype(np.int64)
    del_tmpl = rng.choice(np.array(by_kind[("webhook", "delivered")], np.int32), size=len(do))
    add(t_del, del_tmpl, do, customer_of[do])
    # a few cancellations, an hour or so after the order
    cancel = rng.random(len(po)) < 0.02
    co = po[cancel]
    t_cancel = t_checkout[placed][cancel] + (rng.exponential(1.5, size=len(co)) * HOUR_NS).astype(
        np.int64
    )
    add(t_cancel, pick("cancel", len(co)), co, customer_of[co])

    # -- browsing fills the rest of the span budget
    in_window_so_far = np.concatenate(cols["start"]) < end
    order_spans = int(sizes[np.concatenate(cols["template"])][in_window_so_far].sum())
    budget = max(0, spans - order_spans)
    mix = {"product_page": 0.45, "search": 0.2, "add_to_cart": 0.2, "login": 0.15}
    avg = sum(
        w * float(np.mean(sizes[[i for (f, _), ids in by_kind.items() if f == flow for i in ids]]))
        for flow, w in mix.items()
    )
    n_browse = int(budget / avg * 1.05) + 1
    flows = list(mix)
    which = rng.choice(len(flows), size=n_browse, p=np.array(list(mix.values())))
    tmpl = np.empty(n_browse, dtype=np.int32)
    for i, flow in enumerate(flows):
        mask = which == i
        tmpl[mask] = pick(flow, int(mask.sum()))
    # trim to the budget
    cum = np.cumsum(sizes[tmpl])
    keep = int(np.searchsorted(cum, budget, side="right"))
    tmpl = tmpl[:keep]
    # most browsing is by customers who will buy (skewed), some anonymous (-1 handled as random)
    browse_customer = (n_customers * rng.random(keep) ** 1.3).astype(np.int32)
    add(diurnal_times(rng, keep, start, end), tmpl, np.full(keep, -1, np.int32), browse_customer)

    start_all = np.concatenate(cols["start"])
    in_window = start_all < end
    order_all = np.concatenate(cols["order"])
    keys_all = np.arange(len(start_all), dtype=np.int64)
    order_idx = np.argsort(start_all, kind="stable")
    order_idx = order_idx[in_window[order_idx]]
    tmpl_all = np.concatenate(cols["template"])[order_idx]
    n = len(order_idx)
    scale = np.concatenate(cols["scale"])
    cum = np.cumsum(sizes[tmpl_all])
    cuts = (
        np.searchsorted(
            cum, np.arange(REQUEST_SPANS, int(cum[-1]) if n else 0, REQUEST_SPANS), side="left"
        )
        + 1
    )
    bounds = np.unique(np.concatenate(([0], cuts, [n]))).astype(np.int64)
    return Plan(
        start=start_all[order_idx],
        template=tmpl_all.astype(np.int32),
        key=keys_all[order_idx],
        order=order_all[order_idx],
        customer=np.concatenate(cols["customer"])[order_idx],
        product=rng.integers(0, n_products, size=len(start_all)).astype(np.int32)[order_idx],
        scale=scale[order_idx],
        link_key=np.concatenate(cols["link_key"])[order_idx],
        link_template=np.concatenate(cols["link_template"])[order_idx],
        request_bounds=bounds,
    )


# --------------------------------------------------------------------------- generating

_U64 = struct.Struct("<Q")


class Generator:
    """Turns plan slices into serialized ExportTraceServiceRequests."""

    def __init__(self, seed: int, templates: list[Template], plan: Plan) -> None:
        self.seed = seed.to_bytes(8, "little", signed=False)
        self.templates = templates
        self.plan = plan
        self.resources = {(s, p): resource_bytes(s, p) for s in SERVICE_NAMES for p in range(3)}
        scopes = {scope for t in templates for _, scope, _, _ in t.groups}
        self.scopes = {scope: scope_bytes(scope) for scope in scopes}

    def ids(self, key: int, n_spans: int) -> bytes:
        return hashlib.shake_128(self.seed + key.to_bytes(8, "little")).digest(16 + 8 * n_spans)

    def request(self, r: int) -> tuple[int, bytes]:
        """Request number ``r``: (span count, serialized ExportTraceServiceRequest)."""
        plan = self.plan
        lo, hi = int(plan.request_bounds[r]), int(plan.request_bounds[r + 1])
        groups: dict[str, dict[str, list[bytes]]] = {}
        pack = _U64.pack
        total = 0
        for i in range(lo, hi):
            tmpl = self.templates[int(plan.template[i])]
            n = tmpl.n_spans
            total += n
            key = int(plan.key[i])
            raw = self.ids(key, n)
            values: list[bytes] = [raw[:16]]
            values.extend(raw[16 + 8 * j : 24 + 8 * j] for j in range(n))
            t0 = int(plan.start[i])
            scale = float(plan.scale[i])
            values.extend(pack(t0 + int(off * scale)) for off in tmpl.time_offsets)
            if tmpl.entity_kinds:
                values.extend(self.entity(kind, i) for kind in tmpl.entity_kinds)
            if tmpl.has_link:
                link_key = int(plan.link_key[i])
                producer = self.templates[int(plan.link_template[i])]
                praw = self.ids(link_key, producer.n_spans)
                values.append(praw[:16])
                values.append(praw[16 + 8 * producer.producer : 24 + 8 * producer.producer])
            for service, scope, fmt, getter in tmpl.groups:
                groups.setdefault(service, {}).setdefault(scope, []).append(fmt % getter(values))
        out: list[bytes] = []
        for service, scopes in groups.items():
            pod = (r + SERVICE_NAMES.index(service)) % 3
            body = [field_bytes(1, self.resources[(service, pod)])]
            for scope, fragments in scopes.items():
                scope_spans = field_bytes(1, self.scopes[scope]) + b"".join(fragments)
                body.append(field_bytes(2, scope_spans))
            out.append(field_bytes(1, b"".join(body)))
        return total, b"".join(out)

    def entity(self, kind: str, i: int) -> bytes:
        plan = self.plan
        if kind == ORDER:
            return b"ORD-%07d" % (1_000_000 + (int(plan.order[i]) * 2_654_435_761) % 8_999_999)
        if kind == CUSTOMER:
            return b"CUST-%06d" % (100_000 + (int(plan.customer[i]) * 40_503) % 899_999)
        if kind == PAYMENT:
            return b"PAY-%07d" % (1_000_000 + (int(plan.order[i]) * 97_787) % 8_999_999)
        if kind == SHIPMENT:
            return b"SHP-%07d" % (1_000_000 + (int(plan.order[i]) * 611_953) % 8_999_999)
        if kind == CART:
            base = int(plan.order[i]) if plan.order[i] >= 0 else int(plan.key[i])
            return b"CART-%06x" % ((base * 2_246_822_519) % 0xFFFFFF)
        return b"SKU-%05d" % (10_000 + int(plan.product[i]))


# Worker processes inherit the generator through fork (it is built before the pool).
_GEN: Generator | None = None
CHUNK_REQUESTS: Final = 8


def _generate_chunk(chunk: int) -> list[tuple[int, bytes]]:
    assert _GEN is not None
    first = chunk * CHUNK_REQUESTS
    last = min(first + CHUNK_REQUESTS, len(_GEN.plan.request_bounds) - 1)
    return [_GEN.request(r) for r in range(first, last)]


def chunks_in_order(workers: int, n_requests: int) -> Iterator[list[tuple[int, bytes]]]:
    """Generated chunks in plan (time) order, at most a few chunks ahead of the consumer.

    ``Pool.imap`` would run ahead without bound (the generator is ~30x faster than the
    store) and hold gigabytes of requests; a bounded window of ``apply_async`` does not.
    """
    n_chunks = (n_requests + CHUNK_REQUESTS - 1) // CHUNK_REQUESTS
    if workers <= 0:
        for c in range(n_chunks):
            yield _generate_chunk(c)
        return
    ctx = multiprocessing.get_context("fork")
    window = 4 * workers
    with ctx.Pool(workers) as pool:
        pending: deque[AsyncResult[list[tuple[int, bytes]]]] = deque()
        submitted = 0
        while submitted < n_chunks or pending:
            while submitted < n_chunks and len(pending) < window:
                pending.append(pool.apply_async(_generate_chunk, (submitted,)))
                submitted += 1
            yield pending.popleft().get()


# --------------------------------------------------------------------------- main


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def store_summary(path: str) -> dict[str, Any]:
    """Facts about the finished store, read straight from the file (read-only)."""
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:

        def one(q: str) -> Any:
            return con.execute(q).fetchall()[0]

        spans, traces, services, errors, first, last = one(
            "SELECT count(*), count(DISTINCT trace_id), count(DISTINCT service_name), "
            "count(*) FILTER (WHERE status_code = 2), min(start_unix_nano), "
            "max(start_unix_nano) FROM spans"
        )
        hourly = [
            r[0]
            for r in con.execute(
                "SELECT count(*) FROM spans GROUP BY start_unix_nano // 3600000000000 ORDER BY 1"
            ).fetchall()
        ]
        orders, order_traces_max = one(
            "SELECT count(*), max(n) FROM (SELECT value, count(DISTINCT trace_id) AS n "
            "FROM span_entities WHERE key = 'order.id' GROUP BY value)"
        )
        entity_rows, links = one(
            "SELECT (SELECT count(*) FROM span_entities), (SELECT count(*) FROM span_links)"
        )
    finally:
        con.close()
    return {
        "spans": spans,
        "traces": traces,
        "services": services,
        "error_spans": errors,
        "error_span_fraction": round(errors / spans, 4) if spans else 0.0,
        "first_unix_nano": first,
        "last_unix_nano": last,
        "spans_per_hour": {
            "min": min(hourly, default=0),
            "median": int(np.median(hourly)) if hourly else 0,
            "max": max(hourly, default=0),
        },
        "order_ids": orders,
        "max_traces_per_order": order_traces_max,
        "entity_rows": entity_rows,
        "span_links": links,
    }


def git_state() -> str:
    """The commit measured, with "+dirty" when the work tree has changes (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--spans", type=int, default=10_000_000, help="how many spans (default 10M)"
    )
    parser.add_argument("--out", required=True, help="the DuckDB file to create (must not exist)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--days", type=float, default=7.0, help="time covered (default 7 days)")
    parser.add_argument(
        "--end",
        type=int,
        default=DEFAULT_END,
        help="end of the covered time, Unix ns (default 2026-11-25T00:00:00Z)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="generator processes (default 1; 0 generates in this process)",
    )
    parser.add_argument(
        "--threads", type=int, default=8, help="threads calling write() (default 8)"
    )
    parser.add_argument(
        "--decoders",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="the store's decoder processes, as `seqtrace serve` sets them (default "
        "min(4, nproc)); 0 decodes in the writing threads",
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--json-out", help="write the build figures as JSON here")
    parser.add_argument(
        "--measure-generator",
        action="store_true",
        help="only time request generation (no store), then exit",
    )
    args = parser.parse_args(argv)

    global _GEN
    started = time.perf_counter()
    templates, by_kind = build_templates(args.seed)
    t_templates = time.perf_counter() - started
    plan = make_plan(args.spans, args.seed, args.end, args.days, templates, by_kind)
    t_plan = time.perf_counter() - started - t_templates
    _GEN = Generator(args.seed, templates, plan)
    n_requests = len(plan.request_bounds) - 1
    sizes = np.array([t.n_spans for t in templates])
    planned_spans = int(sizes[plan.template].sum())
    print(
        f"make_store: {len(templates)} templates ({t_templates:.1f} s), plan of "
        f"{len(plan.start):,} traces / {planned_spans:,} spans / {n_requests:,} requests "
        f"({t_plan:.1f} s); load {_load()}",
        flush=True,
    )

    if args.measure_generator:
        t0 = time.perf_counter()
        count = 0
        limit = min(n_requests, 400)
        for r in range(limit):
            count += _GEN.request(r)[0]
        dt = time.perf_counter() - t0
        print(
            f"make_store: generator alone: {count / dt:,.0f} spans/s on one core "
            f"({limit} requests, {dt:.2f} s)"
        )
        return 0

    out = Path(args.out)
    if out.exists():
        if not args.force:
            print(f"make_store: {out} exists (use --force to replace it)", file=sys.stderr)
            return 2
        out.unlink()
        Path(f"{out}.wal").unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)

    # Fork the generator workers before the store starts its threads.
    chunks = chunks_in_order(args.workers, n_requests)
    first_chunk = next(chunks, [])

    from spanstore.base import StoreUnavailable
    from spanstore.duckdb_store import DuckDBStore

    store = DuckDBStore(out, decoder_processes=args.decoders)
    work: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=args.threads * 4)
    lock = threading.Lock()
    done = {"spans": 0, "accepted": 0, "requests": 0, "retries": 0}
    errors: list[BaseException] = []

    def writer() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            n, blob = item
            try:
                # serialized bytes, as the receivers hand them to the store; a full queue
                # is retried after a pause, as an exporter retries a 503
                while True:
                    try:
                        result = store.write(blob)
                        break
                    except StoreUnavailable:
                        with lock:
                            done["retries"] += 1
                        time.sleep(0.1)
            except BaseException as exc:  # reported after the run; keep draining the queue
                errors.append(exc)
                continue
            with lock:
                done["spans"] += n
                done["accepted"] += result.accepted
                done["requests"] += 1

    threads = [
        threading.Thread(target=writer, name=f"bench-writer-{i}") for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    t_ingest = time.perf_counter()
    last_report = t_ingest
    try:
        for chunk in _chain(first_chunk, chunks):
            for item in chunk:
                work.put(item)
            now = time.perf_counter()
            if errors:
                break
            if now - last_report >= 10:
                last_report = now
                with lock:
                    n = done["spans"]
                rate = n / (now - t_ingest)
                eta = (planned_spans - n) / rate if rate else 0
                print(
                    f"make_store: {n:>11,} spans  {100 * n / planned_spans:5.1f}%  "
                    f"{rate:,.0f} spans/s  eta {eta:,.0f} s  load {_load()}",
                    flush=True,
                )
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    t_written = time.perf_counter()
    store.close()
    t_closed = time.perf_counter()
    if errors:
        print(f"make_store: a write failed: {errors[0]!r}", file=sys.stderr)
        return 3
    size = out.stat().st_size + (
        Path(f"{out}.wal").stat().st_size if Path(f"{out}.wal").exists() else 0
    )
    ingest_s = t_written - t_ingest
    total_s = t_closed - started
    figures: dict[str, Any] = {
        "spans_requested": args.spans,
        "spans_written": done["spans"],
        "spans_accepted": done["accepted"],
        "requests": done["requests"],
        "retries_after_503": done["retries"],
        "seed": args.seed,
        "threads": args.threads,
        "workers": args.workers,
        "decoders": args.decoders,
        "git": git_state(),
        "seconds_total": round(total_s, 1),
        "seconds_ingest": round(ingest_s, 1),
        "seconds_close": round(t_closed - t_written, 1),
        "spans_per_second": round(done["accepted"] / ingest_s) if ingest_s else 0,
        "bytes": size,
        "bytes_per_span": round(size / max(1, done["accepted"]), 1),
        "load_after": _load(),
    }
    print(
        f"make_store: wrote {done['accepted']:,} spans in {ingest_s:.1f} s "
        f"({figures['spans_per_second']:,} spans/s through DuckDBStore.write); close "
        f"{figures['seconds_close']} s; total {total_s:.1f} s",
        flush=True,
    )
    print(f"make_store: {out}: {_fmt_bytes(size)} ({figures['bytes_per_span']} B/span)", flush=True)
    summary = store_summary(str(out))
    figures["store"] = summary
    print(f"make_store: store {json.dumps(summary)}", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _chain(
    first: list[tuple[int, bytes]], rest: Iterator[list[tuple[int, bytes]]]
) -> Iterator[list[tuple[int, bytes]]]:
    yield first
    yield from rest


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
