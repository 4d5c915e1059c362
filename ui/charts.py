"""Plotly figures for the Overview, SLO and Service map pages (pure: dicts in, figures out).

Every string taken from span data goes through :func:`ui.format.esc`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import plotly.graph_objects as go

from ui.format import esc, fmt_duration

OK_GREEN: Final = "#188038"
WARN_AMBER: Final = "#f9ab00"
ERROR_RED: Final = "#d93025"
BLUE: Final = "#1a73e8"
PALETTE: Final = (
    "#1a73e8",
    "#e8710a",
    "#188038",
    "#9334e6",
    "#12b5cb",
    "#e52592",
    "#795548",
    "#5f6368",
    "#f9ab00",
    "#3949ab",
    "#00897b",
    "#c0ca33",
)


def color_for(name: str, names: Sequence[str]) -> str:
    try:
        return PALETTE[list(names).index(name) % len(PALETTE)]
    except ValueError:
        return PALETTE[hash(name) % len(PALETTE)]


def _dt(unix_nano: int) -> datetime:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=UTC)


def filled_buckets(throughput: Mapping[str, Any]) -> list[dict[str, int]]:
    """The throughput buckets with the empty ones (which the store leaves out) as zeros."""
    start = int(throughput.get("from_unix_nano") or 0)
    end = int(throughput.get("to_unix_nano") or 0)
    size = int(throughput.get("bucket_ns") or 0)
    given = {int(b["bucket_unix_nano"]): b for b in throughput.get("buckets") or []}
    if size <= 0 or end <= start:
        return [
            {"bucket_unix_nano": k, "spans": int(v["spans"]), "errors": int(v["errors"])}
            for k, v in sorted(given.items())
        ]
    out: list[dict[str, int]] = []
    t = start
    while t < end and len(out) < 10_000:
        bucket = given.get(t, {"spans": 0, "errors": 0})
        out.append(
            {"bucket_unix_nano": t, "spans": int(bucket["spans"]), "errors": int(bucket["errors"])}
        )
        t += size
    known = {b["bucket_unix_nano"] for b in out}
    for k, v in given.items():  # buckets off the grid (another server's arithmetic)
        if k not in known:
            out.append(
                {"bucket_unix_nano": k, "spans": int(v["spans"]), "errors": int(v["errors"])}
            )
    return sorted(out, key=lambda b: b["bucket_unix_nano"])


def _time_layout(fig: go.Figure, title: str, y_title: str, height: int = 260) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 40, "b": 30},
        xaxis={"title": None},
        yaxis={"title": y_title, "rangemode": "tozero"},
        showlegend=False,
        hovermode="x unified",
    )
    return fig


def _step_area(
    xs: list[Any], ys: list[float], color: str, fill: str, customdata: list[Any], hover: str
) -> go.Figure:
    """A filled step line over time (one value per bucket)."""
    return go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": color, "width": 2, "shape": "hv"},
            fill="tozeroy",
            fillcolor=fill,
            customdata=customdata,
            hovertemplate=hover,
        )
    )


def throughput_figures(throughput: Mapping[str, Any]) -> tuple[go.Figure, go.Figure]:
    """(spans per second, error rate in percent) over time."""
    buckets = filled_buckets(throughput)
    size_s = max(1e-9, int(throughput.get("bucket_ns") or 1) / 1e9)
    xs = [_dt(b["bucket_unix_nano"]) for b in buckets]
    rate = [b["spans"] / size_s for b in buckets]
    err = [100.0 * b["errors"] / b["spans"] if b["spans"] else 0.0 for b in buckets]
    spans = _step_area(
        xs,
        rate,
        BLUE,
        "rgba(26,115,232,0.12)",
        [[b["spans"]] for b in buckets],
        "%{y:.3g} spans/s (%{customdata[0]} spans)<extra></extra>",
    )
    bucket_text = fmt_duration(int(throughput.get("bucket_ns") or 0))
    _time_layout(spans, f"Spans per second (buckets of {bucket_text})", "spans/s")
    errors = _step_area(
        xs,
        err,
        ERROR_RED,
        "rgba(217,48,37,0.12)",
        [[b["errors"], b["spans"]] for b in buckets],
        "%{y:.2f}% errors (%{customdata[0]} of %{customdata[1]})<extra></extra>",
    )
    _time_layout(errors, "Error rate (% of spans with ERROR status)", "% errors")
    errors.update_yaxes(range=[0, max(5.0, max(err, default=0.0) * 1.15)])
    return spans, errors


# --------------------------------------------------------------------------- SLOs


def budget_figure(slos: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Error budget remaining per SLO, in percent (negative = overspent)."""
    names = [esc(s.get("name")) for s in slos]
    values = [100.0 * float(s.get("error_budget_remaining") or 0.0) for s in slos]
    colors = [ERROR_RED if v < 0 else WARN_AMBER if v < 25 else OK_GREEN for v in values]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker={"color": colors},
            text=[f"{v:.1f}%" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2f}% of the error budget left<extra></extra>",
        )
    )
    low = min([*values, 0.0])
    fig.update_layout(
        title={"text": "Error budget remaining", "font": {"size": 14}},
        height=max(180, 60 + 40 * len(slos)),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
        xaxis={"title": "% of budget", "range": [min(low * 1.1, -5.0), 105], "zeroline": True},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    fig.add_vline(x=0, line={"color": "#202124", "width": 1})
    return fig


#: Burn-rate windows, in the order SPEC lists them, with the 30-day alert thresholds.
BURN_WINDOWS: Final = ("1h", "6h", "1d", "3d")


def burn_figure(slos: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Burn rate per window, grouped by SLO; 1.0 spends the budget exactly over the window."""
    fig = go.Figure()
    names = [esc(s.get("name")) for s in slos]
    for i, window in enumerate(BURN_WINDOWS):
        values = [float((s.get("burn_rates") or {}).get(window) or 0.0) for s in slos]
        fig.add_trace(
            go.Bar(
                name=window,
                x=names,
                y=values,
                marker={"color": PALETTE[i]},
                hovertemplate=f"%{{x}}: burn rate %{{y:.2f}} over {window}<extra></extra>",
            )
        )
    fig.add_hline(
        y=1.0,
        line={"color": "#5f6368", "dash": "dash"},
        annotation_text="1x = budget gone at window end",
        annotation_position="top left",
    )
    fig.update_layout(
        title={"text": "Burn rate by window", "font": {"size": 14}},
        barmode="group",
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        yaxis={"title": "burn rate (x budget)", "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


# --------------------------------------------------------------------------- service map

_KIND_SYMBOL: Final = {
    "service": "circle",
    "database": "square",
    "queue": "diamond",
    "external": "hexagon",
}


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering from the nodes nobody calls; back edges of cycles ignored."""
    incoming: dict[str, set[str]] = {n: set() for n in nodes}
    outgoing: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a != b and a in incoming and b in incoming:
            incoming[b].add(a)
            outgoing[a].append(b)
    layer: dict[str, int] = {}
    roots = [n for n in nodes if not incoming[n]] or list(nodes[:1])
    # DFS order to find back edges, then relax along forward edges only.
    order: list[str] = []
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()

    def visit(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, i = stack.pop()
            if i < len(outgoing[node]):
                stack.append((node, i + 1))
                nxt = outgoing[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                order.append(node)

    for root in roots:
        if root not in state:
            visit(root)
    for node in nodes:
        if node not in state:
            visit(node)
    for node in reversed(order):  # topological order of the forward edges
        layer.setdefault(node, 0)
        for nxt in outgoing[node]:
            if (node, nxt) not in back:
                layer[nxt] = max(layer.get(nxt, 0), layer[node] + 1)
    return layer


def service_map_figure(service_map: Mapping[str, Any]) -> go.Figure:
    """Layered left-to-right: callers left of callees; edge width by calls, edge colour by
    error rate (green 0 %, amber, red from 5 %)."""
    nodes: list[Mapping[str, Any]] = list(service_map.get("nodes") or [])
    edges: list[Mapping[str, Any]] = list(service_map.get("edges") or [])
    ids = [str(n["id"]) for n in nodes]
    layer = _layers(ids, [(str(e["from"]), str(e["to"])) for e in edges])
    columns: dict[int, list[str]] = {}
    for node_id in ids:
        columns.setdefault(layer.get(node_id, 0), []).append(node_id)
    for members in columns.values():
        members.sort(key=lambda m: (0 if _kind(nodes, m) == "service" else 1, m))
    _reduce_crossings(columns, [(str(e["from"]), str(e["to"])) for e in edges])
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, member in enumerate(members):
            pos[member] = (float(col), -(row - (len(members) - 1) / 2.0))
    max_calls = max((int(e.get("calls") or 0) for e in edges), default=1) or 1
    fig = go.Figure()
    annotations: list[dict[str, Any]] = []
    mid_x: list[float] = []
    mid_y: list[float] = []
    mid_text: list[str] = []
    mid_color: list[str] = []
    for edge in edges:
        a, b = str(edge["from"]), str(edge["to"])
        if a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        rate = float(edge.get("error_rate") or 0.0)
        color = _rate_color(rate)
        width = 1.0 + 5.0 * math.log1p(int(edge.get("calls") or 0)) / math.log1p(max_calls)
        if a == b:
            continue
        annotations.append(
            {
                "x": x1,
                "y": y1,
                "ax": x0,
                "ay": y0,
                "xref": "x",
                "yref": "y",
                "axref": "x",
                "ayref": "y",
                "showarrow": True,
                "arrowhead": 2,
                "arrowsize": 0.8,
                "arrowwidth": width,
                "arrowcolor": color,
                "standoff": 22,
                "startstandoff": 22,
                "text": "",
                "opacity": 0.85,
            }
        )
        mid_x.append(x0 + (x1 - x0) * 0.5)
        mid_y.append(y0 + (y1 - y0) * 0.5)
        mid_color.append(color)
        p50 = edge.get("p50_ms")
        mid_text.append(
            f"<b>{esc(a)} → {esc(b)}</b><br>{int(edge.get('calls') or 0):,} calls, "
            f"{int(edge.get('errors') or 0):,} errors ({100 * rate:.1f}%)"
            + (f"<br>p50 {float(p50):.1f} ms" if p50 is not None else "")
        )
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"size": 9, "color": mid_color, "opacity": 0.9},
            text=mid_text,
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
        )
    )
    for kind, symbol in _KIND_SYMBOL.items():
        group = [n for n in nodes if (n.get("kind") or "service") == kind]
        if not group:
            continue
        xs = [pos[str(n["id"])][0] for n in group]
        ys = [pos[str(n["id"])][1] for n in group]
        colors = [
            _rate_color(int(n.get("errors") or 0) / max(1, int(n.get("spans") or 0))) for n in group
        ]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=kind,
                marker={
                    "symbol": symbol,
                    "size": 34,
                    "color": "white",
                    "line": {"color": colors, "width": 3},
                },
                text=[esc(n["id"], 40) for n in group],
                customdata=[[int(n.get("spans") or 0), int(n.get("errors") or 0)] for n in group],
                hovertemplate="<b>%{text}</b> ("
                + kind
                + ")<br>%{customdata[0]:,} spans, %{customdata[1]:,} errors<extra></extra>",
            )
        )
    for node in nodes:
        x, y = pos[str(node["id"])]
        annotations.append(
            {
                "x": x,
                "y": y,
                "yshift": -24,
                "yanchor": "top",
                "text": esc(node["id"], 28),
                "showarrow": False,
                "font": {"size": 12, "color": "#202124"},
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    width_cols = max(columns) + 1 if columns else 1
    height_rows = max((len(m) for m in columns.values()), default=1)
    fig.update_layout(
        annotations=annotations,
        height=max(380, 110 * height_rows + 80),
        margin={"l": 20, "r": 20, "t": 20, "b": 20},
        plot_bgcolor="white",
        xaxis={"visible": False, "range": [-0.5, width_cols - 0.5]},
        yaxis={"visible": False, "range": [-(height_rows / 2) - 0.3, height_rows / 2 + 0.3]},
        legend={"orientation": "h", "y": 1.02, "x": 0, "title": {"text": "node kind: "}},
        hovermode="closest",
    )
    return fig


def _reduce_crossings(columns: dict[int, list[str]], edges: Sequence[tuple[str, str]]) -> None:
    """Barycenter heuristic: order each column by the mean row of its neighbours in the
    previous column (left to right), then of the next column (right to left); twice."""
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        if a != b:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
    order = sorted(columns)
    for _ in range(2):
        for sweep in (order[1:], list(reversed(order[:-1]))):
            for col in sweep:
                rows = {m: i for c in columns if c != col for i, m in enumerate(columns[c])}

                def centre(member: str, rows: dict[str, int] = rows) -> float:
                    linked = [rows[n] for n in neighbours.get(member, ()) if n in rows]
                    return sum(linked) / len(linked) if linked else float("inf")

                current = {m: i for i, m in enumerate(columns[col])}
                columns[col].sort(key=lambda m: (centre(m), current[m]))


def _kind(nodes: Sequence[Mapping[str, Any]], node_id: str) -> str:
    return next((str(n.get("kind")) for n in nodes if str(n["id"]) == node_id), "service")


def _rate_color(rate: float) -> str:
    if rate <= 0:
        return OK_GREEN
    if rate < 0.05:
        return WARN_AMBER
    return ERROR_RED
