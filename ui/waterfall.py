"""A trace as a waterfall (plotly horizontal bars) with its critical path highlighted.

Rows are spans in tree order (parent, then its children by start time); each bar runs from
the span's start to its end, coloured by service, red when the span is an error. The
critical path (:func:`analyzer.critical_path.critical_path`) is drawn as a dark band over
the parts of the bars that decided the trace's duration. ``customdata`` of the span bars
is the span id, for click-to-inspect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import plotly.graph_objects as go

from analyzer.critical_path import Section
from ui.charts import color_for
from ui.format import clip, esc, fmt_duration

ERROR_RED: Final = "#d93025"
CRITICAL: Final = "rgba(32,33,36,0.85)"
ROW_PX: Final = 24


def tree_order(spans: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int]]:
    """(span, depth) in depth-first order, children by start time; orphans (parent not in
    the trace) start their own subtree."""
    ids = {str(s["span_id"]) for s in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        parent_key = str(parent) if parent and str(parent) in ids else None
        children.setdefault(parent_key, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (int(s["start_unix_nano"]), str(s["span_id"])))
    out: list[tuple[Mapping[str, Any], int]] = []
    seen: set[str] = set()
    stack: list[tuple[Mapping[str, Any], int]] = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        sid = str(span["span_id"])
        if sid in seen:
            continue
        seen.add(sid)
        out.append((span, depth))
        for child in reversed(children.get(sid, [])):
            stack.append((child, depth + 1))
    for span in spans:  # cycles in broken data: show the rest flat
        if str(span["span_id"]) not in seen:
            out.append((span, 0))
    return out


def _span_bars(
    y: list[Any],
    x: list[float],
    base: list[float],
    span_ids: list[str],
    hover: list[str],
    **style: Any,
) -> go.Bar:
    """Horizontal bars from ``base`` for ``x`` ms on rows ``y``: hovering one shows its
    ``hover`` text, a click gives its span id (``customdata``)."""
    return go.Bar(
        y=y,
        x=x,
        base=base,
        orientation="h",
        customdata=span_ids,
        text=hover,
        hovertemplate="%{text}<extra></extra>",
        textposition="none",
        **style,
    )


def waterfall_figure(
    spans: Sequence[Mapping[str, Any]],
    critical: Sequence[Section],
    *,
    selected: str | None = None,
    limit: int = 1500,
) -> go.Figure:
    ordered = tree_order(spans)[:limit]
    t0 = min((int(s["start_unix_nano"]) for s in spans), default=0)
    services = sorted({str(s.get("service_name")) for s in spans})
    row_of = {str(span["span_id"]): i for i, (span, _) in enumerate(ordered)}
    ys = list(range(len(ordered)))
    starts = [(int(s["start_unix_nano"]) - t0) / 1e6 for s, _ in ordered]
    widths = [max(0.001, int(s.get("duration_ns") or 0) / 1e6) for s, _ in ordered]
    colors = [
        ERROR_RED
        if s.get("status_code") == "ERROR"
        else color_for(str(s.get("service_name")), services)
        for s, _ in ordered
    ]
    hover = [
        "<br>".join(
            [
                f"<b>{esc(clip(s.get('service_name'), 60))}</b> · {esc(clip(s.get('name'), 100))}",
                f"{esc(s.get('kind'))} · {esc(fmt_duration(s.get('duration_ns')))} · starts at "
                f"+{esc(fmt_duration(int(s['start_unix_nano']) - t0))}",
                f"status {esc(s.get('status_code'))}"
                + (
                    f": {esc(clip(s.get('status_message'), 160))}"
                    if s.get("status_message")
                    else ""
                ),
                f"span {esc(s.get('span_id'))}",
                "<i>click for the whole span</i>",
            ]
        )
        for s, _ in ordered
    ]
    labels = [
        esc("\u2002" * min(depth, 12) + clip(f"{s.get('service_name')}: {s.get('name')}", 60))
        for s, depth in ordered
    ]
    fig = go.Figure()
    fig.add_trace(
        _span_bars(
            ys,
            widths,
            starts,
            [str(s["span_id"]) for s, _ in ordered],
            hover,
            marker={
                "color": colors,
                "line": {
                    "color": [
                        "#202124" if str(s["span_id"]) == selected else "rgba(0,0,0,0)"
                        for s, _ in ordered
                    ],
                    "width": 2,
                },
            },
            width=0.7,
            name="spans",
            showlegend=False,
        )
    )
    crit_y, crit_x, crit_base, crit_text, crit_ids = [], [], [], [], []
    for section in critical:
        row = row_of.get(section.span_id)
        if row is None:
            continue
        crit_y.append(row)
        crit_base.append((section.start_unix_nano - t0) / 1e6)
        crit_x.append(max(0.001, section.duration_ns / 1e6))
        crit_text.append(f"critical path: {esc(fmt_duration(section.duration_ns))} in this span")
        crit_ids.append(section.span_id)
    fig.add_trace(  # a click on the band opens its span too
        _span_bars(
            crit_y,
            crit_x,
            crit_base,
            crit_ids,
            crit_text,
            marker={"color": CRITICAL},
            width=0.22,
            name="critical path",
            showlegend=True,
        )
    )
    for service in services:  # legend entries for the service colours
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"size": 10, "color": color_for(service, services), "symbol": "square"},
                name=esc(clip(service, 30)),
                showlegend=True,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"size": 10, "color": ERROR_RED, "symbol": "square"},
            name="error",
            showlegend=True,
        )
    )
    total = max((s + w for s, w in zip(starts, widths, strict=True)), default=1.0)
    fig.update_layout(
        barmode="overlay",
        height=max(240, 130 + ROW_PX * len(ordered)),
        margin={"l": 10, "r": 10, "t": 95, "b": 20},
        plot_bgcolor="white",
        hovermode="closest",
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 1.0,
            "yanchor": "top",
            "x": 0,
        },
        xaxis={
            "title": "ms since the trace started",
            "range": [0, total * 1.02],
            "showgrid": True,
            "gridcolor": "#eeeeee",
            "side": "top",
        },
        yaxis={
            "tickvals": ys,
            "ticktext": labels,
            "autorange": "reversed",
            "tickfont": {"size": 11, "family": "monospace"},
            "automargin": True,
            "fixedrange": True,
        },
    )
    return fig
