"""Renderers on hostile input: span names, services and errors never escape their labels.

Span names and attributes are attacker-controlled. Each format gets a structural check
(every line is one statement of the expected kind; the SVG parses as XML and holds the
hostile text as text) instead of a search for particular bad strings.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from test_diagram import OTHER_TRACE, TRACE, make_span, sid

from analyzer.diagram import build_diagram, render
from analyzer.diagram.model import Diagram
from analyzer.diagram.svg import BOX_LABEL_LIMIT, text_width
from analyzer.diagram.text import label_text
from analyzer.escaping import markdown_cell as cell
from analyzer.escaping import mermaid_text as mermaid_escape
from analyzer.escaping import one_line, safe_aliases, shorten
from analyzer.escaping import plantuml_text as plantuml_escape
from analyzer.escaping import xml_text as esc
from spanstore.model import Span, SpanEvent, SpanLink

HOSTILE = (
    '<img src=x onerror=alert(1)> "Zoë\'s café → #1; -->"\nsecond line </script> & {{7*7}} | end ✓',
    "end",
    "%%{init: {'theme': 'dark'}}%%",
    "@enduml\n!include /etc/passwd",
    '%getenv("HOME") $x ${y} \\n \\\\ ~~ ** // __ "" [[http://evil]] <&star> <img:/etc/x>',
    "a;b#c`d```e\r\nf\u2028g\u202eh\x00i\x1bj\ud800k\ufffe",
    "participant evil as x\nevil->>x: injected",
    "loop\nend\nend",
    "-->>x--x-)-x->>",
    "日本語のサービス🚀",
)


def hostile_spans() -> list[Span]:
    """Every hostile string as a service, a span name, an attribute, an error and a note."""
    spans: list[Span] = []
    for n, text in enumerate(HOSTILE):
        trace = f"{n + 1:032x}"
        base = 100 * n
        day = 86_400_000 * n  # a gap divider between every pair of traces
        spans += [
            make_span(base + 1, None, text, "SERVER", text, day, day + 100, trace=trace,
                      attrs={"order.note": text, "http.route": text,
                             "http.request.method": "POST"}),
            make_span(base + 2, base + 1, text, "CLIENT", text, day + 5, day + 60, trace=trace,
                      status="ERROR", message=text, attrs={"peer.service": text + "-peer"}),
            make_span(base + 3, base + 1, text, "CLIENT", text, day + 61, day + 62, trace=trace,
                      status="ERROR", message=text, attrs={"peer.service": text + "-peer"}),
            make_span(base + 4, base + 1, text, "CLIENT", text, day + 63, day + 64, trace=trace,
                      attrs={"peer.service": text + "-peer"}),
            make_span(base + 5, base + 1, text, "INTERNAL", text, day + 65, day + 70,
                      trace=trace, status="ERROR",
                      events=[SpanEvent("exception", 0, {"exception.type": text,
                                                         "exception.message": text})]),
            make_span(base + 6, base + 5, "db" + text, "SERVER", text, day - 400, day - 398,
                      trace=trace),  # skewed: shifted into its parent, with a note
            make_span(base + 7, base + 1, text, "PRODUCER", text, day + 71, day + 72,
                      trace=trace, attrs={"messaging.destination.name": text + "-topic",
                                          "messaging.system": text}),
            make_span(base + 8, base + 7, "consumer" + text, "CONSUMER", text, day + 80,
                      day + 90, trace=trace, links=[SpanLink(trace, sid(base + 7))]),
            make_span(base + 9, 999_999, text + "orphan", "SERVER", text, day + 91, day + 95,
                      trace=trace),
            make_span(base + 10, base + 1, text, "CLIENT", text, day + 66, day + 69,
                      trace=trace, attrs={"db.system": text, "db.name": text,
                                          "db.operation": text, "db.sql.table": text}),
        ]  # fmt: skip
    return spans


@pytest.fixture(scope="module")
def hostile() -> Diagram:
    return build_diagram(hostile_spans(), (HOSTILE[0], HOSTILE[4]), show_internal=True)


def test_hostile_diagram_has_every_feature(hostile: Diagram) -> None:
    kinds = {m.kind for m in hostile.messages}
    assert kinds == {"call", "return", "async", "self"}
    assert {b.kind for b in hostile.blocks} >= {"loop", "par"}
    assert {n.kind for n in hostile.notes} == {"gap", "skew", "partial"}
    assert {p.kind for p in hostile.participants} == {"service", "database", "queue", "external"}


# --- Mermaid --------------------------------------------------------------------------------

_ENTITY = re.compile(r"#\d+;")
_MERMAID_TEXT = r"[^;#%<>`\"'\n]*"
_ALIAS = r"[A-Za-z_][A-Za-z0-9_]*"
_MERMAID_LINE = re.compile(
    rf"(?:sequenceDiagram|autonumber|end|and"
    rf"|actor {_ALIAS} as {_MERMAID_TEXT}"
    rf'|participant {_ALIAS}(?:@\{{ "type": "(?:database|queue|boundary)" \}})? as {_MERMAID_TEXT}'
    rf"|{_ALIAS}(?:->>|-->>|--x|-\)|-x){_ALIAS}: {_MERMAID_TEXT}"
    rf"|Note over {_ALIAS}(?:,{_ALIAS})?: {_MERMAID_TEXT}"
    rf"|(?:loop|par) {_MERMAID_TEXT})"
)


def expected_statements(diagram: Diagram) -> int:
    branches = sum(max(0, len(b.branches) - 1) for b in diagram.blocks)
    return (
        len(diagram.participants)
        + len(diagram.messages)
        + 2 * len(diagram.blocks)
        + (branches + len(diagram.notes))
    )


def test_mermaid_labels_cannot_break_out(hostile: Diagram) -> None:
    text = render(hostile, "mermaid")
    lines = text.splitlines()
    assert len(lines) == 2 + expected_statements(hostile)
    for line in lines:
        stripped = _ENTITY.sub("", line.strip())
        assert _MERMAID_LINE.fullmatch(stripped), line
    arrows = [line for line in lines if re.match(rf"\s*{_ALIAS}(->>|-->>|--x|-\)|-x)", line)]
    assert len(arrows) == len(hostile.messages)


def test_mermaid_aliases_are_safe_distinct_identifiers() -> None:
    ids = ["end", "End", "a-b", "a_b", "1st", "", "日本", "loop", "participant"]
    aliases = safe_aliases(ids, frozenset({"end", "loop", "participant"}))
    assert len({a.lower() for a in aliases.values()}) == len(ids)
    for alias in aliases.values():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias), alias
        assert alias.lower() not in ("end", "loop", "participant")


def test_mermaid_escape_round_trips_through_entity_codes() -> None:
    for text in HOSTILE:
        escaped = mermaid_escape(text)
        decoded = _ENTITY.sub(lambda m: chr(int(m.group()[1:-1])), escaped)
        assert decoded == one_line(text)


# --- PlantUML -------------------------------------------------------------------------------

_UNICODE = re.compile(r"<U\+[0-9A-F]{4,6}>")
_PUML_TEXT = r"[A-Za-z0-9 .,:()?+\u0080-\U0010FFFF]*"
_PUML_LINE = re.compile(
    rf"(?:@startuml|@enduml|autonumber|end|else|skinparam [A-Za-z]+ [A-Za-z0-9]+"
    rf'|(?:actor|participant|database|queue|boundary) "{_PUML_TEXT}" as {_ALIAS}'
    rf"|{_ALIAS} (?:->|-->|->>|-\[#D93025\]>|-\[#D93025\]->|-\[#D93025\]>>) {_ALIAS} : {_PUML_TEXT}"
    rf"|note over {_ALIAS}(?:, {_ALIAS})? : {_PUML_TEXT}"
    rf"|== {_PUML_TEXT} =="
    rf"|(?:loop|par) {_PUML_TEXT})"
)


def test_plantuml_labels_cannot_inject_lines_or_directives(hostile: Diagram) -> None:
    text = render(hostile, "plantuml")
    lines = text.splitlines()
    assert lines[0] == "@startuml" and lines[-1] == "@enduml"
    assert len(lines) == 6 + expected_statements(hostile)
    for line in lines:
        stripped = _UNICODE.sub("", line.strip())
        assert _PUML_LINE.fullmatch(stripped), line
    assert sum(1 for line in lines if line.startswith(("@", "!"))) == 2


def test_plantuml_escape_round_trips_through_unicode_codes() -> None:
    for text in HOSTILE:
        escaped = plantuml_escape(text)
        decoded = _UNICODE.sub(lambda m: chr(int(m.group()[3:-1], 16)), escaped)
        assert decoded == one_line(text)
        assert not re.search(r"[%$!@<>&\\\"'#;*/_~\[\]{}|=`-]", _UNICODE.sub("", escaped))


# --- SVG ------------------------------------------------------------------------------------

SVG_TAGS = {"svg", "title", "style", "defs", "marker", "path", "rect", "line", "circle", "g",
            "text", "tspan"}  # fmt: skip


def svg_texts(document: str) -> list[str]:
    root = ET.fromstring(document.encode("utf-8"))
    texts = []
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        assert tag in SVG_TAGS, tag
        assert all(not name.lower().startswith("on") for name in element.attrib), element.attrib
        if tag == "text":
            texts.append("".join(element.itertext()))
    return texts


def test_svg_is_well_formed_and_hostile_text_stays_text(hostile: Diagram) -> None:
    document = render(hostile, "svg")
    texts = svg_texts(document)
    for message in hostile.messages:
        assert any(text.startswith(message.label) for text in texts), message.label
    for participant in hostile.participants:
        assert shorten(participant.label, BOX_LABEL_LIMIT) in texts
    assert "<script" not in document and "<img" not in document


def test_svg_escape_handles_markup_and_characters_xml_forbids() -> None:
    for raw in HOSTILE:
        text = one_line(raw)
        wrapped = f'<t a="{esc(text)}">{esc(text)}</t>'
        element = ET.fromstring(wrapped.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
        assert element.text is not None and element.get("a") == element.text
    assert text_width("WWW") > text_width("iii") > 0


# --- Markdown and JSON ----------------------------------------------------------------------


def test_markdown_cells_cannot_break_the_table(hostile: Diagram) -> None:
    text = render(hostile, "markdown")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header_pipes = len(re.findall(r"(?<!\\)\|", table[0]))
    for row in table:
        assert len(re.findall(r"(?<!\\)\|", row)) == header_pipes, row
        assert "<" not in row and ">" not in row
    fence = text.index("```mermaid")
    assert text.count("```") == 2 and text.index("```", fence + 3) > fence
    assert text.splitlines()[0].startswith("# Sequence diagram: ")
    assert "\n" not in cell("a\nb") and cell("[x](javascript:y)") == "\\[x\\]\\(javascript:y\\)"


def test_json_keeps_hostile_text_as_data(hostile: Diagram) -> None:
    data = json.loads(render(hostile, "json"))
    assert data["entity"] == {"key": HOSTILE[0], "value": HOSTILE[4]}
    labels = {m["label"] for m in data["messages"]}
    assert label_text(HOSTILE[0]) in labels
    assert {p["id"] for p in data["participants"]} >= set(HOSTILE) - {""}


def test_two_diagrams_get_distinct_svg_marker_ids() -> None:
    first = render(build_diagram([make_span(1, None, "a", "SERVER", "x", 0, 1)]), "svg")
    second = render(
        build_diagram([make_span(1, None, "a", "SERVER", "x", 0, 1, trace=OTHER_TRACE)]), "svg"
    )
    ids = re.compile(r'<marker id="([^"]+)"')
    assert set(ids.findall(first)).isdisjoint(ids.findall(second))
    assert TRACE != OTHER_TRACE
