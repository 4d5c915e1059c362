"""A flow as SPEC's ``flow --json`` body, and drawn six ways with the diagram renderers.

Mermaid, PlantUML and SVG draw one diagram: every variant in turn inside one ``alt``
block (the flow goes one of these ways), each introduced by a note with its counts and
what it lacks against the most frequent variant; its arrows carry their counts and p95,
``+`` marks a message the most frequent variant does not have, ``!`` one that fails here
and not there. Markdown gives each variant a titled section with its own Mermaid diagram;
``table`` is a plain text summary. No renderer is forked: the variants are diagram models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from analyzer.diagram import json as diagram_json
from analyzer.diagram import mermaid, plantuml, svg
from analyzer.diagram.model import Block, Diagram, Message, Note, Participant
from analyzer.diagram.text import format_duration, format_utc, one_line
from analyzer.escaping import markdown_cell
from analyzer.flow.variants import Variant, message_name

__all__ = ["FLOW_FORMATS", "flow_dict", "render_flow"]

FLOW_FORMATS: Final = ("table", "json", "mermaid", "plantuml", "svg", "markdown")
_MARK_PREFIX: Final = {"extra": "+ ", "failed": "! "}


def selection_dict(
    root: str | None = None,
    entity: tuple[str, str] | None = None,
    key: str | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    return {
        "root": root,
        "entity": {"key": entity[0], "value": entity[1]} if entity else None,
        "key": key,
        "query": query,
    }


def flow_dict(
    variants: Sequence[Variant], selection: dict[str, Any], start: int, end: int
) -> dict[str, Any]:
    """SPEC's ``flow --json`` shape. Added per variant: ``share``, ``missing``; per
    message: ``diff`` (``extra``/``failed``/null against the most frequent variant)."""
    total = sum(v.count for v in variants)
    return {
        "selection": selection,
        "from_unix_nano": start,
        "to_unix_nano": end,
        "traces": total,
        "variants": [_variant_dict(v, total) for v in variants],
    }


def _variant_dict(variant: Variant, total: int) -> dict[str, Any]:
    drawn = diagram_json.to_dict(variant.diagram)
    p50, p95 = variant.duration_percentiles()
    outcomes = variant.outcomes()
    messages = []
    for message, stats, mark in zip(drawn["messages"], variant.stats, variant.marks, strict=True):
        message.update(
            count=stats.count,
            errors=stats.errors,
            p50_ns=stats.p50_ns,
            p95_ns=stats.p95_ns,
            diff=mark,
        )
        messages.append(message)
    return {
        "id": variant.id,
        "count": variant.count,
        "share": round(variant.count / total, 4) if total else 0.0,
        "ok": outcomes["ok"],
        "partial": outcomes["partial"],
        "failed": outcomes["failed"],
        "trace_ids": variant.examples(),
        "duration_p50_ns": p50,
        "duration_p95_ns": p95,
        "participants": drawn["participants"],
        "messages": messages,
        "blocks": drawn["blocks"],
        "missing": list(variant.missing),
    }


# --- text renderings ------------------------------------------------------------------------


def render_flow(report: dict[str, Any], variants: Sequence[Variant], fmt: str) -> str:
    """``report`` (from :func:`flow_dict`) drawn as ``fmt`` (one of :data:`FLOW_FORMATS`)."""
    if fmt == "json":
        return diagram_json.json_text(report)
    if fmt == "table":
        return table(report)
    if fmt == "markdown":
        return markdown(report, variants)
    drawn = combined_diagram(variants, report)
    if fmt == "mermaid":
        return mermaid.render(drawn)
    if fmt == "plantuml":
        return plantuml.render(drawn)
    if fmt == "svg":
        return svg.render(drawn)
    raise ValueError(f"unknown flow format {fmt!r}; use {', '.join(FLOW_FORMATS)}")


def describe(variant: Variant, rank: int, total: int) -> str:
    """``variant 2 (id): 30 of 150 traces (20.0%), 0 ok / 10 partial / 20 failed, p95 1.20 s``."""
    outcomes = variant.outcomes()
    _, p95 = variant.duration_percentiles()
    share = 100.0 * variant.count / total if total else 0.0
    return (
        f"variant {rank} ({variant.id}): {variant.count} of {total} traces ({share:.1f}%), "
        f"{outcomes['ok']} ok / {outcomes['partial']} partial / {outcomes['failed']} failed, "
        f"p95 {format_duration(p95)}"
    )


def annotated(variant: Variant) -> Diagram:
    """The variant's diagram with counts, p95 and difference marks in the labels."""
    messages: list[Message] = []
    for message, stats, mark in zip(
        variant.diagram.messages, variant.stats, variant.marks, strict=True
    ):
        prefix = _MARK_PREFIX.get(mark or "", "")
        if message.kind == "return":
            label = prefix + message.label
        else:
            times = f"{stats.count}x" + (f", {stats.errors} failed" if stats.errors else "")
            label = f"{prefix}{message.label} [{times}, p95 {format_duration(stats.p95_ns)}]"
        messages.append(dataclasses.replace(message, label=label))
    return dataclasses.replace(variant.diagram, messages=tuple(messages))


def _variant_note(variant: Variant, rank: int, total: int) -> str:
    text = describe(variant, rank, total)
    if variant.missing:
        text += "; lacks " + "; ".join(variant.missing[:5])
        if len(variant.missing) > 5:
            text += f" (+{len(variant.missing) - 5} more)"
    return text


def combined_diagram(variants: Sequence[Variant], report: dict[str, Any]) -> Diagram:
    """Every variant in turn in one diagram, as branches of an ``alt`` block."""
    total = int(report["traces"])
    participants: dict[str, Participant] = {}
    messages: list[Message] = []
    blocks: list[Block] = []
    notes: list[Note] = []
    starts: list[int] = []
    for rank, variant in enumerate(variants, 1):
        drawn = annotated(variant)
        for participant in drawn.participants:
            participants.setdefault(participant.id, participant)
        offset = len(messages)
        starts.append(offset)
        notes.append(Note(offset, "variant", _variant_note(variant, rank, total)))
        messages += drawn.messages
        blocks += [
            dataclasses.replace(
                b,
                first=b.first + offset,
                last=b.last + offset,
                branches=tuple(i + offset for i in b.branches),
            )
            for b in drawn.blocks
        ]
    if len(variants) > 1 and messages:
        label = f"{len(variants)} variants of {total} traces"
        blocks.append(Block("alt", label, 0, len(messages) - 1, tuple(starts)))
    if not variants:
        notes.append(Note(0, "variant", "no traces selected"))
    return Diagram(
        entity=variants[0].diagram.entity if variants else None,
        traces=(),
        participants=tuple(participants.values()),
        messages=tuple(messages),
        blocks=tuple(sorted(blocks, key=lambda b: (b.first, -b.last, b.kind))),
        notes=tuple(notes),
    )


def _selection_text(report: dict[str, Any]) -> str:
    return one_line(_selection_words(report))


def _selection_words(report: dict[str, Any]) -> str:
    selection = report["selection"]
    if selection.get("root"):
        return f"root {selection['root']}"
    if selection.get("entity"):
        return f"{selection['entity']['key']} = {selection['entity']['value']}"
    if selection.get("key"):
        return f"each {selection['key']}"
    if selection.get("query"):
        return f"query {selection['query']}"
    return "the given traces"


def table(report: dict[str, Any]) -> str:
    """One line per variant: rank, id, traces, share, ok/partial/failed, error share, p50, p95."""
    header = (
        f"flow of {_selection_text(report)}: {report['traces']} traces, "
        f"{len(report['variants'])} variants, {format_utc(report['from_unix_nano'])} to "
        f"{format_utc(report['to_unix_nano'])}"
    )
    if not report["traces"]:
        # The CLI's default range is only the last day of data: say how to widen it.
        return (
            f"{header}\n\nno trace matches in this range: widen it with --from/--to (from= and "
            "to= in the query API); without them a flow covers the 24 hours that end at the "
            "newest stored span\n"
        )
    rows = [("#", "variant", "traces", "share", "ok", "partial", "failed", "errors", "p50", "p95")]
    for rank, v in enumerate(report["variants"], 1):
        errors = (v["partial"] + v["failed"]) / v["count"] if v["count"] else 0.0
        rows.append(
            (
                str(rank),
                v["id"],
                str(v["count"]),
                f"{100 * v['share']:.1f}%",
                str(v["ok"]),
                str(v["partial"]),
                str(v["failed"]),
                f"{100 * errors:.1f}%",
                format_duration(v["duration_p50_ns"]),
                format_duration(v["duration_p95_ns"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [header, ""]
    for row in rows:
        cells = [
            cell.rjust(w) if i not in (1,) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    for rank, v in enumerate(report["variants"][1:], 2):
        extra = sum(1 for m in v["messages"] if m["diff"] == "extra" and m["kind"] != "return")
        failed = sum(1 for m in v["messages"] if m["diff"] == "failed" and m["kind"] != "return")
        if extra or failed or v["missing"]:
            lines.append(
                f"variant {rank} against variant 1: {extra} extra, {len(v['missing'])} missing, "
                f"{failed} failing message(s)"
            )
    return "\n".join(lines) + "\n"


def markdown(report: dict[str, Any], variants: Sequence[Variant]) -> str:
    cell = markdown_cell
    total = int(report["traces"])
    lines = [
        f"# {cell('Flow: ' + _selection_text(report))}",
        "",
        f"{total} traces in {len(variants)} variants, from {format_utc(report['from_unix_nano'])} "
        f"to {format_utc(report['to_unix_nano'])}. Marks against variant 1: `+` a message it "
        "does not have, `!` a message that fails here and not there.",
        "",
        "| # | variant | traces | share | ok | partial | failed | p50 | p95 |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for rank, v in enumerate(report["variants"], 1):
        lines.append(
            f"| {rank} | {v['id']} | {v['count']} | {100 * v['share']:.1f}% | {v['ok']} | "
            f"{v['partial']} | {v['failed']} | {format_duration(v['duration_p50_ns'])} | "
            f"{format_duration(v['duration_p95_ns'])} |"
        )
    for rank, variant in enumerate(variants, 1):
        lines += ["", f"## {cell(describe(variant, rank, total).capitalize())}", ""]
        if variant.missing:
            lines.append("Lacks, against variant 1: " + "; ".join(cell(m) for m in variant.missing))
            lines.append("")
        lines += ["```mermaid", mermaid.render(annotated(variant)).rstrip("\n"), "```", ""]
        examples = ", ".join(variant.examples()[:5])
        lines.append(f"Example traces (failing first): {cell(examples)}")
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ += ["annotated", "combined_diagram", "describe", "message_name", "selection_dict", "table"]
