"""Draw a SPEC diagram dict (``Source.diagram(fmt="json")``) as a plotly sequence diagram.

Layout, in data coordinates: participant ``i`` is the column ``x = i``; ``y`` grows
downwards (the y axis is reversed), one unit per message row. Participants get a header
box on top (and a footer box for long diagrams) and a dashed lifeline; each message is a
line (solid for calls, dashed for returns and async sends) with an arrowhead annotation
and its label above it; errors are red with the error text under the arrow; self-calls
are drawn as a loop back to the same lifeline; ``loop``/``par``/``alt``/``opt`` blocks are
labelled rectangles around their rows; a thin rule with the trace id separates traces.

Hover and click work through one scatter trace of markers, one per message, whose
``customdata`` is the message's index in ``diagram["messages"]``. All span text is escaped
with :func:`ui.format.esc`: plotly labels are HTML-ish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import plotly.graph_objects as go

from analyzer.diagram.text import TIMES
from ui.format import clip, esc, fmt_duration, fmt_time, short_id

__all__ = [
    "KIND_STYLE",
    "Layout",
    "layout_rows",
    "message_label",
    "sequence_figure",
]

ROW_PX: Final = 34
HEADER_PX: Final = 80
ERROR_RED: Final = "#d93025"
CALL_COLOR: Final = "#202124"
RETURN_COLOR: Final = "#5f6368"
ASYNC_COLOR: Final = "#1a56b0"
LABEL_LIMIT: Final = 46
#: Participants a figure fits to the page's width (the shop's 13 fit a 1400 px window
#: with their names readable); with more, each column takes COLUMN_PX (enough for
#: HEADER_CHARS characters of a name per line) and the figure is wider than the page.
WIDE_AFTER: Final = 14
COLUMN_PX: Final = 120
HEADER_CHARS: Final = 14
ERROR_LIMIT: Final = 60

#: participant kind -> (fill, border, dash, caption)
KIND_STYLE: Final[dict[str, tuple[str, str, str, str]]] = {
    "service": ("#e8f0fe", "#1a73e8", "solid", "service"),
    "database": ("#fef7e0", "#b06000", "solid", "database"),
    "queue": ("#e6f4ea", "#188038", "solid", "queue"),
    "external": ("#f1f3f4", "#5f6368", "dash", "external"),
}


@dataclass
class Layout:
    """Where each message goes: its row ``y`` and the trace separators."""

    rows: list[float] = field(default_factory=list)
    separators: list[tuple[float, str, int]] = field(default_factory=list)  # y, trace, start
    notes: list[tuple[float, Mapping[str, Any]]] = field(default_factory=list)  # y, note
    bottom: float = 1.0


def _is_error(message: Mapping[str, Any]) -> bool:
    return message.get("status") == "error" or bool(message.get("error"))


def _has_caption(message: Mapping[str, Any]) -> bool:
    """Failed calls get the error text under the arrow; their returns do not repeat it."""
    return _is_error(message) and bool(message.get("error")) and message.get("kind") != "return"


def layout_rows(
    messages: Sequence[Mapping[str, Any]],
    multi_trace: bool,
    block_starts: Mapping[int, int] | None = None,
    notes: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
) -> Layout:
    """Row positions: one unit per message, more for self-calls and error captions, room
    for block labels (``block_starts``: message index -> blocks opening there) and notes
    (``notes``: message index -> notes drawn before it; ``len(messages)``: after the last),
    and a separator row wherever the trace changes (entity diagrams span several traces)."""
    out = Layout()
    y = 0.0
    previous_trace: str | None = None
    for i, message in enumerate(messages):
        trace_id = str(message.get("trace_id") or "")
        if multi_trace and trace_id != previous_trace:
            y += 0.75
            out.separators.append((y - 0.15, trace_id, int(message.get("start_unix_nano") or 0)))
            y += 0.3
        previous_trace = trace_id
        for note in (notes or {}).get(i, ()):
            y += 0.9
            out.notes.append((y, note))
        y += 1.0 + 0.55 * (block_starts or {}).get(i, 0)
        out.rows.append(y)
        if message.get("kind") == "self" or message.get("from") == message.get("to"):
            y += 0.55
        if _has_caption(message):
            y += 0.35
    for note in (notes or {}).get(len(messages), ()):
        y += 0.9
        out.notes.append((y, note))
    out.bottom = y + 0.9
    return out


def _hover(message: Mapping[str, Any], labels: Mapping[str, str], t0: int, index: int) -> str:
    source = labels.get(str(message.get("from")), str(message.get("from")))
    target = labels.get(str(message.get("to")), str(message.get("to")))
    start = int(message.get("start_unix_nano") or 0)
    lines = [
        f"<b>{esc(message.get('label'), 120)}</b>",
        f"{esc(source, 60)} → {esc(target, 60)}   ({esc(message.get('kind'))})",
        f"start {esc(fmt_time(start))}  (+{esc(fmt_duration(start - t0))})",
        f"duration {esc(fmt_duration(message.get('duration_ns')))}",
        f"status {esc(message.get('status'))}",
    ]
    count = int(message.get("count") or 1)
    if count > 1:
        lines.append(f"{TIMES}{count}: {count} calls, {int(message.get('failed') or 0)} failed")
    if message.get("error"):
        lines.append(f"<b>error:</b> {esc(clip(message.get('error'), 160))}")
    attributes = message.get("attributes") or {}
    if isinstance(attributes, Mapping):
        for key, value in list(attributes.items())[:8]:
            lines.append(f"{esc(clip(key, 40))}: {esc(clip(value, 80))}")
    lines.append(f"trace {esc(message.get('trace_id'))}<br>span {esc(message.get('span_id'))}")
    lines.append(f"<i>#{index + 1} · click for the whole span</i>")
    return "<br>".join(lines)


def _block_depths(blocks: Sequence[Mapping[str, Any]]) -> list[int]:
    depths = []
    for i, block in enumerate(blocks):
        first, last = int(block["first"]), int(block["last"])
        depth = 0
        for j, other in enumerate(blocks):
            if i == j:
                continue
            o_first, o_last = int(other["first"]), int(other["last"])
            contains = o_first <= first and last <= o_last
            if contains and ((o_first, -o_last, j) < (first, -last, i)):
                depth += 1
        depths.append(depth)
    return depths


def sequence_figure(
    diagram: Mapping[str, Any],
    *,
    offset: int = 0,
    limit: int = 400,
    selected: int | None = None,
) -> go.Figure:
    """The figure for ``diagram["messages"][offset:offset + limit]``.

    ``customdata`` of the marker trace holds each message's absolute index in
    ``diagram["messages"]``, so a selection maps straight back to the message.
    """
    participants: list[Mapping[str, Any]] = list(diagram.get("participants") or [])
    all_messages: list[Mapping[str, Any]] = list(diagram.get("messages") or [])
    messages = all_messages[offset : offset + limit]
    x_of: dict[str, int] = {}
    for p in participants:
        x_of.setdefault(str(p["id"]), len(x_of))
    for m in messages:  # a message to an unlisted participant still gets a column
        for end in ("from", "to"):
            pid = str(m.get(end))
            if pid not in x_of:
                x_of[pid] = len(x_of)
                participants.append({"id": pid, "label": pid, "kind": "service"})
    labels = {str(p["id"]): str(p.get("label") or p["id"]) for p in participants}
    traces = {str(m.get("trace_id")) for m in messages}
    blocks = [
        b
        for b in (diagram.get("blocks") or [])
        if int(b["last"]) >= offset and int(b["first"]) < offset + len(messages)
    ]
    block_starts: dict[int, int] = {}
    for b in blocks:
        first = max(int(b["first"]), offset) - offset
        block_starts[first] = block_starts.get(first, 0) + 1
    multi = len(traces) > 1 or len(diagram.get("traces") or []) > 1
    notes_at: dict[int, list[Mapping[str, Any]]] = {}
    for note in diagram.get("notes") or []:
        index = int(note.get("index") or 0) - offset
        if 0 <= index <= len(messages) and (
            index < len(messages) or offset + index >= len(all_messages)
        ):
            notes_at.setdefault(index, []).append(note)
    layout = layout_rows(messages, multi_trace=multi, block_starts=block_starts, notes=notes_at)
    n = max(1, len(participants))
    t0 = min((int(m.get("start_unix_nano") or 0) for m in messages), default=0)

    fig = go.Figure()
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    bottom = layout.bottom
    footer = len(messages) > 12
    lifeline_end = bottom - (0.05 if not footer else 0.0)

    # Participants: header (and footer) boxes, lifelines.
    column_chars = 22 if n <= 6 else HEADER_CHARS
    for p in participants:
        x = x_of[str(p["id"])]
        fill, border, dash, caption = KIND_STYLE.get(str(p.get("kind")), KIND_STYLE["service"])
        if p.get("implicit"):
            fill, border, dash, caption = "#ffffff", "#9aa0a6", "dot", "caller"
        name = p.get("label") or p["id"]
        label = "<br>".join(esc(line) for line in wrap(name, column_chars))
        rows = [-0.8] + ([bottom + 0.8] if footer else [])
        for y in rows:
            shapes.append(
                {
                    "type": "rect",
                    "x0": x - 0.44,
                    "x1": x + 0.44,
                    "y0": y - 0.7,
                    "y1": y + 0.7,
                    "fillcolor": fill,
                    "line": {"color": border, "width": 1.5, "dash": dash},
                    "layer": "below",
                }
            )
            notes.append(
                {
                    "x": x,
                    "y": y,
                    "text": f"<b>{label}</b><br><span style='font-size:10px'>{caption}</span>",
                    "showarrow": False,
                    "font": {"size": 12, "color": "#202124"},
                    # The whole name (the box may show it shortened).
                    "hovertext": f"{esc(name, 200)}<br>{caption}",
                    "hoverlabel": {"bgcolor": "white", "font": {"size": 12}},
                }
            )
        shapes.append(
            {
                "type": "line",
                "x0": x,
                "x1": x,
                "y0": -0.1,
                "y1": lifeline_end,
                "line": {"color": "#9aa0a6", "width": 1, "dash": "dot"},
                "layer": "below",
            }
        )

    # Activation bars: from a call to its return (same span), on the callee's lifeline.
    open_calls: dict[str, int] = {}
    for i, message in enumerate(messages):
        kind = message.get("kind")
        span_id = str(message.get("span_id") or "")
        if kind == "call" and message.get("from") != message.get("to"):
            open_calls[span_id] = i
        elif kind == "return" and span_id in open_calls:
            first = open_calls.pop(span_id)
            x = x_of[str(messages[first].get("to"))]
            if x != x_of[str(message.get("from"))]:
                continue
            shapes.append(
                {
                    "type": "rect",
                    "x0": x - 0.035,
                    "x1": x + 0.035,
                    "y0": layout.rows[first],
                    "y1": layout.rows[i],
                    "fillcolor": "#f1f3f4",
                    "line": {"color": "#9aa0a6", "width": 1},
                    "layer": "below",
                }
            )

    # Blocks (loop / par / alt / opt) behind the messages.
    for block, depth in zip(blocks, _block_depths(blocks), strict=True):
        first = max(int(block["first"]), offset) - offset
        last = min(int(block["last"]), offset + len(messages) - 1) - offset
        inside = messages[first : last + 1]
        xs = [x_of[str(m.get(end))] for m in inside for end in ("from", "to")]
        if not xs:
            continue
        pad = max(0.12, 0.36 - 0.07 * depth)
        x0, x1 = (
            min(xs) - pad,
            max(xs) + pad + (0.3 if any(m.get("from") == m.get("to") for m in inside) else 0),
        )
        opening = block_starts.get(first, 1)
        y0 = layout.rows[first] - 0.62 - 0.5 * (opening - _rank_at(blocks, block, first, offset))
        last_msg = inside[-1]
        y1 = layout.rows[last] + 0.3 + (0.55 if last_msg.get("from") == last_msg.get("to") else 0)
        y1 += 0.35 if _has_caption(last_msg) else 0
        kind = str(block.get("kind") or "")
        color = "#8e24aa" if kind == "loop" else "#00796b" if kind == "par" else "#5f6368"
        shapes.append(
            {
                "type": "rect",
                "x0": x0,
                "x1": x1,
                "y0": y0,
                "y1": y1,
                "line": {"color": color, "width": 1.2},
                "fillcolor": "rgba(0,0,0,0.025)",
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": x0,
                "y": y0,
                "xanchor": "left",
                "yanchor": "top",
                "text": f"<b>{esc(kind)}</b> {esc(clip(block.get('label'), 48))}",
                "showarrow": False,
                "font": {"size": 10, "color": color},
                "bgcolor": "rgba(255,255,255,0.9)",
                "bordercolor": color,
                "borderpad": 2,
            }
        )

    # Notes (gaps, clock skew, partial traces, omitted messages) over their lifelines.
    for y, note in layout.notes:
        over = [x_of[str(p)] for p in note.get("participants") or [] if str(p) in x_of]
        x0, x1 = (min(over) - 0.4, max(over) + 0.4) if over else (-0.45, n - 0.55)
        shapes.append(
            {
                "type": "rect",
                "x0": x0,
                "x1": x1,
                "y0": y - 0.32,
                "y1": y + 0.32,
                "fillcolor": "#fff8e1",
                "line": {"color": "#f9ab00", "width": 1},
                "layer": "below",
            }
        )
        # Over more columns than a page shows, the text starts at the note's left end
        # (where the page shows it), not in its middle.
        from_left = n > WIDE_AFTER and x1 - x0 > WIDE_AFTER
        notes.append(
            {
                "x": x0 + 0.1 if from_left else (x0 + x1) / 2,
                "xanchor": "left" if from_left else "center",
                "y": y,
                "text": f"<i>{esc(clip(note.get('text'), 110))}</i>",
                "showarrow": False,
                "font": {"size": 10, "color": "#5f4b00"},
            }
        )

    # Trace separators.
    for y, trace_id, start in layout.separators:
        shapes.append(
            {
                "type": "line",
                "x0": -0.5,
                "x1": n - 0.5,
                "y0": y,
                "y1": y,
                "line": {"color": "#dadce0", "width": 1},
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": -0.5,
                "y": y,
                "xanchor": "left",
                "yanchor": "bottom",
                "text": f"trace {esc(short_id(trace_id, 12))} · "
                f"{esc(fmt_time(start, with_ms=False))}",
                "showarrow": False,
                "font": {"size": 10, "color": "#5f6368"},
            }
        )

    # Messages.
    mx: list[float] = []
    my: list[float] = []
    mcolor: list[str] = []
    msize: list[int] = []
    hover: list[str] = []
    custom: list[int] = []
    for i, message in enumerate(messages):
        index = offset + i
        y = layout.rows[i]
        a = x_of[str(message.get("from"))]
        b = x_of[str(message.get("to"))]
        kind = str(message.get("kind") or "call")
        error = _is_error(message)
        color = (
            ERROR_RED
            if error
            else {"return": RETURN_COLOR, "async": ASYNC_COLOR}.get(kind, CALL_COLOR)
        )
        dashed = kind in ("return", "async")
        width = 2.2 if index == selected else 1.4
        label = esc(message_label(message))
        arrowhead = 2 if kind in ("call", "self") else 1
        if a == b:
            loop_x = a + 0.28
            bottom_y = y + 0.5
            shapes.append(
                {
                    "type": "path",
                    "path": (
                        f"M {a},{y} L {loop_x},{y} L {loop_x},{bottom_y} L {a + 0.03},{bottom_y}"
                    ),
                    "line": {"color": color, "width": width, "dash": "dash" if dashed else "solid"},
                }
            )
            notes.append(_head(a, bottom_y, a + 0.1, bottom_y, color, arrowhead, width))
            notes.append(_label(a + 0.32, y + 0.1, label, color, "left"))
            point = (loop_x, y + 0.25)
            caption_at = (a + 0.32, bottom_y + 0.05, "left")
        else:
            direction = 1 if b > a else -1
            shapes.append(
                {
                    "type": "line",
                    "x0": a,
                    "x1": b - direction * 0.02,
                    "y0": y,
                    "y1": y,
                    "line": {"color": color, "width": width, "dash": "dash" if dashed else "solid"},
                }
            )
            notes.append(_head(b, y, b - direction * 0.12, y, color, arrowhead, width))
            notes.append(_label((a + b) / 2, y - 0.08, label, color, "center", "bottom"))
            point = ((a + b) / 2, y)
            caption_at = ((a + b) / 2, y + 0.12, "center")
        if _has_caption(message):
            notes.append(
                {
                    "x": caption_at[0],
                    "y": caption_at[1],
                    "xanchor": caption_at[2],
                    "yanchor": "top",
                    "text": f"✖ {esc(clip(message.get('error'), ERROR_LIMIT))}",
                    "showarrow": False,
                    "font": {"size": 10, "color": ERROR_RED},
                }
            )
        mx.append(point[0])
        my.append(point[1])
        mcolor.append(color)
        msize.append(13 if index == selected else 8)
        hover.append(_hover(message, labels, t0, index))
        custom.append(index)

    fig.add_trace(
        go.Scatter(
            x=mx,
            y=my,
            mode="markers",
            marker={"size": msize, "color": mcolor, "line": {"width": 1, "color": "white"}},
            customdata=custom,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            hoverlabel={
                "bgcolor": "white",
                "font": {"size": 12, "family": "monospace"},
                "align": "left",
            },
            name="messages",
            showlegend=False,
        )
    )

    _add_log_markers(fig, diagram, offset, len(messages), layout.rows, x_of)

    # Y ticks: time since the first message drawn.
    tickvals = layout.rows
    ticktext = [_offset_text(int(m.get("start_unix_nano") or 0) - t0) for m in messages]
    if len(tickvals) > 60:  # thin out ticks on long diagrams
        step = len(tickvals) // 40 + 1
        tickvals, ticktext = tickvals[::step], ticktext[::step]
    top = -1.6
    right = n - 0.45 + _right_room(messages, x_of, n)
    fig.update_layout(
        shapes=shapes,
        annotations=notes,
        height=int(HEADER_PX * (2 if footer else 1) + ROW_PX * (bottom + 0.6) + 30),
        # Past WIDE_AFTER participants the columns would be too narrow for their names
        # on a page: the figure takes COLUMN_PX per column, and the page scrolls it
        # sideways (ui.common.sequence_chart), as wide sequence diagrams scroll in other viewers.
        width=80 + math.ceil((right + 0.55) * COLUMN_PX) if n > WIDE_AFTER else None,
        margin={"l": 70, "r": 10, "t": 10, "b": 10},
        plot_bgcolor="white",
        paper_bgcolor="white",
        hovermode="closest",
        hoverdistance=40,
        xaxis={
            "range": [-0.55, right],
            "visible": False,
            "fixedrange": True,
        },
        yaxis={
            "range": [bottom + (1.6 if footer else 0.3), top],
            "tickvals": tickvals,
            "ticktext": ticktext,
            "tickfont": {"size": 10, "color": "#5f6368"},
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
    )
    return fig


def _right_room(messages: Sequence[Mapping[str, Any]], x_of: Mapping[str, int], n: int) -> float:
    """Extra room right of the last lifeline for self-call loops and their labels."""
    room = 0.0
    for m in messages:
        if m.get("from") == m.get("to"):
            x = x_of[str(m.get("from"))]
            label_width = 0.3 + len(message_label(m)) * 0.06
            room = max(room, x + label_width - (n - 1))
    return max(0.0, room)


def message_label(message: Mapping[str, Any]) -> str:
    """The arrow's text: the message's ``label`` as the diagram JSON gives it, which for a
    message standing for several calls already ends in the count (a multiplication sign
    and the number, as in every rendering: SPEC "Busy entities"), shortened to
    LABEL_LIMIT characters with that count kept."""
    count = int(message.get("count") or 1)
    text = clip(message.get("label"), 10 * LABEL_LIMIT)
    suffix = f" {TIMES}{count}"
    if count > 1 and text.endswith(suffix) and len(text) > LABEL_LIMIT:
        return clip(text[: -len(suffix)], LABEL_LIMIT - len(suffix)) + suffix
    return clip(text, LABEL_LIMIT)


def _offset_text(ns: int) -> str:
    return "+0" if ns == 0 else esc("+" + fmt_duration(ns))


def _rank_at(
    blocks: Sequence[Mapping[str, Any]], block: Mapping[str, Any], first: int, offset: int
) -> int:
    """0 for the outermost of the blocks that open at message ``first``, 1 for the next..."""
    same = [b for b in blocks if max(int(b["first"]), offset) - offset == first]
    same.sort(key=lambda b: -int(b["last"]))
    return next(i for i, b in enumerate(same) if b is block)


def wrap(text: Any, width: int, lines: int = 2) -> list[str]:
    """``text`` in at most ``lines`` lines of ``width`` characters, broken after ``.``,
    ``-``, ``_``, ``/`` or spaces where possible, the rest elided."""
    rest = " ".join(str(text).split())
    out: list[str] = []
    while rest and len(out) < lines:
        if len(rest) <= width:
            out.append(rest)
            rest = ""
            break
        cut = max((rest.rfind(ch, 0, width) for ch in ".-_/ :"), default=-1)
        cut = cut + 1 if cut >= width // 3 else width
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        out[-1] = clip(out[-1] + rest, width)
    return out or [""]


def _head(
    x: float, y: float, ax: float, ay: float, color: str, head: int, width: float
) -> dict[str, Any]:
    return {
        "x": x,
        "y": y,
        "ax": ax,
        "ay": ay,
        "xref": "x",
        "yref": "y",
        "axref": "x",
        "ayref": "y",
        "text": "",
        "showarrow": True,
        "arrowhead": head,
        "arrowsize": 1.3,
        "arrowwidth": width,
        "arrowcolor": color,
        "standoff": 0,
    }


def _label(
    x: float, y: float, text: str, color: str, xanchor: str, yanchor: str = "middle"
) -> dict[str, Any]:
    return {
        "x": x,
        "y": y,
        "text": text,
        "showarrow": False,
        "xanchor": xanchor,
        "yanchor": yanchor,
        "font": {"size": 11, "color": color},
        "bgcolor": "rgba(255,255,255,0.85)",
    }


#: Log record markers (#18): level -> (colour, plotly symbol, size).
LOG_STYLE: dict[str, tuple[str, str, int]] = {
    "error": (ERROR_RED, "diamond", 10),
    "warn": ("#F59E0B", "circle", 8),
    "info": ("#94A3B8", "circle", 6),
}


def _add_log_markers(
    fig: go.Figure,
    diagram: Mapping[str, Any],
    offset: int,
    count: int,
    rows: Sequence[float],
    x_of: Mapping[str, int],
) -> None:
    """One marker per log record on its service's lifeline, just under the message it
    is drawn at (``message_index``), side by side in time order; the record on hover.
    ``customdata`` is the message's index, so a click opens that message's span."""
    placed: dict[tuple[int, str], int] = {}
    points: dict[str, dict[str, list[Any]]] = {}
    for record in diagram.get("logs") or []:
        index = record.get("message_index")
        participant = str(record.get("participant") or "")
        if index is None or participant not in x_of or not offset <= int(index) < offset + count:
            continue
        index = int(index)
        k = placed.get((index, participant), 0)
        placed[(index, participant)] = k + 1
        level = str(record.get("level") or "info")
        group = points.setdefault(level, {"x": [], "y": [], "text": [], "custom": []})
        group["x"].append(x_of[participant] + 0.07 + 0.06 * k)
        group["y"].append(rows[index - offset] + 0.32)
        lines = [
            f"<b>{esc(record.get('severity'), 20)}</b> {esc(record.get('service'), 60)}",
            esc(fmt_time(int(record.get("time_unix_nano") or 0))),
            esc(clip(record.get("body"), 300)),
        ]
        attributes = record.get("attributes") or {}
        if isinstance(attributes, Mapping):
            lines += [
                f"{esc(clip(key, 40))}: {esc(clip(value, 80))}"
                for key, value in list(attributes.items())[:8]
            ]
        lines.append(f"<i>log of message #{index + 1}</i>")
        group["text"].append("<br>".join(lines))
        group["custom"].append(index)
    for level in ("info", "warn", "error"):  # errors drawn last: on top
        group = points.get(level)
        if not group:
            continue
        colour, symbol, size = LOG_STYLE[level]
        fig.add_trace(
            go.Scatter(
                x=group["x"],
                y=group["y"],
                mode="markers",
                marker={
                    "size": size,
                    "color": colour,
                    "symbol": symbol,
                    "line": {"width": 1, "color": "white"},
                },
                customdata=group["custom"],
                text=group["text"],
                hovertemplate="%{text}<extra></extra>",
                hoverlabel={"bgcolor": "white", "font": {"size": 12}, "align": "left"},
                name=f"logs-{level}",
                showlegend=False,
            )
        )
