"""What a span means for a sequence diagram, read from the semantic conventions.

Operation labels (``POST /api/orders``, ``CartService/GetCart``, ``INSERT orders``), the
peer a CLIENT or PRODUCER span talks to when nothing answers it with spans of its own,
error texts and the short attribute summary shown on hover. Attribute names come from
:mod:`spanstore.semconv` where the store already lists them (current name first, older
names after).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from analyzer.diagram.model import ParticipantKind
from analyzer.diagram.text import ATTRIBUTE_LIMIT, ERROR_LIMIT, label_text, one_line, shorten
from spanstore.model import AttrValue, Span
from spanstore.semconv import INT_COLUMNS, STRING_COLUMNS

HTTP_METHOD: Final = STRING_COLUMNS["http_method"]
HTTP_ROUTE: Final = (*STRING_COLUMNS["http_route"], "url.template")
URL_PATH: Final = STRING_COLUMNS["url_path"]
HTTP_STATUS: Final = INT_COLUMNS["http_status_code"]
RPC_SERVICE: Final = STRING_COLUMNS["rpc_service"]
RPC_METHOD: Final = STRING_COLUMNS["rpc_method"]
DB_SYSTEM: Final = STRING_COLUMNS["db_system"]
DB_NAME: Final = STRING_COLUMNS["db_name"]
DB_OPERATION: Final = STRING_COLUMNS["db_operation"]
DB_TABLE: Final = ("db.collection.name", "db.sql.table", "db.mongodb.collection")
# ``service.peer.name`` is the newer name of ``peer.service`` (HotROD already sends it).
PEER_SERVICE: Final = (*STRING_COLUMNS["peer_service"], "service.peer.name")
SERVER_ADDRESS: Final = STRING_COLUMNS["server_address"]
MESSAGING_SYSTEM: Final = STRING_COLUMNS["messaging_system"]
MESSAGING_DESTINATION: Final = STRING_COLUMNS["messaging_destination"]
MESSAGING_OPERATION: Final = (*STRING_COLUMNS["messaging_operation"], "messaging.operation.name")
GRPC_STATUS: Final = ("rpc.grpc.status_code", "rpc.response.status_code")

GRPC_CODES: Final = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)

#: Span names that say nothing beyond the HTTP method (then the route/path says more).
_GENERIC_HTTP_NAMES: Final = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE", "HTTP"}
)

#: Attributes worth a glance when hovering over an arrow.
SUMMARY_KEYS: Final = (
    "http.request.method",
    "http.route",
    "url.template",
    "url.full",
    "http.response.status_code",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "db.system",
    "db.system.name",
    "db.name",
    "db.namespace",
    "db.operation",
    "db.operation.name",
    "db.sql.table",
    "db.collection.name",
    "db.statement",
    "db.query.text",
    "messaging.system",
    "messaging.destination.name",
    "messaging.operation",
    "peer.service",
    "server.address",
    "error.type",
)


def text_attribute(span: Span, keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` the span (or its resource) carries, as one line of text."""
    for key in keys:
        value = span.attribute(key)
        if value is None or isinstance(value, (list, dict, bytes)):
            continue
        text = one_line(value)
        if text:
            return text
    return None


def int_attribute(span: Span, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value: AttrValue = span.attribute(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def is_database(span: Span) -> bool:
    return text_attribute(span, DB_SYSTEM) is not None


def is_messaging(span: Span) -> bool:
    return span.kind in ("PRODUCER", "CONSUMER") or (
        text_attribute(span, MESSAGING_SYSTEM) is not None
        or text_attribute(span, MESSAGING_DESTINATION) is not None
    )


# --- operation labels -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationLabel:
    """A label and whether the conventions built it (a route, an RPC method...)."""

    text: str
    semantic: bool


def operation_label(span: Span) -> OperationLabel:
    """``POST /api/orders``, ``CartService/GetCart``, ``INSERT orders``, ``publish topic``."""
    for builder in (_rpc_label, _http_label, _messaging_label, _db_label):
        label = builder(span)
        if label:
            return OperationLabel(label_text(label), True)
    return OperationLabel(label_text(span.name) or "(unnamed)", False)


def _rpc_label(span: Span) -> str | None:
    method = text_attribute(span, RPC_METHOD)
    if not method:
        return None
    if "/" in method:
        service, _, method = method.rpartition("/")
    else:
        service = text_attribute(span, RPC_SERVICE) or ""
    service = service.strip("/").rpartition(".")[2]
    return f"{service}/{method}" if service else method


def _http_label(span: Span) -> str | None:
    method = text_attribute(span, HTTP_METHOD)
    if not method:
        return None
    route = text_attribute(span, HTTP_ROUTE)
    if route:
        return f"{method} {route}"
    name = one_line(span.name)
    generic = name.upper() in _GENERIC_HTTP_NAMES or name.upper() == f"HTTP {method.upper()}"
    if name and not generic:
        return name
    path = _url_path(span)
    return f"{method} {path}" if path else method


def _url_path(span: Span) -> str | None:
    path = text_attribute(span, URL_PATH)
    if path:
        return path.split("?", 1)[0]
    url = text_attribute(span, ("url.full", "http.url"))
    if url and "://" in url:
        rest = url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1].split("?", 1)[0] if "/" in rest else None
    return None


def _messaging_label(span: Span) -> str | None:
    if not is_messaging(span):
        return None
    operation = text_attribute(span, MESSAGING_OPERATION)
    destination = text_attribute(span, MESSAGING_DESTINATION)
    if operation and destination:
        return f"{operation} {destination}"
    return None


def _db_label(span: Span) -> str | None:
    if not is_database(span):
        return None
    operation = text_attribute(span, DB_OPERATION)
    table = text_attribute(span, DB_TABLE)
    if operation and table:
        return f"{operation} {table}"
    # Without a table the span name usually says more ("GetDriver" beats "GET").
    return one_line(span.name) or operation


def call_label(client: Span, server: Span) -> str:
    """The label of a call answered by ``server``: whichever side the conventions describe."""
    server_label = operation_label(server)
    if server_label.semantic:
        return server_label.text
    client_label = operation_label(client)
    return client_label.text if client_label.semantic else server_label.text


def return_label(*spans: Span) -> str | None:
    """The answer's status: an HTTP status code or a gRPC status name, if any span has one."""
    for span in spans:
        status = int_attribute(span, HTTP_STATUS)
        if status is not None:
            return str(status)
    for span in spans:
        code = int_attribute(span, GRPC_STATUS)
        if code is not None and 0 <= code < len(GRPC_CODES):
            return GRPC_CODES[code]
        text = text_attribute(span, GRPC_STATUS)
        if text:
            return label_text(text, 24)
    return None


# --- errors -----------------------------------------------------------------------------


def error_text(span: Span) -> str | None:
    """Why the span failed: its status message, else its ``exception`` event, else a code."""
    if not span.is_error:
        return None
    message = one_line(span.status_message)
    if message:
        return shorten(message, ERROR_LIMIT)
    for event in span.events:
        if event.name != "exception":
            continue
        kind = event.attributes.get("exception.type")
        detail = event.attributes.get("exception.message")
        kind_text = one_line(kind).rpartition(".")[2] if isinstance(kind, str) else ""
        detail_text = one_line(str(detail).splitlines()[0]) if isinstance(detail, str) else ""
        text = ": ".join(part for part in (kind_text, detail_text) if part)
        if text:
            return shorten(text, ERROR_LIMIT)
    fallback = text_attribute(span, ("error.type",)) or return_label(span)
    return shorten(fallback, ERROR_LIMIT) if fallback else "error"


# --- peers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    id: str
    label: str
    kind: ParticipantKind


def _host(span: Span) -> str | None:
    address = text_attribute(span, SERVER_ADDRESS)
    if address:
        return address
    url = text_attribute(span, ("url.full", "http.url"))
    if url and "://" in url:
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        return host.split(":", 1)[0] or None
    return None


def queue_peer(span: Span) -> Peer | None:
    """The topic or queue a PRODUCER/CONSUMER span writes to or reads from."""
    destination = text_attribute(span, MESSAGING_DESTINATION)
    system = text_attribute(span, MESSAGING_SYSTEM)
    name = destination or text_attribute(span, PEER_SERVICE) or system
    if not name:
        return None
    label = f"{name} ({system})" if system and destination and system not in name else name
    return Peer(name, label_text(label), "queue")


def database_peer(span: Span) -> Peer | None:
    system = text_attribute(span, DB_SYSTEM)
    if not system:
        return None
    namespace = text_attribute(span, DB_NAME)
    if namespace and namespace.isdigit():
        namespace = None  # Redis database numbers name nothing
    name = text_attribute(span, PEER_SERVICE) or _host(span) or namespace or system
    label = name if system.lower() in name.lower() else f"{name} ({system})"
    return Peer(name, label_text(label), "database")


def call_peer(span: Span, services: frozenset[str]) -> Peer | None:
    """Whom a CLIENT span with no answering SERVER span talks to, from its attributes.

    A name that is also an instrumented service's ``service.name`` is that service (its
    server spans may simply not have arrived yet).
    """
    for candidate in (text_attribute(span, PEER_SERVICE), _host(span)):
        if candidate and candidate in services:
            return Peer(candidate, label_text(candidate), "service")
    if is_messaging(span):
        return queue_peer(span)
    database = database_peer(span)
    if database:
        return database
    name = text_attribute(span, PEER_SERVICE) or text_attribute(span, RPC_SERVICE) or _host(span)
    return Peer(name, label_text(name), "external") if name else None


def peer_kind_of_service(span: Span) -> ParticipantKind:
    """The shape of a service seen only through client spans reported under its own name."""
    if is_database(span):
        return "database"
    if is_messaging(span):
        return "queue"
    return "service"


# --- hover summary ----------------------------------------------------------------------


_SUMMARY_ORDER: Final = {key: index for index, key in enumerate(SUMMARY_KEYS)}


def attribute_summary(*spans: Span) -> tuple[tuple[str, str], ...]:
    """A few telling attributes (first span wins per key), for tooltips and the API."""
    seen: dict[str, str] = {}
    for span in spans:
        if "span.name" not in seen:
            seen["span.name"] = label_text(span.name, ATTRIBUTE_LIMIT)
        # The span's own summary keys, in SUMMARY_KEYS order: a span carries a few of
        # them, and this runs for every message drawn.
        for key in sorted(
            (key for key in span.attributes if key in _SUMMARY_ORDER),
            key=_SUMMARY_ORDER.__getitem__,
        ):
            if key in seen:
                continue
            value = span.attributes.get(key)
            if value is None or isinstance(value, (list, dict, bytes)):
                continue
            seen[key] = label_text(value, ATTRIBUTE_LIMIT)
    return tuple(seen.items())
