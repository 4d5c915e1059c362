"""Semantic-convention attributes that the store keeps in columns of their own.

Both the ingest path and the in-memory frame builder read this one table, so a column
means the same thing whichever way the spans arrived. Where the conventions renamed an
attribute, the current name comes first and the older ones follow.
"""

from __future__ import annotations

from typing import Final

#: column name -> attribute keys that fill it, in order of preference.
STRING_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "http_method": ("http.request.method", "http.method"),
    "http_route": ("http.route",),
    "url_path": ("url.path", "http.target"),
    "rpc_system": ("rpc.system",),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "db_system": ("db.system.name", "db.system"),
    "db_name": ("db.namespace", "db.name"),
    "db_operation": ("db.operation.name", "db.operation"),
    "peer_service": ("peer.service",),
    "server_address": ("server.address", "net.peer.name", "http.host"),
    "messaging_system": ("messaging.system",),
    "messaging_destination": ("messaging.destination.name", "messaging.destination"),
    "messaging_operation": ("messaging.operation.type", "messaging.operation"),
}
INT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "http_status_code": ("http.response.status_code", "http.status_code"),
}

#: attribute key -> (column, rank); a lower rank wins when a span carries both names.
KEY_TO_COLUMN: Final[dict[str, tuple[str, int]]] = {
    key: (column, rank)
    for table in (STRING_COLUMNS, INT_COLUMNS)
    for column, keys in table.items()
    for rank, key in enumerate(keys)
}

#: Keys that always name a business entity, whatever the configuration says.
DEFAULT_ENTITY_KEYS: Final[tuple[str, ...]] = (
    "order.id",
    "customer.id",
    "user.id",
    "account.id",
    "payment.id",
    "cart.id",
    "invoice.id",
    "shipment.id",
    "tenant.id",
    "transaction.id",
    "booking.id",
    "ticket.id",
    "enduser.id",
)

#: Prefixes of ``*.id`` keys that identify infrastructure, not business entities.
NON_ENTITY_PREFIXES: Final[tuple[str, ...]] = (
    "thread.",
    "process.",
    "host.",
    "container.",
    "k8s.",
    "service.",
    "telemetry.",
    "os.",
    "device.",
    "cloud.",
    "faas.",
    "otel.",
    "code.",
    "net.",
    "network.",
    "span.",
    "trace.",
    "http.",
    "rpc.",
    "db.",
    "session.",
    "aws.",
    "gcp.",
    "azure.",
    "messaging.",
    "exception.",
    "event.",
    "log.",
    "feature_flag.",
)


def is_entity_key(key: str, configured: frozenset[str] = frozenset()) -> bool:
    """True for keys that name business entities: configured ones, known ones, ``*.id``."""
    if key in configured or key in DEFAULT_ENTITY_KEYS:
        return True
    if not (key.endswith(".id") or key.endswith("_id")):
        return False
    return not key.startswith(NON_ENTITY_PREFIXES)
