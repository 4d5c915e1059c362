"""``find`` and ``compare`` (SPEC.md): the query language's two reports, and ids pasted
as prefixes.

The store compiles and runs the query (``spanstore.query``); this module shapes the
answers. ``compare`` works on a fixed pseudo-random sample of each side (at most
:data:`COMPARE_SAMPLE` spans, like Honeycomb's BubbleUp): shares of attribute values are
fractions, and a sample of 10,000 puts each within about one percentage point (95%).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from spanstore import SpanReader
from spanstore.query import QueryError, parse
from spanstore.query.ast import Query
from spanstore.query.reader import MIN_PREFIX, SampledSpan

#: Spans read from each side of a comparison.
COMPARE_SAMPLE: Final = 10_000
#: Attribute values listed by ``compare``.
COMPARE_TOP: Final = 200
#: A key is left out of ``compare`` when its values are this distinct (ids, timestamps).
DISTINCT_SHARE: Final = 0.5
_ID_KEY: Final = re.compile(r"(^|[._])(id|uuid|guid|timestamp|time|trace_id|span_id)$", re.I)
#: Duration buckets' upper bounds (ns): 1-2-5 steps from 1 ms to 100 s.
DURATION_BOUNDS: Final = (
    *(m * 10**e for e in range(6, 11) for m in (1, 2, 5)),
    100_000_000_000,
)


class BadQuery(ValueError):
    """The query text is wrong: the one-line message of ``QueryError``."""


def parsed(text: str | None) -> Query:
    if text is None or not text.strip():
        raise BadQuery(
            "query error at position 1: expected a spanset filter such as { status = error }"
        )
    try:
        return parse(text)
    except QueryError as exc:
        raise BadQuery(str(exc)) from None


def find(reader: SpanReader, text: str, start: int, end: int, limit: int = 100) -> dict[str, Any]:
    query = parsed(text)
    if limit < 0:
        raise BadQuery("--limit must be 0 or more")
    total, traces = reader.find_traces(query, start, end, limit)  # entities included
    return {
        "query": text,
        "from_unix_nano": start,
        "to_unix_nano": end,
        "total": total,
        "traces": traces,
    }


def trace_ids(reader: SpanReader, text: str, start: int, end: int) -> list[str]:
    return reader.query_trace_ids(parsed(text), start, end)


# --------------------------------------------------------------------------- compare


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _counts(spans: Sequence[SampledSpan]) -> Counter[tuple[str, str]]:
    """How many spans carry each (key, value). Keys are unique within a span, so each
    pair counts once per span; one Counter over one list keeps the loop in C."""
    pairs: list[tuple[str, str]] = []
    by_resource: dict[int, list[tuple[str, str]]] = {}
    for span in spans:
        pairs.append(("name", span.name))
        pairs.append(("kind", span.kind))
        pairs.append(("resource.service.name", span.service_name))
        pairs.extend(
            ("span." + key, value if type(value) is str else _text(value))
            for key, value in span.attributes.items()
        )
        resource = span.resource_attributes
        cached = by_resource.get(id(resource))
        if cached is None:
            cached = [
                ("resource." + key, _text(value))
                for key, value in resource.items()
                if key != "service.name"
            ]
            by_resource[id(resource)] = cached
        pairs.extend(cached)
    return Counter(pairs)


def attribute_shares(
    selection: Sequence[SampledSpan],
    baseline: Sequence[SampledSpan],
    selection_total: int,
    baseline_total: int,
) -> list[dict[str, Any]]:
    """Each attribute value's share of the selection and of the baseline, most
    over-represented first (score: the difference of the two shares)."""
    chosen, base = _counts(selection), _counts(baseline)
    occurrences: Counter[str] = Counter()
    distinct: Counter[str] = Counter()
    for (key, _), n in (chosen + base).items():
        occurrences[key] += n
        distinct[key] += 1
    rows: list[dict[str, Any]] = []
    for pair in set(chosen) | set(base):
        key, value = pair
        in_selection, in_baseline = chosen.get(pair, 0), base.get(pair, 0)
        if in_selection + in_baseline <= 1:
            continue  # a value of one span explains nothing
        if _ID_KEY.search(key.split(".", 1)[-1]) and key not in ("name", "kind"):
            continue
        if distinct[key] > 1 and distinct[key] > DISTINCT_SHARE * occurrences[key]:
            continue  # nearly one value per span: an id or a timestamp by another name
        selection_fraction = in_selection / len(selection) if selection else 0.0
        baseline_fraction = in_baseline / len(baseline) if baseline else 0.0
        rows.append(
            {
                "key": key,
                "value": value,
                "selection_spans": round(selection_fraction * selection_total),
                "baseline_spans": round(baseline_fraction * baseline_total),
                "selection_fraction": round(selection_fraction, 6),
                "baseline_fraction": round(baseline_fraction, 6),
                "score": round(selection_fraction - baseline_fraction, 6),
            }
        )
    rows.sort(key=lambda r: (-float(r["score"]), str(r["key"]), str(r["value"])))
    return rows[:COMPARE_TOP]


def _percentile(sorted_values: Sequence[int], q: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return int(sorted_values[index])


def duration_view(
    selection: Sequence[SampledSpan], baseline: Sequence[SampledSpan]
) -> dict[str, Any]:
    """Percentiles of both sides and their share of spans per duration bucket."""

    def summary(spans: Sequence[SampledSpan]) -> dict[str, Any]:
        values = sorted(s.duration_ns for s in spans)
        return {
            "spans": len(values),
            "p50_ns": _percentile(values, 0.5),
            "p90_ns": _percentile(values, 0.9),
            "p99_ns": _percentile(values, 0.99),
            "max_ns": values[-1] if values else None,
        }

    def shares(spans: Sequence[SampledSpan]) -> list[float]:
        counts = [0] * (len(DURATION_BOUNDS) + 1)
        for span in spans:
            index = next(
                (i for i, bound in enumerate(DURATION_BOUNDS) if span.duration_ns <= bound),
                len(DURATION_BOUNDS),
            )
            counts[index] += 1
        return [round(c / len(spans), 6) if spans else 0.0 for c in counts]

    chosen, base = shares(selection), shares(baseline)
    buckets = [
        {
            "le_ns": DURATION_BOUNDS[i] if i < len(DURATION_BOUNDS) else None,
            "selection_fraction": chosen[i],
            "baseline_fraction": base[i],
        }
        for i in range(len(DURATION_BOUNDS) + 1)
    ]
    return {"selection": summary(selection), "baseline": summary(baseline), "buckets": buckets}


def compare(
    reader: SpanReader,
    text: str,
    baseline_text: str | None,
    start: int,
    end: int,
    sample: int = COMPARE_SAMPLE,
) -> dict[str, Any]:
    query = parsed(text)
    baseline_query = parsed(baseline_text) if baseline_text else None
    selection_total, selection = reader.sample_spans(query, start, end, sample)
    if baseline_query is not None:
        baseline_total, baseline = reader.sample_spans(baseline_query, start, end, sample)
    else:
        baseline_total, baseline = reader.sample_spans(query, start, end, sample, complement=True)
    return {
        "selection": {"query": text, "spans": selection_total, "sampled_spans": len(selection)},
        "baseline": {
            "query": baseline_text or None,
            "spans": baseline_total,
            "sampled_spans": len(baseline),
        },
        "from_unix_nano": start,
        "to_unix_nano": end,
        "attributes": attribute_shares(selection, baseline, selection_total, baseline_total),
        "durations": duration_view(selection, baseline),
    }


# --------------------------------------------------------------------------- ids


_HEX: Final = frozenset("0123456789abcdef")


class AmbiguousId(ValueError):
    pass


def resolve_trace_id(reader: SpanReader, text: str) -> str | None:
    """A full id as given (lowercase); a prefix of >= 8 hex digits as the one stored trace
    it starts; None when nothing starts so. Raises ValueError for text that is no id,
    :class:`AmbiguousId` naming the candidates when several traces start so."""
    cleaned = text.strip().lower()
    if not cleaned or any(c not in _HEX for c in cleaned) or len(cleaned) > 32:
        raise ValueError(
            f"trace id must be hex digits (a prefix of 8 or more, or all 32), got {text!r}"
        )
    if len(cleaned) == 32:
        return cleaned
    if len(cleaned) < MIN_PREFIX:
        raise ValueError(
            f"trace id {text!r} is too short: give at least {MIN_PREFIX} hex digits, or all 32"
        )
    found = reader.trace_ids_with_prefix(cleaned, limit=6)
    if not found:
        return None
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise AmbiguousId(
            f"trace id prefix {cleaned!r} matches several traces: {shown}; give more digits"
        )
    return found[0]
