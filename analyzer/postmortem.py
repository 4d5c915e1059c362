"""The postmortem bundle: one Markdown file an incident review can start from.

``postmortem.md`` holds a summary, a timeline, each entity's Mermaid sequence diagram
inline (GitHub renders it), the failures with their root causes, the SLO impact and the
affected entities. Beside it, per diagram: an SVG, a PlantUML and a JSON file. Everything
is fetched through a :class:`~analyzer.source.Source`, so the bundle is the same whether
it is written from a database file or from a running server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.source import Source, SourceError, parse_entity
from analyzer.timeparse import format_unix_nano

__all__ = ["Bundle", "build_postmortem", "entity_slug", "md_cell"]

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def entity_slug(entity: str) -> str:
    """A file-name-safe stem for an entity: ``order.id=ORD-1`` -> ``order.id-ORD-1``."""
    slug = _SLUG_UNSAFE.sub("-", entity.replace("=", "-")).strip("-.")
    return slug[:80] or "entity"


def md_cell(value: object) -> str:
    """Text for a Markdown table cell: no pipes, newlines or HTML can break out of it."""
    text = " ".join(str(value).split())
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "&#96;")):
        text = text.replace(raw, safe)
    return text


@dataclass
class Bundle:
    """File name -> content (text), ready to be written into one folder."""

    files: dict[str, str] = field(default_factory=dict)

    @property
    def markdown(self) -> str:
        return self.files["postmortem.md"]


def _timeline(diagrams: Mapping[str, Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """(time, entity, what happened): each trace's first message and every error."""
    rows: list[tuple[int, str, str]] = []
    for entity, diagram in diagrams.items():
        seen_traces: set[str] = set()
        participants = {p["id"]: p.get("label", p["id"]) for p in diagram["participants"]}
        for message in diagram["messages"]:
            who = f"{participants.get(message['from'], message['from'])} → "
            who += str(participants.get(message["to"], message["to"]))
            if message["trace_id"] not in seen_traces:
                seen_traces.add(message["trace_id"])
                rows.append(
                    (message["start_unix_nano"], entity, f"trace starts: {who}: {message['label']}")
                )
            if message["status"] == "error":
                error = f" ({message['error']})" if message.get("error") else ""
                rows.append(
                    (message["start_unix_nano"], entity, f"error: {who}: {message['label']}{error}")
                )
    rows.sort()
    return rows


#: The postmortem quotes at most this many error and warning log records per entity.
MAX_QUOTED_LOGS = 50


def _error_and_warning_logs(diagram: Mapping[str, Any]) -> list[str]:
    """The entity's error and warning log records (#18), quoted in time order beside its
    diagram: what the services said when things went wrong. Every cell is escaped."""
    records = [r for r in diagram.get("logs") or [] if r.get("level") in ("error", "warn")]
    if not records:
        return []
    records.sort(key=lambda r: int(r.get("time_unix_nano") or 0))
    lines = [
        f"Error and warning logs ({len(records)}):",
        "",
        "| time (UTC) | severity | service | message | span |",
        "|---|---|---|---|---|",
    ]
    for record in records[:MAX_QUOTED_LOGS]:
        lines.append(
            f"| {format_unix_nano(int(record.get('time_unix_nano') or 0))} "
            f"| {md_cell(record.get('severity') or record.get('level'))} "
            f"| {md_cell(record.get('service') or '')} "
            f"| {md_cell(record.get('body') or '')} "
            f"| {md_cell(record.get('span_id') or '-')} |"
        )
    if len(records) > MAX_QUOTED_LOGS:
        lines.append(f"\n{len(records) - MAX_QUOTED_LOGS} more in the diagram's JSON file.")
    return [*lines, ""]


def build_postmortem(
    source: Source,
    entities: Sequence[str],
    start: int | None = None,
    end: int | None = None,
    slo_spec: str | None = None,
    slo_spec_name: str = "slo spec",
    title: str | None = None,
) -> Bundle:
    if not entities:
        raise SourceError("give at least one --entity KEY=VALUE")
    bundle = Bundle()
    diagrams: dict[str, dict[str, Any]] = {}
    for entity in entities:
        parse_entity(entity)
        diagram = source.diagram(entity=entity, start=start, end=end, fmt="json")
        assert isinstance(diagram, dict)
        diagrams[entity] = diagram
        slug = entity_slug(entity)
        for fmt, suffix in (("svg", "svg"), ("plantuml", "puml"), ("mermaid", "mmd")):
            text = source.diagram(entity=entity, start=start, end=end, fmt=fmt)
            assert isinstance(text, str)
            bundle.files[f"{slug}.{suffix}"] = text
        bundle.files[f"{slug}.json"] = json.dumps(diagram, indent=2, ensure_ascii=False) + "\n"

    all_times = [m["start_unix_nano"] for d in diagrams.values() for m in d["messages"]]
    ends = [
        m["start_unix_nano"] + m["duration_ns"] for d in diagrams.values() for m in d["messages"]
    ]
    lo = min(all_times) if all_times else start
    hi = (max(ends) + 1) if ends else end
    entity_traces = {t for d in diagrams.values() for t in d["traces"]}
    failures = source.failures(lo, hi) if lo is not None and hi is not None else None
    failing = [t for t in (failures or {}).get("traces", []) if t["trace_id"] in entity_traces]
    slo_report = source.slo(slo_spec, None, slo_spec_name) if slo_spec else None

    lines: list[str] = []
    heading = title or "Postmortem: " + ", ".join(entities)
    lines += [f"# {md_cell(heading)}", ""]
    lines += ["## Summary", ""]
    window = "-"
    if lo is not None and hi is not None:
        window = f"{format_unix_nano(lo)} to {format_unix_nano(hi)}"
    errors = sum(1 for d in diagrams.values() for m in d["messages"] if m["status"] == "error")
    lines += [
        f"- Entities: {', '.join(f'`{md_cell(e)}`' for e in entities)}",
        f"- Time span of their traces: {window}",
        f"- Traces: {len(entity_traces)}; failed calls drawn: {errors}",
        f"- Failed or partly failed traces: {len(failing)}"
        + (
            " (" + ", ".join(sorted({f"{t['outcome']}/{t['pattern']}" for t in failing})) + ")"
            if failing
            else ""
        ),
        "",
    ]
    if failing:
        causes = sorted(
            {
                f"{t['root_cause']['service']}: {t['root_cause']['operation']}"
                + (f" ({t['root_cause']['message']})" if t["root_cause"].get("message") else "")
                for t in failing
            }
        )
        lines += ["Root causes:", ""] + [f"- {md_cell(c)}" for c in causes] + [""]

    lines += ["## Timeline", "", "| time (UTC) | entity | what happened |", "|---|---|---|"]
    for when, entity, what in _timeline(diagrams):
        lines.append(f"| {format_unix_nano(when)} | {md_cell(entity)} | {md_cell(what)} |")
    lines.append("")

    for entity, diagram in diagrams.items():
        slug = entity_slug(entity)
        lines += [f"## Sequence: {md_cell(entity)}", ""]
        lines += ["```mermaid", bundle.files[f"{slug}.mmd"].rstrip("\n"), "```", ""]
        lines += [
            f"Files: [{slug}.svg]({slug}.svg), [{slug}.puml]({slug}.puml), "
            f"[{slug}.json]({slug}.json)",
            "",
        ]
        notes = diagram.get("notes") or []
        for note in notes:
            note_text = note.get("text") if isinstance(note, Mapping) else note
            lines.append(f"> {md_cell(note_text)}")
        if notes:
            lines.append("")
        lines += _error_and_warning_logs(diagram)

    lines += ["## Failures", ""]
    if failing:
        lines += [
            "| start (UTC) | trace | outcome | pattern | request | root cause | message |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in failing:
            cause = t["root_cause"]
            lines.append(
                f"| {format_unix_nano(t['start_unix_nano'])} | `{t['trace_id']}` | {t['outcome']} "
                f"| {t['pattern']} | {md_cell(t['root_service'] + ': ' + t['root_operation'])} "
                f"| {md_cell(cause['service'] + ': ' + cause['operation'])} "
                f"| {md_cell(cause.get('message') or '-')} |"
            )
    else:
        lines.append("No failed or partly failed traces for these entities.")
    lines.append("")

    lines += ["## SLO impact", ""]
    if slo_report is None:
        lines.append("No SLO spec given (`--slo-spec FILE`).")
    else:
        lines += [
            "| SLO | objective | SLI | budget left | burn 1h | burn 6h | alerts |",
            "|---|---|---|---|---|---|---|",
        ]
        for slo in slo_report["slos"]:
            alerts = ", ".join(
                f"{a['severity']} {a['long_window']}/{a['short_window']}" for a in slo["alerts"]
            )
            lines.append(
                f"| {md_cell(slo['name'])} | {slo['objective']}% | {slo['sli'] * 100:.3f}% "
                f"| {slo['error_budget_remaining'] * 100:.1f}% | {slo['burn_rates']['1h']:.2f} "
                f"| {slo['burn_rates']['6h']:.2f} | {md_cell(alerts or '-')} |"
            )
    lines.append("")

    lines += ["## Affected entities", ""]
    affected: dict[str, set[str]] = {}
    for t in failing:
        for key, values in t.get("entities", {}).items():
            affected.setdefault(key, set()).update(values)
    if slo_report is not None:
        for slo in slo_report["slos"]:
            for key, values in slo.get("affected_entities", {}).items():
                affected.setdefault(key, set()).update(values)
    if affected:
        for key in sorted(affected):
            values = ", ".join(f"`{md_cell(v)}`" for v in sorted(affected[key]))
            lines.append(f"- **{md_cell(key)}**: {values}")
    else:
        lines.append("None found beyond the entities above.")
    lines.append("")
    lines.append(
        "_Written by seqtrace from the stored spans; every message, with its timing, is in "
        "the JSON files._"
    )
    bundle.files["postmortem.md"] = "\n".join(lines) + "\n"
    return bundle
