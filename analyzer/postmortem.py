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

from analyzer.escaping import markdown_cell
from analyzer.source import Source, SourceError, parse_entity
from analyzer.timeparse import format_unix_nano

__all__ = ["Bundle", "build_postmortem", "entity_slug"]

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def entity_slug(entity: str) -> str:
    """A file-name-safe stem for an entity: ``order.id=ORD-1`` -> ``order.id-ORD-1``."""
    slug = _SLUG_UNSAFE.sub("-", entity.replace("=", "-")).strip("-.")
    return slug[:80] or "entity"


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
            f"| {markdown_cell(record.get('severity') or record.get('level'))} "
            f"| {markdown_cell(record.get('service') or '')} "
            f"| {markdown_cell(record.get('body') or '')} "
            f"| {markdown_cell(record.get('span_id') or '-')} |"
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
    contracts: Sequence[tuple[str, str]] = (),
) -> Bundle:
    """``contracts``: (file name, text) of contract files whose runbooks the bundle lists."""
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
    lines += [f"# {markdown_cell(heading)}", ""]
    lines += ["## Summary", ""]
    window = "-"
    if lo is not None and hi is not None:
        window = f"{format_unix_nano(lo)} to {format_unix_nano(hi)}"
    errors = sum(1 for d in diagrams.values() for m in d["messages"] if m["status"] == "error")
    lines += [
        f"- Entities: {', '.join(markdown_cell(e) for e in entities)}",
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
        lines += ["Root causes:", ""] + [f"- {markdown_cell(c)}" for c in causes] + [""]

    lines += ["## Timeline", "", "| time (UTC) | entity | what happened |", "|---|---|---|"]
    for when, entity, what in _timeline(diagrams):
        lines.append(
            f"| {format_unix_nano(when)} | {markdown_cell(entity)} | {markdown_cell(what)} |"
        )
    lines.append("")

    for entity, diagram in diagrams.items():
        slug = entity_slug(entity)
        lines += [f"## Sequence: {markdown_cell(entity)}", ""]
        lines += ["```mermaid", bundle.files[f"{slug}.mmd"].rstrip("\n"), "```", ""]
        lines += [
            f"Files: [{slug}.svg]({slug}.svg), [{slug}.puml]({slug}.puml), "
            f"[{slug}.json]({slug}.json)",
            "",
        ]
        notes = diagram.get("notes") or []
        for note in notes:
            note_text = note.get("text") if isinstance(note, Mapping) else note
            lines.append(f"> {markdown_cell(note_text)}")
        if notes:
            lines.append("")
        lines += _error_and_warning_logs(diagram)

    # The incident range: --from/--to, else the entities' traces and an hour either side.
    flow_lo = start if start is not None else (lo - FLOW_CONTEXT_NS if lo is not None else None)
    flow_hi = end if end is not None else (hi + FLOW_CONTEXT_NS if hi is not None else None)
    lines += _flow_section(source, bundle, diagrams, failing, flow_lo, flow_hi)

    lines += ["## Failures", ""]
    if failing:
        lines += [
            "| start (UTC) | trace | outcome | pattern | request | root cause | message |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in failing:
            cause = t["root_cause"]
            root = markdown_cell(t["root_service"] + ": " + t["root_operation"])
            lines.append(
                f"| {format_unix_nano(t['start_unix_nano'])} | `{t['trace_id']}` | {t['outcome']} "
                f"| {t['pattern']} | {root} "
                f"| {markdown_cell(cause['service'] + ': ' + cause['operation'])} "
                f"| {markdown_cell(cause.get('message') or '-')} |"
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
                f"| {markdown_cell(slo['name'])} | {slo['objective']}% | {slo['sli'] * 100:.3f}% "
                f"| {slo['error_budget_remaining'] * 100:.1f}% | {slo['burn_rates']['1h']:.2f} "
                f"| {slo['burn_rates']['6h']:.2f} | {markdown_cell(alerts or '-')} |"
            )
    lines.append("")

    lines += _runbook_lines(slo_report, contracts)

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
            values = ", ".join(markdown_cell(v) for v in sorted(affected[key]))
            lines.append(f"- **{markdown_cell(key)}**: {values}")
    else:
        lines.append("None found beyond the entities above.")
    lines.append("")
    lines.append(
        "_Written by seqtrace from the stored spans; every message, with its timing, is in "
        "the JSON files._"
    )
    bundle.files["postmortem.md"] = "\n".join(lines) + "\n"
    return bundle


def _runbook_lines(
    slo_report: Mapping[str, Any] | None, contracts: Sequence[tuple[str, str]]
) -> list[str]:
    """ "## Runbooks": each SLO's (firing ones first) and each given contract's runbook,
    Markdown-escaped, http(s) ones as links."""
    from analyzer.contracts import parse_contract
    from analyzer.slo import markdown_runbook

    rows: list[tuple[int, str]] = []
    for slo in (slo_report or {}).get("slos", []):
        if slo.get("runbook"):
            firing = bool(slo["alerts"])
            what = f"SLO {markdown_cell(slo['name'])}" + (" (alerting)" if firing else "")
            rows.append((0 if firing else 1, f"- {what}: {markdown_runbook(slo['runbook'])}"))
    for name, text in contracts:
        contract = parse_contract(text, name)
        if contract.runbook:
            rows.append(
                (2, f"- contract {markdown_cell(name)}: {markdown_runbook(contract.runbook)}")
            )
    lines = ["## Runbooks", ""]
    if rows:
        lines += [line for _, line in sorted(rows, key=lambda row: row[0])]
    else:
        lines.append("No runbook named (`runbook:` in the SLO spec, `%% runbook:` in a contract).")
    return [*lines, ""]


#: Root operations whose flows a bundle shows, at most.
MAX_FLOWS = 5
#: Without --from/--to, flows cover the entities' traces and this much either side.
FLOW_CONTEXT_NS = 3_600_000_000_000


def _root_operations(diagrams: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(service, operation) of each drawn trace's first call, in order of appearance."""
    found: dict[tuple[str, str], None] = {}
    for diagram in diagrams.values():
        messages = diagram["messages"]
        for section in diagram.get("sections") or []:
            first = int(section["first"])
            if first <= int(section["last"]) and first < len(messages):
                message = messages[first]
                if message["kind"] in ("call", "async", "self"):
                    found.setdefault((str(message["to"]), str(message["label"])))
    return list(found)


def _flow_section(
    source: Source,
    bundle: Bundle,
    diagrams: Mapping[str, Mapping[str, Any]],
    failing: Sequence[Mapping[str, Any]],
    lo: int | None,
    hi: int | None,
) -> list[str]:
    """For each root operation of the entities' traces, its flow over the incident range:
    the variants of all its traces, the ones with failures marked, and the variants the
    entities' failing traces belong to (#16)."""
    lines = ["## Flows", ""]
    if lo is None or hi is None:
        return [*lines, "No traces.", ""]
    failing_variants: dict[str, str] = {}
    for trace in failing:
        try:
            own = source.flow(trace_id=str(trace["trace_id"]), start=lo, end=hi)
        except SourceError:
            continue
        if isinstance(own, dict) and own["variants"]:
            failing_variants[str(own["variants"][0]["id"])] = str(trace["trace_id"])
    shown = 0
    for service, operation in _root_operations(diagrams):
        if shown >= MAX_FLOWS:
            break
        root = f"{service}: {operation}"
        try:
            flow = source.flow(root=root, start=lo, end=hi)
        except SourceError:
            continue
        if not isinstance(flow, dict) or not flow["traces"]:
            continue
        shown += 1
        name = f"flow-{shown}"
        text = source.flow(root=root, start=lo, end=hi, fmt="markdown")
        assert isinstance(text, str)
        bundle.files[f"{name}.md"] = text
        lines += [
            f"### {markdown_cell(root)}",
            "",
            f"{flow['traces']} traces in {len(flow['variants'])} variants from "
            f"{format_unix_nano(lo)} to {format_unix_nano(hi)} ([{name}.md]({name}.md)).",
            "",
            "| # | variant | traces | ok | partial | failed | p95 | |",
            "|--:|---|--:|--:|--:|--:|--:|---|",
        ]
        for rank, variant in enumerate(flow["variants"], 1):
            marks = []
            if variant["failed"] or variant["partial"]:
                marks.append("**failing**")
            if variant["id"] in failing_variants:
                marks.append(f"this incident: `{failing_variants[variant['id']]}`")
            lines.append(
                f"| {rank} | `{variant['id']}` | {variant['count']} | {variant['ok']} "
                f"| {variant['partial']} | {variant['failed']} "
                f"| {variant['duration_p95_ns'] / 1e6:.1f} ms | {'; '.join(marks)} |"
            )
        lines.append("")
    if not shown:
        lines += ["No root operation of these traces has a flow in the range.", ""]
    return lines
