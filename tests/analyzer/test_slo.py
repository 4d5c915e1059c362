"""The SLO report (analyzer.slo): arithmetic against numbers computed by hand, event
selection, partial failures, alerts, entities, and the table and Markdown renderers.

Every expected number below is worked out in the comments next to it, from the SPEC's
formulas: sli = good/total, error_budget_remaining = 1 - (bad/total) / (1 - objective/100),
burn_rates[w] = (bad/total over the last w) / (1 - objective/100).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
import pytest

from analyzer.slo import (
    Alert,
    AlertWindow,
    SloReport,
    SloResult,
    SloSpec,
    load_slo_spec,
    render_slo_markdown,
    render_slo_table,
    slo_frame_start,
    slo_report_spans,
)
from spanstore.frame import FRAME_SCHEMA

MS = 1_000_000
SECOND = 1_000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
AT = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z

_counter = iter(range(1, 10**9))


def span(
    start: int,
    *,
    error: bool = False,
    dur_ms: float = 10,
    service: str = "frontend",
    name: str = "POST /checkout",
    kind: str = "SERVER",
    trace_id: str | None = None,
    span_id: str | None = None,
    parent: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One span row; by default a root SERVER span in a trace of its own."""
    n = next(_counter)
    return {
        "trace_id": trace_id or f"{n:032x}",
        "span_id": span_id or f"{n:016x}",
        "parent_span_id": parent,
        "service_name": service,
        "name": name,
        "kind": kind,
        "start_unix_nano": start,
        "end_unix_nano": start + int(dur_ms * MS),
        "duration_ns": int(dur_ms * MS),
        "status_code": "ERROR" if error else "UNSET",
        "status_message": "boom" if error else "",
        **extra,
    }


def frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    rows = list(rows)
    return pl.DataFrame(
        {name: [r.get(name) for r in rows] for name in FRAME_SCHEMA}, schema=FRAME_SCHEMA
    )


def slo_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """A span frame as ``SpanReader.slo_spans`` rows: every span is both a candidate event
    and part of the trees walked up from errors (keys joined by NUL, which no id holds)."""
    keyed = frame.with_columns(
        pl.concat_str(["trace_id", "span_id"], separator="\0").alias("span_key"),
        pl.concat_str(["trace_id", "parent_span_id"], separator="\0").alias("parent_key"),
    )
    return pl.concat([keyed.with_columns(event=pl.lit(True)), keyed.with_columns(event=False)])


def slo_report(
    spec: SloSpec,
    frame: pl.DataFrame,
    entities: Mapping[str, Mapping[str, Sequence[str]]],
    at: int,
    asked: list[list[str]] | None = None,
) -> dict[str, Any]:
    """The report over whole traces, on the path the server takes (``slo_report_spans``,
    as ``LocalSource.slo`` calls it); ``asked`` collects the trace ids whose entities the
    report asked for (the traces with a bad event)."""

    def entities_for(trace_ids: list[str]) -> Mapping[str, Mapping[str, Sequence[str]]]:
        if asked is not None:
            asked.append(trace_ids)
        return entities

    return slo_report_spans(spec, slo_rows(frame), entities_for, at)


def spread(count: int, newest: int, oldest: int, **kwargs: Any) -> list[dict[str, Any]]:
    """``count`` events evenly inside (oldest, newest]: the first exactly at newest."""
    step = (newest - oldest) // count
    return [span(newest - i * step, **kwargs) for i in range(count)]


def spec(**fields: Any) -> str:
    slo = {
        "name": "checkout-availability",
        "service": "frontend",
        "operation": "POST /checkout",
        "sli": "availability",
        "objective": 99.9,
        "window": "30d",
        **fields,
    }
    return json.dumps({"slos": [slo]})


def one(rows: Iterable[dict[str, Any]], at: int = AT, **fields: Any) -> dict[str, Any]:
    report = slo_report(load_slo_spec(spec(**fields), "slo.json"), frame(rows), {}, at)
    assert report["at_unix_nano"] == at
    (result,) = report["slos"]
    return dict(result)


# --------------------------------------------------------------------------- arithmetic


def page_scenario() -> list[dict[str, Any]]:
    """Six hours of 2,500 checkouts an hour; 36 of the last hour's fail in its last 5m.

    At 2,500 events an hour a 30-day window holds 1.8M events, and a 99.9% objective
    allows 0.1% of them to fail: 1,800. Two per cent of that budget is 36 bad events;
    spent within one hour they make a bad fraction of 36/2500 = 1.44%, a burn rate of
    1.44% / 0.1% = 14.4, the SRE workbook's fast-burn page.
    """
    rows: list[dict[str, Any]] = []
    # The last hour: 250 events in (at-5m, at] of which 36 bad, 750 in (at-30m, at-5m],
    # 1,500 in (at-1h, at-30m].
    last5 = spread(250, AT, AT - 5 * MINUTE)
    for row in last5[:36]:
        row["status_code"] = "ERROR"
    rows += last5
    rows += spread(750, AT - 5 * MINUTE, AT - 30 * MINUTE)
    rows += spread(1500, AT - 30 * MINUTE, AT - HOUR)
    # Five quiet hours before it, 2,500 good events each.
    for h in range(1, 6):
        rows += spread(2500, AT - h * HOUR, AT - (h + 1) * HOUR)
    return rows


def test_fast_burn_pages_with_hand_computed_numbers() -> None:
    result = one(page_scenario())
    # Window (30d) holds 6 x 2,500 = 15,000 events, 36 bad.
    assert (result["total"], result["good"], result["bad"]) == (15_000, 14_964, 36)
    assert result["partial"] == 0
    assert result["sli"] == pytest.approx(14_964 / 15_000)  # 0.9976
    # 1 - (36/15000) / 0.001 = 1 - 2.4 = -1.4: the budget is overspent.
    assert result["error_budget_remaining"] == pytest.approx(-1.4)
    assert result["burn_rates"] == {
        "1h": 14.4,  # 36/2,500 = 1.44% over 0.1%, exactly (no float drift)
        "6h": pytest.approx(2.4),  # 36/15,000
        "1d": pytest.approx(2.4),  # the same events: there is no older traffic
        "3d": pytest.approx(2.4),
    }
    # 5m: 36/250 = 14.4% -> 144; 30m: 36/1,000 -> 36; 2h: 36/5,000 -> 7.2.
    windows = {(w["long_window"], w["short_window"]): w for w in result["alert_windows"]}
    assert windows[("1h", "5m")]["short_burn_rate"] == pytest.approx(144)
    assert windows[("6h", "30m")]["short_burn_rate"] == pytest.approx(36)
    assert windows[("1d", "2h")]["short_burn_rate"] == pytest.approx(7.2)
    assert windows[("3d", "6h")]["short_burn_rate"] == pytest.approx(2.4)
    # Page 1h/5m: 14.4 and 144 both reach 14.4. Page 6h/30m: 2.4 < 6. Ticket 1d/2h:
    # 2.4 < 3. Ticket 3d/6h: 2.4 and 2.4 both exceed 1.
    assert [(a["severity"], a["long_window"], a["short_window"]) for a in result["alerts"]] == [
        ("page", "1h", "5m"),
        ("ticket", "3d", "6h"),
    ]
    page = result["alerts"][0]
    assert page["burn_rate"] == 14.4
    assert page["threshold"] == 14.4
    assert page["short_burn_rate"] == pytest.approx(144)


def test_page_needs_the_short_window_too() -> None:
    # Same hour, but the 36 failures happened early in it: the 5m window is clean, so the
    # burn already stopped and the page must not fire (the point of two windows).
    rows = page_scenario()
    last5 = rows[:250]
    for row in last5:
        row["status_code"] = "UNSET"
    for row in rows[1000:1036]:  # inside (at-1h, at-30m]
        row["status_code"] = "ERROR"
    result = one(rows)
    assert result["burn_rates"]["1h"] == 14.4
    assert [a["severity"] for a in result["alerts"]] == ["ticket"]
    page = result["alert_windows"][0]
    assert (page["long_burn_rate"], page["short_burn_rate"], page["firing"]) == (14.4, 0.0, False)


def test_budget_exactly_spent_is_zero() -> None:
    # 99% objective: 1 bad in 100 spends the whole 1% budget. 1 - 0.01/0.01 = 0.
    rows = [span(AT - i * MINUTE, error=i == 0) for i in range(100)]
    result = one(rows, objective=99)
    assert (result["total"], result["good"], result["bad"]) == (100, 99, 1)
    assert result["sli"] == 0.99
    assert result["error_budget_remaining"] == 0.0
    # All 100 within the last 1h40m: 6h/1d/3d see 1/100 -> burn 1.0; 1h sees 1/60.
    assert result["burn_rates"]["6h"] == 1.0
    assert result["burn_rates"]["1h"] == pytest.approx((1 / 60) / 0.01)


def test_overspent_budget_is_negative() -> None:
    # 3 bad in 100 against a 1% budget: 1 - 0.03/0.01 = -2.
    rows = [span(AT - i * MINUTE, error=i < 3) for i in range(100)]
    result = one(rows, objective=99)
    assert result["error_budget_remaining"] == -2.0
    assert result["sli"] == 0.97


def test_half_spent_budget() -> None:
    # 99.5%: budget 0.5%; 1 bad in 400 = 0.25% -> half the budget left.
    rows = [span(AT - i * HOUR, error=i == 10) for i in range(400)]
    result = one(rows, objective=99.5)
    assert result["error_budget_remaining"] == 0.5
    assert result["sli"] == 0.9975
    # The 1d window holds 24 events (hours 0..23), the bad one among them: 1/24 / 0.005.
    assert result["burn_rates"]["1d"] == pytest.approx(1 / 24 / 0.005)
    # 1h holds only the event at `at`: no bad events.
    assert result["burn_rates"]["1h"] == 0.0


def test_no_events() -> None:
    result = one([span(AT, service="other")])
    assert (result["total"], result["good"], result["bad"], result["partial"]) == (0, 0, 0, 0)
    # No evidence of unreliability: the SLI is met and nothing of the budget is spent.
    assert result["sli"] == 1.0
    assert result["error_budget_remaining"] == 1.0
    assert result["burn_rates"] == {"1h": 0.0, "6h": 0.0, "1d": 0.0, "3d": 0.0}
    assert result["alerts"] == []
    assert result["affected_entities"] == {}


def test_window_is_open_at_its_start_and_closed_at_at() -> None:
    rows = [
        span(AT, error=True),  # exactly at `at`: counted (at = the newest span's time)
        span(AT - 7 * DAY),  # exactly a window ago: not counted
        span(AT - 7 * DAY + 1),
        span(AT + 1, error=True),  # after `at`: not counted
    ]
    result = one(rows, window="7d")
    assert (result["total"], result["bad"]) == (2, 1)
    assert result["window_start_unix_nano"] == AT - 7 * DAY


# --------------------------------------------------------------------------- events


def test_latency_counts_successful_requests_only() -> None:
    rows = [
        span(AT, dur_ms=100),
        span(AT, dur_ms=300),  # exactly at the threshold: good ("within 300 ms")
        span(AT, dur_ms=300.001),
        span(AT, dur_ms=900),
        span(AT, dur_ms=5, error=True),  # a fast failure is not good latency: not counted
    ]
    result = one(rows, sli="latency", threshold_ms=300, objective=50)
    assert (result["total"], result["good"], result["bad"]) == (4, 2, 2)
    assert result["sli"] == 0.5
    # 50% objective: budget 0.5, spent 0.5/0.5 -> remaining 0.
    assert result["error_budget_remaining"] == 0.0
    assert result["indicator"] == "latency"
    assert result["threshold_ms"] == 300


def test_operation_matches_name_route_rpc_method_and_method_route() -> None:
    rows = [
        span(AT, name="POST /checkout"),
        span(AT, name="POST", http_method="POST", http_route="/checkout"),
        span(AT, name="HTTP POST", http_route="POST /checkout"),
        span(AT, name="shop.Checkout/Place", rpc_method="POST /checkout"),
        span(AT, name="GET /checkout", http_method="GET", http_route="/checkout"),
        span(AT, name="POST /checkout", service="checkout"),  # another service
    ]
    assert one(rows)["total"] == 4
    grpc = [
        span(AT, name="shop.Checkout/Place", rpc_service="shop.Checkout", rpc_method="Place"),
        span(AT, name="Place"),
    ]
    assert one(grpc, operation="Place")["total"] == 2
    assert one(grpc, operation="shop.Checkout/Place")["total"] == 1


def test_nested_duplicate_instrumentation_counts_once() -> None:
    # Next.js in the OTel demo: a SERVER span of the route inside another of the same.
    outer = span(AT, trace_id="a" * 32, span_id="1" * 16)
    inner = span(AT, trace_id="a" * 32, span_id="2" * 16, parent="1" * 16, error=True)
    result = one([outer, inner])
    assert (result["total"], result["bad"]) == (1, 0)
    # The outer span is good, the inner error lies beneath it: a partial failure.
    assert result["partial"] == 1


def test_partial_counts_good_events_with_an_error_beneath() -> None:
    t = "b" * 32
    rows = [
        # Trace 1: good root, error two levels down -> partial.
        span(AT, trace_id=t, span_id="1" * 16),
        span(AT, trace_id=t, span_id="2" * 16, parent="1" * 16, service="payment", name="x"),
        span(
            AT,
            trace_id=t,
            span_id="3" * 16,
            parent="2" * 16,
            service="payment",
            name="y",
            error=True,
        ),
        # Trace 2: the measured span is a child; the error is in a sibling branch, not
        # beneath it -> not partial.
        span(AT, trace_id="c" * 32, span_id="4" * 16, service="gateway", name="root"),
        span(AT, trace_id="c" * 32, span_id="5" * 16, parent="4" * 16),
        span(
            AT,
            trace_id="c" * 32,
            span_id="6" * 16,
            parent="4" * 16,
            service="ads",
            name="z",
            error=True,
        ),
        # Trace 3: a bad event with errors beneath: bad, not partial.
        span(AT, trace_id="d" * 32, span_id="7" * 16, error=True),
        span(
            AT,
            trace_id="d" * 32,
            span_id="8" * 16,
            parent="7" * 16,
            service="db",
            name="q",
            error=True,
        ),
        # Trace 4: a 404 beneath on the server side is no error -> not partial.
        span(AT, trace_id="e" * 32, span_id="9" * 16),
        span(
            AT,
            trace_id="e" * 32,
            span_id="a" * 16,
            parent="9" * 16,
            service="orders",
            name="GET",
            http_status_code=404,
        ),
    ]
    result = one(rows)
    assert (result["total"], result["good"], result["bad"], result["partial"]) == (4, 3, 1, 1)


def test_affected_entities_come_from_traces_with_bad_events() -> None:
    rows = [
        span(AT, trace_id="1" * 32, error=True),
        span(AT, trace_id="2" * 32, error=True),
        span(AT, trace_id="3" * 32),
        span(AT - 40 * DAY, trace_id="4" * 32, error=True),  # outside the window
    ]
    entities = {
        "1" * 32: {"order.id": ["ORD-2"], "customer.id": ["CUST-1"]},
        "2" * 32: {"order.id": ["ORD-1"]},
        "3" * 32: {"order.id": ["ORD-3"]},
        "4" * 32: {"order.id": ["ORD-4"]},
    }
    parsed = load_slo_spec(spec(), "slo.json")
    asked: list[list[str]] = []
    report = slo_report(parsed, frame(rows), entities, AT, asked)
    result = report["slos"][0]
    assert result["affected_entities"] == {
        "customer.id": ["CUST-1"],
        "order.id": ["ORD-1", "ORD-2"],
    }
    assert result["affected_traces"] == 2
    # Entities are looked up once, for the traces with a bad event only.
    assert asked == [["1" * 32, "2" * 32]]


def test_alert_windows_scale_with_the_slo_window() -> None:
    result = one([span(AT)], window="7d")
    # 7/30 of the 30-day pairs, rounded to whole seconds:
    # 1h -> 14m, 5m -> 70s; 6h -> 84m, 30m -> 7m; 1d -> 336m, 2h -> 28m; 3d -> 1008m, 6h -> 84m.
    pairs = [(w["long_window"], w["short_window"], w["threshold"]) for w in result["alert_windows"]]
    assert pairs == [
        ("14m", "1m10s", 14.4),
        ("1h24m", "7m", 6.0),
        ("5h36m", "28m", 3.0),
        ("16h48m", "1h24m", 1.0),
    ]
    assert [w["severity"] for w in result["alert_windows"]] == ["page", "page", "ticket", "ticket"]


def test_scaled_page_fires_on_the_scaled_windows() -> None:
    # 7-day SLO at 99%: the page pair is 14m/70s at 14.4, i.e. a bad fraction of 14.4%.
    rows = [span(AT - i * SECOND, error=i % 5 == 0) for i in range(60)]  # 20% bad, last minute
    result = one(rows, window="7d", objective=99)
    page = result["alert_windows"][0]
    assert page["long_burn_rate"] == pytest.approx(20.0)
    assert page["short_burn_rate"] == pytest.approx(20.0)
    assert page["firing"]
    assert ("page", "14m", "1m10s") in [
        (a["severity"], a["long_window"], a["short_window"]) for a in result["alerts"]
    ]


def test_json_shape_matches_the_spec() -> None:
    parsed = load_slo_spec(spec(), "slo.json")
    report = slo_report(parsed, frame(page_scenario()), {}, AT)
    json.dumps(report)
    assert {"at_unix_nano", "slos"} <= report.keys()
    result = report["slos"][0]
    assert {
        "name",
        "window",
        "objective",
        "total",
        "good",
        "bad",
        "partial",
        "sli",
        "error_budget_remaining",
        "burn_rates",
        "alerts",
        "affected_entities",
    } <= result.keys()
    assert result["objective"] == 99.9 and isinstance(result["objective"], float)
    assert result["window"] == "30d"
    assert set(result["burn_rates"]) == {"1h", "6h", "1d", "3d"}
    for alert in result["alerts"]:
        assert {"severity", "long_window", "short_window", "burn_rate"} <= alert.keys()
        assert alert["severity"] in ("page", "ticket")
    for name in ("sli", "error_budget_remaining"):
        assert isinstance(result[name], float)


def test_keys_match_the_declared_shape() -> None:
    report = slo_report(load_slo_spec(spec(), "s"), frame(page_scenario()), {}, AT)
    assert report.keys() == SloReport.__required_keys__
    result = report["slos"][0]
    assert result.keys() == SloResult.__required_keys__
    assert result["alerts"]
    for alert in result["alerts"]:
        assert alert.keys() == Alert.__required_keys__
    for window in result["alert_windows"]:
        assert window.keys() == AlertWindow.__required_keys__


def test_frame_start_covers_the_longest_window_and_three_days() -> None:
    parsed = load_slo_spec(spec(window="7d"), "s")
    assert slo_frame_start(parsed, AT) == AT - 7 * DAY
    assert slo_frame_start(load_slo_spec(spec(window="1h"), "s"), AT) == AT - 3 * DAY


# --------------------------------------------------------------------------- renderers


def test_table_and_markdown() -> None:
    parsed = load_slo_spec(spec(), "slo.json")
    rows = page_scenario()
    entities = {rows[0]["trace_id"]: {"order.id": ["ORD-1|<b>x</b>"]}}
    report = slo_report(parsed, frame(rows), entities, AT)
    table = render_slo_table(report)
    assert "SLO report at 2026-11-25T10:00:00.000Z" in table
    assert "checkout-availability" in table
    assert "99.760%" in table  # the SLI
    assert "-140.0%" in table  # budget left
    assert "14.40" in table
    assert "page 1h/5m" in table
    markdown = render_slo_markdown(report)
    lines = markdown.splitlines()
    assert lines[0] == "## SLO report at 2026-11-25T10:00:00.000Z"
    header = next(line for line in lines if line.startswith("| SLO |"))
    row = lines[lines.index(header) + 2]
    # Every row of the summary table has as many cells as its header.
    assert row.count(" | ") == header.count(" | ")
    assert "**page** (1h/5m)" in row
    assert "### checkout-availability" in markdown
    assert "| page | 1h / 5m | 14.4 | 14.40 | 144.00 | **yes** |" in markdown
    # Entity values are escaped: no raw pipe to split a cell, no HTML.
    assert "ORD-1\\|&lt;b&gt;x&lt;/b&gt;" in markdown
    assert "<b>" not in markdown


def test_markdown_escapes_hostile_names() -> None:
    hostile = 'attach note <img src=x onerror=alert(1)> "Zoë\'s café"\nsecond | `code` *em* [a](b)'
    parsed = load_slo_spec(spec(name=hostile, operation=hostile), "slo.json")
    report = slo_report(parsed, frame([span(AT, name=hostile, error=True)]), {}, AT)
    markdown = render_slo_markdown(report)
    assert not re.search(r"(?<!\\)<", markdown)  # no HTML tag can open
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in markdown
    assert "\\|" in markdown and "\\`code\\`" in markdown and "\\*em\\*" in markdown
    assert "\\[a\\]\\(b\\)" in markdown
    assert 'café"\\\\nsecond' in markdown  # the newline is shown, not obeyed
    # The name's pipe does not split a cell: each row has its header's separators.
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| SLO |"))
    row = lines[lines.index(header) + 2]
    unescaped_pipe = re.compile(r"(?<!\\)\|")
    assert len(unescaped_pipe.findall(row)) == len(unescaped_pipe.findall(header))
    plain = load_slo_spec(spec(name="a\nb\x1b[2J"), "s")
    table = render_slo_table(slo_report(plain, frame([span(AT)]), {}, AT))
    assert "a\\nb\\x1b[2J" in table and "\x1b" not in table
