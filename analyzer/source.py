"""The read side every consumer uses: the CLI's analysis commands, the query API, the UI.

A :data:`Source` answers in the JSON shapes of the public contract (SPEC).
:class:`LocalSource` computes the answers from a :class:`~spanstore.SpanReader` (in
the server, or on a database file opened read-only) and its methods are the read API;
:class:`HttpSource` asks a running server's query API, each of its methods the route the
server answers with the LocalSource method of the same name (same signature, same dicts),
so the UI and the CLI never know which one they have.
"""

from __future__ import annotations

import gzip
import inspect
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    TypeAlias,
    TypeVar,
    overload,
)

from spanstore import SpanReader
from spanstore.model import HOUR_NS

if TYPE_CHECKING:
    import polars as pl

    from analyzer.slo import SloSpec

__all__ = [
    "DEFAULT_RANGE_NS",
    "HttpSource",
    "LocalSource",
    "Source",
    "SourceError",
    "open_database",
    "parse_entity",
]

#: Reports without --from/--to cover the 24 hours ending at the newest stored span.
DEFAULT_RANGE_NS = 24 * 3_600_000_000_000
#: How far from a chosen span its trace (and linked traces) are searched for spans.
TRACE_REACH_NS = 3_600_000_000_000
#: Log records are looked for this far outside their spans' time range (clock skew).
LOG_MARGIN_NS = 60_000_000_000
#: Trace ids one ``/api/v1/replay/logs`` call takes (the server's limit), and the
#: HttpSource's batch (its URL stays well under the 64 KiB request line limit).
REPLAY_LOG_TRACES = 1000
REPLAY_LOG_TRACES_PER_CALL = 200


class SourceError(Exception):
    """A read failed. ``status`` follows HTTP: 4xx the request was wrong, 5xx the server."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_entity(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (key, value); the value may itself contain '='."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value:
        raise SourceError(f"entity must look like KEY=VALUE (e.g. order.id=ORD-1002), got {text!r}")
    return key.strip(), value


def span_to_flat(span: Any) -> dict[str, Any]:
    """A model span as a plain JSON object (bytes as hex) for the API and the UI."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service_name": span.service_name,
        "name": span.name,
        "kind": span.kind,
        "start_unix_nano": span.start_unix_nano,
        "end_unix_nano": span.end_unix_nano,
        "duration_ns": span.duration_ns,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": plain(span.attributes),
        "resource_attributes": plain(span.resource_attributes),
        "events": [
            {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": plain(e.attributes)}
            for e in span.events
        ],
        "links": [{"trace_id": link.trace_id, "span_id": link.span_id} for link in span.links],
        "scope_name": span.scope_name,
        "scope_version": span.scope_version,
        "trace_state": span.trace_state,
    }


def no_entity_spans(key: str, value: str, start: int | None, end: int | None) -> SourceError:
    """404 for an entity without spans, naming the time range when one was given (the
    entity may well have spans outside it)."""
    from analyzer.timeparse import format_unix_nano

    where = ""
    if start is not None and end is not None:
        where = f" between {format_unix_nano(start)} and {format_unix_nano(end)}"
    elif start is not None:
        where = f" from {format_unix_nano(start)} on"
    elif end is not None:
        where = f" before {format_unix_nano(end)}"
    hint = "; widen or drop --from/--to" if where else ""
    return SourceError(f"no spans carry {key}={value}{where}{hint}", status=404)


def _replay_trace(trace_id: str, first: int, last: int, spans: int) -> dict[str, Any]:
    return {"trace_id": trace_id, "first_unix_nano": first, "last_unix_nano": last, "spans": spans}


def _valid_trace_id(trace_id: str) -> str:
    text = trace_id.strip().lower()
    if len(text) < 32:
        text = text.rjust(32, "0")
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise SourceError(f"trace id must be 32 hex digits, got {trace_id!r}")
    return text


#: What a read answers, and the arguments it takes.
_Answer = TypeVar("_Answer")
_Arguments = ParamSpec("_Arguments")

#: SLO events are computed, and kept, per UTC day of span start time.
SLO_PIECE_NS: Final = 24 * 3_600_000_000_000
#: Memory for kept SLO events, all specs together. A day is one small frame per SLO
#: (start, bad, partial and the bad events' trace ids): the 10M-span bench store (1.4M
#: spans a day) holds 3.9 MiB for its 3 SLOs' 31 days, so this is room for far more.
SLO_KEPT_BYTES: Final = 128 * 1024 * 1024


#: What decides one SLO's events: service, operation, SLI and latency threshold.
_SloSignature: TypeAlias = tuple[str, str, str, int | None]


class _SloPieces:
    """One SLO's events per day, with the store's data version they were computed at.

    A live server's SLO report is asked again and again (the UI refreshes it) over the
    same 30 days, while ingest only adds to the newest hours: the days whose spans did
    not change are not read again (docs/performance-history.md, "SLO events kept per day")."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._pieces: OrderedDict[Hashable, tuple[int, pl.DataFrame, int]] = OrderedDict()

    def get(self, key: Hashable, version: int) -> pl.DataFrame | None:
        with self._lock:
            found = self._pieces.get(key)
            if found is None or found[0] != version:
                return None
            self._pieces.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, version: int, events: pl.DataFrame) -> None:
        size = int(events.estimated_size())
        with self._lock:
            old = self._pieces.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._pieces[key] = (version, events, size)
            self._bytes += size
            # The least recently used days go first; the one just computed stays.
            while self._bytes > self._max_bytes and len(self._pieces) > 1:
                _, (_, _, freed) = self._pieces.popitem(last=False)
                self._bytes -= freed


class LocalSource:
    """Answers from a span reader in this process."""

    def __init__(
        self,
        reader: SpanReader,
        max_diagram_traces: int | None = None,
        keep_slo_events: bool = False,
        keep_failure_counts: bool = False,
        background_niceness: int = 0,
    ) -> None:
        """``max_diagram_traces`` bounds one diagram (the query API sets it): an entity
        seen in more traces in the range is refused with 413, asking for a narrower range.
        ``keep_slo_events``: keep each day's SLO events for later reports, while the
        reader's ``data_versions`` say the day did not change (for a long-lived source,
        the server's; a one-shot CLI call would only pay for the split into days).
        ``keep_failure_counts``: keep the failure report's counting pass and bring it up
        to date from the traces that changed (``analyzer.failures_store.KeptCounts``), in
        the background too while reports come, on a thread ``background_niceness`` steps
        nicer than the reads (the server gives its ingest's: that work is not a read)."""
        self.reader = reader
        self.max_diagram_traces = max_diagram_traces
        self._slo_pieces = _SloPieces(SLO_KEPT_BYTES) if keep_slo_events else None
        #: Entity diagrams, kept while the store does not change (analyzer.flow.busy).
        self._diagrams: Any = None
        #: The failure report's rows of listed traces (analyzer.failures_store.KeptRows).
        self._failure_rows: Any = None
        #: Its counting pass, kept between reports (KeptCounts) where ``keep_failure_counts``
        #: (the server's source: a one-shot report would only read more rows for it).
        self._keep_failure_counts = keep_failure_counts
        self._background_niceness = background_niceness
        self._failure_counts: Any = None

    # -- helpers
    def _range(self, start: int | None, end: int | None) -> tuple[int, int]:
        if start is not None and end is not None:
            if end <= start:
                raise SourceError("--to must be after --from")
            return start, end
        newest = self.reader.last_unix_nano()
        if end is None:
            end = (newest + 1) if newest is not None else time.time_ns()  # empty: up to now
            if start is not None and start >= end:  # --from after the newest span: up to now
                end = max(start + 1, time.time_ns())
        if start is None:
            start = end - DEFAULT_RANGE_NS
        return start, end

    def stats(self) -> dict[str, Any]:
        from spanstore.logs import LogReader

        s = self.reader.stats()
        stats: dict[str, Any] = {
            "spans": s.spans,
            "traces": s.traces,
            "services": s.services,
            "first_unix_nano": s.first_unix_nano,
            "last_unix_nano": s.last_unix_nano,
        }
        # Fields SPEC allows adding; the same shape whatever the store (0: keeps no logs).
        counts = self.reader.log_counts() if isinstance(self.reader, LogReader) else (0, 0)
        stats["logs"], stats["logs_without_trace"] = counts
        return stats

    def entities(
        self,
        key: str | None = None,
        limit: int = 100,
        prefix: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> dict[str, Any]:
        limit = max(1, min(limit, 10_000))
        if key is None:
            return {
                "keys": [
                    {
                        "key": k.key,
                        "values": k.values,
                        "spans": k.spans,
                        "traces": k.traces,
                        "services": k.services,
                    }
                    for k in self.reader.entity_keys(limit)
                ]
            }
        values = self.reader.entity_values(key, limit, start, end, prefix)
        return {
            "key": key,
            "values": [
                {
                    "value": v.value,
                    "spans": v.spans,
                    "traces": v.traces,
                    "first_unix_nano": v.first_unix_nano,
                    "last_unix_nano": v.last_unix_nano,
                }
                for v in values
            ],
        }

    def _entity_trace_ids(
        self, entity: str, start: int | None, end: int | None
    ) -> tuple[list[str], tuple[str, str]]:
        """The entity's traces and the traces linked to them, as its diagram draws them."""
        trace_ids, pair, _ = self._entity_traces(entity, start, end)
        return trace_ids, pair

    def _entity_traces(
        self, entity: str, start: int | None, end: int | None
    ) -> tuple[list[str], tuple[str, str], list[int]]:
        """``_entity_trace_ids``, and when the entity first appears in each of its own
        traces (the linked ones follow them in the list, with no such time)."""
        key, value = parse_entity(entity)
        own = self.reader.entity_traces(key, value, start, end)
        trace_ids = [trace_id for trace_id, _ in own]
        if not trace_ids:
            raise no_entity_spans(key, value, start, end)
        limit = self.max_diagram_traces
        if limit is not None and len(trace_ids) > limit:
            raise SourceError(
                f"{key}={value} is in {len(trace_ids)} traces, more than the {limit} one "
                "diagram may draw; narrow the time range (--from/--to)",
                status=413,
            )
        linked = self.reader.linked_trace_ids(trace_ids)
        return [*trace_ids, *linked], (key, value), [first for _, first in own]

    def _diagram_spans(
        self, entity: str | None, trace_id: str | None, start: int | None, end: int | None
    ) -> tuple[list[Any], tuple[str, str] | None]:
        if trace_id:
            return self.reader.spans([self._trace_id(trace_id)]), None
        if not entity:
            raise SourceError("give an entity (KEY=VALUE) or a trace id")
        trace_ids, pair = self._entity_trace_ids(entity, start, end)
        return self.reader.spans(trace_ids), pair

    def diagram(
        self,
        entity: str | None = None,
        trace_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        show_internal: bool = False,
        fmt: str = "json",
    ) -> dict[str, Any] | str:
        """The diagram as SPEC JSON (fmt json) or rendered text (mermaid, plantuml, svg,
        markdown)."""
        from analyzer.diagram import build_diagram, render, to_dict

        spans_drawn: list[Any] | None = None
        if entity and not trace_id:
            from analyzer.flow.busy import EntityDiagrams, diagram_of_entity_in_store

            # Past the message cap, repeated traces fold and no failure is left out.
            trace_ids, pair, first_starts = self._entity_traces(entity, start, end)
            if self._diagrams is None:
                self._diagrams = EntityDiagrams()
            diagram = diagram_of_entity_in_store(
                self.reader,
                trace_ids,
                pair,
                show_internal=show_internal,
                kept=self._diagrams,
                first_starts=first_starts,
            )
        else:
            spans, ent = self._diagram_spans(entity, trace_id, start, end)
            if not spans:
                raise SourceError(f"no trace {trace_id}", status=404)
            diagram = build_diagram(spans, ent, show_internal=show_internal)
            spans_drawn = spans
        diagram = self._with_logs(diagram, spans_drawn)
        if fmt == "json":
            result: dict[str, Any] = to_dict(diagram)
            return result
        if fmt not in ("mermaid", "plantuml", "svg", "markdown"):
            raise SourceError(
                f"unknown diagram format {fmt!r}; use mermaid, plantuml, svg, json or markdown"
            )
        text: str = render(diagram, fmt)
        return text

    # -- log records (spanstore/logs.py): those of the drawn spans, and a search
    def _span_logs(self, spans: list[Any]) -> list[dict[str, Any]]:
        from analyzer.diagram.logs import logs_of_spans
        from spanstore.logs import LogReader, log_to_dict

        if not spans or not isinstance(self.reader, LogReader):
            return []
        # Records are written while their span runs: the spans' time range (with a
        # margin for clock skew between services) lets zone maps skip the rest.
        lo = min(s.start_unix_nano for s in spans) - LOG_MARGIN_NS
        hi = max(s.end_unix_nano for s in spans) + LOG_MARGIN_NS
        trace_ids = sorted({s.trace_id for s in spans})
        records = [log_to_dict(r) for r in self.reader.logs_of_traces(trace_ids, lo, hi)]
        return [dict(r) for r in logs_of_spans(records, spans)]

    def _with_logs(self, diagram: Any, spans: list[Any] | None) -> Any:
        """The diagram with its spans' log records. ``spans`` None (a folded entity
        diagram read its spans itself): they are read here only when its traces have
        records at all."""
        from analyzer.diagram.logs import attach_logs
        from spanstore.logs import LogReader

        if spans is None:
            if not diagram.traces or not isinstance(self.reader, LogReader):
                return diagram
            starts = [m.start_unix_nano for m in diagram.messages]
            if not starts:
                return diagram
            lo, hi = min(starts) - LOG_MARGIN_NS, max(starts) + LOG_MARGIN_NS + DEFAULT_RANGE_NS
            if not self.reader.logs_of_traces(list(diagram.traces), lo, hi):
                return diagram
            spans = self.reader.spans(list(diagram.traces))
        records = self._span_logs(spans)
        return attach_logs(diagram, spans, records) if records else diagram

    def logs(
        self,
        entity: str | None = None,
        trace_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        service: str | None = None,
        min_severity: int = 0,
        untraced: bool = False,
        limit: int = 1000,
    ) -> dict[str, Any]:
        """SPEC ``logs --json``: the records of a trace's or an entity's drawn spans;
        with neither, a search by time range, service and severity (the UI's panel)."""
        from spanstore.logs import LogReader, log_to_dict

        if entity or trace_id:
            if entity and trace_id:
                raise SourceError("give an entity (KEY=VALUE) or a trace id, not both")
            spans, _ = self._diagram_spans(entity, trace_id, start, end)
            if trace_id and not spans:
                raise SourceError(f"no trace {trace_id}", status=404)
            return {"logs": self._span_logs(spans)}
        if not isinstance(self.reader, LogReader):
            return {"logs": []}
        lo, hi = self._range(start, end)
        records = self.reader.logs_in_range(
            lo, hi, service or None, max(0, min(min_severity, 24)), untraced, limit
        )
        return {"logs": [log_to_dict(r) for r in records]}

    def trace(self, trace_id: str) -> dict[str, Any]:
        """``{"trace_id", "spans": [flat span dicts]}`` for one trace."""
        tid = self._trace_id(trace_id)
        spans = self.reader.spans([tid])
        if not spans:
            raise SourceError(f"no trace {tid}", status=404)
        return {"trace_id": tid, "spans": [span_to_flat(s) for s in spans]}

    def trace_otlp(self, trace_id: str) -> dict[str, Any]:
        """The trace as OTLP/JSON, as the exporters sent it."""
        from spanstore.otlp import request_to_json

        tid = self._trace_id(trace_id)
        request = self.reader.trace_request(tid)
        if request is None:
            raise SourceError(f"no trace {tid}", status=404)
        return request_to_json(request)

    # -- the query language (#17): find, compare, ids of a query's traces, id prefixes
    def _run_query(
        self,
        answer: Callable[[SpanReader, int, int], _Answer],
        start: int | None,
        end: int | None,
    ) -> _Answer:
        """``answer(reader, lo, hi)`` over the range; a query that does not parse or
        cannot run there is the caller's mistake (400)."""
        from analyzer.query import BadQuery

        lo, hi = self._range(start, end)
        try:
            return answer(self.reader, lo, hi)
        except BadQuery as exc:
            raise SourceError(str(exc)) from None

    def _trace_id(self, trace_id: str) -> str:
        """A full id, or the one stored trace a pasted prefix (>= 8 hex digits) starts."""
        from analyzer.query import AmbiguousId, resolve_trace_id

        text = trace_id.strip().lower()
        if len(text) < 8:
            return _valid_trace_id(trace_id)
        try:
            found = resolve_trace_id(self.reader, text)
        except AmbiguousId as exc:
            raise SourceError(str(exc), status=409) from None
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        if found is None:
            raise SourceError(f"no trace starts with {text}", status=404)
        return found

    def find(
        self,
        query: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        from analyzer.query import find

        return self._run_query(
            lambda reader, lo, hi: find(reader, query, lo, hi, limit), start, end
        )

    def compare(
        self,
        query: str,
        baseline: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> dict[str, Any]:
        from analyzer.query import compare

        return self._run_query(
            lambda reader, lo, hi: compare(reader, query, baseline, lo, hi), start, end
        )

    def query_trace_ids(
        self, query: str, start_unix_nano: int | None, end_unix_nano: int | None
    ) -> list[str]:
        """Ids of the traces the query selects in the range (the Flows feature's input)."""
        from analyzer.query import trace_ids

        return self._run_query(
            lambda reader, lo, hi: trace_ids(reader, query, lo, hi), start_unix_nano, end_unix_nano
        )

    def _entities_for(self, trace_ids: list[str]) -> dict[str, dict[str, list[str]]]:
        return self.reader.trace_entities(trace_ids)

    def failures(
        self,
        start: int | None = None,
        end: int | None = None,
        service: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """``limit``: list at most so many failing traces (up to ``LISTED_TRACES``, the
        default; 0 for the counts alone, as the overview asks)."""
        from analyzer.failures_store import (
            FOLLOW_EVERY_S,
            LISTED_TRACES,
            KeptCounts,
            KeptRows,
            store_failure_report,
        )

        lo, hi = self._range(start, end)
        if self._failure_rows is None:
            self._failure_rows = KeptRows()
        if self._failure_counts is None and self._keep_failure_counts:
            self._failure_counts = KeptCounts(
                follow_every_s=FOLLOW_EVERY_S, follow_niceness=self._background_niceness
            )
        listed = LISTED_TRACES if limit is None else max(0, min(limit, LISTED_TRACES))
        # Counted in the store; only the listed traces' spans are read, and only those of
        # traces that changed since an earlier report listed them (failures_store.py).
        return store_failure_report(
            self.reader,
            lo,
            hi,
            service,
            limit=listed,
            kept=self._failure_rows,
            counted=self._failure_counts,
        )

    def slo(
        self, spec_text: str, at: int | None = None, source_name: str = "spec"
    ) -> dict[str, Any]:
        from analyzer.slo import (
            SloSpecError,
            load_slo_spec,
            slo_frame_start,
            slo_report_events,
            slo_report_spans,
        )

        try:
            spec = load_slo_spec(spec_text, source_name)
        except SloSpecError as exc:
            raise SourceError(str(exc), status=400) from None
        if at is None:
            # SPEC: the newest stored span's time (its end); events are (at - window, at].
            # An empty store: now, so the report is not dated 1970.
            newest = self.reader.last_unix_nano()
            at = newest if newest is not None else time.time_ns()
        # The rows reach back far enough for the longest window and the 3d burn rate, and
        # hold only the SLOs' candidate events plus, narrow, the traces where they meet an
        # error; entities are looked up for the traces with bad events only.
        start = slo_frame_start(spec, at)
        events = self._kept_slo_events(spec, start, at + 1)
        report: dict[str, Any]
        if events is not None:
            report = slo_report_events(spec, events, self._entities_for, at)
        else:
            services = sorted({slo.service for slo in spec.slos})
            operations = sorted({slo.operation for slo in spec.slos})
            spans = self.reader.slo_spans(start, at + 1, services, operations)
            report = slo_report_spans(spec, spans, self._entities_for, at)
        return report

    def _kept_slo_events(self, spec: SloSpec, start: int, end: int) -> list[pl.DataFrame] | None:
        """Each SLO's events from the days covering [start, end), kept or computed; None
        when nothing is kept here or the reader cannot tell when a day changes."""
        import polars as pl

        from analyzer.slo import NESTING_MARGIN_NS, SloDefinition, SloSpec, slo_events

        pieces = self._slo_pieces
        if pieces is None:
            return None
        # What decides an SLO's events: not its name, window or objective (applied after).
        # Days are kept per SLO, so a spec that changes or adds one SLO reads that SLO's
        # events alone, and SLOs of the same events (two windows of one operation) share.
        signatures: list[_SloSignature] = [
            (s.service, s.operation, s.sli, s.threshold_ns) for s in spec.slos
        ]
        by_signature: dict[_SloSignature, SloDefinition] = dict(
            zip(signatures, spec.slos, strict=True)
        )
        days = range(start - start % SLO_PIECE_NS, end, SLO_PIECE_NS)
        # What a day's events depend on: candidates from NESTING_MARGIN_NS before it, and
        # the trees slo_spans reads a margin beyond those.
        versions = self.reader.data_versions(
            [
                (
                    # slo_spans reads whole trees within an hour of its range
                    day - NESTING_MARGIN_NS - HOUR_NS,
                    day + SLO_PIECE_NS + HOUR_NS,
                )
                for day in days
            ]
        )
        if versions is None:
            return None
        found: dict[tuple[_SloSignature, int], pl.DataFrame] = {}
        # Runs of consecutive days that miss the same SLOs: (those SLOs, [(day, version)]).
        runs: list[tuple[tuple[_SloSignature, ...], list[tuple[int, int]]]] = []
        for day, version in zip(days, versions, strict=True):
            missing: list[_SloSignature] = []
            for signature in by_signature:
                events = pieces.get((signature, day), version)
                if events is None:
                    missing.append(signature)
                else:
                    found[signature, day] = events
            if not missing:
                continue
            wanted = tuple(missing)
            if runs and runs[-1][0] == wanted and runs[-1][1][-1][0] + SLO_PIECE_NS == day:
                runs[-1][1].append((day, version))
            else:
                runs.append((wanted, [(day, version)]))
        for wanted, run in runs:
            # One query for each run of missing days, cut into days after: each query
            # scans the store once, so one per day costs more (docs/performance-history.md).
            slos = tuple(by_signature[signature] for signature in wanted)
            lo, hi = run[0][0], run[-1][0] + SLO_PIECE_NS
            spans = self.reader.slo_spans(
                lo - NESTING_MARGIN_NS,
                hi,
                sorted({slo.service for slo in slos}),
                sorted({slo.operation for slo in slos}),
            )
            computed = slo_events(SloSpec(slos, spec.source_name), spans, lo, hi)
            for day, version in run:
                inside = (pl.col("start") >= day) & (pl.col("start") < day + SLO_PIECE_NS)
                for signature, frame in zip(wanted, computed, strict=True):
                    found[signature, day] = frame.filter(inside)
                    pieces.put((signature, day), version, found[signature, day])
        return [pl.concat([found[signature, day] for day in days]) for signature in signatures]

    def throughput(
        self, start: int | None = None, end: int | None = None, buckets: int = 60
    ) -> dict[str, Any]:
        lo, hi = self._range(start, end)
        bucket = max(1, (hi - lo) // max(1, buckets))
        frame = self.reader.throughput(lo, hi, bucket)
        return {
            "from_unix_nano": lo,
            "to_unix_nano": hi,
            "bucket_ns": bucket,
            "buckets": frame.to_dicts(),
        }

    def recent_traces(self, limit: int = 50) -> dict[str, Any]:
        return {"traces": self.reader.recent_traces(max(1, min(limit, 1000))).to_dicts()}

    def service_map(self, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        from analyzer.failures import CANCEL_MESSAGE_PATTERN, CANCEL_TYPE_PATTERN
        from analyzer.servicemap import service_map, service_map_of_figures

        lo, hi = self._range(start, end)
        # The store aggregates where it can: the range's span frame can outgrow the memory.
        figures = self.reader.service_map(lo, hi, CANCEL_TYPE_PATTERN, CANCEL_MESSAGE_PATTERN)
        if figures is not None:
            return service_map_of_figures(figures)
        result: dict[str, Any] = service_map(self.reader.span_frame(lo, hi, whole_traces=False))
        return result

    # -- replay (`seqtrace replay`): the selection, then its spans a chunk at a time

    def replay_traces(
        self,
        entity: str | None = None,
        trace_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> dict[str, Any]:
        """``{"traces": [{"trace_id", "first_unix_nano", "last_unix_nano", "spans"}]}``, oldest
        first:
        the traces a replay re-sends. An entity's are those its diagram draws (linked traces
        included, within --from/--to when given); a trace id, that trace; a range alone, the
        traces with a span starting in it."""
        reader: Any = self.reader
        if trace_id:
            ids = [_valid_trace_id(trace_id)]
        elif entity:
            key, value = parse_entity(entity)
            ids = reader.entity_trace_ids(key, value, start, end)
            if not ids:
                raise no_entity_spans(key, value, start, end)
            ids = [*ids, *reader.linked_trace_ids(ids)]
        elif start is not None and end is not None:
            if end <= start:
                raise SourceError("--to must be after --from")
            if not hasattr(reader, "replay_range_traces"):
                raise SourceError(
                    "this store cannot list the traces of a time range for a "
                    "replay; give --entity or --trace"
                )
            rows = reader.replay_range_traces(start, end, TRACE_REACH_NS)
            return {"traces": [_replay_trace(*row) for row in rows]}
        else:
            raise SourceError("give --entity KEY=VALUE, --trace ID, or --from T --to T")
        if hasattr(reader, "replay_trace_extents"):
            rows = reader.replay_trace_extents(ids)
        else:  # a store without the replay queries: the extents from the spans themselves
            rows = []
            for tid in ids:
                spans = reader.spans([tid])
                if spans:
                    first = min(sp.start_unix_nano for sp in spans)
                    last = max(sp.end_unix_nano for sp in spans)
                    rows.append((tid, first, last, len(spans)))
            rows.sort(key=lambda row: (row[1], row[0]))
        if not rows and trace_id:
            raise SourceError(f"no trace {ids[0]}", status=404)
        return {"traces": [_replay_trace(*row) for row in rows]}

    def replay_requests(
        self, trace_ids: list[str], start: int, end: int, max_spans: int = 512
    ) -> list[Any]:
        """The spans of these traces starting in [start, end] as OTLP requests of at most
        ``max_spans`` spans each, exactly as stored."""
        reader: Any = self.reader
        if hasattr(reader, "replay_requests"):
            requests: list[Any] = reader.replay_requests(trace_ids, start, end, max_spans)
            return requests
        return [r for r in (reader.trace_request(t) for t in trace_ids) if r is not None]

    def logs_requests(self, trace_ids: list[str], max_records: int = 512) -> list[Any]:
        """The log records of these traces as OTLP ``ExportLogsServiceRequest`` objects of
        at most ``max_records`` records each, exactly as stored (none for a store that
        keeps no logs): what `seqtrace replay` re-sends beside their spans."""
        reader: Any = self.reader
        ids = [_valid_trace_id(t) for t in trace_ids]
        if not ids or not hasattr(reader, "logs_requests"):
            return []
        requests: list[Any] = reader.logs_requests(ids, max_records)
        return requests

    def replay_logs(self, trace_ids: list[str]) -> dict[str, Any]:
        """``GET /api/v1/replay/logs``: these traces' records as one OTLP/JSON
        ``ExportLogsServiceRequest`` (hex ids; lossless: proto3 JSON)."""
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        from spanstore.otlp import request_to_json

        if len(trace_ids) > REPLAY_LOG_TRACES:
            raise SourceError(f"at most {REPLAY_LOG_TRACES} trace ids at once")
        merged = ExportLogsServiceRequest()
        for request in self.logs_requests(trace_ids, max_records=0):
            merged.resource_logs.extend(request.resource_logs)
        return request_to_json(merged)

    def flow(
        self,
        root: str | None = None,
        entity: str | None = None,
        key: str | None = None,
        query: str | None = None,
        start: int | None = None,
        end: int | None = None,
        fmt: str = "json",
        trace_id: str | None = None,
    ) -> dict[str, Any] | str:
        """SPEC's ``flow --json`` body (fmt json), or the flow rendered as ``table``,
        ``mermaid``, ``plantuml``, ``svg`` or ``markdown`` text. ``trace_id`` (instead of
        a selection) folds that one trace: its variant's id is the one it has in any flow."""
        from analyzer.flow import FLOW_FORMATS, flow_of_reader, render_flow

        if fmt not in FLOW_FORMATS:
            raise SourceError(f"unknown flow format {fmt!r}; use {', '.join(FLOW_FORMATS)}")
        lo, hi = self._range(start, end)
        # A selection it cannot answer raises FlowError, a SourceError with its status.
        report, variants = flow_of_reader(
            self.reader,
            lo,
            hi,
            root=root,
            entity=parse_entity(entity) if entity is not None else None,
            key=key,
            query=query,
            trace_ids=[_valid_trace_id(trace_id)] if trace_id is not None else None,
            # The query language (#17) is the source's: query_trace_ids(query, start, end).
            query_finder=self.query_trace_ids,
        )
        if fmt == "json":
            return report
        return render_flow(report, variants, fmt)

    def flow_roots(
        self, start: int | None = None, end: int | None = None, limit: int = 200
    ) -> dict[str, Any]:
        """``{"from_unix_nano", "to_unix_nano", "roots": [{"service", "operation",
        "traces", "failed"}]}``: the root operations of the range, busiest first."""
        from analyzer.flow import root_operations

        lo, hi = self._range(start, end)
        roots = root_operations(self.reader, lo, hi, max(1, min(limit, 10_000)))
        return {"from_unix_nano": lo, "to_unix_nano": hi, "roots": roots}


def _pinned_tls() -> ssl.SSLContext | None:
    """With env ``SEQTRACE_API_CA`` (a PEM certificate, e.g. the server's own self-signed
    one, which `seqtrace up` hands to its UI), trust that certificate for the query API,
    whatever host name the API is reached by; otherwise the system's trust store."""
    cafile = os.environ.get("SEQTRACE_API_CA")
    if not cafile:
        return None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"SEQTRACE_API_CA: cannot use {cafile}: {exc}") from None
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


#: The query parameter an argument travels as, where the two names differ (SPEC "Query
#: API"); every other argument keeps its name.
_QUERY_PARAMETER: Final = {
    "trace_id": "trace",
    "start": "from",
    "end": "to",
    "show_internal": "internal",
    "fmt": "format",
    "min_severity": "severity",
    "query": "q",
}


class _Route(Generic[_Arguments, _Answer]):
    """An :class:`HttpSource` method that asks one GET route of the query API: it takes
    the arguments of the :class:`LocalSource` method the server answers that route with
    (its defaults included) and sends them as query parameters; the answer is JSON, or
    the text itself when a ``fmt`` other than json asks for a rendering."""

    def __init__(
        self, path: str, answered_by: Callable[Concatenate[LocalSource, _Arguments], _Answer]
    ) -> None:
        parameters = list(inspect.signature(answered_by).parameters.values())[1:]  # not self
        self.path = path
        self._names = [parameter.name for parameter in parameters]
        self._defaults = {
            parameter.name: parameter.default
            for parameter in parameters
            if parameter.default is not inspect.Parameter.empty
        }

    @overload
    def __get__(self, source: None, owner: type[HttpSource]) -> _Route[_Arguments, _Answer]: ...

    @overload
    def __get__(
        self, source: HttpSource, owner: type[HttpSource]
    ) -> Callable[_Arguments, _Answer]: ...

    def __get__(
        self, source: HttpSource | None, owner: type[HttpSource]
    ) -> _Route[_Arguments, _Answer] | Callable[_Arguments, _Answer]:
        if source is None:
            return self
        http: HttpSource = source

        def ask(*args: _Arguments.args, **kwargs: _Arguments.kwargs) -> _Answer:
            # Fewer positional arguments than names: the rest are keywords or defaults.
            arguments = {**self._defaults, **dict(zip(self._names, args, strict=False)), **kwargs}
            params = {_QUERY_PARAMETER.get(name, name): value for name, value in arguments.items()}
            answer: _Answer = http._request(
                self.path, params, raw=arguments.get("fmt", "json") != "json"
            )
            return answer

        return ask


class HttpSource:
    """Answers from a running server's query API (``seqtrace serve``)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._tls = _pinned_tls()

    def _request(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None and v is not False}
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                [  # a list value repeats its parameter (trace=A&trace=B)
                    (k, "1" if item is True else str(item))
                    for k, v in query.items()
                    for item in (v if isinstance(v, list) else [v])
                ]
            )
        request = urllib.request.Request(
            url, data=body, method="POST" if body is not None else "GET"
        )
        request.add_header("Accept-Encoding", "gzip")
        if body is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._tls
            ) as response:
                data = response.read()
                if response.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
        except urllib.error.HTTPError as exc:
            detail = exc.read()
            try:
                message = json.loads(detail)["error"]
            except (ValueError, KeyError, TypeError):
                message = detail.decode("utf-8", "replace")[:200] or exc.reason
            raise SourceError(str(message), status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(
                f"cannot reach the query API at {self.base_url}: {reason}", 503
            ) from None
        if raw:
            return data.decode("utf-8")
        return json.loads(data)

    # In LocalSource's order. A _Route takes the arguments of LocalSource's method of the
    # same name; the other routes' requests have another shape (a path parameter, a body).
    def healthz(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("/healthz")
        return result

    stats = _Route("/api/v1/stats", LocalSource.stats)
    entities = _Route("/api/v1/entities", LocalSource.entities)
    diagram = _Route("/api/v1/diagram", LocalSource.diagram)
    logs = _Route("/api/v1/logs", LocalSource.logs)

    def trace(self, trace_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            f"/api/v1/traces/{urllib.parse.quote(trace_id)}", {"view": "spans"}
        )
        return result

    def trace_otlp(self, trace_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(f"/api/v1/traces/{urllib.parse.quote(trace_id)}")
        return result

    find = _Route("/api/v1/find", LocalSource.find)
    compare = _Route("/api/v1/compare", LocalSource.compare)

    def query_trace_ids(
        self, query: str, start_unix_nano: int | None, end_unix_nano: int | None
    ) -> list[str]:
        """Ids of the traces the query selects in the range (``/api/v1/find?ids=1``)."""
        params = {"q": query, "from": start_unix_nano, "to": end_unix_nano, "ids": True}
        result: dict[str, Any] = self._request("/api/v1/find", params)
        return list(result["trace_ids"])

    failures = _Route("/api/v1/failures", LocalSource.failures)

    def slo(
        self, spec_text: str, at: int | None = None, source_name: str = "spec"
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "/api/v1/slo",
            {"at": at, "name": source_name},
            body=spec_text.encode("utf-8"),
            content_type="application/yaml",
        )
        return result

    throughput = _Route("/api/v1/throughput", LocalSource.throughput)
    recent_traces = _Route("/api/v1/traces", LocalSource.recent_traces)
    service_map = _Route("/api/v1/service-map", LocalSource.service_map)
    replay_traces = _Route("/api/v1/replay/traces", LocalSource.replay_traces)

    def replay_requests(
        self, trace_ids: list[str], start: int, end: int, max_spans: int = 512
    ) -> list[Any]:
        """One request per trace, from the API's OTLP/JSON (the replay splits them)."""
        from spanstore.otlp import request_from_json

        return [request_from_json(self.trace_otlp(tid)) for tid in trace_ids]

    def logs_requests(self, trace_ids: list[str], max_records: int = 512) -> list[Any]:
        """The traces' log records from ``/api/v1/replay/logs`` (a bounded number of ids a
        call, so the URL stays short), as requests of at most ``max_records`` records."""
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        from analyzer.otlp_batches import split_logs
        from spanstore.otlp import OtlpJsonError, rewrite_hex_ids

        requests: list[Any] = []
        for begin in range(0, len(trace_ids), REPLAY_LOG_TRACES_PER_CALL):
            batch = trace_ids[begin : begin + REPLAY_LOG_TRACES_PER_CALL]
            doc = self._request("/api/v1/replay/logs", {"trace": batch})
            request = ExportLogsServiceRequest()
            try:
                json_format.ParseDict(rewrite_hex_ids(doc), request, ignore_unknown_fields=True)
            except (json_format.ParseError, OtlpJsonError) as exc:
                raise SourceError(f"/api/v1/replay/logs: {str(exc).splitlines()[0]}") from None
            requests.extend(split_logs(request, max_records))
        return requests

    flow = _Route("/api/v1/flow", LocalSource.flow)
    flow_roots = _Route("/api/v1/flow/roots", LocalSource.flow_roots)


#: Either source: the read API every consumer is written against.
Source: TypeAlias = LocalSource | HttpSource


def open_database(path: str) -> LocalSource:
    """A read-only source on a store: a DuckDB file path or a store URL (``duckdb://``,
    ``chdb://``, ``clickhouse://``; see ``spanstore.urls``), for `seqtrace ui` and the CLI.

    Raises :class:`SourceError`: status 400 for a URL that cannot be understood, 503
    naming the store when it cannot be opened (missing, locked by a running server, not
    a seqtrace database).
    """
    from spanstore.base import StoreError
    from spanstore.urls import StoreURLError, open_store_url

    try:
        return LocalSource(open_store_url(path, read_only=True))
    except StoreURLError as exc:
        raise SourceError(str(exc), status=400) from None
    except StoreError as exc:
        raise SourceError(str(exc), status=503) from None
