"""Log records on sequence diagrams (#18): where each is drawn (hand-computed), goldens of
sample diagrams with their logs in every format, and hostile log text in every renderer.

Goldens: ``tests/golden/diagram_logs/<case>.{mmd,puml,svg,json,md}``; rewrite them with
``SEQTRACE_UPDATE_GOLDEN=1`` after an intended change and review the diff. Mermaid and
PlantUML accept them (``test_diagram_tools.py`` renders ``log_diagrams()`` too).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_diagram import MS, OTHER_TRACE, T0, TRACE, make_span, sid
from test_diagram_golden import CASES, SAMPLES, Case, case_spans
from test_diagram_render import HOSTILE, hostile_spans

from analyzer.diagram import FORMATS, build_diagram, render, to_dict
from analyzer.diagram.logs import attach_logs, log_level, log_notes
from analyzer.diagram.model import Diagram
from collector.files import read_log_file
from spanstore.logs import log_dicts

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagram_logs"
UPDATE = os.environ.get("SEQTRACE_UPDATE_GOLDEN") == "1"
SUFFIXES = {"mermaid": "mmd", "plantuml": "puml", "svg": "svg", "json": "json", "markdown": "md"}
#: The renderers' escapes: Mermaid entity codes, PlantUML's <U+XXXX>.
MERMAID_CODE = re.compile(r"#\d+;")
PLANTUML_CODE = re.compile(r"<U\+[0-9A-F]{4,6}>")
LOG_CASES = tuple(c for c in CASES if c.name in ("ORD-1002", "ORD-1005", "ORD-1666"))


def record(
    span: int | None,
    at_ms: float,
    severity: str = "INFO",
    number: int = 9,
    body: str = "line",
    service: str = "shop",
    trace: str | None = TRACE,
) -> dict[str, Any]:
    return {
        "time_unix_nano": T0 + int(at_ms * MS),
        "severity": severity,
        "severity_number": number,
        "body": body,
        "service": service,
        "trace_id": trace,
        "span_id": sid(span) if span is not None else None,
        "attributes": {"k": body},
    }


def small_trace() -> list[Any]:
    """0 client->shop GET /a (0 ms), 1 shop->pay GET /b (10), 2 pay-->shop (60),
    3 shop-->client (100); span 4 is INTERNAL in shop (70-80 ms), not drawn."""
    return [
        make_span(1, None, "shop", "SERVER", "GET /a", 0, 100),
        make_span(2, 1, "shop", "CLIENT", "GET /b", 10, 60, attrs={"http.request.method": "GET"}),
        make_span(3, 2, "pay", "SERVER", "GET /b", 12, 58),
        make_span(4, 1, "shop", "INTERNAL", "render", 70, 80),
    ]


def test_each_record_sits_at_the_message_of_its_span_that_had_started_last() -> None:
    spans = small_trace()
    diagram = build_diagram(spans, None)
    assert [(m.source, m.target, m.kind) for m in diagram.messages] == [
        ("client", "shop", "call"),
        ("shop", "pay", "call"),
        ("pay", "shop", "return"),
        ("shop", "client", "return"),
    ]
    records = [
        record(1, 5, body="root, before the call"),  # span 1's messages: 0..3 -> 0
        record(3, 30, body="server B", service="pay"),  # span 3: 1, 2; 30 ms -> 1
        record(3, 59, body="just before the answer", service="pay"),  # 2 starts at 60 -> 1
        record(2, 61, body="client after the answer"),  # span 2: 1, 2 -> 2
        record(4, 75, body="internal span: its parent's"),  # span 1's subtree by 75 -> 2
        record(1, -1, body="before anything started"),  # none started yet: the first, 0
        record(None, 50, body="trace-wide, no span"),  # no span: listed, not drawn
        record(3, 31, body="unknown service", service="ghost"),  # lifeline of the callee
        record(1, 6, trace=OTHER_TRACE, body="another trace"),  # not this diagram's
    ]
    placed = attach_logs(diagram, spans, records).logs
    assert [(m.body, m.message_index, m.participant) for m in placed] == [
        ("before anything started", 0, "shop"),
        ("root, before the call", 0, "shop"),
        ("server B", 1, "pay"),
        ("unknown service", 1, "pay"),
        ("trace-wide, no span", None, "shop"),  # its lifeline, but no row to draw it at
        ("just before the answer", 1, "pay"),
        ("client after the answer", 2, "shop"),
        ("internal span: its parent's", 2, "shop"),
    ]


def test_levels_from_severity_number_or_text() -> None:
    assert log_level("ERROR", 17) == log_level("", 21) == log_level("fatal", 0) == "error"
    assert log_level("WARN", 13) == log_level("warning", 0) == log_level("", 16) == "warn"
    assert log_level("INFO", 9) == log_level("", 0) == log_level("DEBUG", 5) == "info"


def test_only_error_and_warning_records_become_notes() -> None:
    spans = small_trace()
    records = [
        record(1, 5, "INFO", 9, "fine"),
        record(3, 30, "WARN", 13, "slow", service="pay"),
        *(record(3, 31 + n, "ERROR", 17, f"bad {n}", service="pay") for n in range(4)),
    ]
    diagram = attach_logs(build_diagram(spans, None), spans, records)
    assert log_notes(diagram) == {
        1: [
            ("pay", "WARN: slow"),
            ("pay", "ERROR: bad 0"),
            ("pay", "ERROR: bad 1"),
            ("pay", "and 2 more error/warning logs"),
        ]
    }
    text = render(diagram, "mermaid")
    assert "Note right of pay: ERROR: bad 1" in text and "fine" not in text


def test_a_diagram_without_logs_draws_nothing_new() -> None:
    spans = small_trace()
    plain = build_diagram(spans, None)
    with_none = attach_logs(plain, spans, [])
    for fmt in FORMATS:
        assert render(with_none, fmt) == render(plain, fmt)
    assert to_dict(plain)["logs"] == []


# --- goldens of sample diagrams with their logs ----------------------------------------------


@cache
def sample_records() -> tuple[Mapping[str, Any], ...]:
    files = sorted((SAMPLES / "logs").glob("*.json"))
    assert files, "no sample logs: run sample_traces/generate.py"
    return tuple(r for f in files for request in read_log_file(f) for r in log_dicts(request))


def logged_diagram(case: Case) -> Diagram:
    spans = case_spans(case)
    diagram = build_diagram(spans, case.entity, show_internal=case.show_internal)
    return attach_logs(diagram, spans, sample_records())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", LOG_CASES, ids=lambda case: case.name)
def test_golden_with_logs(case: Case, fmt: str) -> None:
    path = GOLDEN / f"{case.name}.{SUFFIXES[fmt]}"
    text = render(logged_diagram(case), fmt)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"{path} is missing: run with SEQTRACE_UPDATE_GOLDEN=1 to write it")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs; if intended, rerun with SEQTRACE_UPDATE_GOLDEN=1 and review"
    )
    if fmt == "svg":
        ET.fromstring(text.encode("utf-8"))


def test_the_retried_payment_shows_its_warnings_and_errors() -> None:
    diagram = logged_diagram(next(c for c in LOG_CASES if c.name == "ORD-1002"))
    data = to_dict(diagram)
    levels = [(log["level"], log["service"]) for log in data["logs"] if log["level"] != "info"]
    assert levels == [("error", "payment"), ("warn", "payment")] * 2
    loop = next(b for b in data["blocks"] if b["kind"] == "loop")
    for log in data["logs"]:
        if log["level"] != "info":  # each failed attempt's lines sit inside the retry loop
            assert loop["first"] <= log["message_index"] <= loop["last"]
    svg = render(diagram, "svg")
    assert svg.count('class="log error"') == 2 and svg.count('class="log warn"') == 2


# --- hostile text -------------------------------------------------------------------------


def hostile_records() -> list[dict[str, Any]]:
    out = []
    for n, text in enumerate(HOSTILE):
        trace = f"{n + 1:032x}"
        base = 100 * n
        for span, severity, number in ((base + 1, text, 17), (base + 2, "WARN", 13)):
            item = record(span, 86_400_000 * n + 20, severity, number, text, service=text)
            item["trace_id"] = trace
            item["attributes"] = {text: text}
            out.append(item)
    return out


def hostile_log_diagram() -> Diagram:
    spans = hostile_spans()
    diagram = build_diagram(spans, (HOSTILE[0], HOSTILE[4]), show_internal=True)
    return attach_logs(diagram, spans, hostile_records())


def log_diagrams(fmt: str) -> dict[str, str]:
    """The diagrams with logs, for the Mermaid and PlantUML tool runs."""
    texts = {f"logs-{case.name}": render(logged_diagram(case), fmt) for case in LOG_CASES}
    texts["logs-hostile"] = render(hostile_log_diagram(), fmt)
    return texts


def test_hostile_log_text_stays_text_in_every_format() -> None:
    diagram = hostile_log_diagram()
    assert sum(1 for mark in diagram.logs if mark.message_index is not None) >= len(HOSTILE)
    svg = render(diagram, "svg")
    root = ET.fromstring(svg.encode("utf-8"))
    tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert not tags & {"script", "img", "foreignObject", "iframe"}
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg
    for fmt in ("mermaid", "plantuml"):
        text = render(diagram, fmt)
        lines = [line.strip() for line in text.splitlines()]
        notes = [line for line in lines if line.lower().startswith("note right")]
        assert len(notes) >= len(HOSTILE)
        escapes = MERMAID_CODE if fmt == "mermaid" else PLANTUML_CODE
        for line in notes:  # one line each, nothing that ends the statement or the block
            bare = escapes.sub("", line)
            assert "<" not in bare and ">" not in bare and "@enduml" not in bare
            assert "%%" not in bare and "`" not in bare
            if fmt == "mermaid":
                assert ";" not in bare and "#" not in bare
    data = json.loads(render(diagram, "json"))
    assert {log["body"] for log in data["logs"]} == set(HOSTILE)
