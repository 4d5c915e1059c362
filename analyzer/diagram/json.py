"""SPEC's ``diagram --format json`` shape, plus added fields (SPEC allows adding fields).

Added: per message ``server_span_id``, ``count``, ``failed``, ``link`` and ``attributes``;
per block ``branches``; top-level ``notes``, ``sections`` and ``omitted_messages``; per
log record (SPEC's ``logs``) ``participant`` and ``level``.
"""

from __future__ import annotations

import json
from typing import Any

from analyzer.diagram.model import Block, Diagram, LogMark, Message, Note, Participant, Section

__all__ = ["json_text", "render", "to_dict"]


def to_dict(diagram: Diagram) -> dict[str, Any]:
    """The diagram as plain JSON-ready data (the query API's body)."""
    entity = diagram.entity
    return {
        "entity": {"key": entity.key, "value": entity.value} if entity else None,
        "traces": list(diagram.traces),
        "participants": [_fields(p, _PARTICIPANT) for p in diagram.participants],
        "messages": [_message(m) for m in diagram.messages],
        "blocks": [_fields(b, _BLOCK) for b in diagram.blocks],
        "notes": [_fields(n, _NOTE) for n in diagram.notes],
        "sections": [_fields(s, _SECTION) for s in diagram.sections],
        "omitted_messages": diagram.omitted_messages,
        "logs": [_log(mark) for mark in diagram.logs],
    }


def render(diagram: Diagram) -> str:
    return json_text(to_dict(diagram))


def json_text(data: Any) -> str:
    """``data`` as indented JSON text with a final newline, the characters as they are."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Ids are kept verbatim; one with a lone surrogate (never from OTLP, whose strings
        # are valid UTF-8) is written as a \u escape instead of failing the caller's write.
        text = json.dumps(data, ensure_ascii=True, indent=2)
    return text + "\n"


#: Each record's fields, in the JSON's key order.
_PARTICIPANT = ("id", "label", "kind", "implicit")
_BLOCK = ("kind", "label", "first", "last", "branches")
_NOTE = ("index", "kind", "text", "participants", "gap_ns")
_SECTION = ("trace_id", "first", "last", "start_unix_nano", "end_unix_nano")


def _fields(item: Participant | Block | Note | Section, names: tuple[str, ...]) -> dict[str, Any]:
    """``item``'s attributes ``names``, in that order; tuples become JSON lists."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(item, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _message(message: Message) -> dict[str, Any]:
    drawn = _plain_message(message)
    if message.trace_ids:
        # A folded message (SPEC "Busy entities"): the traces it stands for, and how many
        # of its calls failed.
        drawn["trace_ids"] = list(message.trace_ids)
        drawn["errors"] = message.failed
    return drawn


def _plain_message(message: Message) -> dict[str, Any]:
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
