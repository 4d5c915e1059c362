"""Sequence contracts: expected flows as Mermaid diagrams, checked against observed traffic.

Public functions (what the CLI, the query API and the UI call):

* :func:`contract_init` — ``seqtrace contract init``: an entity's sequence as contract text;
* :func:`contract_check` — ``seqtrace contract check``: SPEC's JSON, and
  :func:`render_check_text` for people; :func:`check_request` answers
  ``POST /api/v1/contracts/check``;
* :func:`diff` — ``seqtrace diff``: the second entity against the first (json, mermaid,
  markdown); :func:`contract_diff` one entity against one contract (diff JSON);
* :func:`parse_contract` and :class:`ContractSyntaxError` (a ``ValueError`` whose text is
  ``FILE:LINE:COLUMN: message``).

The rules (subset, matching, violations) are in docs/contracts.md.
"""

from __future__ import annotations

from analyzer.contracts.check import (
    API_PATH,
    check_request,
    contract_check,
    render_check_text,
)
from analyzer.contracts.diff import (
    DIFF_FORMATS,
    contract_diff,
    diff,
    render_diff,
    render_diff_markdown,
    render_diff_mermaid,
)
from analyzer.contracts.draft import draft_contract, write_contract
from analyzer.contracts.fetch import entity_diagram
from analyzer.contracts.matcher import Alignment, Matcher
from analyzer.contracts.model import Contract
from analyzer.contracts.observed import observed_sequence
from analyzer.contracts.parser import ContractSyntaxError, parse_contract
from analyzer.source import Source, parse_entity
from spanstore import SpanReader

__all__ = [
    "API_PATH",
    "DIFF_FORMATS",
    "Alignment",
    "Contract",
    "ContractSyntaxError",
    "Matcher",
    "check_request",
    "contract_check",
    "contract_diff",
    "contract_init",
    "diff",
    "draft_contract",
    "observed_sequence",
    "parse_contract",
    "render_check_text",
    "render_diff",
    "render_diff_markdown",
    "render_diff_mermaid",
    "write_contract",
]


def contract_init(
    source: Source | SpanReader,
    entity: str,
    start: int | None = None,
    end: int | None = None,
) -> str:
    """``entity``'s observed sequence (all of its history, or ``[start, end)``) written as
    an editable contract. Deterministic: the same spans always give the same text."""
    key, value = parse_entity(entity)
    diagram = entity_diagram(source, f"{key}={value}", start, end)
    contract = draft_contract(diagram, f"{key}={value}")
    traces = len(diagram.get("traces") or ())
    comments = (
        f"Contract drafted by `seqtrace contract init` from {key}={value} ({traces} trace(s)).",
        "->> a call that must succeed, -x a call expected to fail, -) an async message;",
        "loop: one or more times, opt: optional, alt: one branch, par: any order.",
        "Returns are not compared. Rules: docs/contracts.md",
    )
    return write_contract(contract, comments)
