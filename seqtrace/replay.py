"""`seqtrace replay`: re-send a stored (or filed) incident to an OTLP endpoint, as if now.

The selection (an entity's traces with their linked traces, one trace, a time range, or
trace files) is read a chunk of traces at a time (``CHUNK_SPANS``), so a million stored
spans never sit in memory together. Each chunk's spans get fresh ids and shifted times
(:mod:`seqtrace.replay_rewrite`), are cut into 512-span requests (an SDK's batch) and
handed to a few sending threads (:mod:`seqtrace.replay_export`: retries as an exporter
does). With ``--speed X`` > 0 each span goes out when its (scaled) end time comes, as an
SDK exports a span when it ends.

Log records: when the source can give the log records of a chunk's traces (an optional
``logs_requests(trace_ids)`` returning ``ExportLogsServiceRequest`` objects), they are
rewritten with the same id map and shift and sent after (or, with --speed, among) the
chunk's spans.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.otlp_batches import LOGS, SPANS, RequestBuilder, item_count
from seqtrace.errors import EXIT_OK, UsageError
from seqtrace.replay_export import Exporter, ExporterOptions, ExportRefused, make_exporter
from seqtrace.replay_rewrite import (
    IdMap,
    first_span_start,
    last_span_end,
    rewrite_logs,
    rewrite_spans,
    split_logs,
    split_spans,
)

__all__ = ["BATCH_SPANS", "CHUNK_SPANS", "ReplaySummary", "Selection", "replay", "run_replay"]

#: Spans per request, as the SDKs' BatchSpanProcessor sends (max_export_batch_size).
BATCH_SPANS = 512
#: Spans read from the store at once (whole traces; a bigger trace is read alone).
CHUNK_SPANS = 4096
#: Requests in flight at once; a few keep a collector's ingest busy while this process
#: reads and rewrites the next chunk.
SENDERS = 4
#: With --speed: spans due within this much of the next one go out in the same request.
GROUP_WINDOW_S = 0.05


@dataclass
class Chunk:
    trace_ids: list[str]  # original ids, for the source's log records
    requests: list[ExportTraceServiceRequest]


@dataclass
class Selection:
    """What to replay: its time extent and how to read it a chunk at a time."""

    first_unix_nano: int
    last_unix_nano: int
    traces: int | None
    chunks: Callable[[], Iterator[Chunk]]
    logs: Callable[[list[str]], Iterable[ExportLogsServiceRequest]] | None = None


@dataclass
class ReplaySummary:
    spans: int = 0
    logs: int = 0
    rejected_spans: int = 0
    rejected_logs: int = 0
    messages: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ selections


def store_selection(
    source: Any, entity: str | None, trace_id: str | None, start: int | None, end: int | None
) -> Selection:
    """The traces a source (LocalSource or HttpSource) holds for the selection."""
    # (trace id, first start, last end, spans) tuples: a tenth of the dicts' memory.
    traces = [
        (t["trace_id"], t["first_unix_nano"], t["last_unix_nano"], t["spans"])
        for t in source.replay_traces(entity, trace_id, start, end)["traces"]
    ]
    if not traces:
        raise UsageError("nothing to replay: no spans in the selection")
    first = min(t[1] for t in traces)
    last = max(t[2] for t in traces)

    def chunks() -> Iterator[Chunk]:
        group: list[tuple[str, int, int, int]] = []
        size = 0
        for trace in [*traces, None]:
            if trace is not None and (not group or size + trace[3] <= CHUNK_SPANS):
                group.append(trace)
                size += trace[3]
                continue
            if group:
                ids = [t[0] for t in group]
                lo = min(t[1] for t in group)
                hi = max(t[2] for t in group)
                yield Chunk(ids, source.replay_requests(ids, lo, hi, BATCH_SPANS))
            group, size = ([trace], trace[3]) if trace is not None else ([], 0)

    hook = getattr(source, "logs_requests", None)
    return Selection(first, last, len(traces), chunks, hook if callable(hook) else None)


def file_selection(files: list[str]) -> Selection:
    """Trace files in every format `seqtrace load` reads (held in memory, as load does)."""
    from collector.files import TraceFileError, read_trace_file

    requests: list[ExportTraceServiceRequest] = []
    for name in files:
        try:
            requests.extend(read_trace_file(name))
        except TraceFileError as exc:
            raise UsageError(str(exc)) from None
    last = last_span_end(requests)
    first = first_span_start(requests)
    if last is None or first is None:
        raise UsageError("nothing to replay: the files hold no spans")

    def chunks() -> Iterator[Chunk]:
        for request in requests:
            yield Chunk([], [request])

    return Selection(first, last, None, chunks)


# ------------------------------------------------------------------------------ sending


class _Senders:
    """A bounded pool of sending threads: at most ``2 x SENDERS`` requests wait, so a
    slow endpoint slows the reading down instead of filling memory."""

    def __init__(self, exporter: Exporter, summary: ReplaySummary) -> None:
        self.exporter = exporter
        self.summary = summary
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="replay-send")
        self._pending: deque[tuple[Future[tuple[int, str]], str, int]] = deque()

    def spans(self, request: ExportTraceServiceRequest, count: int) -> None:
        self._submit(self._pool.submit(self.exporter.export_spans, request), "spans", count)

    def logs(self, request: ExportLogsServiceRequest, count: int) -> None:
        self._submit(self._pool.submit(self.exporter.export_logs, request), "logs", count)

    def _submit(self, future: Future[tuple[int, str]], kind: str, count: int) -> None:
        self._pending.append((future, kind, count))
        while len(self._pending) > 2 * SENDERS or (self._pending and self._pending[0][0].done()):
            self._collect()

    def _collect(self) -> None:
        future, kind, count = self._pending.popleft()
        rejected, message = future.result()  # ExportRefused propagates: the replay stops
        if kind == "spans":
            self.summary.spans += count
            self.summary.rejected_spans += rejected
        else:
            self.summary.logs += count
            self.summary.rejected_logs += rejected
        if rejected and message and len(self.summary.messages) < 5:
            self.summary.messages.append(message)

    def finish(self) -> None:
        try:
            while self._pending:
                self._collect()
        finally:
            self.close()

    def close(self) -> None:
        for future, _, _ in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Progress:
    """ "N spans sent, M:SS left" on stderr, at most once a second (--speed only)."""

    def __init__(self, enabled: bool, end_monotonic: float) -> None:
        self.enabled = enabled
        self.end = end_monotonic
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def show(self, sent: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 1.0):
            return
        self._last = now
        left = max(0, round(self.end - now))
        line = f"seqtrace: replay: {sent} spans sent, {left // 60}:{left % 60:02d} left"
        sys.stderr.write(("\r" + line) if self._tty else (line + "\n"))
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self._tty:
            sys.stderr.write("\n")


def replay(
    selection: Selection,
    exporter: Exporter,
    ids: IdMap,
    at: int,
    speed: float,
    progress: bool = True,
) -> ReplaySummary:
    """Send the selection with its newest span ending at ``at``; see the module doc."""
    shift = at - selection.last_unix_nano
    summary = ReplaySummary()
    senders = _Senders(exporter, summary)
    started = time.monotonic()
    origin = selection.first_unix_nano + shift  # the shifted incident's first span start
    length_s = (selection.last_unix_nano - selection.first_unix_nano) / 1e9
    meter = _Progress(progress and speed > 0, started + length_s / speed if speed > 0 else 0.0)
    sent = 0
    try:
        for chunk in selection.chunks():
            for request in chunk.requests:
                rewrite_spans(request, ids, shift)
            logs: list[ExportLogsServiceRequest] = []
            if selection.logs is not None and chunk.trace_ids:
                logs = list(selection.logs(chunk.trace_ids))
                for log_request in logs:
                    rewrite_logs(log_request, ids, shift)
            if speed <= 0:
                for request in chunk.requests:
                    for part in split_spans(request, BATCH_SPANS):
                        senders.spans(part, item_count(part, SPANS))
                for log_request in logs:
                    for log_part in split_logs(log_request, BATCH_SPANS):
                        senders.logs(log_part, item_count(log_part, LOGS))
                continue
            for due_ns, span_group, log_group in _timed_groups(chunk.requests, logs):
                wait = started + (due_ns - origin) / 1e9 / speed - time.monotonic()
                while wait > 0:
                    meter.show(sent)
                    time.sleep(min(wait, 0.5))
                    wait = started + (due_ns - origin) / 1e9 / speed - time.monotonic()
                if span_group is not None:
                    count = item_count(span_group, SPANS)
                    senders.spans(span_group, count)
                    sent += count
                if log_group is not None:
                    senders.logs(log_group, item_count(log_group, LOGS))
                meter.show(sent)
        senders.finish()
    except BaseException:
        senders.close()
        raise
    meter.show(summary.spans, force=True)
    meter.done()
    return summary


def _timed_groups(
    requests: list[ExportTraceServiceRequest], logs: list[ExportLogsServiceRequest]
) -> Iterator[tuple[int, ExportTraceServiceRequest | None, ExportLogsServiceRequest | None]]:
    """The chunk's spans (by end time: an SDK exports a span when it ends) and log records
    (by time) in time order, grouped into (due time, spans request, logs request): each
    group holds what is due within GROUP_WINDOW_S of its first item (at the replay's
    pace, times are compared unscaled here: a window of real time at --speed 1)."""
    items: list[tuple[int, int, Any, Any, Any]] = []  # (time, kind, resource, scope, item)
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    when = max(span.end_time_unix_nano, span.start_time_unix_nano)
                    items.append((when, 0, rs, ss, span))
    for log_request in logs:
        for rl in log_request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    items.append(
                        (record.time_unix_nano or record.observed_time_unix_nano, 1, rl, sl, record)
                    )
    items.sort(key=lambda item: (item[0], item[1]))
    window_ns = int(GROUP_WINDOW_S * 1e9)
    index = 0
    while index < len(items):
        due = items[index][0]
        span_part, log_part = RequestBuilder(SPANS), RequestBuilder(LOGS)
        while index < len(items) and items[index][0] <= due + window_ns:
            _, kind, outer, inner, item = items[index]
            part: RequestBuilder[Any] = span_part if kind == 0 else log_part
            if part.size == BATCH_SPANS:
                break
            part.add(outer, inner, item)
            index += 1
        yield (
            due,
            span_part.request if span_part.size else None,
            log_part.request if log_part.size else None,
        )


# ------------------------------------------------------------------------------ command


def _headers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header: expected KEY=VALUE, got {value!r}")
        out.append((key.strip(), text.strip()))
    return out


def run_replay(args: argparse.Namespace, open_source: Callable[[argparse.Namespace], Any]) -> int:
    from analyzer.timeparse import format_unix_nano, parse_time

    now = time.time_ns()

    def when(text: str | None, flag: str) -> int | None:
        if text is None:
            return None
        try:
            return parse_time(text, now)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None

    if args.speed < 0:
        raise UsageError("--speed must be 0 (at once) or more (1 = real time)")
    if args.max_retry_time < 0:
        raise UsageError("--max-retry-time must be 0 or more seconds")
    start, end = when(args.start, "--from"), when(args.end, "--to")
    selectors = [f for f, v in (("--entity", args.entity), ("--trace", args.trace)) if v]
    if args.files:
        if selectors or start is not None or end is not None:
            raise UsageError(
                "give trace files or a stored selection (--entity, --trace, --from/--to), not both"
            )
        selection = file_selection(args.files)
    else:
        if len(selectors) > 1:
            raise UsageError("give --entity KEY=VALUE or --trace ID, not both")
        if not selectors and (start is None or end is None):
            raise UsageError("give --entity KEY=VALUE, --trace ID, --from T --to T, or FILE...")
        selection = store_selection(open_source(args), args.entity, args.trace, start, end)
    options = ExporterOptions(
        endpoint=args.endpoint,
        protocol=args.protocol,
        token=args.token,
        headers=_headers(args.header),
        insecure=args.insecure,
        ca_file=args.ca_file,
        max_retry_seconds=args.max_retry_time,
    )
    try:
        exporter = make_exporter(options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    length = selection.last_unix_nano - selection.first_unix_nano
    at = when(args.at, "--at")
    if at is None:  # at --speed X, the newest span ends as the replay sends it
        at = now + (int(length / args.speed) if args.speed > 0 else 0)
    if at - length <= 0:
        raise UsageError("--at is too early: the incident would start before 1970")
    ids = IdMap(keep=args.keep_ids)
    try:
        summary = replay(selection, exporter, ids, at, args.speed)
    except ExportRefused as exc:
        raise UsageError(f"replay stopped: {exc}") from None
    finally:
        exporter.close()
    shift = at - selection.last_unix_nano
    traces = f" of {selection.traces} traces" if selection.traces is not None else ""
    logs = f" and {summary.logs} log records" if summary.logs else ""
    print(
        f"seqtrace: replayed {summary.spans} spans{traces}{logs} to {args.endpoint} "
        f"({'same ids' if args.keep_ids else 'fresh ids'}; times shifted by {shift / 1e9:+.3f} s, "
        f"newest span ends {format_unix_nano(at)})"
    )
    if exporter.retries:
        print(
            f"seqtrace: the endpoint asked to retry {exporter.retries} times (backpressure)",
            file=sys.stderr,
        )
    if summary.rejected_spans or summary.rejected_logs:
        print(
            f"seqtrace: warning: the endpoint rejected {summary.rejected_spans} spans and "
            f"{summary.rejected_logs} log records: {'; '.join(summary.messages) or 'no reason'}",
            file=sys.stderr,
        )
    return EXIT_OK
