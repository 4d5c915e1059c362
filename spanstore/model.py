"""The read-side data model: what every backend hands to the analyzer.

These types are plain Python (no DuckDB, no protobuf), so the analyzer, the UI and the
tests can build them by hand and a second backend can produce them the same way.
Ids are lowercase hex strings (trace 32 chars, span 16); times are Unix nanoseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

#: One hour in nanoseconds: the unit of the stores' change log, and how far beyond a
#: range whole traces are searched (``span_frame``, ``slo_spans``).
HOUR_NS: Final = 3_600_000_000_000

#: An attribute value as OTLP carries it: scalars, bytes, arrays and maps (nested).
AttrValue: TypeAlias = (
    str | bool | int | float | bytes | list["AttrValue"] | dict[str, "AttrValue"] | None
)
Attributes: TypeAlias = Mapping[str, AttrValue]

SpanKind: TypeAlias = Literal["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
StatusCode: TypeAlias = Literal["UNSET", "OK", "ERROR"]

#: OTLP's integer enums, by position.
SPAN_KINDS: tuple[SpanKind, ...] = (
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
)
STATUS_CODES: tuple[StatusCode, ...] = ("UNSET", "OK", "ERROR")


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class SpanLink:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """One stored span, with its resource and scope folded in."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKind
    start_unix_nano: int
    end_unix_nano: int
    service_name: str
    status_code: StatusCode = "UNSET"
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    resource_attributes: Attributes = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    scope_name: str = ""
    scope_version: str = ""
    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_unix_nano - self.start_unix_nano)

    @property
    def is_error(self) -> bool:
        return self.status_code == "ERROR"

    def attribute(self, key: str) -> AttrValue:
        """A span attribute, falling back to the resource's (semantic conventions allow both)."""
        if key in self.attributes:
            return self.attributes[key]
        return self.resource_attributes.get(key)


@dataclass(frozen=True, slots=True)
class StoreStats:
    spans: int
    traces: int
    services: list[str]
    first_unix_nano: int | None
    last_unix_nano: int | None


@dataclass(frozen=True, slots=True)
class EntityKey:
    key: str
    values: int
    spans: int
    traces: int = 0
    services: int = 0
    #: values seen in more than one trace or service: what makes a key a likely entity
    recurring_values: int = 0


@dataclass(frozen=True, slots=True)
class EntityValue:
    value: str
    spans: int
    traces: int
    first_unix_nano: int
    last_unix_nano: int
