"""A standalone SVG sequence diagram, drawn by seqtrace itself (no browser, no Node).

Layout: participants across the top (and again at the bottom), one row per message,
step numbers and time offsets in a left gutter, activation bars while a call is open,
``loop``/``par`` frames, skew and partial-trace notes, and dividers for long gaps.
Hovering an arrow shows the span's details (an SVG ``<title>``).

Escaping: every piece of text goes through :func:`analyzer.escaping.xml_text`
(XML-escapes ``& < > " '`` and replaces characters XML 1.0 forbids), and nothing
user-controlled is ever put in an element or attribute name, a style or an id; so the
output is well-formed XML whatever the spans say. Text widths are estimated from
character classes, so no font metrics are needed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from analyzer.diagram.model import Block, Diagram, LogMark, Message, Note, Participant, Section
from analyzer.diagram.script import Branch, Close, MessageStep, NoteStep, Open, Step, steps
from analyzer.diagram.text import (
    TIMES,
    format_duration,
    format_offset,
    format_utc,
    one_line,
    shorten,
)
from analyzer.escaping import xml_text

__all__ = ["render", "text_width"]

FONT: Final = "'Inter', 'Segoe UI', 'Helvetica Neue', Helvetica, Arial, sans-serif"
MARGIN: Final = 24
GUTTER: Final = 132  # step numbers and time offsets live left of the first lifeline
TITLE_HEIGHT: Final = 58
BOX_HEIGHT: Final = 44
LABEL_SIZE: Final = 12.5
SMALL_SIZE: Final = 11
BAR_HALF: Final = 5
BAR_STEP: Final = 5
ERROR_LIMIT: Final = 90
#: Height of the strip under a message where its log records are marked.
LOG_ROW: Final = 14

INK: Final = "#1F2937"
MUTED: Final = "#64748B"
FAINT: Final = "#94A3B8"
LIFELINE: Final = "#CBD5E1"
ERROR: Final = "#D93025"
ASYNC: Final = "#B45309"

#: participant kind -> (fill, stroke, text)
PALETTE: Final = {
    "service": ("#EEF2FF", "#818CF8", "#1E1B4B"),
    "database": ("#ECFDF5", "#34D399", "#064E3B"),
    "queue": ("#FFFBEB", "#F59E0B", "#78350F"),
    "external": ("#F8FAFC", "#94A3B8", "#334155"),
}
#: block kind -> (stroke, tab fill)
FRAMES: Final = {
    "loop": ("#A78BFA", "#F3F0FF"),
    "par": ("#38BDF8", "#EAF6FE"),
    "alt": ("#94A3B8", "#F1F5F9"),
    "opt": ("#94A3B8", "#F1F5F9"),
}


# --- text -----------------------------------------------------------------------------------


_NARROW: Final = frozenset("iljtfrI.,:;'|!()[]{} ")
_WIDE: Final = frozenset("mwMWOQGD@%&")


def text_width(text: str, size: float = LABEL_SIZE) -> float:
    """An estimate of the rendered width of ``text`` in a sans-serif font."""
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += 0.32
        elif char in _WIDE:
            total += 0.86
        elif ord(char) >= 0x2E80:
            total += 1.0  # CJK, emoji
        elif char.isupper() or char.isdigit():
            total += 0.64
        else:
            total += 0.54
    return total * size


def _fmt(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


# --- layout ---------------------------------------------------------------------------------


@dataclass
class _Columns:
    x: dict[str, float]
    width: dict[str, float]
    right_edge: float


BOX_LABEL_LIMIT: Final = 32


def _box_label(participant: Participant) -> str:
    """Long names are cut in the box; the full name is in the box's hover text."""
    return shorten(participant.label, BOX_LABEL_LIMIT)


def _box_width(participant: Participant) -> float:
    extra = 46 if participant.kind == "queue" else 28
    return max(96.0, text_width(_box_label(participant), 12.5) + extra)


def _message_text(message: Message) -> str:
    return message.label


def _error_line(message: Message) -> str | None:
    if not message.error or message.kind == "call":
        return None
    return "✗ " + shorten(message.error, ERROR_LIMIT)


def _columns(diagram: Diagram) -> _Columns:
    ids = [p.id for p in diagram.participants]
    widths = {p.id: _box_width(p) for p in diagram.participants}
    position = {pid: i for i, pid in enumerate(ids)}
    needs: list[tuple[int, int, float]] = []
    for i in range(len(ids) - 1):
        needs.append((i, i + 1, (widths[ids[i]] + widths[ids[i + 1]]) / 2 + 20))
    right_extra = 0.0
    for message in diagram.messages:
        a, b = position.get(message.source), position.get(message.target)
        if a is None or b is None:
            continue
        label = text_width(_message_text(message) + "  " + _duration_text(message)) + 40
        error = _error_line(message)
        if error:
            label = max(label, text_width(error, SMALL_SIZE) + 48)
        if a == b:
            if a + 1 < len(ids):
                needs.append((a, a + 1, label + 16))
            else:
                right_extra = max(right_extra, label + 16)
        else:
            needs.append((min(a, b), max(a, b), label))
    x = [0.0] * len(ids)
    if ids:
        x[0] = GUTTER + widths[ids[0]] / 2
    for i in range(1, len(ids)):
        x[i] = x[i - 1]
    for lo, hi, need in sorted(needs, key=lambda n: (n[1], n[0])):
        deficit = need - (x[hi] - x[lo])
        if deficit > 0:
            for j in range(hi, len(ids)):
                x[j] += deficit
    right = max((x[i] + widths[pid] / 2 for i, pid in enumerate(ids)), default=GUTTER)
    if ids:
        right = max(right, x[-1] + right_extra)
    return _Columns(dict(zip(ids, x, strict=True)), widths, right)


def _duration_text(message: Message) -> str:
    if message.kind == "return":
        return ""
    return format_duration(message.duration_ns)


# --- drawing --------------------------------------------------------------------------------


@dataclass
class _Frame:
    block: Block
    depth: int
    top: float
    bottom: float = 0.0
    separators: list[float] = field(default_factory=list)


@dataclass
class _Canvas:
    """SVG fragments by layer, so frames sit under arrows and labels over lines."""

    diagram: Diagram
    columns: _Columns
    prefix: str
    y: float = 0.0
    frames: list[str] = field(default_factory=list)
    bars: list[str] = field(default_factory=list)
    arrows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gutter: list[str] = field(default_factory=list)
    open_frames: list[_Frame] = field(default_factory=list)
    done_frames: list[_Frame] = field(default_factory=list)
    active: dict[str, list[float]] = field(default_factory=dict)
    wide_right: float = 0.0
    #: Log records by the message they are drawn at (analyzer/diagram/logs.py).
    logs_at: dict[int, list[LogMark]] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)

    def col(self, participant_id: str) -> float:
        return self.columns.x.get(participant_id, GUTTER)

    def level(self, participant_id: str) -> int:
        return len(self.active.get(participant_id, []))

    def edge(self, participant_id: str, level: int, side: int) -> float:
        x = self.col(participant_id)
        if level <= 0:
            return x
        return x + (level - 1) * BAR_STEP + side * BAR_HALF


def render(diagram: Diagram) -> str:
    columns = _columns(diagram)
    canvas = _Canvas(diagram, columns, _prefix(diagram))
    for mark in diagram.logs:
        if mark.message_index is not None and mark.participant in columns.x:
            canvas.logs_at.setdefault(mark.message_index, []).append(mark)
    canvas.y = TITLE_HEIGHT + BOX_HEIGHT + 26
    sections = {s.first: s for s in diagram.sections if s.first <= s.last}
    for step in steps(diagram):
        _maybe_section(canvas, step, sections)
        _draw_step(canvas, step)
    _close_bars(canvas)
    canvas.y += 18
    return _assemble(canvas)


def _prefix(diagram: Diagram) -> str:
    """Marker ids unique per diagram, so several SVGs can share one HTML page."""
    seed = "|".join(diagram.traces) + f"|{len(diagram.messages)}"
    return "st" + hashlib.sha256(seed.encode()).hexdigest()[:8]


def _step_index(step: Step) -> int | None:
    if isinstance(step, MessageStep):
        return step.index
    if isinstance(step, NoteStep):
        return step.note.index
    if isinstance(step, Open):
        return step.block.first
    return None


def _maybe_section(canvas: _Canvas, step: Step, sections: dict[int, Section]) -> None:
    """A thin rule naming the trace before its first message (after a gap divider)."""
    index = _step_index(step)
    if index is None or index not in sections:
        return
    if isinstance(step, NoteStep) and step.note.kind == "gap":
        return
    section = sections.pop(index)
    y = canvas.y + 10
    right = _content_right(canvas)
    canvas.frames.append(
        f'<line x1="{MARGIN}" y1="{_fmt(y)}" x2="{_fmt(right)}" y2="{_fmt(y)}" '
        f'stroke="#E2E8F0" stroke-width="1"/>'
    )
    label = f"trace {section.trace_id} · {format_utc(section.start_unix_nano)}"
    canvas.gutter.append(
        f'<text x="{MARGIN}" y="{_fmt(y + 14)}" class="section">{xml_text(label)}</text>'
    )
    canvas.y += 30


def _content_right(canvas: _Canvas) -> float:
    return max(canvas.columns.right_edge, canvas.wide_right)


def _draw_step(canvas: _Canvas, step: Step) -> None:
    if isinstance(step, MessageStep):
        _draw_message(canvas, step.index, step.message)
    elif isinstance(step, NoteStep):
        _draw_note(canvas, step.note)
    elif isinstance(step, Open):
        canvas.y += 6
        canvas.open_frames.append(_Frame(step.block, step.depth, canvas.y))
        canvas.y += 26
    elif isinstance(step, Branch):
        frame = next(f for f in canvas.open_frames if f.block is step.block)
        canvas.y += 4
        frame.separators.append(canvas.y)
        canvas.y += 12
    elif isinstance(step, Close):
        frame = canvas.open_frames.pop()
        canvas.y += 6
        frame.bottom = canvas.y
        canvas.done_frames.append(frame)
        canvas.y += 6


# --- messages -------------------------------------------------------------------------------


def _draw_message(canvas: _Canvas, index: int, message: Message) -> None:
    top = canvas.y
    if message.source == message.target:
        arrow_y = _draw_self(canvas, message, top)
        height = 48.0
    else:
        arrow_y = _draw_arrow(canvas, message, top)
        height = 36.0
    error = _error_line(message)
    if error:
        _draw_error_text(canvas, message, arrow_y, error)
        height += 14
    _draw_gutter(canvas, index, message, arrow_y)
    marks = canvas.logs_at.get(index)
    if marks:
        _draw_log_marks(canvas, marks, top + height)
        height += LOG_ROW
    canvas.y = top + height


def _draw_log_marks(canvas: _Canvas, marks: list[LogMark], top: float) -> None:
    """One marker per record on its service's lifeline, in time order left to right;
    errors red and larger, warnings amber. The record's text is the marker's hover."""
    y = top + LOG_ROW / 2
    placed: dict[str, int] = {}
    for mark in marks:
        assert mark.participant is not None
        k = placed.get(mark.participant, 0)
        placed[mark.participant] = k + 1
        x = canvas.col(mark.participant) + BAR_HALF + 7 + k * 11
        canvas.wide_right = max(canvas.wide_right, x + 8)
        radius = 4.5 if mark.level == "error" else 3.5
        shape = (
            f'<rect x="{_fmt(x - radius)}" y="{_fmt(y - radius)}" width="{_fmt(radius * 2)}" '
            f'height="{_fmt(radius * 2)}" transform="rotate(45 {_fmt(x)} {_fmt(y)})" '
            f'class="log {mark.level}"/>'
            if mark.level == "error"
            else f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="{_fmt(radius)}" '
            f'class="log {mark.level}"/>'
        )
        lines = [
            f"{mark.severity} {mark.service} {format_utc(mark.time_unix_nano)}",
            mark.body,
            *(f"{key} = {value}" for key, value in mark.attributes),
        ]
        title = "\n".join(xml_text(shorten(one_line(str(line)), 300)) for line in lines)
        canvas.marks.append(f"<g><title>{title}</title>{shape}</g>")


def _arrow_class(message: Message) -> str:
    if message.is_error:
        return f"{message.kind} error"
    return message.kind


def _marker(canvas: _Canvas, message: Message) -> str:
    shape = "solid" if message.kind in ("call", "self") else "open"
    tone = "err" if message.is_error else ("async" if message.kind == "async" else "ink")
    return f"url(#{canvas.prefix}-{shape}-{tone})"


def _endpoints(canvas: _Canvas, message: Message) -> tuple[float, float]:
    """Arrow ends at the edges of the activation bars; a call opens one on its target."""
    source, target = message.source, message.target
    rightwards = canvas.col(target) >= canvas.col(source)
    side = 1 if rightwards else -1
    start = canvas.edge(source, canvas.level(source), side)
    target_level = canvas.level(target) + (1 if message.kind == "call" else 0)
    end = canvas.edge(target, target_level, -side)
    return start, end


def _draw_arrow(canvas: _Canvas, message: Message, top: float) -> float:
    arrow_y = top + 26
    start, end = _endpoints(canvas, message)
    if message.kind == "return":
        _close_bar(canvas, message.source, arrow_y)
    if message.kind == "call":
        canvas.active.setdefault(message.target, []).append(arrow_y)
    body = (
        f'<line x1="{_fmt(start)}" y1="{_fmt(arrow_y)}" x2="{_fmt(end)}" y2="{_fmt(arrow_y)}" '
        f'class="{_arrow_class(message)}" marker-end="{_marker(canvas, message)}"/>'
    )
    label_x = (start + end) / 2
    text = _label_svg(message, label_x, arrow_y - 7, "middle")
    canvas.arrows.append(_hover_group(canvas, message, body + text))
    return arrow_y


def _draw_self(canvas: _Canvas, message: Message, top: float) -> float:
    arrow_y = top + 24
    x = canvas.edge(message.source, canvas.level(message.source), 1)
    loop_right = x + 30
    body = (
        f'<path d="M{_fmt(x)},{_fmt(arrow_y)} H{_fmt(loop_right)} V{_fmt(arrow_y + 14)} '
        f'H{_fmt(x + 2)}" fill="none" class="{_arrow_class(message)}" '
        f'marker-end="{_marker(canvas, message)}"/>'
    )
    text = _label_svg(message, loop_right + 8, arrow_y + 4, "start")
    canvas.arrows.append(_hover_group(canvas, message, body + text))
    right = loop_right + 8 + text_width(message.label + "  " + _duration_text(message)) + 12
    canvas.wide_right = max(canvas.wide_right, right)
    return arrow_y + 14


def _label_svg(message: Message, x: float, y: float, anchor: str) -> str:
    css = "label failed" if message.is_error else "label"
    duration = _duration_text(message)
    tail = f'<tspan class="dur">  {xml_text(duration)}</tspan>' if duration else ""
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" text-anchor="{anchor}" class="{css}">'
        f"{xml_text(_message_text(message))}{tail}</text>"
    )


def _draw_error_text(canvas: _Canvas, message: Message, arrow_y: float, error: str) -> None:
    a, b = canvas.col(message.source), canvas.col(message.target)
    if message.source == message.target:
        x, anchor = a + 38, "start"
    else:
        x, anchor = (a + b) / 2, "middle"
    canvas.arrows.append(
        f'<text x="{_fmt(x)}" y="{_fmt(arrow_y + 15)}" text-anchor="{anchor}" '
        f'class="errtext">{xml_text(error)}</text>'
    )


def _draw_gutter(canvas: _Canvas, index: int, message: Message, arrow_y: float) -> None:
    canvas.gutter.append(
        f'<text x="{MARGIN}" y="{_fmt(arrow_y + 4)}" class="step">{index + 1}</text>'
    )
    if message.kind == "return":
        return
    start = _section_start(canvas.diagram, message.trace_id)
    offset = format_offset(message.start_unix_nano - start)
    canvas.gutter.append(
        f'<text x="{GUTTER - 30}" y="{_fmt(arrow_y + 4)}" text-anchor="end" class="time">'
        f"{xml_text(offset)}</text>"
    )


def _section_start(diagram: Diagram, trace_id: str) -> int:
    for section in diagram.sections:
        if section.trace_id == trace_id:
            return section.start_unix_nano
    return min((m.start_unix_nano for m in diagram.messages), default=0)


def _hover_group(canvas: _Canvas, message: Message, body: str) -> str:
    labels = {p.id: p.label for p in canvas.diagram.participants}
    lines = [
        f"{labels.get(message.source, message.source)} → "
        f"{labels.get(message.target, message.target)}: {message.label}",
        f"{message.kind}, {message.status}"
        + (f", {TIMES}{message.count} ({message.failed} failed)" if message.count > 1 else ""),
        f"start {format_utc(message.start_unix_nano)}, duration "
        f"{format_duration(message.duration_ns)}",
        f"trace {message.trace_id} span {message.span_id}",
    ]
    if message.error:
        lines.append(f"error: {message.error}")
    lines += [f"{key} = {value}" for key, value in message.attributes]
    title = "\n".join(xml_text(one_line(line)) for line in lines)
    return f"<g><title>{title}</title>{body}</g>"


# --- activation bars ------------------------------------------------------------------------


def _close_bar(canvas: _Canvas, participant_id: str, y: float) -> None:
    stack = canvas.active.get(participant_id)
    if not stack:
        return
    level = len(stack)
    top = stack.pop()
    x = canvas.edge(participant_id, level, -1)
    kind = _kind(canvas.diagram, participant_id)
    _, stroke, _ = PALETTE[kind]
    canvas.bars.append(
        f'<rect x="{_fmt(x)}" y="{_fmt(top)}" width="{BAR_HALF * 2}" '
        f'height="{_fmt(max(4.0, y - top))}" rx="2" fill="#FFFFFF" stroke="{stroke}"/>'
    )


def _close_bars(canvas: _Canvas) -> None:
    for participant_id in list(canvas.active):
        while canvas.active[participant_id]:
            _close_bar(canvas, participant_id, canvas.y)


def _kind(diagram: Diagram, participant_id: str) -> str:
    participant = diagram.participant(participant_id)
    return participant.kind if participant else "service"


# --- notes and dividers ---------------------------------------------------------------------


def _draw_note(canvas: _Canvas, note: Note) -> None:
    if note.kind == "gap":
        _draw_divider(canvas, f"⋯ {note.text} ⋯")
        return
    text = shorten(one_line(note.text), 140)
    width = text_width(text, SMALL_SIZE) + 24
    over = [canvas.col(p) for p in note.participants if p in canvas.columns.x]
    centre = (min(over) + max(over)) / 2 if over else (GUTTER + _content_right(canvas)) / 2
    left = max(float(MARGIN), centre - width / 2)
    css = "note omitted" if note.kind == "omitted" else "note"
    canvas.notes.append(
        f'<g><rect x="{_fmt(left)}" y="{_fmt(canvas.y + 6)}" width="{_fmt(width)}" height="24" '
        f'rx="4" class="{css}"/><text x="{_fmt(left + width / 2)}" y="{_fmt(canvas.y + 22)}" '
        f'text-anchor="middle" class="notetext">{xml_text(text)}</text></g>'
    )
    canvas.wide_right = max(canvas.wide_right, left + width)
    canvas.y += 36


def _draw_divider(canvas: _Canvas, text: str) -> None:
    y = canvas.y + 18
    right = _content_right(canvas)
    width = text_width(text, 12) + 28
    centre = (MARGIN + right) / 2
    canvas.notes.append(
        f'<g><line x1="{MARGIN}" y1="{_fmt(y)}" x2="{_fmt(right)}" y2="{_fmt(y)}" '
        f'class="divider"/><rect x="{_fmt(centre - width / 2)}" y="{_fmt(y - 12)}" '
        f'width="{_fmt(width)}" height="24" rx="12" class="pill"/>'
        f'<text x="{_fmt(centre)}" y="{_fmt(y + 4)}" text-anchor="middle" class="gap">'
        f"{xml_text(text)}</text></g>"
    )
    canvas.y += 40


# --- frames ---------------------------------------------------------------------------------


def _frame_extent(canvas: _Canvas, frame: _Frame, nesting: int) -> tuple[float, float]:
    messages = canvas.diagram.messages[frame.block.first : frame.block.last + 1]
    xs = [canvas.col(p) for m in messages for p in (m.source, m.target)] or [GUTTER]
    pad = 14 + 8 * nesting
    left, right = min(xs) - pad - BAR_HALF, max(xs) + pad + BAR_HALF
    for message in messages:
        if message.source == message.target:
            width = text_width(message.label + "  " + _duration_text(message))
            right = max(right, canvas.col(message.source) + 50 + width + pad)
    tab = text_width(frame.block.kind, SMALL_SIZE) + text_width(frame.block.label, SMALL_SIZE)
    right = max(right, left + tab + 56)
    return max(float(MARGIN) + 60, left), right


def _nesting(frame: _Frame, frames: list[_Frame]) -> int:
    """How many frames sit inside this one (outer frames get more padding)."""
    inner = [
        other
        for other in frames
        if other is not frame
        and frame.block.first <= other.block.first
        and other.block.last <= frame.block.last
        and other.depth > frame.depth
    ]
    return max((other.depth - frame.depth for other in inner), default=0)


def _draw_frames(canvas: _Canvas) -> tuple[list[str], list[str]]:
    """Frame outlines (drawn under the arrows) and their tabs (drawn over lifelines)."""
    outlines: list[str] = []
    tabs: list[str] = []
    frames = sorted(canvas.done_frames, key=lambda f: (f.depth, f.top))
    for frame in frames:
        left, right = _frame_extent(canvas, frame, _nesting(frame, frames))
        canvas.wide_right = max(canvas.wide_right, right)
        outlines.append(_frame_outline(frame, left, right))
        tabs.append(_frame_tab(frame, left))
    return outlines, tabs


def _frame_outline(frame: _Frame, left: float, right: float) -> str:
    stroke, fill = FRAMES[frame.block.kind]
    top, height = frame.top, frame.bottom - frame.top
    parts = [
        f'<rect x="{_fmt(left)}" y="{_fmt(top)}" width="{_fmt(right - left)}" '
        f'height="{_fmt(height)}" rx="5" fill="{fill}" fill-opacity="0.35" stroke="{stroke}"/>'
    ]
    parts += [
        f'<line x1="{_fmt(left)}" y1="{_fmt(y)}" x2="{_fmt(right)}" y2="{_fmt(y)}" '
        f'stroke="{stroke}" stroke-dasharray="5 4"/>'
        for y in frame.separators
    ]
    return "<g>" + "".join(parts) + "</g>"


def _frame_tab(frame: _Frame, left: float) -> str:
    stroke, fill = FRAMES[frame.block.kind]
    kind = frame.block.kind
    tab_width = text_width(kind, SMALL_SIZE) + 22
    top = frame.top
    label = frame.block.label
    label_width = text_width(label, SMALL_SIZE) + 12
    return (
        f'<g><path d="M{_fmt(left)},{_fmt(top + 5)} a5,5 0 0 1 5,-5 H{_fmt(left + tab_width)} '
        f'V{_fmt(top + 12)} l-6,7 H{_fmt(left)} Z" fill="{fill}" stroke="{stroke}"/>'
        f'<text x="{_fmt(left + 8)}" y="{_fmt(top + 14)}" class="tab">{xml_text(kind)}</text>'
        f'<rect x="{_fmt(left + tab_width + 3)}" y="{_fmt(top + 3)}" width="{_fmt(label_width)}" '
        f'height="15" rx="3" fill="#FFFFFF" fill-opacity="0.85"/>'
        f'<text x="{_fmt(left + tab_width + 9)}" y="{_fmt(top + 14)}" class="tablabel">'
        f"{xml_text(label)}</text></g>"
    )


# --- participants ---------------------------------------------------------------------------


def _participant_svg(participant: Participant, x: float, top: float, width: float) -> str:
    fill, stroke, ink = PALETTE[participant.kind]
    label = xml_text(_box_label(participant))
    hover = f"<title>{xml_text(participant.id)} ({participant.kind})</title>"
    if participant.implicit:
        return f"<g>{hover}{_actor_svg(x, top, label, stroke)}</g>"
    left = x - width / 2
    mid = top + BOX_HEIGHT / 2
    shape = _shape(participant.kind, left, top, width, fill, stroke)
    text_x = x - (4 if participant.kind == "queue" else 0)
    text_y = mid + (7 if participant.kind == "database" else 4.5)
    return (
        f'<g>{hover}{shape}<text x="{_fmt(text_x)}" y="{_fmt(text_y)}" '
        f'text-anchor="middle" class="plabel" fill="{ink}">{label}</text></g>'
    )


def _shape(kind: str, left: float, top: float, width: float, fill: str, stroke: str) -> str:
    right, bottom = left + width, top + BOX_HEIGHT
    if kind == "database":
        ry = 6
        arc = f"a{_fmt(width / 2)},{ry} 0 0"
        return (
            f'<path d="M{_fmt(left)},{_fmt(top + ry)} {arc} 1 {_fmt(width)},0 '
            f'V{_fmt(bottom - ry)} {arc} 1 {_fmt(-width)},0 Z" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.3"/>'
            f'<path d="M{_fmt(left)},{_fmt(top + ry)} {arc} 0 {_fmt(width)},0" '
            f'fill="none" stroke="{stroke}" stroke-width="1.3"/>'
        )
    if kind == "queue":
        rx = 8
        return (
            f'<path d="M{_fmt(left + rx)},{_fmt(top)} H{_fmt(right - rx)} '
            f"a{rx},{_fmt(BOX_HEIGHT / 2)} 0 0 1 0,{BOX_HEIGHT} H{_fmt(left + rx)} "
            f'a{rx},{_fmt(BOX_HEIGHT / 2)} 0 0 1 0,{-BOX_HEIGHT} Z" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.3"/>'
            f'<path d="M{_fmt(right - rx)},{_fmt(top)} a{rx},{_fmt(BOX_HEIGHT / 2)} 0 0 0 0,'
            f'{BOX_HEIGHT}" fill="none" stroke="{stroke}" stroke-width="1.3"/>'
        )
    dash = ' stroke-dasharray="5 3"' if kind == "external" else ""
    return (
        f'<rect x="{_fmt(left)}" y="{_fmt(top)}" width="{_fmt(width)}" height="{BOX_HEIGHT}" '
        f'rx="7" fill="{fill}" stroke="{stroke}" stroke-width="1.3"{dash}/>'
    )


def _actor_svg(x: float, top: float, label: str, stroke: str) -> str:
    head_y = top + 8
    return (
        f'<g fill="none" stroke="{stroke}" stroke-width="1.4" stroke-linecap="round">'
        f'<circle cx="{_fmt(x)}" cy="{_fmt(head_y)}" r="6" fill="#F8FAFC"/>'
        f'<path d="M{_fmt(x)},{_fmt(head_y + 6)} v12 M{_fmt(x - 9)},{_fmt(head_y + 10)} h18 '
        f'M{_fmt(x)},{_fmt(head_y + 18)} l-7,9 M{_fmt(x)},{_fmt(head_y + 18)} l7,9"/></g>'
        f'<text x="{_fmt(x)}" y="{_fmt(top + BOX_HEIGHT + 6)}" text-anchor="middle" '
        f'class="plabel" fill="{INK}">{label}</text>'
    )


def _participants_svg(canvas: _Canvas, top: float) -> list[str]:
    out: list[str] = []
    for participant in canvas.diagram.participants:
        x = canvas.col(participant.id)
        width = canvas.columns.width[participant.id]
        out.append(_participant_svg(participant, x, top, width))
    return out


def _lifelines(canvas: _Canvas, top: float, bottom: float) -> list[str]:
    return [
        f'<line x1="{_fmt(canvas.col(p.id))}" y1="{_fmt(top)}" x2="{_fmt(canvas.col(p.id))}" '
        f'y2="{_fmt(bottom)}" class="lifeline"/>'
        for p in canvas.diagram.participants
    ]


# --- the document ---------------------------------------------------------------------------


def _title(diagram: Diagram) -> tuple[str, str]:
    if diagram.entity:
        heading = f"{diagram.entity.key} = {diagram.entity.value}"
    elif len(diagram.traces) == 1:
        heading = f"trace {diagram.traces[0]}"
    else:
        heading = "sequence diagram"
    errors = sum(1 for m in diagram.messages if m.is_error and m.kind != "return")
    facts = [
        f"{len(diagram.traces)} trace{'s' if len(diagram.traces) != 1 else ''}",
        f"{len(diagram.participants)} participants",
        f"{len(diagram.messages)} messages",
        f"{errors} failed" if errors else "no failures",
    ]
    if diagram.sections:
        first = min(s.start_unix_nano for s in diagram.sections)
        facts.append(f"from {format_utc(first)}")
    return shorten(one_line(heading), 120), " · ".join(facts)


def _defs(prefix: str) -> str:
    markers = []
    for tone, colour in (("ink", "#334155"), ("err", ERROR), ("async", ASYNC)):
        markers.append(
            f'<marker id="{prefix}-solid-{tone}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0.5 L10,5 L0,9.5 z" fill="{colour}"/></marker>'
        )
        markers.append(
            f'<marker id="{prefix}-open-{tone}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
            f'<path d="M0.5,0.5 L9.5,5 L0.5,9.5" fill="none" stroke="{colour}" '
            f'stroke-width="1.4"/></marker>'
        )
    return "<defs>" + "".join(markers) + "</defs>"


_STYLE: Final = f"""
text {{ font-family: {FONT}; fill: {INK}; }}
.title {{ font-size: 16px; font-weight: 600; }}
.subtitle {{ font-size: 12px; fill: {MUTED}; }}
.plabel {{ font-size: 12.5px; font-weight: 600; }}
.lifeline {{ stroke: {LIFELINE}; stroke-width: 1.2; stroke-dasharray: 4 4; }}
.label {{ font-size: {LABEL_SIZE}px; }}
.label.failed {{ fill: {ERROR}; font-weight: 600; }}
.dur {{ font-size: 10.5px; fill: {FAINT}; font-weight: 400; }}
.errtext {{ font-size: {SMALL_SIZE}px; fill: {ERROR}; }}
.call, .self {{ stroke: #334155; stroke-width: 1.4; }}
.return {{ stroke: {MUTED}; stroke-width: 1.2; stroke-dasharray: 5 4; }}
.async {{ stroke: {ASYNC}; stroke-width: 1.3; stroke-dasharray: 7 4; }}
line.error, path.error {{ stroke: {ERROR}; }}
.step {{ font-size: 10px; fill: {FAINT}; font-weight: 600; }}
.time {{ font-size: 10.5px; fill: {MUTED}; font-variant-numeric: tabular-nums; }}
.section {{ font-size: 10.5px; fill: {FAINT}; }}
.tab {{ font-size: {SMALL_SIZE}px; font-weight: 700; fill: #334155; }}
.tablabel {{ font-size: {SMALL_SIZE}px; fill: #475569; }}
.note {{ fill: #FEF9C3; stroke: #EAB308; }}
.note.omitted {{ fill: #F1F5F9; stroke: {FAINT}; }}
.notetext {{ font-size: {SMALL_SIZE}px; fill: #713F12; }}
.divider {{ stroke: {FAINT}; stroke-width: 1.2; stroke-dasharray: 2 5; }}
.pill {{ fill: #F1F5F9; stroke: {FAINT}; }}
.gap {{ font-size: 12px; font-weight: 600; fill: #475569; }}
"""
#: Only in diagrams with log markers, so that diagrams without logs stay byte-identical.
_LOG_STYLE: Final = f""".log {{ stroke: #FFFFFF; stroke-width: 1; }}
.log.info {{ fill: {FAINT}; }}
.log.warn {{ fill: #F59E0B; }}
.log.error {{ fill: {ERROR}; }}
"""


def _assemble(canvas: _Canvas) -> str:
    diagram = canvas.diagram
    frames, tabs = _draw_frames(canvas)
    header_top = TITLE_HEIGHT
    body_bottom = canvas.y
    footer_top = body_bottom + 8
    width = _content_right(canvas) + MARGIN
    heading, facts = _title(diagram)
    width = max(width, MARGIN * 2 + text_width(facts, 12), MARGIN * 2 + text_width(heading, 16))
    height = footer_top + BOX_HEIGHT + (24 if any(p.implicit for p in diagram.participants) else 12)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}" height="{_fmt(height)}" '
        f'viewBox="0 0 {_fmt(width)} {_fmt(height)}" role="img">',
        f"<title>{xml_text(heading)}</title>",
        f"<style>{_STYLE}{_LOG_STYLE if canvas.marks else ''}</style>",
        _defs(canvas.prefix),
        f'<rect x="0" y="0" width="{_fmt(width)}" height="{_fmt(height)}" fill="#FFFFFF"/>',
        f'<text x="{MARGIN}" y="28" class="title">{xml_text(heading)}</text>',
        f'<text x="{MARGIN}" y="47" class="subtitle">{xml_text(facts)}</text>',
        *_lifelines(canvas, header_top + BOX_HEIGHT, footer_top),
        *frames,
        *canvas.frames,
        *canvas.bars,
        *canvas.arrows,
        *canvas.marks,
        *tabs,
        *canvas.notes,
        *canvas.gutter,
        *_participants_svg(canvas, header_top),
        *_participants_svg(canvas, footer_top),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
