"""OTLP export requests built item by item or cut to a size, spans and log records alike.

An SDK exports at most 512 spans (or records) a request: a replay re-sends what it reads
that way, and the query API's log records come back in bounded requests. Every item keeps
its resource and scope: a request built here holds one copy of each (resource, scope) pair
whose items it carries, in the order they first appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["LOGS", "SPANS", "RequestBuilder", "Signal", "item_count", "split_logs", "split_spans"]

_Request = TypeVar("_Request", bound=Message)


@dataclass(frozen=True, slots=True)
class Signal(Generic[_Request]):
    """One signal's request shape: request -> ``resources`` -> ``scopes`` -> ``items``."""

    request: Callable[[], _Request]
    resources: str
    scopes: str
    items: str


SPANS: Final = Signal(ExportTraceServiceRequest, "resource_spans", "scope_spans", "spans")
LOGS: Final = Signal(ExportLogsServiceRequest, "resource_logs", "scope_logs", "log_records")


def item_count(request: Message, signal: Signal[Any]) -> int:
    """How many spans (or records) the request holds."""
    return sum(
        len(getattr(scope_group, signal.items))
        for resource_group in getattr(request, signal.resources)
        for scope_group in getattr(resource_group, signal.scopes)
    )


class RequestBuilder(Generic[_Request]):
    """One request of ``signal``, filled item by item (``request``, ``size``)."""

    def __init__(self, signal: Signal[_Request]) -> None:
        self.signal = signal
        self.request: _Request = signal.request()
        self.size = 0
        # (id of the source resource group, id of its scope group) -> (the items of their
        # copy here, the two groups: kept referenced so that their ids are not reused).
        self._copies: dict[tuple[int, int], tuple[Any, Any, Any]] = {}

    def items_of(self, resource_group: Any, scope_group: Any) -> Any:
        """The repeated items field, in this request, of that resource's scope (copied in
        at first use)."""
        key = (id(resource_group), id(scope_group))
        copy = self._copies.get(key)
        if copy is None:
            signal = self.signal
            resource_copy = getattr(self.request, signal.resources).add()
            resource_copy.resource.CopyFrom(resource_group.resource)
            resource_copy.schema_url = resource_group.schema_url
            scope_copy = getattr(resource_copy, signal.scopes).add()
            scope_copy.scope.CopyFrom(scope_group.scope)
            scope_copy.schema_url = scope_group.schema_url
            copy = self._copies[key] = (
                getattr(scope_copy, signal.items),
                resource_group,
                scope_group,
            )
        return copy[0]

    def add(self, resource_group: Any, scope_group: Any, item: Any) -> None:
        """One span (or record) of that resource and scope."""
        self.items_of(resource_group, scope_group).add().CopyFrom(item)
        self.size += 1


def _split(request: _Request, max_items: int, signal: Signal[_Request]) -> Iterator[_Request]:
    part = RequestBuilder(signal)
    for resource_group in getattr(request, signal.resources):
        for scope_group in getattr(resource_group, signal.scopes):
            items = getattr(scope_group, signal.items)
            taken = 0
            while taken < len(items):
                if part.size == max_items:
                    yield part.request
                    part = RequestBuilder(signal)
                room = min(len(items) - taken, max_items - part.size)
                part.items_of(resource_group, scope_group).extend(items[taken : taken + room])
                part.size += room
                taken += room
    if part.size:
        yield part.request


def split_spans(
    request: ExportTraceServiceRequest, max_spans: int
) -> Iterator[ExportTraceServiceRequest]:
    """The request cut into requests of at most ``max_spans`` spans (an SDK's batch),
    each resource and scope repeated where its spans are cut; the request itself when it
    holds no more or ``max_spans`` is below 1 (no limit, as the store's readers take it)."""
    if max_spans < 1 or item_count(request, SPANS) <= max_spans:
        yield request
        return
    yield from _split(request, max_spans, SPANS)


def split_logs(
    request: ExportLogsServiceRequest, max_records: int
) -> Iterator[ExportLogsServiceRequest]:
    """Like :func:`split_spans`, for log records; none for a request without records."""
    total = item_count(request, LOGS)
    if max_records < 1 or total <= max_records:
        if total:
            yield request
        return
    yield from _split(request, max_records, LOGS)
