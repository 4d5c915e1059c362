"""The UI's pure figure builders: sequence diagram, waterfall, charts, text helpers."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import pytest

from analyzer.critical_path import critical_path
from ui import charts
from ui.common import query_string
from ui.format import clip, esc, fmt_duration, fmt_time, rfc3339
from ui.seqplot import (
    COLUMN_PX,
    HEADER_CHARS,
    LABEL_LIMIT,
    layout_rows,
    message_label,
    sequence_figure,
    wrap,
)
from ui.waterfall import tree_order, waterfall_figure

HOSTILE = '<img src=x onerror=alert(1)> "Zoë\'s café"\nsecond line </script> & {{7*7}}'
T0 = 1_795_166_467_460_000_000


def message(
    src: str,
    dst: str,
    label: str,
    kind: str = "call",
    *,
    i: int = 0,
    trace: str = "a" * 32,
    error: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "from": src,
        "to": dst,
        "label": label,
        "kind": kind,
        "status": "error" if error else "ok",
        "error": error,
        "start_unix_nano": T0 + i * 1_000_000,
        "duration_ns": 500_000,
        "trace_id": trace,
        "span_id": f"{i:016x}",
        **extra,
    }


@pytest.fixture
def diagram() -> dict[str, Any]:
    return {
        "entity": {"key": "order.id", "value": "ORD-1666"},
        "traces": ["a" * 32, "b" * 32],
        "participants": [
            {"id": "client", "label": "client", "kind": "service", "implicit": True},
            {"id": "frontend", "label": "frontend", "kind": "service"},
            {"id": "checkout", "label": "checkout", "kind": "service"},
            {"id": "orders-db", "label": "orders-db (postgresql)", "kind": "database"},
            {"id": "order-events", "label": "order-events (kafka)", "kind": "queue"},
            {"id": "payprovider", "label": f"payprovider {HOSTILE}", "kind": "external"},
        ],
        "messages": [
            message("client", "frontend", "POST /api/checkout", i=0),
            message("frontend", "checkout", "POST /api/orders", i=1),
            message("checkout", "checkout", f"attach note {HOSTILE}", "self", i=2),
            message("checkout", "payprovider", "POST /v1/charges", i=3, error="503 <b>x</b>"),
            message("checkout", "payprovider", "POST /v1/charges \u00d72", i=4, count=2, failed=1),
            message("checkout", "orders-db", "INSERT orders", i=5),
            message("checkout", "order-events", "publish", "async", i=6),
            message("checkout", "frontend", "201", "return", i=7),
            message("order-events", "checkout", "process", "async", i=8, trace="b" * 32),
        ],
        "blocks": [
            {"kind": "loop", "label": "retry x2", "first": 3, "last": 4},
            {"kind": "par", "label": HOSTILE, "first": 5, "last": 6},
        ],
        "notes": [
            {"index": 8, "kind": "gap", "text": f"12 s later {HOSTILE}", "participants": []},
        ],
    }


def all_text(fig: go.Figure) -> str:
    """Every string plotly would render as markup: annotations, hover, ticks, names."""
    layout = fig.layout
    parts = [a.text or "" for a in layout.annotations]
    parts += [a.hovertext or "" for a in layout.annotations]
    parts += [str(t) for t in (layout.yaxis.ticktext or [])]
    for trace in fig.data:
        text = getattr(trace, "text", None)
        if isinstance(text, str):
            parts.append(text)
        elif text is not None:
            parts += [str(t) for t in text]
        parts.append(str(getattr(trace, "name", "") or ""))
    return "\n".join(parts)


def test_esc_escapes_markup_and_keeps_lines() -> None:
    assert esc("<b>&") == "&lt;b&gt;&amp;"
    assert esc("a\nb") == "a<br>b"
    assert esc(None) == ""
    assert esc("x" * 10, limit=5) == "xxxx…"
    assert clip(" a \n b ", 10) == "a b"


def test_time_and_duration_formats() -> None:
    assert fmt_time(T0) == "2026-11-20 09:21:07.460 UTC"
    assert fmt_time(None) == ""
    assert rfc3339(T0) == "2026-11-20T09:21:07.46Z"
    assert fmt_duration(850) == "850 ns"
    assert fmt_duration(12_345_678) == "12.3 ms"
    assert fmt_duration(4_200_000_000) == "4.20 s"
    assert fmt_duration(185 * 10**9) == "3 min 5 s"
    assert fmt_duration(2 * 86_400 * 10**9 + 4 * 3_600 * 10**9) == "2 d 4 h"


def test_deep_link_query_strings_follow_spec() -> None:
    assert query_string({"entity": "order.id=ORD-1002"}) == "entity=order.id=ORD-1002"
    assert query_string({"failures": ""}) == "failures"
    assert query_string({"entity": "k=a&b c"}) == "entity=k=a%26b%20c"


def test_sequence_figure_escapes_all_span_text(diagram: dict[str, Any]) -> None:
    text = all_text(sequence_figure(diagram))
    assert "<img" not in text
    assert "<script" not in text and "</script" not in text
    assert "<b>x</b>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text


def test_sequence_figure_maps_markers_to_messages(diagram: dict[str, Any]) -> None:
    fig = sequence_figure(diagram)
    markers = fig.data[0]
    assert list(markers.customdata) == list(range(len(diagram["messages"])))
    page = sequence_figure(diagram, offset=3, limit=4)
    assert list(page.data[0].customdata) == [3, 4, 5, 6]


def test_sequence_figure_draws_kinds_errors_blocks_notes(diagram: dict[str, Any]) -> None:
    fig = sequence_figure(diagram)
    shapes = fig.layout.shapes
    lines = [s for s in shapes if s.type == "line" and s.y0 == s.y1 and s.x0 != s.x1]
    dashed = [s for s in lines if s.line.dash == "dash"]
    red = [s for s in lines if s.line.color == "#d93025"]
    # message lines plus trace separators; returns and async sends dashed, one error red
    assert len(dashed) == 3
    assert len(red) == 1
    assert any(s.type == "path" for s in shapes)  # the self-call loop
    texts = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("<b>loop</b>") for t in texts)
    assert any(t.startswith("<b>par</b>") for t in texts)
    assert any("12 s later" in t for t in texts)
    # A message standing for 2 calls: its label (which says so) is drawn once, as given.
    assert sum("POST /v1/charges \u00d72" in t for t in texts) == 1
    assert not any("(x2" in t or "\u00d72 \u00d72" in t for t in texts)
    assert any(t.startswith("✖ 503") for t in texts)
    assert any("trace bbbbbbbbbbbb" in t for t in texts)  # separator between traces
    assert any("caller" in t for t in texts)  # the implicit participant


def test_a_counted_label_keeps_its_count_when_shortened() -> None:
    long = "GET /api/v1/customers/{id}/orders/{orderId}/lines/{lineId}"
    assert message_label({"label": f"{long} \u00d7162", "count": 162}).endswith("\u2026 \u00d7162")
    assert len(message_label({"label": f"{long} \u00d7162", "count": 162})) == LABEL_LIMIT
    assert message_label({"label": "GET /a \u00d75", "count": 5}) == "GET /a \u00d75"
    assert message_label({"label": long}) == long[: LABEL_LIMIT - 1] + "\u2026"


def test_many_participants_widen_the_figure_instead_of_overlapping() -> None:
    """26 participants (a busy customer of the shop): each column gets COLUMN_PX, every
    header line fits its box, the figure has a width of its own (the page scrolls it
    sideways), and hovering a header shows the whole name."""
    names = [f"service-number-{i:02d}-with-a-long-name (postgresql)" for i in range(26)]
    participants = [{"id": n, "label": n, "kind": "database"} for n in names]
    messages = [message(names[i], names[i + 1], f"call {i}", i=i) for i in range(25)]
    fig = sequence_figure({"participants": participants, "messages": messages, "blocks": []})
    assert fig.layout.width is not None
    plot_px = fig.layout.width - fig.layout.margin.l - fig.layout.margin.r
    x0, x1 = fig.layout.xaxis.range
    assert plot_px / (x1 - x0) >= COLUMN_PX
    headers = [a for a in fig.layout.annotations if a.hovertext and "postgresql" in a.hovertext]
    assert len(headers) == 2 * 26  # header and footer boxes
    for header in headers:
        name_lines = header.text.split("<br><span")[0].removeprefix("<b>").removesuffix("</b>")
        # 13 characters of 12 px bold text stay inside the 0.88-column box.
        assert all(len(line) <= HEADER_CHARS for line in name_lines.split("<br>"))
        assert HEADER_CHARS * 7.5 < 0.88 * COLUMN_PX
    assert {h.hovertext.split("<br>")[0] for h in headers} == set(names)
    few = sequence_figure({"participants": participants[:5], "messages": messages[:4]})
    assert few.layout.width is None  # fitted to the page


def test_sequence_figure_handles_empty_and_unknown_participants() -> None:
    empty = sequence_figure({"participants": [], "messages": [], "blocks": []})
    assert isinstance(empty, go.Figure)
    stray = sequence_figure(
        {"participants": [], "messages": [message("x", "y", "call")], "blocks": []}
    )
    assert list(stray.data[0].customdata) == [0]


def test_rows_grow_for_self_calls_errors_and_traces() -> None:
    msgs = [
        message("a", "b", "1"),
        message("a", "a", "2", "self"),
        message("a", "b", "3", error="boom"),
        message("a", "b", "4", trace="c" * 32),
    ]
    layout = layout_rows(msgs, multi_trace=True)
    gaps = [b - a for a, b in zip(layout.rows, layout.rows[1:], strict=False)]
    assert gaps[0] == pytest.approx(1.0)
    assert gaps[1] > 1.0  # after the self-call loop
    assert gaps[2] > 1.0  # after an error caption, plus the trace separator
    assert len(layout.separators) == 2


def test_wrap_breaks_names_at_punctuation() -> None:
    assert wrap("api.payprovider.example", 15) == ["api.payprovider", ".example"]
    assert wrap("short", 15) == ["short"]
    assert len(wrap("x" * 100, 10)) == 2


def spans_of_trace() -> list[dict[str, Any]]:
    def span(sid: str, parent: str | None, start: int, end: int, **kw: Any) -> dict[str, Any]:
        return {
            "trace_id": "t" * 32,
            "span_id": sid,
            "parent_span_id": parent,
            "service_name": kw.get("service", "checkout"),
            "name": kw.get("name", sid),
            "kind": "INTERNAL",
            "start_unix_nano": T0 + start,
            "end_unix_nano": T0 + end,
            "duration_ns": end - start,
            "status_code": kw.get("status", "UNSET"),
            "status_message": kw.get("message", ""),
        }

    return [
        span("root", None, 0, 100, service="frontend"),
        span("b", "root", 50, 90, status="ERROR", message=HOSTILE),
        span("a", "root", 10, 40, name=HOSTILE),
        span("a1", "a", 15, 30),
        span("orphan", "gone", 5, 6),
    ]


def test_tree_order_is_depth_first_by_start() -> None:
    order = [(s["span_id"], depth) for s, depth in tree_order(spans_of_trace())]
    assert order == [("root", 0), ("a", 1), ("a1", 2), ("b", 1), ("orphan", 0)]


def test_waterfall_escapes_and_marks_the_critical_path() -> None:
    spans = spans_of_trace()
    fig = waterfall_figure(spans, critical_path(spans), selected="b")
    text = all_text(fig)
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    bars, critical = fig.data[0], fig.data[1]
    assert list(bars.customdata) == ["root", "a", "a1", "b", "orphan"]
    assert bars.marker.color[3] == "#d93025"  # the error span is red
    assert critical.name == "critical path"
    assert len(critical.y) >= 3


def test_throughput_buckets_are_zero_filled() -> None:
    throughput = {
        "from_unix_nano": 0,
        "to_unix_nano": 40,
        "bucket_ns": 10,
        "buckets": [{"bucket_unix_nano": 10, "spans": 4, "errors": 1}],
    }
    filled = charts.filled_buckets(throughput)
    assert [b["spans"] for b in filled] == [0, 4, 0, 0]
    spans_fig, errors_fig = charts.throughput_figures(throughput)
    assert list(errors_fig.data[0].y) == [0.0, 25.0, 0.0, 0.0]
    assert spans_fig.data[0].y[1] == pytest.approx(4 / 10e-9)


def test_service_map_figure_survives_cycles_and_escapes_names() -> None:
    smap = {
        "nodes": [
            {"id": "a", "kind": "service", "spans": 3, "errors": 1},
            {"id": HOSTILE, "kind": "service", "spans": 2, "errors": 0},
            {"id": "db", "kind": "database", "spans": 1, "errors": 0},
        ],
        "edges": [
            {"from": "a", "to": HOSTILE, "calls": 2, "errors": 1, "error_rate": 0.5},
            {"from": HOSTILE, "to": "a", "calls": 1, "errors": 0, "error_rate": 0.0},
            {"from": HOSTILE, "to": "db", "calls": 1, "errors": 0, "error_rate": 0.0},
        ],
    }
    fig = charts.service_map_figure(smap)
    text = all_text(fig)
    assert "<img" not in text and "&lt;img" in text
    assert json.loads(fig.to_json())  # serialisable


def test_layers_put_callers_left_of_callees() -> None:
    layers = charts._layers(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "b"), ("a", "d")])
    assert layers["a"] == 0
    assert layers["b"] == 1
    assert layers["d"] == 1
    assert layers["c"] == 2


def test_slo_figures() -> None:
    slos = [
        {
            "name": HOSTILE,
            "error_budget_remaining": -2.5,
            "burn_rates": {"1h": 20.0, "6h": 7.0, "1d": 2.0, "3d": 1.0},
        },
        {"name": "ok", "error_budget_remaining": 0.9, "burn_rates": {}},
    ]
    budget = charts.budget_figure(slos)
    assert list(budget.data[0].x) == [-250.0, 90.0]
    burn = charts.burn_figure(slos)
    assert [t.name for t in burn.data] == ["1h", "6h", "1d", "3d"]
    assert "<img" not in all_text(budget) + all_text(burn)


def test_postmortem_zip(sample_db: Any) -> None:
    import io
    import zipfile

    from analyzer.source import open_database
    from ui.exports import postmortem_zip

    spec = (
        "slos:\n  - {name: checkout, service: frontend, operation: POST /api/checkout,"
        " sli: availability, objective: 99, window: 30d}\n"
    )
    blob = postmortem_zip(open_database(str(sample_db)), "order.id=ORD-1005", None, None, spec)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        names = archive.namelist()
        assert all(n.startswith("postmortem-order.id-ORD-1005/") for n in names)
        markdown = archive.read("postmortem-order.id-ORD-1005/postmortem.md").decode()
    assert "sequenceDiagram" in markdown
    assert any(n.endswith(".svg") for n in names)


def test_md_escapes_markdown_and_html() -> None:
    from ui.common import md

    assert md("**x** <b>") == "\\*\\*x\\*\\* \\<b\\>"
    assert md(":red[x]") == "\\:red\\[x\\]"
    assert md("plain words") == "plain words"
