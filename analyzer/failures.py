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
  did with each failed call (see :func:`_analyze`);
* the root cause is the deepest error span whose own children do not explain it.

Speed: no Python loop runs per span. Error flags, roots, per-trace counts and the range
and service filters are one polars pass; the tree analysis of the traces holding an
error is vectorised too (pointer jumping for depths and error chains, one join for
siblings), so a full outage, where every trace fails, still fits the 2 s budget for an
hour of a busy store. Python only builds the JSON objects of the listed traces.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, TypedDict

import polars as pl

from analyzer.escaping import terminal_text
from analyzer.timeparse import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, format_unix_nano

__all__ = [
    "CALL_KEY_COLUMNS",
    "CANCEL_MESSAGE_PATTERN",
    "CANCEL_TYPE_PATTERN",
    "ByService",
    "FailureReport",
    "FailureSummary",
    "FailureTrace",
    "Outcome",
    "Pattern",
    "RootCause",
    "cancelled_expr",
    "error_expr",
    "errors_among",
    "failing_trace_ids",
    "failure_report",
    "render_failures_table",
    "render_table",
    "with_error_flag",
]

Outcome: TypeAlias = Literal["ok", "partial", "failed"]
Pattern: TypeAlias = Literal["retried", "degraded", "failed_branch", "failed"]


# The report's shape. failure_report returns a plain dict (what JSON encoders and the
# API take); callers who want it typed can cast to FailureReport, and the tests check
# that the keys never drift from these declarations.


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
    #: failing traces not in ``traces`` (a report read from a store lists at most
    #: ``analyzer.failures_store.LISTED_TRACES``); when not 0, ``summary.patterns`` and
    #: ``by_service`` describe the listed traces only.
    omitted_traces: int


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
#: The cancellation patterns, for a store that tests them in SQL (spanstore service_map).
CANCEL_TYPE_PATTERN: Final = _CANCEL_TYPE_PATTERN
CANCEL_MESSAGE_PATTERN: Final = _CANCEL_MESSAGE_PATTERN
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


#: Who a span called (beyond its HTTP method and route).
_CALLEE_COLUMNS: Final = (
    "rpc_service",
    "rpc_method",
    "db_system",
    "db_name",
    "db_operation",
    "peer_service",
    "server_address",
    "messaging_destination",
)
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
    *_CALLEE_COLUMNS,
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
    *_CALLEE_COLUMNS,
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


def errors_among(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` that are errors (with ``is_error``), the rules of
    :func:`error_expr` run only where they can be true: an ERROR status or an HTTP code
    of 400 or more: the cancellation patterns are string matches, too dear for every row
    of a large report (docs/performance-history.md, "SLO report: the error
    rules on possible errors only")."""
    possible = ((pl.col("status_code") == "ERROR") | (pl.col("http_status_code") >= 400)).fill_null(
        False
    )
    return with_error_flag(_normalised(frame).filter(possible)).filter(pl.col("is_error"))


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


# --------------------------------------------------------------------------- tree analysis

#: Severity of the partial patterns; a trace takes its worst absorbed failure's pattern.
_SEVERITY: Final[dict[Pattern, int]] = {"retried": 1, "failed_branch": 2, "degraded": 3}
_PATTERN_OF: Final[dict[int, Pattern]] = {v: k for k, v in _SEVERITY.items()}
#: Rounds of pointer jumping; 2**40 levels is far beyond any trace, and a parent cycle
#: (hostile input) must not spin forever.
_MAX_ROUNDS: Final = 40


def _ancestry(parent: pl.Series, index: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(terminal ancestor, distance to it) of every row, by pointer jumping.

    ``parent`` holds each row's parent row (null for tree tops). Each round every row
    jumps to its pointer's pointer and adds the distance it skipped, so a chain of
    length L takes log2(L) rounds of two vectorised gathers, with no Python per span.
    """
    pointer = parent.fill_null(index)
    distance = parent.is_not_null().cast(pl.Int64)
    for _ in range(_MAX_ROUNDS):
        jumped = pointer.gather(pointer)
        if (jumped == pointer).all():
            break
        distance = distance + distance.gather(pointer)
        pointer = jumped
    return pointer, distance


def _key(*columns: str) -> pl.Expr:
    return pl.struct(columns).hash(seed=0)


def _analyze(spans: pl.DataFrame, roots: pl.DataFrame) -> pl.DataFrame:
    """Pattern and root-cause row of every trace, all in vectorised polars.

    ``spans`` are the spans of the traces holding an error; ``roots`` gives each trace's
    ``root_span_id`` and ``root_error``. Returns trace_id, pattern and ``cause`` (a row
    index into ``spans``).

    The tree: a span's parent is the first row of its trace with its parent id. The
    chosen root has no parent (a trace whose root is not stored is rooted at its
    earliest span); a span whose parent is missing (an orphan) is a tree top at depth 1,
    as if hanging from the root; a span caught in a parent cycle is made an orphan.

    Joins go through 64-bit hashes of (trace, span id): joining on two string columns
    costs several times more. A parent found by hash is checked against the real ids,
    so a collision can only make a span an orphan, never give it a wrong parent.
    """
    n = spans.height
    rows = spans.with_row_index("_i").with_columns(
        pl.col("_i").cast(pl.Int64),
        _key("trace_id", "span_id").alias("_k"),
        pl.when(pl.col("parent_span_id").is_not_null())
        .then(_key("trace_id", "parent_span_id"))
        .alias("_pk"),
        # Attempts or branches of the same call: same trace, same parent id (orphans
        # whose parent was never stored included), same call key.
        _key("trace_id", "parent_span_id", *CALL_KEY_COLUMNS).alias("_call"),
    )
    first = rows.group_by("_k").agg(pl.col("_i").min().alias("_row"))
    root_rows = (
        roots.with_columns(_key("trace_id", "root_span_id").alias("_k"))
        .join(first, on="_k")
        .select("trace_id", pl.col("_row").alias("_root"), "root_error")
    )
    rows = rows.join(root_rows, on="trace_id", how="left", maintain_order="left").join(
        first.rename({"_k": "_pk", "_row": "_p"}), on="_pk", how="left", maintain_order="left"
    )
    index = rows["_i"]
    is_root = (index == rows["_root"]).fill_null(False)
    found = rows["_p"]
    genuine = (rows["trace_id"].gather(found) == rows["trace_id"]) & (
        rows["span_id"].gather(found) == rows["parent_span_id"]
    )
    # The root keeps no parent even when it has one (a rootless trace's earliest span).
    parent = pl.select(
        pl.when(genuine.fill_null(False) & ~is_root & (found != index)).then(found)
    ).to_series()

    terminal, distance = _ancestry(parent, index)
    # A true tree top has no parent; anything else is a cycle (or hangs below one).
    cyclic = parent.gather(terminal).is_not_null()
    if cyclic.any():
        parent = pl.select(pl.when(~cyclic).then(parent)).to_series()
        terminal, distance = _ancestry(parent, index)
    depth = distance + (terminal != rows["_root"]).fill_null(True).cast(pl.Int64)

    is_error = rows["is_error"]
    parent_error = is_error.gather(parent).fill_null(False)
    # A top is where a failure was absorbed: an error span whose parent is fine.
    top = is_error & ~parent_error & ~is_root
    error_parents = parent.filter(is_error & parent.is_not_null())
    error_child = pl.Series([False] * n).scatter(error_parents, True) if n else is_error

    # Each error span's chain top: follow error parents up to the top (or the root).
    chain_parent = pl.select(pl.when(is_error & parent_error).then(parent)).to_series()
    chain_top, _ = _ancestry(chain_parent, index)

    frame = rows.select(
        "trace_id",
        "_i",
        "_root",
        "span_id",
        "start_unix_nano",
        "end_unix_nano",
        "root_error",
        "_call",
    ).with_columns(
        _top=top,
        _err=is_error,
        _is_root=is_root,
        _depth=depth,
        _chain_top=chain_top,
        _leaf=is_error & ~error_child,
    )

    # What the caller did with each absorbed failure (a top), from the top's siblings
    # of the same call that did not fail:
    # * retried: one of them started at or after the top ended (the caller tried again
    #   and got it);
    # * failed_branch: none came later, but one ran before or alongside (a fan-out
    #   where only some branches failed; a hedged request reads this way too);
    # * degraded: none (every attempt failed, or the call was made once) and the caller
    #   still did not fail: it worked around the call, e.g. with a fallback.
    tops = frame.filter(pl.col("_top") & ~pl.col("root_error")).select(
        "_i", "_call", "end_unix_nano"
    )
    fine_siblings = frame.filter(~pl.col("_err") & ~pl.col("_is_root")).select(
        "_call", pl.col("start_unix_nano").alias("_sib_start")
    )
    severity = (
        tops.join(fine_siblings, on="_call", how="left")
        .group_by("_i")
        .agg(
            (pl.col("_sib_start") >= pl.col("end_unix_nano")).any().alias("_retried"),
            pl.col("_sib_start").is_not_null().any().alias("_other_ok"),
        )
        .select(
            pl.col("_i").alias("_chain_top"),
            pl.when(pl.col("_retried"))
            .then(_SEVERITY["retried"])
            .when(pl.col("_other_ok"))
            .then(_SEVERITY["failed_branch"])
            .otherwise(_SEVERITY["degraded"])
            .alias("_severity"),
        )
    )
    leaves = frame.filter(pl.col("_leaf")).join(severity, on="_chain_top", how="left")
    # The root cause lies in the error chains below the decisive spans: the root's own
    # chain for a failed trace, the worst-classified absorbed failures otherwise (a
    # retried redis timeout elsewhere in a failed trace is not why it failed). Among
    # those leaves: the deepest, then the earliest, then the lowest span id.
    causes = (
        leaves.with_columns(_worst=pl.col("_severity").max().over("trace_id"))
        .filter(
            pl.when(pl.col("root_error"))
            .then(pl.col("_chain_top") == pl.col("_root"))
            .otherwise(pl.col("_severity") == pl.col("_worst"))
        )
        .sort(
            ["trace_id", "_depth", "start_unix_nano", "span_id"],
            descending=[False, True, False, False],
        )
        .unique("trace_id", keep="first")
    )
    return causes.select(
        "trace_id",
        pl.when(pl.col("root_error"))
        .then(pl.lit("failed"))
        .otherwise(pl.col("_worst").replace_strict(_PATTERN_OF, return_dtype=pl.String))
        .alias("pattern"),
        pl.col("_i").alias("cause"),
    )


def _nonempty(column: str) -> pl.Expr:
    # An empty string is what most SDKs store when no message was given.
    return pl.when(pl.col(column) != "").then(pl.col(column))


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
    bad = traces.filter(pl.col("error_spans") > 0)
    total = traces.height
    failed_count = int(bad["root_error"].sum()) if bad.height else 0
    patterns: dict[str, int] = {"retried": 0, "degraded": 0, "failed_branch": 0, "failed": 0}
    out: list[dict[str, Any]] = []
    by_service: list[dict[str, Any]] = []

    if bad.height:
        bad_spans = spans.join(bad.select("trace_id"), on="trace_id", how="semi")
        analysis = _analyze(bad_spans, bad.select("trace_id", "root_span_id", "root_error"))
        causes = bad_spans[analysis["cause"].to_list()].select(
            pl.struct(
                pl.col("service_name").alias("service"),
                pl.col("name").alias("operation"),
                "span_id",
                pl.coalesce(_nonempty("status_message"), _nonempty("exception_message")).alias(
                    "message"
                ),
                "kind",
                _nonempty("exception_type").alias("exception_type"),
                _nonempty("exception_message").alias("exception_message"),
                "http_status_code",
            ).alias("root_cause"),
        )
        errors = bad_spans.filter(pl.col("is_error"))
        table = (
            bad.join(pl.concat([analysis, causes], how="horizontal"), on="trace_id")
            .join(
                errors.group_by("trace_id").agg(
                    pl.col("service_name").unique().sort().alias("error_services")
                ),
                on="trace_id",
            )
            .with_columns(
                pl.when(pl.col("root_error"))
                .then(pl.lit("failed"))
                .otherwise(pl.lit("partial"))
                .alias("outcome")
            )
            .sort(["root_start", "trace_id"])
        )
        out = table.select(
            "trace_id",
            "root_service",
            "root_operation",
            pl.col("root_start").alias("start_unix_nano"),
            (pl.col("last_end") - pl.col("first_start")).clip(0).alias("duration_ns"),
            "outcome",
            "pattern",
            "root_cause",
            "error_spans",
            pl.lit(None).alias("entities"),  # keeps the SPEC's key order; filled below
            "root_span_id",
            "spans",
            "error_services",
        ).to_dicts()
        for trace in out:
            found = entities.get(trace["trace_id"]) or {}
            trace["entities"] = {key: list(values) for key, values in sorted(found.items())}
        patterns.update(dict(table.group_by("pattern").len().iter_rows()))

        caused = table.select(
            pl.col("root_cause").struct.field("service").alias("service"), "outcome"
        ).pivot(on="outcome", index="service", values="outcome", aggregate_function="len")
        by_service = (
            errors.group_by(pl.col("service_name").alias("service"))
            .agg(pl.len().alias("error_spans"))
            .join(caused, on="service", how="left")
            .with_columns(
                *(
                    (pl.col(o) if o in caused.columns else pl.lit(0)).fill_null(0).alias(o)
                    for o in ("partial", "failed")
                )
            )
            .with_columns((pl.col("partial") + pl.col("failed")).alias("_caused"))
            .sort(
                ["_caused", "failed", "error_spans", "service"],
                descending=[True, True, True, False],
            )
            .select("service", "partial", "failed", "error_spans")
            .to_dicts()
        )

    return report_json(
        from_unix_nano,
        to_unix_nano,
        service,
        covered=total,
        failing=bad.height,
        failed=failed_count,
        patterns=patterns,
        traces=out,
        by_service=by_service,
    )


def report_json(
    from_unix_nano: int,
    to_unix_nano: int,
    service: str | None,
    *,
    covered: int,
    failing: int,
    failed: int,
    patterns: dict[str, int],
    traces: list[dict[str, Any]],
    by_service: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``failures --json`` report (SPEC.md), in its key order: ``covered`` traces in
    range, ``failing`` of them with an error span, ``failed`` of those at their root;
    ``traces`` the listed ones (the rest are counted in ``omitted_traces``)."""
    return {
        "from_unix_nano": from_unix_nano,
        "to_unix_nano": to_unix_nano,
        "summary": {
            "traces": covered,
            "ok": covered - failing,
            "partial": failing - failed,
            "failed": failed,
            "patterns": patterns,
        },
        "traces": traces,
        "service": service,
        "by_service": by_service,
        "omitted_traces": max(0, failing - len(traces)),
    }


# --------------------------------------------------------------------------- text output


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
    wide: Mapping[int, int] | None = None,
) -> str:
    """Aligned columns for the terminal. ``right`` holds the indexes of numeric columns.

    Cells are sanitised (:func:`analyzer.escaping.terminal_text`) and cut to ``max_width`` display
    columns (East Asian wide characters count two; ``wide`` overrides it per column
    index), so one hostile span name cannot push the rest of the table off the screen.
    """
    limits = wide or {}
    cells = [
        [_truncate(terminal_text(v), limits.get(i, max_width)) for i, v in enumerate(row)]
        for row in rows
    ]
    heads = [terminal_text(h) for h in headers]
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
        window += f"  service {terminal_text(report['service'])}"
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
    omitted = int(report.get("omitted_traces") or 0)
    if omitted:
        parts.append(
            f"... {omitted} more failing traces not listed (the report lists "
            f"{len(traces)}: failed first, then the newest; narrow --from/--to or pick "
            "--service to see the others; patterns and the per-service table count the "
            "listed traces)"
        )
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
