"""SPEC's ``diagram --format json`` shape, plus added fields (SPEC allows adding fields).

Added: per message ``server_span_id``, ``count``, ``failed``, ``link`` and ``attributes``;
per block ``branches``; top-level ``notes``, ``sections`` and ``omitted_messages``; per
log record (SPEC's ``logs``) ``participant`` and ``level``.
"""

from __future__ import annotations

import json
from typing import Any

from analyzer.diagram.model import Block, Diagram, LogMark, Message, Note, Participant, Section

__all__ = ["render", "to_dict"]


def to_dict(diagram: Diagram) -> dict[str, Any]:
    """The diagram as plain JSON-ready data (the query API's body)."""
    entity = diagram.entity
    return {
        "entity": {"key": entity.key, "value": entity.value} if entity else None,
        "traces": list(diagram.traces),
        "participants": [_participant(p) for p in diagram.participants],
        "messages": [_message(m) for m in diagram.messages],
        "blocks": [_block(b) for b in diagram.blocks],
        "notes": [_note(n) for n in diagram.notes],
        "sections": [_section(s) for s in diagram.sections],
        "omitted_messages": diagram.omitted_messages,
        "logs": [_log(mark) for mark in diagram.logs],
    }


def render(diagram: Diagram) -> str:
    data = to_dict(diagram)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Ids are kept verbatim; one with a lone surrogate (never from OTLP, whose strings
        # are valid UTF-8) is written as a \u escape instead of failing the caller's write.
        text = json.dumps(data, ensure_ascii=True, indent=2)
    return text + "\n"


def _participant(participant: Participant) -> dict[str, Any]:
    return {
        "id": participant.id,
        "label": participant.label,
        "kind": participant.kind,
        "implicit": participant.implicit,
    }


def _message(message: Message) -> dict[str, Any]:
    link = message.link
    return {
        "from": message.source,
        "to": message.target,
        "label": message.label,
        "kind": message.kind,
        "status": message.status,
        "error": message.error,
        "start_unix_nano": message.start_unix_nano,
        "duration_ns": message.duration_ns,
        "trace_id": message.trace_id,
        "span_id": message.span_id,
        "server_span_id": message.server_span_id,
        "count": message.count,
        "failed": message.failed,
        "link": {"trace_id": link.trace_id, "span_id": link.span_id} if link else None,
        "attributes": dict(message.attributes),
    }


def _block(block: Block) -> dict[str, Any]:
    return {
        "kind": block.kind,
        "label": block.label,
        "first": block.first,
        "last": block.last,
        "branches": list(block.branches),
    }


def _note(note: Note) -> dict[str, Any]:
    return {
        "index": note.index,
        "kind": note.kind,
        "text": note.text,
        "participants": list(note.participants),
        "gap_ns": note.gap_ns,
    }


def _section(section: Section) -> dict[str, Any]:
    return {
        "trace_id": section.trace_id,
        "first": section.first,
        "last": section.last,
        "start_unix_nano": section.start_unix_nano,
        "end_unix_nano": section.end_unix_nano,
    }


def _log(mark: LogMark) -> dict[str, Any]:
    return {
        "time_unix_nano": mark.time_unix_nano,
        "severity": mark.severity,
        "severity_number": mark.severity_number,
        "body": mark.body,
        "service": mark.service,
        "trace_id": mark.trace_id,
        "span_id": mark.span_id,
        "attributes": dict(mark.attributes),
        "message_index": mark.message_index,
        "participant": mark.participant,
        "level": mark.level,
    }
