"""The partial-failure report: which traces failed, which only partly, and why.

Works on the span frame (``spanstore.frame.FRAME_SCHEMA``) and an entities mapping, never
on the store, so the CLI, the query API and the tests all get the same answer from the
same inputs. The classification rules are written out in ``docs/reports.md``; the short
form:

* a span is an *error* per :func:`error_expr` (the stored status first, HTTP status codes
  only where the status is UNSET, cancellations never);
* a trace is ``failed`` when its root span is an error, ``partial`` when the root is fine
  but a span beneath it is an error, ``ok`` otherwise;
* a partial trace is ``retried``, ``failed_branch`` or ``degraded`` after what its caller
  did with each failed call (see :func:`_classify_top`);
* the root cause is the deepest error span whose own children do not explain it.

Speed: everything that touches every span (error flags, roots, per-trace counts, the range
and service filters) is one polars pass; Python walks only the trees of traces that hold
an error, which is a small share of the traffic even during an incident.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, TypedDict, cast

import polars as pl

from analyzer.timeparse import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, format_unix_nano

__all__ = [
    "CALL_KEY_COLUMNS",
    "ByService",
    "FailureReport",
    "FailureSummary",
    "FailureTrace",
    "Outcome",
    "Pattern",
    "RootCause",
    "cancelled_expr",
    "error_expr",
    "failing_trace_ids",
    "failure_report",
    "render_failures_table",
    "render_table",
    "sanitize_text",
    "with_error_flag",
]

Outcome: TypeAlias = Literal["ok", "partial", "failed"]
Pattern: TypeAlias = Literal["retried", "degraded", "failed_branch", "failed"]


class RootCause(TypedDict):
    service: str
    operation: str
    span_id: str
    message: str | None
    # Added fields (SPEC allows additions): what a responder looks at next.
    kind: str
    exception_type: str | None
    exception_message: str | None
    http_status_code: int | None


class FailureTrace(TypedDict):
    trace_id: str
    root_service: str
    root_operation: str
    start_unix_nano: int
    duration_ns: int
    outcome: Literal["partial", "failed"]
    pattern: Pattern
    root_cause: RootCause
    error_spans: int
    entities: dict[str, list[str]]
    # Added fields.
    root_span_id: str
    spans: int
    error_services: list[str]


class FailureSummary(TypedDict):
    traces: int
    ok: int
    partial: int
    failed: int
    # Added: how many non-ok traces show each pattern.
    patterns: dict[str, int]


class ByService(TypedDict):
    service: str
    #: non-ok traces whose root cause is in this service, by outcome.
    partial: int
    failed: int
    #: error spans this service emitted in the non-ok traces (caused or passed on).
    error_spans: int


class FailureReport(TypedDict):
    from_unix_nano: int
    to_unix_nano: int
    summary: FailureSummary
    traces: list[FailureTrace]
    # Added fields.
    service: str | None
    by_service: list[ByService]


# --------------------------------------------------------------------------- error semantics

#: Exception types that mean "cancelled": Python's CancelledError, .NET's
#: OperationCanceledException / TaskCanceledException, Java's CancellationException,
#: Go's context.Canceled. The grpc status code attribute (1 = CANCELLED) is not a frame
#: column, so the type and the message are the evidence we have.
_CANCEL_TYPE_PATTERN: Final = r"(?i)cancel"
#: Status / exception messages that mean "cancelled". Anchored at the start (or on the
#: gRPC spellings) so a business message such as "payment declined: order cancelled"
#: stays an error.
_CANCEL_MESSAGE_PATTERN: Final = (
    r"(?i)^\s*(cancell?ed\b|context cancell?ed|request cancell?ed"
    r"|the operation was cancell?ed|a task was cancell?ed|operation cancell?ed)"
    r"|code\s*=\s*cancell?ed|statuscode\.cancelled|^\s*cancelled:"
)
#: nginx's "client closed request": the caller went away, the server did not fail.
_HTTP_CLIENT_CLOSED: Final = 499


def cancelled_expr() -> pl.Expr:
    """True for spans whose call was cancelled by the caller (not a failure)."""
    return (
        pl.col("exception_type").str.contains(_CANCEL_TYPE_PATTERN).fill_null(False)
        | pl.col("status_message").str.contains(_CANCEL_MESSAGE_PATTERN).fill_null(False)
        | pl.col("exception_message").str.contains(_CANCEL_MESSAGE_PATTERN).fill_null(False)
        | (pl.col("http_status_code") == _HTTP_CLIENT_CLOSED).fill_null(False)
    )


def error_expr() -> pl.Expr:
    """True for spans that count as errors, per OpenTelemetry's conventions.

    * ``status_code`` is primary: ERROR is an error, OK is not (OK is the application's
      final word, which the conventions say instrumentation must not override).
    * Only when the status is UNSET do HTTP codes speak: a CLIENT span with a 4xx or 5xx
      response is an error (the call did not get what it asked for), a SERVER span only
      with a 5xx (a 4xx is the client's mistake, so the conventions leave the server
      span UNSET). Old or hand-rolled instrumentation often never sets the status.
    * A cancelled call is never an error: the caller chose to stop waiting.
    """
    status = pl.col("status_code")
    kind = pl.col("kind")
    http = pl.col("http_status_code")
    inferred = (status == "UNSET") & (
        ((kind == "CLIENT") & (http >= 400)) | ((kind == "SERVER") & (http >= 500))
    ).fill_null(False)
    return ((status == "ERROR") | inferred).fill_null(False) & ~cancelled_expr()


#: Columns the reports need; hand-built frames may lack the optional semantic ones.
_STRING_COLUMNS: Final = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "name",
    "kind",
    "status_code",
    "status_message",
    "exception_type",
    "exception_message",
    "http_method",
    "http_route",
    "rpc_system",
    "rpc_service",
    "rpc_method",
    "db_system",
    "db_name",
    "db_operation",
    "peer_service",
    "server_address",
    "messaging_destination",
)
_INT_COLUMNS: Final = ("start_unix_nano", "end_unix_nano", "http_status_code")

#: What makes two sibling spans "the same call" (retries of each other, or branches of
#: one fan-out): the caller's service and span kind, the span name, and whom it called.
#: ``url_path`` is left out on purpose: it carries ids (/orders/123), so a fan-out over
#: items would look like unrelated calls.
CALL_KEY_COLUMNS: Final = (
    "service_name",
    "kind",
    "name",
    "http_method",
    "http_route",
    "rpc_service",
    "rpc_method",
    "db_system",
    "db_name",
    "db_operation",
    "peer_service",
    "server_address",
    "messaging_destination",
)


def _normalised(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every column the reports read, missing optional ones as nulls."""
    missing = [
        pl.lit(None, dtype=pl.String).alias(c) for c in _STRING_COLUMNS if c not in frame.columns
    ] + [pl.lit(None, dtype=pl.Int64).alias(c) for c in _INT_COLUMNS if c not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def with_error_flag(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` plus a boolean ``is_error`` column (see :func:`error_expr`)."""
    return _normalised(frame).with_columns(error_expr().alias("is_error"))


def _is_root_expr() -> pl.Expr:
    # Some exporters write an all-zero or empty parent id instead of leaving it out.
    parent = pl.col("parent_span_id")
    return parent.is_null() | (parent.str.strip_chars("0") == "")


_ROOT_COLUMNS: Final = (
    pl.col("span_id").alias("root_span_id"),
    pl.col("service_name").alias("root_service"),
    pl.col("name").alias("root_operation"),
    pl.col("start_unix_nano").alias("root_start"),
    pl.col("is_error").alias("root_error"),
)


def _earliest_per_trace(spans: pl.LazyFrame) -> pl.LazyFrame:
    return (
        spans.sort(["trace_id", "start_unix_nano", "span_id"])
        .unique("trace_id", keep="first")
        .select("trace_id", *_ROOT_COLUMNS)
    )


def _trace_table(
    frame: pl.DataFrame, from_unix_nano: int, to_unix_nano: int, service: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(flagged spans, one row per in-range trace with its root and error counts)."""
    spans = with_error_flag(frame).select([*_STRING_COLUMNS, *_INT_COLUMNS, "is_error"]).lazy()
    touches = (pl.col("service_name") == service).any() if service is not None else pl.lit(True)
    per_trace = spans.group_by("trace_id").agg(
        pl.len().alias("spans"),
        pl.col("is_error").sum().alias("error_spans"),
        pl.col("start_unix_nano").min().alias("first_start"),
        pl.col("end_unix_nano").max().alias("last_end"),
        touches.alias("_touches"),
    )
    # The root: the span without a parent (the earliest, should a broken trace have
    # several), else the earliest span, so traces whose root is not stored yet still
    # count, at the time their first stored span started. Only the few parentless
    # spans are sorted, and the whole trace only where no root was stored.
    roots = _earliest_per_trace(spans.filter(_is_root_expr()))
    rootless = _earliest_per_trace(spans.join(roots.select("trace_id"), on="trace_id", how="anti"))
    traces = (
        per_trace.join(pl.concat([roots, rootless]), on="trace_id")
        .filter(
            (pl.col("root_start") >= from_unix_nano)
            & (pl.col("root_start") < to_unix_nano)
            & pl.col("_touches")
        )
        .drop("_touches")
    )
    spans_df, traces_df = pl.collect_all([spans, traces])
    return spans_df, traces_df


# --------------------------------------------------------------------------- per-trace walk

_SEVERITY: Final[dict[Pattern, int]] = {"retried": 1, "failed_branch": 2, "degraded": 3}


@dataclass(slots=True)
class _Columns:
    """Column lists of the error traces' spans, sorted by trace then start time.

    Plain lists because the walk indexes them one span at a time, which polars Series
    make slow; only the columns the walk needs, the rest is gathered for the causes.
    """

    span_id: list[str]
    parent: list[str | None]
    start: list[int]
    end: list[int]
    is_error: list[bool]
    #: a hash of the :data:`CALL_KEY_COLUMNS`; equal for attempts of the same call.
    call_key: list[int]


def _classify_top(c: _Columns, top: int, siblings: Sequence[int]) -> Pattern:
    """What the caller did with a failed call ``top`` (an error span with a fine parent).

    * ``retried``: a later attempt of the same call (a sibling with the same call key,
      started at or after this one ended) succeeded: the caller tried again and got it.
    * ``failed_branch``: no later attempt succeeded, but another branch of the same call
      did (one started before or alongside this one): a fan-out where only some
      branches failed, so the caller returned with part of its data.
    * ``degraded``: every attempt of this call failed (or it was made once) and the
      caller still did not fail: it worked around the call, e.g. with a fallback.

    A hedged request (a second attempt started before the first ended) therefore reads
    as ``failed_branch``: from the trace alone it is a fan-out of one call.
    """
    key = c.call_key[top]
    other_ok = False
    for s in siblings:
        if s == top or c.is_error[s] or c.call_key[s] != key:
            continue
        if c.start[s] >= c.end[top]:
            return "retried"
        other_ok = True
    return "failed_branch" if other_ok else "degraded"


def _analyze_trace(c: _Columns, lo: int, hi: int, root_span_id: str) -> tuple[Pattern, int]:
    """(pattern, index of the root-cause span) of one trace holding an error."""
    span_ids, parents, is_error = c.span_id, c.parent, c.is_error
    # Reversed so the first of two spans sharing an id (hostile or buggy input) wins.
    by_id = {span_ids[i]: i for i in range(hi - 1, lo - 1, -1)}
    root = by_id[root_span_id]

    children: dict[int, list[int]] = {}
    for i in range(lo, hi):
        if i != root:
            p = by_id.get(parents[i])  # type: ignore[arg-type]  # None is never a key
            if p is not None and p != i:
                children.setdefault(p, []).append(i)

    # A walk from the root gives each span one tree parent and a depth. Spans the root
    # does not reach (orphans whose parent is not stored, or a parent cycle in hostile
    # input) hang from the root at depth 1, so every span is analysed exactly once and
    # no walk below can loop.
    tparent: dict[int, int] = {}
    depth: dict[int, int] = {root: 0}
    order: list[int] = []

    def walk(start: int) -> None:
        stack = [start]
        while stack:
            node = stack.pop()
            order.append(node)
            below = depth[node] + 1
            for child in children.get(node, ()):
                if child not in depth:
                    depth[child] = below
                    tparent[child] = node
                    stack.append(child)

    walk(root)
    if len(order) < hi - lo:
        for i in range(lo, hi):  # spans are in start order: earliest orphan first
            if i not in depth:
                depth[i] = 1
                walk(i)

    # error_child: spans with an error child, i.e. whose own failure is explained.
    error_child = {tparent[i] for i in order if is_error[i] and i in tparent}

    if is_error[root]:
        pattern: Pattern = "failed"
        decisive = [root]
    else:
        # Tops: error spans whose tree parent is not an error: where a failure was
        # absorbed. Siblings are the spans under the same parent id, which also groups
        # orphans whose parent was never stored.
        tops = [i for i in order if is_error[i] and (i not in tparent or not is_error[tparent[i]])]
        classified = []
        for top in tops:
            parent = tparent.get(top)
            if parent is not None:
                siblings: Sequence[int] = children[parent]
            else:
                siblings = [i for i in range(lo, hi) if parents[i] == parents[top]]
            classified.append((_classify_top(c, top, siblings), top))
        pattern = max((p for p, _ in classified), key=_SEVERITY.__getitem__)
        decisive = [t for p, t in classified if p == pattern]

    # The root cause lies in the error chains hanging from the decisive spans: the
    # root's chain for a failed trace, the worst-classified absorbed errors otherwise.
    # A retried redis timeout elsewhere in a failed trace is not why it failed.
    candidates: list[int] = []
    stack = list(decisive)
    while stack:
        node = stack.pop()
        if node not in error_child:
            candidates.append(node)
        else:
            stack.extend(ch for ch in children[node] if is_error[ch] and tparent.get(ch) == node)
    cause = min(candidates, key=lambda i: (-depth[i], c.start[i], span_ids[i]))
    return pattern, cause


def _message(status_message: str | None, exception_message: str | None) -> str | None:
    # An empty status message is what most SDKs store when none was given.
    return status_message or exception_message or None


def _columns_of(spans: pl.DataFrame) -> _Columns:
    return _Columns(
        span_id=spans["span_id"].to_list(),
        parent=spans["parent_span_id"].to_list(),
        start=spans["start_unix_nano"].to_list(),
        end=spans["end_unix_nano"].to_list(),
        is_error=spans["is_error"].to_list(),
        call_key=spans["_call_key"].to_list(),
    )


# --------------------------------------------------------------------------- the report


def failing_trace_ids(
    frame: pl.DataFrame, from_unix_nano: int, to_unix_nano: int, service: str | None = None
) -> list[str]:
    """Ids of the traces :func:`failure_report` will list (partial or failed), sorted.

    The store can fetch entities for just these (``reader.trace_entities``) instead of
    for every trace in the range.
    """
    _, traces = _trace_table(frame, from_unix_nano, to_unix_nano, service)
    ids: list[str] = traces.filter(pl.col("error_spans") > 0)["trace_id"].sort().to_list()
    return ids


def failure_report(
    frame: pl.DataFrame,
    entities: Mapping[str, Mapping[str, Sequence[str]]],
    from_unix_nano: int,
    to_unix_nano: int,
    service: str | None = None,
) -> dict[str, Any]:
    """The ``failures --json`` report for traces whose root starts in [from, to).

    ``frame`` must hold whole traces (``reader.span_frame(..., whole_traces=True)``);
    ``entities`` maps trace id to entity key to values (``reader.trace_entities``) and
    may omit traces, which then list no entities; :func:`failing_trace_ids` says which
    traces it needs. ``service`` keeps the traces that touch that service (any span of
    it), as the store's ``service`` filter does. Traces are listed oldest first.
    """
    spans, traces = _trace_table(frame, from_unix_nano, to_unix_nano, service)
    bad = traces.filter(pl.col("error_spans") > 0).sort(["root_start", "trace_id"])
    total = traces.height
    failed_count = int(bad["root_error"].sum()) if bad.height else 0

    # Hashing the call key in polars spares the walk a tuple per span; two different
    # calls would have to collide in 64 bits under one parent to be confused.
    bad_spans = (
        spans.join(bad.select("trace_id"), on="trace_id", how="semi")
        .sort(["trace_id", "start_unix_nano", "span_id"])
        .with_columns(pl.struct(CALL_KEY_COLUMNS).hash(seed=0).alias("_call_key"))
    )
    columns = _columns_of(bad_spans)
    # Row ranges of each trace inside the sorted span lists.
    bounds: dict[str, tuple[int, int]] = {}
    offset = 0
    for tid, count in bad_spans.group_by("trace_id", maintain_order=True).len().iter_rows():
        bounds[tid] = (offset, offset + count)
        offset += count

    errors = bad_spans.filter(pl.col("is_error"))
    error_services: dict[str, list[str]] = dict(
        errors.group_by("trace_id").agg(pl.col("service_name").unique().sort()).iter_rows()
    )

    analysed = [
        _analyze_trace(columns, *bounds[trace_id], root_span_id)
        for trace_id, root_span_id in zip(
            bad["trace_id"].to_list(), bad["root_span_id"].to_list(), strict=True
        )
    ]
    causes = bad_spans.select(
        "service_name",
        "name",
        "span_id",
        "kind",
        "status_message",
        "exception_type",
        "exception_message",
        "http_status_code",
    )[[cause for _, cause in analysed]]

    out: list[FailureTrace] = []
    patterns: dict[str, int] = {"retried": 0, "degraded": 0, "failed_branch": 0, "failed": 0}
    by_service: dict[str, ByService] = {
        name: ByService(service=name, partial=0, failed=0, error_spans=count)
        for name, count in errors.group_by("service_name").len().iter_rows()
    }
    trace_rows = bad.select(
        "trace_id",
        "root_service",
        "root_operation",
        "root_start",
        "first_start",
        "last_end",
        "root_error",
        "error_spans",
        "root_span_id",
        "spans",
    ).iter_rows()
    for (pattern, _), row, cause in zip(analysed, trace_rows, causes.iter_rows(), strict=True):
        (trace_id, root_service, root_operation, root_start, first_start, last_end,
         root_error, error_count, root_span_id, span_count) = row  # fmt: skip
        (c_service, c_name, c_span_id, c_kind, c_status_message, c_exception_type,
         c_exception_message, c_http) = cause  # fmt: skip
        outcome: Literal["partial", "failed"] = "failed" if root_error else "partial"
        patterns[pattern] += 1
        by_service[c_service][outcome] += 1
        trace_entities = entities.get(trace_id) or {}
        out.append(
            FailureTrace(
                trace_id=trace_id,
                root_service=root_service,
                root_operation=root_operation,
                start_unix_nano=root_start,
                duration_ns=max(0, last_end - first_start),
                outcome=outcome,
                pattern=pattern,
                root_cause=RootCause(
                    service=c_service,
                    operation=c_name,
                    span_id=c_span_id,
                    message=_message(c_status_message, c_exception_message),
                    kind=c_kind,
                    exception_type=c_exception_type or None,
                    exception_message=c_exception_message or None,
                    http_status_code=c_http,
                ),
                error_spans=error_count,
                entities={k: list(v) for k, v in sorted(trace_entities.items())},
                root_span_id=root_span_id,
                spans=span_count,
                error_services=error_services.get(trace_id, []),
            )
        )

    ranked = sorted(
        by_service.values(),
        key=lambda r: (
            -(r["failed"] + r["partial"]),
            -r["failed"],
            -r["error_spans"],
            r["service"],
        ),
    )
    report = FailureReport(
        from_unix_nano=from_unix_nano,
        to_unix_nano=to_unix_nano,
        summary=FailureSummary(
            traces=total,
            ok=total - bad.height,
            partial=bad.height - failed_count,
            failed=failed_count,
            patterns=patterns,
        ),
        traces=out,
        service=service,
        by_service=ranked,
    )
    # Callers serialise the report or pass it on as a plain dict; the TypedDicts above
    # document and check its shape where it is built.
    return cast(dict[str, Any], report)


# --------------------------------------------------------------------------- text output


def sanitize_text(value: object) -> str:
    """One printable line: control, format and separator characters become escapes.

    Span names and messages come from the traced services, so they may hold newlines,
    ANSI escape sequences or right-to-left overrides that would rewrite the terminal or
    misalign the table; the escape keeps them visible instead.
    """
    text = "" if value is None else str(value)
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            code = ord(ch)
            if ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(ch) for ch in text)


def _truncate(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for ch in text:
        w = _char_width(ch)
        if used + w > limit - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + "…"


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: frozenset[int] = frozenset(),
    max_width: int = 60,
) -> str:
    """Aligned columns for the terminal. ``right`` holds the indexes of numeric columns.

    Cells are sanitised (:func:`sanitize_text`) and cut to ``max_width`` display
    columns (East Asian wide characters count two), so one hostile span name cannot
    push the rest of the table off the screen.
    """
    cells = [[_truncate(sanitize_text(v), max_width) for v in row] for row in rows]
    heads = [sanitize_text(h) for h in headers]
    widths = [_width(h) for h in heads]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            pad = " " * (widths[i] - _width(value))
            parts.append(pad + value if i in right else value + pad)
        return "  ".join(parts).rstrip()

    return "\n".join([line(heads), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _entities_text(entities: Mapping[str, Sequence[str]], limit: int = 3) -> str:
    parts = []
    for key, values in entities.items():
        shown = ",".join(values[:limit])
        more = f"(+{len(values) - limit})" if len(values) > limit else ""
        parts.append(f"{key}={shown}{more}")
    return " ".join(parts)


def _human_duration(ns: int) -> str:
    """Three significant figures in one unit: 693ms, 15.1s, 2.5m; for reading, not parsing."""
    for unit, size in (("h", NS_PER_HOUR), ("m", NS_PER_MINUTE), ("s", NS_PER_SECOND)):
        if ns >= size:
            return f"{ns / size:.3g}{unit}"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.3g}ms"
    return f"{ns / 1_000:.3g}us"


def _cause_text(cause: Mapping[str, Any]) -> str:
    """The table's MESSAGE: the JSON message, plus what the exception or HTTP code adds.

    The JSON keeps the SPEC's rule (status message, else exception message); on the
    terminal a generic status message such as HotROD's "An error occurred" is not worth
    a column, so the exception message or the HTTP status follows it when different.
    """
    message = cause.get("message")
    parts = [message] if message else []
    exception = cause.get("exception_message")
    if exception and exception != message:
        parts.append(exception)
    status = cause.get("http_status_code")
    if not parts and status:
        parts.append(f"HTTP {status}")
    return ": ".join(parts)


def render_failures_table(report: Mapping[str, Any], limit: int | None = 200) -> str:
    """The report for a terminal: a summary line, one row per trace, per-service counts.

    ``limit`` caps the trace rows (the newest are the ones cut) and says how many were
    left out; the summary and per-service table always cover every trace.
    """
    summary = report["summary"]
    window = f"{format_unix_nano(report['from_unix_nano'])} .. "
    window += format_unix_nano(report["to_unix_nano"])
    if report.get("service"):
        window += f"  service {sanitize_text(report['service'])}"
    counts = (
        f"traces {summary['traces']}  ok {summary['ok']}  partial {summary['partial']}"
        f"  failed {summary['failed']}"
    )
    patterns = summary.get("patterns") or {}
    if any(patterns.values()):
        counts += "  (" + ", ".join(f"{k} {v}" for k, v in patterns.items() if v) + ")"
    head = f"{window}\n{counts}"
    traces = report["traces"]
    if not traces:
        return head + "\nno partial or failed traces"
    shown = traces if limit is None else traces[:limit]
    rows = [
        (
            format_unix_nano(t["start_unix_nano"]),
            t["trace_id"],
            t["outcome"],
            t["pattern"],
            f"{t['root_service']}: {t['root_operation']}",
            f"{t['root_cause']['service']}: {t['root_cause']['operation']}",
            _cause_text(t["root_cause"]),
            t["error_spans"],
            _human_duration(t["duration_ns"]),
            _entities_text(t["entities"]),
        )
        for t in shown
    ]
    table = render_table(
        (
            "START",
            "TRACE",
            "OUTCOME",
            "PATTERN",
            "ROOT",
            "ROOT CAUSE",
            "MESSAGE",
            "ERRORS",
            "DURATION",
            "ENTITIES",
        ),
        rows,
        right=frozenset({7, 8}),
        max_width=48,
    )
    parts = [head, "", table]
    if len(shown) < len(traces):
        parts.append(f"... {len(traces) - len(shown)} more traces (use --json for all)")
    services = report.get("by_service") or []
    if services:
        parts += [
            "",
            render_table(
                ("SERVICE", "CAUSED PARTIAL", "CAUSED FAILED", "ERROR SPANS"),
                [(s["service"], s["partial"], s["failed"], s["error_spans"]) for s in services],
                right=frozenset({1, 2, 3}),
            ),
        ]
    return "\n".join(parts)
