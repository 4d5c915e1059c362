"""SLOs as code: the spec file, its validation, and the report (SLI, budget, burn, alerts).

A spec is YAML (or JSON) in the SPEC format; :func:`load_slo_spec` turns it into a
:class:`SloSpec` or raises :class:`SloSpecError` naming the file, the SLO and the field of
every mistake. :func:`slo_report_spans` evaluates a spec on the store's ``slo_spans`` rows
at one instant and returns the ``slo --json`` shape; :func:`render_slo_table` and
:func:`render_slo_markdown` print it. The arithmetic and its choices are written out,
with a worked example, in ``docs/reports.md``.

Ratios are computed with :class:`fractions.Fraction` from the objective as written
(99.9 is 999/1000, not 99.900000000000006) and only turned into floats for output, so a
burn rate of exactly 14.4 is 14.4 and meets the 14.4 alert threshold.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Literal, TypeAlias, TypedDict, TypeVar, cast

import polars as pl
import yaml

from analyzer.escaping import markdown_escape, terminal_text
from analyzer.failures import errors_among, render_table, with_error_flag
from analyzer.timeparse import (
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    NS_PER_SECOND,
    format_duration,
    format_unix_nano,
    parse_duration,
)

__all__ = [
    "ALERT_PAIRS",
    "BURN_RATE_WINDOWS",
    "EVENT_SCHEMA",
    "NESTING_MARGIN_NS",
    "Alert",
    "AlertWindow",
    "Sli",
    "SloDefinition",
    "SloReport",
    "SloResult",
    "SloSpec",
    "SloSpecError",
    "load_slo_spec",
    "render_slo_markdown",
    "render_slo_table",
    "slo_events",
    "slo_frame_start",
    "slo_report_events",
    "slo_report_spans",
]

Sli: TypeAlias = Literal["availability", "latency"]
Severity: TypeAlias = Literal["page", "ticket"]

#: The burn-rate windows every report shows (SPEC: ``burn_rates``).
BURN_RATE_WINDOWS: Final[tuple[tuple[str, int], ...]] = (
    ("1h", NS_PER_HOUR),
    ("6h", 6 * NS_PER_HOUR),
    ("1d", NS_PER_DAY),
    ("3d", 3 * NS_PER_DAY),
)

#: The SRE workbook's multiwindow, multi-burn-rate alerts for a 30-day SLO (chapter 5,
#: "Alerting on SLOs", table 5-8): (severity, long window, short window, burn rate).
#: 14.4 over 1h is 2% of a 30-day budget in an hour; 6 over 6h is 5%; 3 over 1d and
#: 1 over 3d are 10%.
ALERT_PAIRS: Final[tuple[tuple[Severity, int, int, Fraction], ...]] = (
    ("page", NS_PER_HOUR, 5 * NS_PER_MINUTE, Fraction(144, 10)),
    ("page", 6 * NS_PER_HOUR, 30 * NS_PER_MINUTE, Fraction(6)),
    ("ticket", NS_PER_DAY, 2 * NS_PER_HOUR, Fraction(3)),
    ("ticket", 3 * NS_PER_DAY, 6 * NS_PER_HOUR, Fraction(1)),
)
_REFERENCE_WINDOW: Final = 30 * NS_PER_DAY


# --------------------------------------------------------------------------- the spec


class SloSpecError(ValueError):
    """A spec that cannot be used. ``errors`` lists every problem found, each naming the
    file, the SLO and the field; ``str()`` joins them on one line for the CLI."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True, slots=True)
class SloDefinition:
    name: str
    service: str
    operation: str
    sli: Sli
    objective: float
    window: str
    window_ns: int
    threshold_ms: float | None = None
    description: str | None = None
    runbook: str | None = None  # a URL or a path: what to do when this SLO alerts

    @property
    def objective_fraction(self) -> Fraction:
        """The objective as an exact fraction of events (99.9 -> 999/1000)."""
        # repr() is the shortest text that reads back as this float: what the user wrote.
        return Fraction(repr(self.objective)) / 100

    @property
    def threshold_ns(self) -> int | None:
        if self.threshold_ms is None:
            return None
        return round(Fraction(repr(self.threshold_ms)) * 1_000_000)


@dataclass(frozen=True, slots=True)
class SloSpec:
    slos: tuple[SloDefinition, ...]
    source_name: str = "slo spec"


_REQUIRED: Final = ("name", "service", "operation", "sli", "objective", "window")
_OPTIONAL: Final = ("threshold_ms", "description", "runbook")
_SLIS: Final = ("availability", "latency")


def _parse_document(text: str, source: str) -> object:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # JSON first: its error messages point at the JSON syntax the user wrote.
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SloSpecError(
                [f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        raise SloSpecError(
            [f"{source}: {where}invalid YAML: {exc.problem or exc.context or 'syntax error'}"]
        ) from None
    except yaml.YAMLError as exc:
        raise SloSpecError([f"{source}: invalid YAML: {exc}"]) from None


def _is_number(value: object) -> bool:
    # YAML reads "yes" as True, and bool is an int in Python: refuse it explicitly.
    return isinstance(value, int | float) and not isinstance(value, bool)


_Value = TypeVar("_Value")


def _threshold_ms(value: Any) -> float | None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive number of milliseconds, got {value!r}")
    return float(value)


def _objective_percent(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"must be a number of percent such as 99.5, got {value!r}")
    if not 0 < value < 100:
        # 100 leaves no error budget: every burn rate would divide by zero.
        raise ValueError(f"must be above 0 and below 100 (percent), got {value!r}")
    return float(value)


def _window_ns(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as 30d, 7d or 1h, got {value!r}")
    window_ns = parse_duration(value)
    if window_ns < NS_PER_MINUTE:
        raise ValueError(f"must be at least 1m, got {value!r}")
    return window_ns


def _key_lines(text: str) -> dict[tuple[int, str], int]:
    """(SLO index, key) -> the 1-based line the key is on, so an unknown field's error
    can say where it is; empty when the text does not compose as YAML (JSON is YAML)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[int, str], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        if key_node.value != "slos" or not isinstance(value_node, yaml.SequenceNode):
            continue
        for index, item in enumerate(value_node.value):
            if isinstance(item, yaml.MappingNode):
                for field_node, _ in item.value:
                    lines[(index, str(field_node.value))] = field_node.start_mark.line + 1
    return lines


def _check_slo(
    item: object,
    index: int,
    source: str,
    seen: set[str],
    errors: list[str],
    key_lines: Mapping[tuple[int, str], int] | None = None,
) -> SloDefinition | None:
    label = f"slo #{index + 1}"
    if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"].strip():
        label = f'slo "{terminal_text(item["name"])}"'

    def fail(field: str, problem: str) -> None:
        errors.append(f"{source}: {label}: {field} {problem}")

    if not isinstance(item, Mapping):
        errors.append(
            f"{source}: {label}: expected a mapping with the fields "
            f"{', '.join(_REQUIRED)}, got {type(item).__name__}"
        )
        return None
    before = len(errors)
    for key in item:
        if key not in _REQUIRED and key not in _OPTIONAL:
            close = difflib.get_close_matches(str(key), [*_REQUIRED, *_OPTIONAL], n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            line = (key_lines or {}).get((index, str(key)))
            where = f" (line {line})" if line is not None else ""
            fail(terminal_text(key), f"is not a known field{where}{hint}")

    strings: dict[str, str] = {}
    for field in ("name", "service", "operation"):
        value = item.get(field)
        if value is None:
            fail(field, "is required")
        elif not isinstance(value, str) or not value.strip():
            fail(field, f"must be a non-empty string, got {value!r}")
        else:
            strings[field] = value
    name = strings.get("name")
    if name is not None:
        if name in seen:
            fail("name", "is used by an earlier SLO; names must be unique")
        seen.add(name)

    sli = item.get("sli")
    if sli is None:
        fail("sli", "is required (availability or latency)")
    elif sli not in _SLIS:
        fail("sli", f"must be availability or latency, got {sli!r}")

    def parsed(
        field: str, missing: str | None, parse: Callable[[Any], _Value], unset: _Value
    ) -> _Value:
        """The field as ``parse`` reads it; ``unset`` when it is absent (a problem unless
        ``missing`` is None) or ``parse`` refuses it."""
        value = item.get(field)
        if value is None:
            if missing is not None:
                fail(field, missing)
            return unset
        try:
            return parse(value)
        except ValueError as exc:
            fail(field, str(exc))
            return unset

    threshold_ms = parsed(
        "threshold_ms",
        "is required when sli is latency" if sli == "latency" else None,
        _threshold_ms,
        None,
    )
    objective_value = parsed(
        "objective", "is required (percent of good events, e.g. 99.5)", _objective_percent, 0.0
    )
    window = item.get("window")
    window_ns = parsed("window", "is required (e.g. 30d)", _window_ns, 0)

    description = item.get("description")
    if description is not None and not isinstance(description, str):
        fail("description", f"must be a string, got {description!r}")

    runbook = item.get("runbook")
    if runbook is not None and (not isinstance(runbook, str) or not runbook.strip()):
        fail("runbook", f"must be a URL or a path, got {runbook!r}")

    if len(errors) > before:
        return None
    assert name is not None and sli in _SLIS  # every field was checked above
    return SloDefinition(
        name=name,
        service=strings["service"],
        operation=strings["operation"],
        sli="latency" if sli == "latency" else "availability",
        objective=objective_value,
        window=str(window).strip(),
        window_ns=window_ns,
        threshold_ms=threshold_ms,
        description=description,
        runbook=runbook.strip() if isinstance(runbook, str) else None,
    )


def load_slo_spec(text: str, source_name: str = "slo spec") -> SloSpec:
    """Parse and validate a spec (YAML or JSON). ``source_name`` prefixes every error.

    Errors look like ``slo.yaml: slo "checkout-availability": threshold_ms is required
    when sli is latency`` (an SLO without a usable name is ``slo #N``, counting from 1).
    All problems are collected before raising, so one run shows every fix to make.
    """
    source = terminal_text(source_name)
    document = _parse_document(text, source)
    if document is None:
        raise SloSpecError([f"{source}: the file is empty; expected a 'slos:' list"])
    if not isinstance(document, Mapping) or "slos" not in document:
        raise SloSpecError([f"{source}: expected a mapping with a 'slos:' list at the top level"])
    extra = [str(k) for k in document if k != "slos"]
    items = document["slos"]
    errors: list[str] = [
        f"{source}: {terminal_text(k)} is not a known top-level field (only slos)" for k in extra
    ]
    if not isinstance(items, list) or not items:
        errors.append(f"{source}: slos must be a non-empty list of SLOs")
        raise SloSpecError(errors)
    seen: set[str] = set()
    key_lines = _key_lines(text)
    slos = [_check_slo(item, i, source, seen, errors, key_lines) for i, item in enumerate(items)]
    if errors:
        raise SloSpecError(errors)
    return SloSpec(slos=tuple(s for s in slos if s is not None), source_name=source_name)


# --------------------------------------------------------------------------- the report


# The report's shape; slo_report_events returns it as a plain dict (see analyzer.failures).


class Alert(TypedDict):
    severity: Severity
    long_window: str
    short_window: str
    #: The burn rate observed over the long window (what is happening); the rule's
    #: threshold is in ``threshold``.
    burn_rate: float
    # Added fields.
    short_burn_rate: float
    threshold: float


class AlertWindow(TypedDict):
    severity: Severity
    long_window: str
    short_window: str
    threshold: float
    long_burn_rate: float
    short_burn_rate: float
    firing: bool


class SloResult(TypedDict):
    name: str
    window: str
    objective: float
    total: int
    good: int
    bad: int
    partial: int
    sli: float
    error_budget_remaining: float
    burn_rates: dict[str, float]
    alerts: list[Alert]
    affected_entities: dict[str, list[str]]
    # Added fields.
    service: str
    operation: str
    indicator: Sli
    threshold_ms: float | None
    window_start_unix_nano: int
    affected_traces: int
    alert_windows: list[AlertWindow]
    runbook: str | None


class SloReport(TypedDict):
    at_unix_nano: int
    slos: list[SloResult]
    # Added field.
    source: str


def _scaled(length_ns: int, window_ns: int) -> int:
    """An alert window for an SLO window, scaled from 30 days; whole seconds, >= 1 s."""
    scaled = Fraction(length_ns * window_ns, _REFERENCE_WINDOW)
    seconds = max(1, round(scaled / NS_PER_SECOND))
    return seconds * NS_PER_SECOND


def slo_frame_start(spec: SloSpec, at_unix_nano: int) -> int:
    """The earliest span start a report reads: the longest SLO window, or the
    3-day burn-rate window if that is longer. The store should fetch whole traces from
    here to ``at_unix_nano`` (inclusive)."""
    longest = max([3 * NS_PER_DAY, *(s.window_ns for s in spec.slos)])
    return at_unix_nano - longest


def _joined_match(first: str, second: str, separator: str, operation: str) -> pl.Expr:
    """``first + separator + second == operation`` without building the joined text of
    every row: true exactly when the operation splits at one of its separators into the
    two values."""
    splits = [i for i, char in enumerate(operation) if char == separator]
    parts = [
        (pl.col(first) == operation[:i]) & (pl.col(second) == operation[i + 1 :]) for i in splits
    ]
    return pl.any_horizontal(parts) if parts else pl.lit(False)


def _operation_match(operation: str) -> pl.Expr:
    # The SPEC's three spellings, plus "METHOD route" (a frontend SLO on "POST /checkout"
    # still matches when the span is named just "POST", as older HTTP conventions do)
    # and "service/method" for gRPC.
    return (
        (pl.col("name") == operation)
        | (pl.col("http_route") == operation)
        | (pl.col("rpc_method") == operation)
        | _joined_match("http_method", "http_route", " ", operation)
        | _joined_match("rpc_service", "rpc_method", "/", operation)
    ).fill_null(False)


#: One SLO's events, reduced to what the report needs (:func:`slo_events`): when each
#: started, whether it is bad, whether it is good with a failure beneath it (``partial``),
#: and, for bad events only, the hex trace id (whose entities the report lists). Small
#: enough for :class:`analyzer.source.LocalSource` to keep per day of the store.
EVENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "start": pl.Int64(),
    "bad": pl.Boolean(),
    "partial": pl.Boolean(),
    "trace_id": pl.String(),
}


def _events(
    slo: SloDefinition,
    flagged: pl.DataFrame,
    explained: Callable[[], pl.DataFrame] | None,
) -> pl.DataFrame:
    """The SLO's valid events among ``flagged``, as :data:`EVENT_SCHEMA`.

    ``flagged`` holds candidate spans with ``span_key``/``parent_key`` (see
    :func:`slo_report_spans`) and ``is_error``. A span nested in another span of the same
    SLO (two instrumentation layers naming the same request, as Next.js and its HTTP
    server do in the OTel demo) is one request, so only the outermost counts.
    ``explained()`` gives the keys of spans with an error beneath them; without it no
    event is marked partial.
    """
    matching = flagged.filter(
        (pl.col("service_name") == slo.service) & _operation_match(slo.operation)
    )
    # Null keys never match (a root has no parent key): polars joins leave nulls unequal.
    outer = matching.join(
        matching.select(pl.col("span_key").alias("parent_key")), on="parent_key", how="anti"
    )
    if slo.sli == "latency":
        # The workbook's latency SLI is the share of *successful* requests served fast
        # enough: errors belong to the availability SLO, and a fast 500 must not count
        # as good latency. Exactly at the threshold is good ("within 300 ms").
        threshold = slo.threshold_ns
        assert threshold is not None
        valid = ~pl.col("is_error")
        bad = valid & (pl.col("duration") > threshold)
    else:
        valid = pl.lit(True)
        bad = pl.col("is_error")
    events = outer.select(
        "span_key",
        pl.col("start_unix_nano").alias("start"),
        bad.alias("bad"),
        pl.when(bad).then(pl.col("trace_id")).alias("trace_id"),
        valid.alias("valid"),
    ).filter(pl.col("valid"))
    good = events.filter(~pl.col("bad")).select("span_key")
    if explained is None or not good.height:
        return events.select("start", "bad", pl.lit(False).alias("partial"), "trace_id")
    beneath = good.join(explained(), on="span_key", how="semi").with_columns(
        pl.lit(True).alias("partial")
    )
    return events.join(beneath, on="span_key", how="left").select(
        "start", "bad", pl.col("partial").fill_null(False), "trace_id"
    )


def _with_error_ancestry(tree: pl.DataFrame) -> pl.DataFrame:
    """``span_key`` of every span in ``tree`` that has an error descendant.

    Keys name the trace as well as the span, so the walk stays inside each trace."""
    edges = tree.select("span_key", "parent_key")
    frontier = (
        errors_among(tree).select(pl.col("parent_key").alias("span_key")).drop_nulls().unique()
    )
    found = frontier
    # One join per tree level; the anti-join against what is already found ends a
    # parent cycle in hostile input after one lap.
    while frontier.height:
        frontier = (
            frontier.join(edges, on="span_key")
            .select(pl.col("parent_key").alias("span_key"))
            .drop_nulls()
            .unique()
            .join(found, on="span_key", how="anti")
        )
        found = pl.concat([found, frontier])
    return found


def _ratio(bad: int, total: int) -> Fraction:
    return Fraction(bad, total) if total else Fraction(0)


def _burn(events: pl.DataFrame, since: int, budget: Fraction) -> Fraction:
    """Bad fraction of the events that started after ``since``, over the budget."""
    window = events.filter(pl.col("start") > since)
    total = window.height
    bad = int(window["bad"].sum()) if total else 0
    return _ratio(bad, total) / budget


@dataclass(slots=True)
class _Measured:
    """One SLO's events over its window and the burn-rate horizon."""

    slo: SloDefinition
    events: pl.DataFrame
    in_window: pl.DataFrame
    bad_traces: list[str]


def _measure(slo: SloDefinition, events: pl.DataFrame, at: int) -> _Measured:
    """``events`` (:data:`EVENT_SCHEMA`, any range) cut to (horizon, at]."""
    window_start = at - slo.window_ns
    horizon = min(window_start, at - BURN_RATE_WINDOWS[-1][1])
    events = events.filter((pl.col("start") > horizon) & (pl.col("start") <= at))
    in_window = events.filter(pl.col("start") > window_start)
    bad_traces = in_window.filter(pl.col("bad"))["trace_id"].unique().sort().to_list()
    return _Measured(slo, events, in_window, bad_traces)


def _evaluate(
    measured: _Measured,
    entities: Mapping[str, Mapping[str, Sequence[str]]],
    at: int,
) -> SloResult:
    slo, events, in_window = measured.slo, measured.events, measured.in_window
    budget = 1 - slo.objective_fraction
    window_start = at - slo.window_ns
    total = in_window.height
    bad = int(in_window["bad"].sum()) if total else 0
    good = total - bad
    partial = int(in_window["partial"].sum()) if total else 0

    # With no events there is no evidence of unreliability: the SLI is met (1.0) and
    # nothing of the budget is spent, rather than a NaN that breaks every consumer.
    sli = Fraction(good, total) if total else Fraction(1)
    remaining = 1 - _ratio(bad, total) / budget

    burn_rates = {
        label: float(_burn(events, at - length, budget)) for label, length in BURN_RATE_WINDOWS
    }

    alert_windows: list[AlertWindow] = []
    alerts: list[Alert] = []
    for severity, long_ns, short_ns, threshold in ALERT_PAIRS:
        long_len = _scaled(long_ns, slo.window_ns)
        short_len = _scaled(short_ns, slo.window_ns)
        long_burn = _burn(events, at - long_len, budget)
        short_burn = _burn(events, at - short_len, budget)
        # "Exceeds" is read as "reaches": the workbook's 14.4 is the rate that spends
        # 2% of the budget in an hour, which is meant to page.
        firing = long_burn >= threshold and short_burn >= threshold
        alert_windows.append(
            AlertWindow(
                severity=severity,
                long_window=format_duration(long_len),
                short_window=format_duration(short_len),
                threshold=float(threshold),
                long_burn_rate=float(long_burn),
                short_burn_rate=float(short_burn),
                firing=firing,
            )
        )
        if firing:
            alerts.append(
                Alert(
                    severity=severity,
                    long_window=format_duration(long_len),
                    short_window=format_duration(short_len),
                    burn_rate=float(long_burn),
                    short_burn_rate=float(short_burn),
                    threshold=float(threshold),
                )
            )

    merged: dict[str, set[str]] = {}
    for trace_id in measured.bad_traces:
        for key, values in (entities.get(trace_id) or {}).items():
            merged.setdefault(key, set()).update(values)

    return SloResult(
        name=slo.name,
        window=slo.window,
        objective=slo.objective,
        total=total,
        good=good,
        bad=bad,
        partial=partial,
        sli=float(sli),
        error_budget_remaining=float(remaining),
        burn_rates=burn_rates,
        alerts=alerts,
        affected_entities={k: sorted(v) for k, v in sorted(merged.items())},
        service=slo.service,
        operation=slo.operation,
        indicator=slo.sli,
        threshold_ms=slo.threshold_ms,
        window_start_unix_nano=window_start,
        affected_traces=len(measured.bad_traces),
        alert_windows=alert_windows,
        runbook=slo.runbook,
    )


def _flagged(frame: pl.DataFrame) -> pl.DataFrame:
    return with_error_flag(frame).with_columns(
        (pl.col("end_unix_nano") - pl.col("start_unix_nano")).alias("duration")
    )


_EntitiesFor: TypeAlias = Callable[[list[str]], Mapping[str, Mapping[str, Sequence[str]]]]


def _slo_events(
    spec: SloSpec, events: pl.DataFrame, tree: pl.DataFrame | None
) -> list[pl.DataFrame]:
    """Each SLO's events (:data:`EVENT_SCHEMA`) among the candidate spans ``events``;
    ``tree`` holds the spans to walk up from errors (None: mark nothing partial)."""
    # Only what selects and judges events: each SLO's filters copy fewer columns.
    flagged = _flagged(events).select(
        "trace_id",
        "span_key",
        "parent_key",
        "service_name",
        "name",
        "http_method",
        "http_route",
        "rpc_service",
        "rpc_method",
        "start_unix_nano",
        "duration",
        "is_error",
    )
    ancestry: list[pl.DataFrame] = []

    def explained() -> pl.DataFrame:
        # The walk is the same for every SLO: done once, and only if some SLO needs it.
        if not ancestry:
            assert tree is not None
            ancestry.append(_with_error_ancestry(tree))
        return ancestry[0]

    return [_events(slo, flagged, explained if tree is not None else None) for slo in spec.slos]


def _slo_events_of_rows(spec: SloSpec, spans: pl.DataFrame) -> list[pl.DataFrame]:
    """:func:`_slo_events` on the store's ``SpanReader.slo_spans`` rows: the event rows
    are the candidates, the others the troubled traces' trees."""
    return _slo_events(spec, spans.filter(pl.col("event")), spans.filter(~pl.col("event")))


def slo_report_events(
    spec: SloSpec,
    events: Sequence[pl.DataFrame],
    entities_for: _EntitiesFor,
    at_unix_nano: int,
) -> dict[str, Any]:
    """The report from each SLO's events (one :data:`EVENT_SCHEMA` frame per SLO of
    ``spec``, in order, covering at least :func:`slo_frame_start` .. at; rows outside are
    ignored). ``entities_for`` is called once, with the hex ids of the traces that hold a
    bad event in some SLO's window, and returns their entities."""
    measured = [_measure(slo, ev, at_unix_nano) for slo, ev in zip(spec.slos, events, strict=True)]
    entities = entities_for(sorted({t for m in measured for t in m.bad_traces}))
    report = SloReport(
        at_unix_nano=at_unix_nano,
        slos=[_evaluate(m, entities, at_unix_nano) for m in measured],
        source=spec.source_name,
    )
    # A plain dict for callers (JSON bodies); SloReport checks the shape where built.
    return cast(dict[str, Any], report)


def slo_events(
    spec: SloSpec, spans: pl.DataFrame, start_unix_nano: int, end_unix_nano: int
) -> list[pl.DataFrame]:
    """Each SLO's events that started in [start, end), as :data:`EVENT_SCHEMA`, from the
    store's narrow ``SpanReader.slo_spans`` rows.

    Ask the store for rows from :data:`NESTING_MARGIN_NS` before ``start``: an event
    nested in another of the same SLO that started just before ``start`` is then known to
    be nested. Reports made of such pieces (:func:`slo_report_events` on their
    concatenation) equal one report over the whole range, as long as no trace reaches
    further than the store's margin beyond its piece."""
    inside = (pl.col("start") >= start_unix_nano) & (pl.col("start") < end_unix_nano)
    return [frame.filter(inside) for frame in _slo_events_of_rows(spec, spans)]


#: How far before a piece's start :func:`slo_events` wants candidate rows.
NESTING_MARGIN_NS: Final = NS_PER_HOUR


def slo_report_spans(
    spec: SloSpec,
    spans: pl.DataFrame,
    entities_for: _EntitiesFor,
    at_unix_nano: int,
) -> dict[str, Any]:
    """The report on the store's narrow ``SpanReader.slo_spans`` rows (from
    :func:`slo_frame_start` to ``at`` + 1, the spec's services and operations), the same
    report as over whole traces. ``entities_for`` is called once, with the hex ids of the
    traces that hold a bad event, and returns their entities."""
    return slo_report_events(spec, _slo_events_of_rows(spec, spans), entities_for, at_unix_nano)


# --------------------------------------------------------------------------- text output


def _percent(value: float, digits: int = 3) -> str:
    return f"{value * 100:.{digits}f}%"


def _rate(value: float) -> str:
    return f"{value:.2f}"


def _entities_line(entities: Mapping[str, Sequence[str]], limit: int) -> list[tuple[str, str, int]]:
    return [
        (key, ", ".join(values[:limit]), max(0, len(values) - limit))
        for key, values in entities.items()
    ]


def render_slo_table(report: Mapping[str, Any]) -> str:
    """The report for a terminal: one row per SLO, then its firing alerts and entities."""
    rows = []
    for s in report["slos"]:
        indicator = s.get("indicator", "")
        if indicator == "latency" and s.get("threshold_ms") is not None:
            indicator = f"latency<={s['threshold_ms']:g}ms"
        rows.append(
            (
                s["name"],
                f"{s.get('service', '')}: {s.get('operation', '')}",
                indicator,
                f"{s['objective']:g}%",
                s["window"],
                s["total"],
                s["bad"],
                s["partial"],
                _percent(s["sli"]),
                _percent(s["error_budget_remaining"], 1),
                *(_rate(s["burn_rates"].get(label, 0.0)) for label, _ in BURN_RATE_WINDOWS),
                ", ".join(
                    f"{a['severity']} {a['long_window']}/{a['short_window']}" for a in s["alerts"]
                )
                or "-",
            )
        )
    table = render_table(
        (
            "SLO",
            "SERVICE: OPERATION",
            "SLI",
            "OBJECTIVE",
            "WINDOW",
            "EVENTS",
            "BAD",
            "PARTIAL",
            "SLI VALUE",
            "BUDGET LEFT",
            "BURN 1h",
            "6h",
            "1d",
            "3d",
            "ALERTS",
        ),
        rows,
        right=frozenset(range(5, 14)),
        max_width=40,
        wide={14: 120},  # every firing alert must show
    )
    lines = [f"SLO report at {format_unix_nano(report['at_unix_nano'])}", "", table]
    for s in report["slos"]:
        if s.get("runbook"):
            lines.append("")
            lines.append(f"{terminal_text(s['name'])}: runbook {terminal_text(s['runbook'])}")
    for s in report["slos"]:
        if s["affected_entities"]:
            lines.append("")
            lines.append(f"{terminal_text(s['name'])}: affected entities")
            for key, shown, more in _entities_line(s["affected_entities"], 10):
                extra = f" (+{more} more)" if more else ""
                lines.append(f"  {terminal_text(key)}: {terminal_text(shown)}{extra}")
    return "\n".join(lines)


def _md(value: object) -> str:
    """Span text for the pasted Markdown: controls shown as escapes, then escaped."""
    return markdown_escape(terminal_text(value))


def markdown_runbook(runbook: str) -> str:
    """A runbook for Markdown: an http(s) URL as a link (its text escaped, the target with
    the characters that would end it percent-encoded), anything else as escaped text."""
    text = terminal_text(runbook)
    if is_web_link(text):
        target = "".join(f"%{ord(c):02X}" if c in "()<> " else c for c in text)
        return f"[{_md(text)}]({target})"
    return _md(text)


def is_web_link(runbook: str) -> bool:
    """Whether a runbook is a link to follow (http or https), not a path to show."""
    lowered = runbook.strip().lower()
    return lowered.startswith(("http://", "https://")) and len(lowered) > len("https://")


def render_slo_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown to paste into a postmortem: a summary table, then per SLO
    the alert windows and the affected business entities. All data is escaped."""
    at = format_unix_nano(report["at_unix_nano"])
    out = [
        f"## SLO report at {at}",
        "",
        "| SLO | Service: operation | SLI | Objective | Window | Events | Bad | Partial "
        "| SLI value | Budget left | Burn 1h | Burn 6h | Burn 1d | Burn 3d | Alerts |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in report["slos"]:
        indicator = str(s.get("indicator", ""))
        if indicator == "latency" and s.get("threshold_ms") is not None:
            indicator = f"latency ≤ {s['threshold_ms']:g} ms"
        alerts = ", ".join(
            f"**{a['severity']}** ({a['long_window']}/{a['short_window']})" for a in s["alerts"]
        )
        cells = [
            _md(s["name"]),
            _md(f"{s.get('service', '')}: {s.get('operation', '')}"),
            _md(indicator),
            _md(f"{s['objective']:g}%"),
            _md(s["window"]),
            str(s["total"]),
            str(s["bad"]),
            str(s["partial"]),
            _percent(s["sli"]),
            _percent(s["error_budget_remaining"], 1),
            *(_rate(s["burn_rates"].get(label, 0.0)) for label, _ in BURN_RATE_WINDOWS),
            alerts or "none",
        ]
        out.append("| " + " | ".join(cells) + " |")
    for s in report["slos"]:
        out += ["", f"### {_md(s['name'])}", ""]
        remaining = s["error_budget_remaining"]
        objective = f"{s['objective']:g}"
        spent = "overspent" if remaining < 0 else "left"
        out.append(
            f"- {s['good']} good of {s['total']} events ({_percent(s['sli'])}) against "
            f"{_md(objective)}% over {_md(s['window'])}; "
            f"error budget {spent}: {_percent(remaining, 1)}."
        )
        if s["partial"]:
            events = "event" if s["partial"] == 1 else "events"
            out.append(f"- {s['partial']} good {events} hid a failure beneath (partial failures).")
        if s.get("runbook"):
            out.append(f"- Runbook: {markdown_runbook(s['runbook'])}")
        windows = s.get("alert_windows") or []
        if windows:
            out += [
                "",
                "| Severity | Long / short window | Threshold | Long burn | Short burn | Firing |",
                "|---|---|---:|---:|---:|---|",
            ]
            for w in windows:
                out.append(
                    f"| {w['severity']} | {_md(w['long_window'])} / {_md(w['short_window'])} "
                    f"| {w['threshold']:g} | {_rate(w['long_burn_rate'])} "
                    f"| {_rate(w['short_burn_rate'])} | {'**yes**' if w['firing'] else 'no'} |"
                )
        if s["affected_entities"]:
            out += [
                "",
                f"Affected entities ({s.get('affected_traces', 0)} traces with bad events):",
                "",
            ]
            for key, shown, more in _entities_line(s["affected_entities"], 50):
                extra = f" and {more} more" if more else ""
                out.append(f"- {_md(key)}: {_md(shown)}{extra}")
    return "\n".join(out) + "\n"
