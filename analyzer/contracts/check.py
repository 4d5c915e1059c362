"""``contract check``: observed sequences against contract files, as SPEC JSON and as text.

SPEC's ``contract check --json`` shape, with added fields (SPEC allows adding):

* top level: ``scope`` (``entity``/``key``, ``from_unix_nano``/``to_unix_nano``),
  ``entities`` (how many were checked) and ``conforming`` (all of them, against all);
* per contract: ``entities``, one row per entity checked: ``entity``, ``conforming``,
  ``violations`` (a count), ``kinds`` (count per violation kind), ``traces``, and with
  ``steps=True`` (the default for one entity) ``steps``, the aligned sequence
  (:func:`step_dicts`);
* per violation: ``line`` (the contract line), ``observed_index`` (the message's index in
  the entity's diagram), ``trace_id``, ``span_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from analyzer.contracts.fetch import (
    TraceRow,
    build_entity_diagrams,
    default_range,
    entity_diagram,
    entity_rows,
    key_diagrams,
    reader_of,
)
from analyzer.contracts.matcher import Alignment, Matcher, Step, expected_name, observed_name
from analyzer.contracts.model import Contract
from analyzer.contracts.observed import ObservedSequence, observed_sequence
from analyzer.contracts.parser import parse_contract
from analyzer.escaping import one_line, shorten
from analyzer.source import HttpSource, Source, SourceError, parse_entity
from spanstore import SpanReader

__all__ = [
    "API_PATH",
    "check_request",
    "contract_check",
    "parse_contracts",
    "render_check_text",
    "step_dicts",
]

API_PATH: Final = "/api/v1/contracts/check"
_TEXT_ENTITIES: Final = 20  # violating entities detailed per contract in the text report
_TEXT_VIOLATIONS: Final = 30
_CONTEXT: Final = 2  # matching calls shown around a difference in the text diff
_WIDTH: Final = 160


def parse_contracts(files: Iterable[tuple[str, str]]) -> list[Contract]:
    """Every file parsed; the first one outside the subset raises ContractSyntaxError."""
    contracts = [parse_contract(text, name) for name, text in files]
    if not contracts:
        raise SourceError("give at least one contract file")
    return contracts


def contract_check(
    source: Source | SpanReader,
    files: Sequence[tuple[str, str]],
    *,
    entity: str | None = None,
    key: str | None = None,
    start: int | None = None,
    end: int | None = None,
    steps: bool | None = None,
) -> dict[str, Any]:
    """Check ``entity`` (all of its history, or ``[start, end)``) or every entity of ``key``
    with a span in ``[start, end)`` (default: the 24 hours that end at the newest span)
    against each contract ``(file name, text)``. SPEC's ``contract check --json`` shape.

    Raises ContractSyntaxError (a ValueError) for a bad file, SourceError for a bad request
    or an unknown entity (404).
    """
    if (entity is None) == (key is None):
        raise SourceError("give either --entity KEY=VALUE or --key KEY")
    contracts = parse_contracts(files)
    if isinstance(source, HttpSource):
        remote = _remote_check(source, files, entity, key, start, end, steps)
        if remote is not None:
            return remote
    matchers = [Matcher(contract) for contract in contracts]
    if entity is not None:
        parse_entity(entity)
        diagram = entity_diagram(source, entity, start, end)
        scope = {"entity": entity, "key": None, "from_unix_nano": start, "to_unix_nano": end}
        return check_diagrams(
            matchers, [(entity, diagram)], scope, True if steps is None else steps
        )
    assert key is not None
    if not key.strip():
        raise SourceError("--key needs an entity key, e.g. order.id")
    lo, hi = default_range(source, start, end)
    scope = {"entity": None, "key": key.strip(), "from_unix_nano": lo, "to_unix_nano": hi}
    reader = reader_of(source)
    if reader is not None:
        return _check_key(reader, matchers, key.strip(), lo, hi, scope, bool(steps))
    return check_diagrams(matchers, key_diagrams(source, key.strip(), lo, hi), scope, bool(steps))


class _Report:
    """The result being assembled: one report per contract, one row per entity."""

    def __init__(self, matchers: Sequence[Matcher], scope: Mapping[str, Any], steps: bool) -> None:
        self.matchers = matchers
        self.scope = dict(scope)
        self.steps = steps
        self.count = 0
        self.reports: list[dict[str, Any]] = [
            {
                "file": m.contract.name,
                "checked": 0,
                "conforming": 0,
                "violations": [],
                "entities": [],
                "runbook": m.contract.runbook,
            }
            for m in matchers
        ]

    def add(
        self,
        entity: tuple[str, str],
        sequence: ObservedSequence,
        alignments: Sequence[Alignment],
        ids: Mapping[str, str] | None = None,
    ) -> None:
        """One entity's alignments; ``ids`` translates trace and span ids when the
        alignments were made on another entity of the same shape."""
        self.count += 1
        ent = {"key": entity[0], "value": entity[1]}
        for alignment, report in zip(alignments, self.reports, strict=True):
            report["checked"] += 1
            report["conforming"] += alignment.conforming
            kinds: dict[str, int] = {}
            for violation in alignment.violations:
                kinds[violation.kind] = kinds.get(violation.kind, 0) + 1
                report["violations"].append(
                    {
                        "entity": ent,
                        "kind": violation.kind,
                        "expected": violation.expected,
                        "observed": violation.observed,
                        "message": violation.message,
                        "line": violation.line,
                        "observed_index": violation.observed_index,
                        "trace_id": _id(ids, violation.trace_id),
                        "span_id": _id(ids, violation.span_id),
                        "runbook": report["runbook"],
                    }
                )
            row: dict[str, Any] = {
                "entity": ent,
                "conforming": alignment.conforming,
                "violations": len(alignment.violations),
                "kinds": kinds,
                "traces": sequence.traces,
            }
            if sequence.omitted_messages:
                row["omitted_messages"] = sequence.omitted_messages
            if self.steps:
                rows = step_dicts(alignment)
                for step in rows:
                    step["trace_id"] = _id(ids, step["trace_id"])
                    step["span_id"] = _id(ids, step["span_id"])
                row["steps"] = rows
            report["entities"].append(row)

    def result(self) -> dict[str, Any]:
        return {
            "contracts": self.reports,
            "scope": self.scope,
            "entities": self.count,
            "conforming": all(r["conforming"] == r["checked"] for r in self.reports),
        }


def _id(ids: Mapping[str, str] | None, value: str | None) -> str | None:
    if ids is None or value is None:
        return value
    return ids.get(value, value)


def check_diagrams(
    matchers: Sequence[Matcher],
    diagrams: Iterable[tuple[str, Mapping[str, Any]]],
    scope: Mapping[str, Any],
    steps: bool = False,
) -> dict[str, Any]:
    """The check result for already-fetched diagrams (SPEC dicts)."""
    report = _Report(matchers, scope, steps)
    for _, diagram in diagrams:
        sequence = observed_sequence(diagram)
        if sequence.entity is not None:
            report.add(sequence.entity, sequence, [m.align(sequence) for m in matchers])
    return report.result()


def _check_key(
    reader: SpanReader,
    matchers: Sequence[Matcher],
    key: str,
    start: int,
    end: int,
    scope: Mapping[str, Any],
    steps: bool,
) -> dict[str, Any]:
    """Every entity of ``key`` in the window, building one diagram per *shape*.

    Entities whose traces have the same shapes in the same order (see
    ``spanstore/sql/*/entity_traces_in_range.sql``) draw the same calls, so one of them (the
    first value) is built and aligned and the others take its findings with their own
    trace and span ids. A second member of every shared shape is built too and compared:
    if it draws other calls, every member of that shape is built on its own.
    """
    rows = entity_rows(reader, key, start, end)
    groups: dict[tuple[str, ...], list[str]] = {}
    singles: list[str] = []
    for value in sorted(rows):
        shapes = tuple(row.shape or "" for row in rows[value])
        if all(shapes):
            groups.setdefault(shapes, []).append(value)
        else:
            singles.append(value)
    wanted = {members[0]: members for members in groups.values()}
    probes = {members[1]: members for members in groups.values() if len(members) > 1}
    to_build = {v: [r.trace_id for r in rows[v]] for v in [*wanted, *probes, *singles]}
    built = dict(build_entity_diagrams(reader, key, to_build))
    sequences = {value: observed_sequence(diagram) for value, diagram in built.items()}
    results: dict[str, tuple[ObservedSequence, list[Alignment], dict[str, str] | None]] = {}
    for value in singles:
        if value in sequences:
            sequence = sequences[value]
            results[value] = (sequence, [m.align(sequence) for m in matchers], None)
    for first, members in wanted.items():
        if first not in sequences:
            continue
        sequence = sequences[first]
        alignments = [m.align(sequence) for m in matchers]
        probe = members[1] if len(members) > 1 else None
        if probe is not None and _calls(sequences.get(probe)) != _calls(sequence):
            # the shape does not pin the calls down here: build every member
            rest = {v: [r.trace_id for r in rows[v]] for v in members if v not in sequences}
            for value, diagram in build_entity_diagrams(reader, key, rest):
                sequences[value] = observed_sequence(diagram)
            for value in members:
                if value in sequences:
                    own = sequences[value]
                    results[value] = (own, [m.align(own) for m in matchers], None)
            continue
        for value in members:
            ids = None if value == first else _translation(rows[first], rows[value])
            results[value] = (sequence, alignments, ids)
    report = _Report(matchers, scope, steps)
    for value in sorted(results):
        sequence, alignments, ids = results[value]
        report.add((key, value), sequence, alignments, ids)
    return report.result()


def _calls(sequence: ObservedSequence | None) -> tuple[tuple[str, ...], ...] | None:
    if sequence is None:
        return None
    return tuple((t.source, t.target, t.label, t.kind, t.status) for t in sequence.tokens)


def _translation(first: Sequence[TraceRow], other: Sequence[TraceRow]) -> dict[str, str]:
    """Trace and span ids of ``first`` -> the ids at the same places in ``other``."""
    ids: dict[str, str] = {}
    for mine, theirs in zip(first, other, strict=True):
        ids[mine.trace_id] = theirs.trace_id
        ids.update(zip(mine.span_ids, theirs.span_ids, strict=False))
    return ids


def step_dicts(alignment: Alignment) -> list[dict[str, Any]]:
    """The aligned sequence as JSON rows (docs/contracts.md, "Diff JSON")."""
    contract = alignment.contract
    messages: dict[int, list[str]] = {}
    for violation in alignment.violations:
        messages.setdefault(violation.step, []).append(violation.message)
    rows: list[dict[str, Any]] = []
    for index, step in enumerate(alignment.steps):
        rows.append(_step_dict(contract, index, step, messages.get(index, [])))
    for index, step in enumerate(alignment.steps):
        if step.status == "missing" and step.partner is not None:
            rows[index]["message"] = (
                f"{rows[index]['expected']} happened elsewhere (step {step.partner + 1}): "
                "out of order"
            )
    return rows


def _step_dict(contract: Contract, index: int, step: Step, messages: list[str]) -> dict[str, Any]:
    expected, observed = step.expected, step.observed
    if observed is not None:
        source, target, label, kind = (
            observed.source,
            observed.target,
            observed.label,
            observed.kind,
        )
    else:
        assert expected is not None
        source = contract.display_name(expected.source)
        target = contract.display_name(expected.target)
        label, kind = expected.label, ("async" if expected.kind == "async" else "sync")
    return {
        "step": index,
        "status": step.status,
        "from": source,
        "to": target,
        "label": label,
        "kind": kind,
        "expected": expected_name(contract, expected) if expected else None,
        "observed": observed_name(observed) if observed else None,
        "problems": list(step.problems),
        "message": "; ".join(messages),
        "line": expected.line if expected and expected.line else None,
        "expected_index": expected.origin if expected else None,
        "expected_status": expected.expect if expected else None,
        "observed_index": observed.index if observed else None,
        "observed_status": observed.status if observed else None,
        "error": observed.error if observed else None,
        "trace_id": observed.trace_id if observed else None,
        "span_id": observed.span_id if observed else None,
        "partner": step.partner,
        "excused": step.excused,
    }


# --- the query API ----------------------------------------------------------------------


def check_request(
    source: Source | SpanReader,
    body: bytes,
    *,
    entity: str | None = None,
    key: str | None = None,
    start: int | None = None,
    end: int | None = None,
    file: str | None = None,
    steps: bool | None = None,
) -> dict[str, Any]:
    """``POST /api/v1/contracts/check``: the body is one contract's text, or JSON
    ``{"contracts": [{"file": str, "text": str}, ...]}``; answers SPEC's JSON."""
    return contract_check(
        source,
        request_files(body, file),
        entity=entity,
        key=key,
        start=start,
        end=end,
        steps=steps,
    )


def request_files(body: bytes, file: str | None = None) -> list[tuple[str, str]]:
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        raise SourceError('POST a contract (Mermaid text) or {"contracts": [...]} as the body')
    if text.lstrip().startswith("{"):
        try:
            payload = json.loads(text)
            entries = payload.get("contracts", [payload])
            return [
                (str(e.get("file") or f"contract-{i + 1}.mmd"), str(e["text"]))
                for i, e in enumerate(entries)
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SourceError(
                'a JSON body must be {"contracts": [{"file": "NAME.mmd", "text": "..."}]}'
            ) from None
    return [(file or "contract.mmd", text)]


def _remote_check(
    source: HttpSource,
    files: Sequence[tuple[str, str]],
    entity: str | None,
    key: str | None,
    start: int | None,
    end: int | None,
    steps: bool | None,
) -> dict[str, Any] | None:
    """Ask the server; None when it has no contracts endpoint (then check from diagrams)."""
    body = json.dumps({"contracts": [{"file": n, "text": t} for n, t in files]}).encode()
    params = {"entity": entity, "key": key, "from": start, "to": end}
    if steps is not None:
        params["steps"] = "1" if steps else "0"
    try:
        result: dict[str, Any] = source._request(API_PATH, params, body=body)
    except SourceError as exc:
        if exc.status in (404, 405) and "no such endpoint" in str(exc):
            return None
        raise
    return result


# --- text -------------------------------------------------------------------------------


def render_check_text(result: Mapping[str, Any]) -> str:
    """The check for people: per contract a summary, each violating entity's violations,
    and for a single entity the aligned sequence as a diff (``-`` missing, ``+``
    unexpected, ``~`` changed)."""
    lines: list[str] = []
    scope = result.get("scope") or {}
    for report in result.get("contracts") or ():
        checked, conforming = int(report["checked"]), int(report["conforming"])
        head = f"contract {_t(report['file'])}: {checked} checked, {conforming} conform"
        if checked - conforming:
            head += f", {checked - conforming} violate"
        lines.append(head)
        if checked - conforming and report.get("runbook"):
            lines.append(f"  runbook: {_t(report['runbook'])}")
        rows = list(report.get("entities") or ())
        violating = [r for r in rows if not r.get("conforming")]
        by_entity: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for violation in report.get("violations") or ():
            ent = violation["entity"]
            by_entity.setdefault((ent["key"], ent["value"]), []).append(violation)
        if not rows and by_entity:  # a result without the added "entities" rows
            violating = [
                {"entity": {"key": k, "value": v}, "violations": len(vs)}
                for (k, v), vs in by_entity.items()
            ]
        for row in violating[:_TEXT_ENTITIES]:
            ent = row["entity"]
            found = by_entity.get((ent["key"], ent["value"]), [])
            kinds: dict[str, int] = {}
            for violation in found:
                kinds[violation["kind"]] = kinds.get(violation["kind"], 0) + 1
            summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
            lines.append(
                f"  ✗ {_t(ent['key'])}={_t(ent['value'])}: {len(found)} violation(s) ({summary})"
            )
            if row.get("steps") is not None:
                lines += _diff_lines(row["steps"], "      ")
            else:
                for violation in found[:_TEXT_VIOLATIONS]:
                    lines.append(f"      {violation['kind']:<10} {_t(violation['message'])}")
                if len(found) > _TEXT_VIOLATIONS:
                    lines.append(f"      … {len(found) - _TEXT_VIOLATIONS} more (see --json)")
        if len(violating) > _TEXT_ENTITIES:
            lines.append(
                f"  … {len(violating) - _TEXT_ENTITIES} more violating entities (see --json)"
            )
        good = [r["entity"] for r in rows if r.get("conforming")]
        if good:
            names = ", ".join(_t(e["value"]) for e in good[:10])
            more = f" and {len(good) - 10} more" if len(good) > 10 else ""
            lines.append(f"  ✓ {len(good)} conform: {names}{more}")
        if checked == 0:
            where = f" of {scope.get('key')}" if scope.get("key") else ""
            lines.append(f"  no entities{where} in the time range: nothing checked")
    total = int(result.get("entities") or 0)
    if result.get("conforming", True):
        lines.append(f"OK: every entity checked ({total}) conforms to every contract")
    else:
        lines.append("FAILED: contract violations found")
    return "\n".join(lines) + "\n"


def _diff_lines(steps: Sequence[Mapping[str, Any]], indent: str) -> list[str]:
    marks = {"same": " ", "missing": "-", "unexpected": "+", "changed": "~"}
    interesting = [i for i, s in enumerate(steps) if s["status"] != "same"]
    shown: set[int] = set()
    for index in interesting:
        shown.update(range(max(0, index - _CONTEXT), min(len(steps), index + _CONTEXT + 1)))
    lines: list[str] = []
    skipped = 0
    for index, step in enumerate(steps):
        if index not in shown:
            skipped += 1
            continue
        if skipped:
            lines.append(f"{indent}  … {skipped} matching call(s)")
            skipped = 0
        name = step["observed"] if step["observed"] is not None else step["expected"]
        text = f"{indent}{marks[step['status']]} {_t(name)}"
        note = _step_note(step)
        if note:
            text += f"    [{note}]"
        lines.append(shorten(text, _WIDTH))
    if skipped:
        lines.append(f"{indent}  … {skipped} matching call(s)")
    return lines


def _step_note(step: Mapping[str, Any]) -> str:
    problems = step.get("problems") or []
    line = f"line {step['line']}" if step.get("line") else ""
    if step["status"] == "missing":
        what = "moved" if "order" in problems else "missing"
        return ", ".join(x for x in (what, line) if x)
    if step["status"] == "unexpected":
        what = "moved here" if "order" in problems else "unexpected"
        if step.get("observed_status") == "error":
            what += f", failed: {_t(step.get('error') or 'error')}"
        return what
    if step["status"] == "changed":
        parts = []
        if "kind" in problems:
            parts.append(f"kind: expected {step['expected']}")
        if "status" in problems:
            if step.get("expected_status") == "error":
                parts.append("expected to fail, succeeded")
            else:
                parts.append(f"failed: {_t(step.get('error') or 'error')}")
        return "; ".join(parts + ([line] if line else []))
    if step.get("excused"):
        return "failed attempt, retried"
    return ""


def _t(value: object) -> str:
    """Span text for a terminal: one line, no control characters."""
    return one_line(value)
