"""Golden files for the renderings of a flow, and the real tools accept them.

``tests/golden/flow/<case>.{txt,json,mmd,puml,svg,md}``: the sample shop's checkouts (three
variants: clean with 1-2 stock updates, a retried payment, a deadlock with compensation)
and a hostile-strings flow. Rerun with ``SEQTRACE_UPDATE_GOLDEN=1`` after an intended
change and review the diff. Mermaid (mermaid-cli) and PlantUML must render every one.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_diagram_golden import sample_spans
from test_diagram_render import HOSTILE, hostile_spans
from test_diagram_tools import (
    CHROMIUM,
    PLANTUML_ERRORS,
    assert_no_active_content,
    find_mmdc,
    find_plantuml,
)

from analyzer.flow import flow_dict, flow_of_spans, render_flow
from analyzer.flow.report import selection_dict
from tests.conftest import assert_golden

SUFFIXES = {"table": "txt", "json": "json", "mermaid": "mmd", "plantuml": "puml", "svg": "svg",
            "markdown": "md"}  # fmt: skip
#: case -> (root service, root operation)
CASES = {
    "checkout": ("frontend", "POST /api/checkout"),
    "order-status": ("frontend", "GET /api/orders/{orderId}"),
    "hostile": None,
}


@cache
def case_flow(name: str) -> tuple[dict[str, Any], list[Any]]:
    spans = sample_spans()
    root = CASES[name]
    if root is None:
        # The hostile sample's traces (span names and attributes are attacker text).
        spans = tuple(hostile_spans())
        chosen = {s.trace_id for s in spans}
        selection = selection_dict(query=HOSTILE[0])
    else:
        service, operation = root
        chosen = {
            s.trace_id
            for s in spans
            if s.parent_span_id is None
            and s.service_name == service
            and f"{s.attributes.get('http.request.method')} {s.attributes.get('http.route')}"
            == operation
        }
        selection = selection_dict(root=f"{service}: {operation}")
    variants = flow_of_spans([s for s in spans if s.trace_id in chosen])
    start = min(s.start_unix_nano for s in spans if s.trace_id in chosen)
    end = max(s.end_unix_nano for s in spans if s.trace_id in chosen) + 1
    return flow_dict(variants, selection, start, end), variants


def rendered(name: str, fmt: str) -> str:
    report, variants = case_flow(name)
    return render_flow(report, variants, fmt)


@pytest.mark.parametrize("fmt", list(SUFFIXES))
@pytest.mark.parametrize("name", list(CASES))
def test_flow_golden(name: str, fmt: str) -> None:
    golden = f"flow/{name}.{SUFFIXES[fmt]}"
    text = rendered(name, fmt)
    assert_golden(golden, text)
    if fmt == "svg":
        assert_no_active_content(text, golden)
        ET.fromstring(text.encode("utf-8"))
    if fmt == "json":
        assert json.loads(text)["traces"] == sum(v["count"] for v in json.loads(text)["variants"])


def test_checkout_flow_shows_the_incident() -> None:
    report, _ = case_flow("checkout")
    summary = [(v["count"], v["ok"], v["partial"], v["failed"]) for v in report["variants"]]
    # 9 clean checkouts (1 or 2 stock updates: one variant), the payment retried (partial),
    # the deadlock (failed).
    assert summary == [(9, 9, 0, 0), (1, 0, 0, 1), (1, 0, 1, 0)]
    deadlock = report["variants"][1]
    assert "checkout->orders-db: INSERT order_items" in deadlock["missing"]
    extra = [
        m["label"] for m in deadlock["messages"] if m["diff"] == "extra" and m["kind"] == "call"
    ]
    assert extra == ["POST /api/payments/{paymentId}/void", "POST /v1/charges/{chargeId}/void",
                     "UPDATE payments"]  # fmt: skip
    mermaid = rendered("checkout", "mermaid")
    assert mermaid.count("    else\n") == 2  # three variants in one alt block


def test_tools_accept_every_flow(tmp_path: Path) -> None:
    mmdc, plantuml = find_mmdc(), find_plantuml()
    assert mmdc is not None, (
        "mermaid-cli not found: npm install --prefix .tools @mermaid-js/mermaid-cli"
    )
    assert plantuml is not None, "plantuml not found: apt-get install plantuml"
    texts = {name: rendered(name, "mermaid") for name in CASES}
    # Markdown's per-variant diagrams too.
    blocks = [f"## {name}\n\n```mermaid\n{text}```\n" for name, text in texts.items()]
    for name in CASES:
        markdown = rendered(name, "markdown")
        blocks += [
            f"## {name} md {i}\n\n```mermaid\n{part.split('```', 1)[0]}```\n"
            for i, part in enumerate(markdown.split("```mermaid\n")[1:])
        ]
    source = tmp_path / "all.md"
    source.write_text("\n".join(blocks), encoding="utf-8")
    config = tmp_path / "puppeteer.json"
    config.write_text(
        json.dumps({"executablePath": str(CHROMIUM), "args": ["--no-sandbox", "--disable-gpu"]})
    )
    puml_dir = tmp_path / "puml"
    puml_dir.mkdir()
    files = []
    for name in CASES:
        path = puml_dir / f"{name}.puml"
        path.write_text(rendered(name, "plantuml"), encoding="utf-8")
        files.append(str(path))
    plant = subprocess.Popen(
        [plantuml, "-tsvg", "-charset", "UTF-8", "-o", str(tmp_path / "out"), *files],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    mermaid = subprocess.run(
        [mmdc, "--puppeteerConfigFile", str(config), "-i", str(source), "-o",
         str(tmp_path / "out.md"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert mermaid.returncode == 0, mermaid.stderr[-3000:]
    images = sorted(tmp_path.glob("out-*.svg"))
    assert len(images) == len(blocks)
    for image in images:
        svg = image.read_text(encoding="utf-8")
        assert "Syntax error" not in svg, image.name
        assert_no_active_content(svg, image.name)
    _, stderr = plant.communicate(timeout=300)
    assert plant.returncode == 0, stderr[-3000:]
    for name in CASES:
        svg = (tmp_path / "out" / f"{name}.svg").read_text(encoding="utf-8")
        assert not PLANTUML_ERRORS.search(svg), name
        assert_no_active_content(svg, name)
