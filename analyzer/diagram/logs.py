"""Log records on a diagram: which message each is drawn at, on which lifeline.

A record belongs to the diagram when its span is one of the drawn spans (or it names the
trace but no span). It is drawn at the message of its span's subtree that had started
last when it was written: a record written by a span that calls three services after
the first of them answered sits after that call, "at its time". The spans a diagram
leaves out (INTERNAL ones, unless shown) pass their records to their nearest drawn
ancestor. A record with no such message (its span is the root of the trace, and the
stand-in caller is not drawn) keeps ``message_index`` null and is listed, not drawn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analyzer.diagram.model import Diagram, LogLevel, LogMark
from spanstore.model import Span

__all__ = ["attach_logs", "log_level", "logs_of_spans"]

_WARN: int = 13
_ERROR: int = 17


def log_level(severity: str, severity_number: int) -> LogLevel:
    """error (ERROR/FATAL, numbers 17-24), warn (WARN, 13-16), else info."""
    text = severity.upper()
    if severity_number >= _ERROR or text.startswith(("ERR", "FATAL", "CRIT", "EMERG", "ALERT")):
        return "error"
    if severity_number >= _WARN or text.startswith("WARN"):
        return "warn"
    return "info"


def logs_of_spans(
    records: Iterable[Mapping[str, Any]], spans: Sequence[Span]
) -> list[Mapping[str, Any]]:
    """The records (``logs --json`` dicts) of these spans, or of their traces with no span,
    in time order."""
    span_ids = {(s.trace_id, s.span_id) for s in spans}
    traces = {s.trace_id for s in spans}
    kept = [
        r
        for r in records
        if r.get("trace_id") in traces
        and (r.get("span_id") is None or (r["trace_id"], r["span_id"]) in span_ids)
    ]
    kept.sort(key=lambda r: int(r["time_unix_nano"]))
    return kept


def attach_logs(
    diagram: Diagram, spans: Sequence[Span], records: Iterable[Mapping[str, Any]]
) -> Diagram:
    """``diagram`` with ``logs``: each record of its spans placed at a message."""
    parents = {(s.trace_id, s.span_id): s.parent_span_id for s in spans}
    # Each drawn message under the span ids it stands for (client and server side).
    messages_of: dict[tuple[str, str], list[int]] = {}
    for index, message in enumerate(diagram.messages):
        # Returns count too: a record written when a call failed sits at its answer.
        for span_id in (message.span_id, message.server_span_id):
            if span_id:
                messages_of.setdefault((message.trace_id, span_id), []).append(index)
    # The messages inside each span's subtree (a message counts for every ancestor).
    subtree: dict[tuple[str, str], list[int]] = {}
    for (trace_id, span_id), indices in messages_of.items():
        seen: set[str] = set()
        current: str | None = span_id
        while current is not None and current not in seen:
            seen.add(current)
            subtree.setdefault((trace_id, current), []).extend(indices)
            current = parents.get((trace_id, current))
    participants = {p.id for p in diagram.participants}
    marks: list[LogMark] = []
    for record in logs_of_spans(records, spans):
        trace_id = record["trace_id"]
        time_ns = int(record["time_unix_nano"])
        at = _message_at(diagram, subtree, parents, trace_id, record.get("span_id"), time_ns)
        service = str(record.get("service", ""))
        participant = service if service in participants else None
        if participant is None and at is not None:
            participant = diagram.messages[at].target
        severity = str(record.get("severity", ""))
        number = int(record.get("severity_number", 0))
        marks.append(
            LogMark(
                time_unix_nano=time_ns,
                severity=severity,
                severity_number=number,
                body=str(record.get("body", "")),
                service=service,
                trace_id=trace_id,
                span_id=record.get("span_id"),
                attributes=tuple(dict(record.get("attributes") or {}).items()),
                message_index=at,
                participant=participant,
                level=log_level(severity, number),
            )
        )
    return dataclasses.replace(diagram, logs=tuple(marks))


def _message_at(
    diagram: Diagram,
    subtree: Mapping[tuple[str, str], list[int]],
    parents: Mapping[tuple[str, str], str | None],
    trace_id: str,
    span_id: str | None,
    time_ns: int,
) -> int | None:
    current = span_id
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        indices = subtree.get((trace_id, current))
        if indices:
            started = [i for i in indices if diagram.messages[i].start_unix_nano <= time_ns]
            return max(started) if started else min(indices)
        current = parents.get((trace_id, current))
    return None


#: Text diagrams note at most this many records per message (the rest are counted).
NOTES_PER_MESSAGE = 3
_NOTE_BODY_LIMIT = 100


def log_notes(diagram: Diagram) -> dict[int, list[tuple[str, str]]]:
    """For Mermaid and PlantUML: message index -> (participant, note text) of its error
    and warning records (info lines would drown the diagram)."""
    from analyzer.diagram.text import one_line, shorten

    grouped: dict[tuple[int, str], list[LogMark]] = {}
    for mark in diagram.logs:
        if mark.level == "info" or mark.message_index is None or mark.participant is None:
            continue
        grouped.setdefault((mark.message_index, mark.participant), []).append(mark)
    notes: dict[int, list[tuple[str, str]]] = {}
    for (index, participant), marks in sorted(grouped.items()):
        for mark in marks[:NOTES_PER_MESSAGE]:
            text = f"{mark.severity or mark.level.upper()}: {one_line(mark.body)}"
            notes.setdefault(index, []).append((participant, shorten(text, _NOTE_BODY_LIMIT)))
        if len(marks) > NOTES_PER_MESSAGE:
            more = len(marks) - NOTES_PER_MESSAGE
            notes[index].append((participant, f"and {more} more error/warning logs"))
    return notes
