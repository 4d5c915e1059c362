"""``seqtrace diff``: how a second entity's sequence differs from a first one's.

The first entity's observed diagram is drafted into a contract exactly as ``contract init``
does (retries as a ``loop``, concurrency as a ``par``) and the second entity is matched
against it with the one matcher (:mod:`analyzer.contracts.matcher`). The same renderers
draw a contract check of one entity (the UI's per-entity diff).

Diff JSON (docs/contracts.md, "Diff JSON")::

    {"base": {"kind": "entity" | "contract", "name": str, "entity": {"key", "value"} | null},
     "other": {"key": str, "value": str},
     "conforming": bool,
     "summary": {"same": int, "missing": int, "unexpected": int, "changed": int},
     "participants": [{"id": str, "label": str, "kind": str}],
     "steps": [step, ...],            # analyzer.contracts.check.step_dicts
     "violations": [{"kind", "expected", "observed", "message", ...}]}

Mermaid: every step is one arrow (``autonumber`` numbers them as the table does). Missing
calls are dashed (``-->>``) with a "missing:" label (after a cross mark) inside a grey
``rect``; unexpected ones red (``rect rgba(255,0,0,0.12)``) with "unexpected:" (after a
heavy plus sign); changed ones (kind or status) orange with "changed:" (after a warning
sign); an ``order`` violation is a grey "moved from here:" and a red "moved here:" (after
an up-down arrow). Mermaid has no per-arrow colour, hence the frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from analyzer.contracts.check import step_dicts
from analyzer.contracts.draft import draft_contract
from analyzer.contracts.fetch import entity_diagram
from analyzer.contracts.matcher import Alignment, Matcher
from analyzer.contracts.observed import observed_sequence
from analyzer.contracts.parser import parse_contract
from analyzer.escaping import (
    MERMAID_KEYWORDS,
    markdown_cell,
    mermaid_text,
    safe_aliases,
    shorten,
)
from analyzer.source import Source, SourceError, parse_entity
from spanstore import SpanReader

__all__ = [
    "DIFF_FORMATS",
    "contract_diff",
    "diff",
    "diff_result",
    "render_diff",
    "render_diff_markdown",
    "render_diff_mermaid",
]

DIFF_FORMATS: Final = ("json", "mermaid", "markdown")
_FRAMES: Final = {
    "missing": "rect rgba(128, 128, 128, 0.15)",
    "unexpected": "rect rgba(255, 0, 0, 0.12)",
    "changed": "rect rgba(255, 165, 0, 0.18)",
}
_SHAPES: Final = {"database": "database", "queue": "queue", "external": "boundary"}
_INDENT: Final = "    "
_ERROR_LIMIT: Final = 80
MISSING: Final = "\u274c missing: "
UNEXPECTED: Final = "\u2795 unexpected: "
CHANGED: Final = "\u26a0 changed: "
MOVED_FROM: Final = "\u2195 moved from here: "
MOVED_TO: Final = "\u2195 moved here: "


def diff(
    source: Source | SpanReader,
    entity_a: str,
    entity_b: str,
    fmt: str = "markdown",
    start: int | None = None,
    end: int | None = None,
) -> str | dict[str, Any]:
    """How ``entity_b``'s sequence differs from ``entity_a``'s, as ``fmt`` (json: a dict)."""
    if fmt not in DIFF_FORMATS:
        raise SourceError(f"unknown diff format {fmt!r}; use json, mermaid or markdown")
    key_a, value_a = parse_entity(entity_a)
    key_b, value_b = parse_entity(entity_b)
    base = entity_diagram(source, f"{key_a}={value_a}", start, end)
    other = entity_diagram(source, f"{key_b}={value_b}", start, end)
    contract = draft_contract(base, f"{key_a}={value_a}")
    alignment = Matcher(contract).align(observed_sequence(other))
    result = diff_result(
        alignment,
        {
            "kind": "entity",
            "name": f"{key_a}={value_a}",
            "entity": {"key": key_a, "value": value_a},
        },
        [*(base.get("participants") or ()), *(other.get("participants") or ())],
    )
    return render_diff(result, fmt)


def contract_diff(
    source: Source | SpanReader,
    contract_text: str,
    entity: str,
    start: int | None = None,
    end: int | None = None,
    name: str = "contract.mmd",
) -> dict[str, Any]:
    """One entity against one contract file, as diff JSON (the UI's per-entity view)."""
    contract = parse_contract(contract_text, name)
    diagram = entity_diagram(source, entity, start, end)
    alignment = Matcher(contract).align(observed_sequence(diagram))
    return diff_result(
        alignment,
        {"kind": "contract", "name": name, "entity": None},
        list(diagram.get("participants") or ()),
    )


def render_diff(result: Mapping[str, Any], fmt: str) -> str | dict[str, Any]:
    if fmt == "json":
        return dict(result)
    if fmt == "mermaid":
        return render_diff_mermaid(result)
    if fmt == "markdown":
        return render_diff_markdown(result)
    raise SourceError(f"unknown diff format {fmt!r}; use json, mermaid or markdown")


def diff_result(
    alignment: Alignment,
    base: Mapping[str, Any],
    participants: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    steps = step_dicts(alignment)
    summary = {"same": 0, "missing": 0, "unexpected": 0, "changed": 0}
    for step in steps:
        summary[step["status"]] += 1
    entity = alignment.sequence.entity
    known: dict[str, dict[str, Any]] = {}
    for participant in participants:
        pid = str(participant.get("id"))
        known.setdefault(
            pid,
            {
                "id": pid,
                "label": str(participant.get("label") or pid),
                "kind": str(participant.get("kind") or "service"),
                "implicit": bool(participant.get("implicit")),
            },
        )
    used: dict[str, None] = {}
    for step in steps:
        used.setdefault(step["from"])
        used.setdefault(step["to"])
    drawn = [
        known.get(pid) or {"id": pid, "label": pid, "kind": "service", "implicit": False}
        for pid in used
    ]
    return {
        "base": dict(base),
        "other": {"key": entity[0], "value": entity[1]} if entity else None,
        "conforming": alignment.conforming,
        "summary": summary,
        "participants": drawn,
        "steps": steps,
        "violations": [
            {
                "kind": v.kind,
                "expected": v.expected,
                "observed": v.observed,
                "message": v.message,
                "line": v.line,
                "observed_index": v.observed_index,
                "trace_id": v.trace_id,
                "span_id": v.span_id,
            }
            for v in alignment.violations
        ],
    }


# --- Mermaid ------------------------------------------------------------------------------


def render_diff_mermaid(result: Mapping[str, Any]) -> str:
    """The diff as a Mermaid ``sequenceDiagram`` (see the module docstring for the styling)."""
    participants: list[Mapping[str, Any]] = list(result.get("participants") or ())
    steps: list[Mapping[str, Any]] = list(result.get("steps") or ())
    lines = ["sequenceDiagram", _INDENT + "autonumber"]
    if not participants:
        lines += [
            _INDENT + "participant nothing as (no calls)",
            _INDENT + "Note over nothing: no calls on either side",
        ]
        return "\n".join(lines) + "\n"
    aliases = safe_aliases([str(p["id"]) for p in participants], MERMAID_KEYWORDS)
    for participant in participants:
        lines.append(_INDENT + _declaration(participant, aliases[str(participant["id"])]))
    first, last = aliases[str(participants[0]["id"])], aliases[str(participants[-1]["id"])]
    over = first if first == last else f"{first},{last}"
    legend = "grey dashed: missing, red: unexpected, orange: changed"
    lines.append(f"{_INDENT}Note over {over}: {mermaid_text(legend)}")
    frame: str | None = None
    for step in steps:
        status = str(step["status"])
        wanted = _FRAMES.get(status)
        if wanted != frame:
            if frame is not None:
                lines.append(_INDENT + "end")
            if wanted is not None:
                lines.append(_INDENT + wanted)
            frame = wanted
        indent = _INDENT * (2 if frame else 1)
        lines.append(indent + _arrow(step, aliases))
    if frame is not None:
        lines.append(_INDENT + "end")
    return "\n".join(lines) + "\n"


def _declaration(participant: Mapping[str, Any], alias: str) -> str:
    label = mermaid_text(str(participant.get("id")), participant=True)
    if participant.get("implicit"):
        return f"actor {alias} as {label}"
    shape = _SHAPES.get(str(participant.get("kind")))
    if shape:
        return f'participant {alias}@{{ "type": "{shape}" }} as {label}'
    return f"participant {alias} as {label}"


def _arrow(step: Mapping[str, Any], aliases: Mapping[str, str]) -> str:
    status = step["status"]
    problems = step.get("problems") or []
    is_async = step.get("kind") == "async"
    failed = step.get("observed_status") == "error"
    label = str(step.get("label") or "")
    if status == "missing":
        arrow = "--)" if is_async else "-->>"
        prefix = MOVED_FROM if "order" in problems else MISSING
        text = prefix + label
    elif status == "unexpected":
        arrow = "-x" if failed else ("-)" if is_async else "->>")
        prefix = MOVED_TO if "order" in problems else UNEXPECTED
        text = prefix + label + _failure(step)
    elif status == "changed":
        arrow = "-x" if failed else ("-)" if is_async else "->>")
        text = CHANGED + label + _change(step)
    else:
        arrow = "-x" if failed else ("-)" if is_async else "->>")
        text = label + (" (failed, retried)" if step.get("excused") else "")
    source, target = aliases[str(step["from"])], aliases[str(step["to"])]
    return f"{source}{arrow}{target}: {mermaid_text(text)}"


def _failure(step: Mapping[str, Any]) -> str:
    if step.get("observed_status") != "error":
        return ""
    return f" (failed: {shorten(str(step.get('error') or 'error'), _ERROR_LIMIT)})"


def _change(step: Mapping[str, Any]) -> str:
    parts: list[str] = []
    problems = step.get("problems") or []
    if "kind" in problems:
        drawn = "async" if step.get("kind") == "async" else "sync"
        parts.append(f"{drawn}, expected {'sync' if drawn == 'async' else 'async'}")
    if "status" in problems:
        if step.get("expected_status") == "error":
            parts.append("succeeded, expected to fail")
        else:
            parts.append(f"failed: {shorten(str(step.get('error') or 'error'), _ERROR_LIMIT)}")
    return f" ({'; '.join(parts)})" if parts else ""


# --- Markdown -----------------------------------------------------------------------------


def render_diff_markdown(result: Mapping[str, Any]) -> str:
    """A title, a summary, the Mermaid diff in a fence, then a table of the differences."""
    base_name = str((result.get("base") or {}).get("name") or "the contract")
    other = result.get("other") or {}
    other_name = f"{other.get('key')}={other.get('value')}" if other else "the entity"
    summary = result.get("summary") or {}
    lines = [f"# Diff: {markdown_cell(other_name)} against {markdown_cell(base_name)}", ""]
    counts = ", ".join(
        f"{summary.get(k, 0)} {k}" for k in ("unexpected", "missing", "changed", "same")
    )
    lines += [
        f"What {markdown_cell(other_name)} did that {markdown_cell(base_name)} did not, and the "
        f"reverse: {counts}. Returns are not compared; a loop in the base allows "
        "repetitions, a par any order.",
        "",
        "```mermaid",
        render_diff_mermaid(result).rstrip("\n"),
        "```",
        "",
    ]
    steps = [s for s in result.get("steps") or () if s.get("status") != "same"]
    if not steps:
        lines.append(
            f"No differences: {markdown_cell(other_name)} conforms to {markdown_cell(base_name)}."
        )
        return "\n".join(lines) + "\n"
    lines += [
        "## Differences",
        "",
        f"| # | difference | expected ({markdown_cell(base_name)}) "
        f"| observed ({markdown_cell(other_name)}) | detail |",
        "|--:|---|---|---|---|",
    ]
    for step in steps:
        kinds = ", ".join(step.get("problems") or ()) or str(step["status"])
        cells = [
            str(int(step["step"]) + 1),
            markdown_cell(kinds),
            markdown_cell(step.get("expected") or ""),
            markdown_cell(step.get("observed") or ""),
            markdown_cell(step.get("message") or ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
