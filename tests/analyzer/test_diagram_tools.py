"""The real Mermaid and PlantUML tools must accept every diagram seqtrace writes.

Each tool runs once over a batch (all golden cases plus the hostile diagram), because a
start costs seconds. A missing tool fails the test with a line saying what to install.

* Mermaid: ``@mermaid-js/mermaid-cli`` (``mmdc``) renders one Markdown file holding every
  diagram as a ```` ```mermaid ```` block; it stops with an error at the first diagram it
  cannot parse. Found via ``SEQTRACE_MMDC``, ``<repo>/.tools/node_modules/.bin/mmdc`` or
  ``PATH``; Chromium at ``/usr/bin/chromium`` (or ``SEQTRACE_CHROMIUM``).
* PlantUML: ``plantuml -tsvg`` over all files in one JVM. PlantUML reports some errors
  only inside the image it writes (exit status 0), so each SVG is also searched for its
  error banners; a deliberately broken batch checks that the check itself catches errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_diagram_golden import CASES, rendered
from test_diagram_logs import log_diagrams
from test_diagram_render import HOSTILE, hostile_spans

from analyzer.diagram import build_diagram, render
from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("SEQTRACE_CHROMIUM", "/usr/bin/chromium"))
PLANTUML_ERRORS = re.compile(r"Syntax Error\?|An error has occured|java\.lang\.")


def diagrams(fmt: str) -> dict[str, str]:
    texts = {case.name: rendered(case, fmt) for case in CASES}
    hostile = build_diagram(hostile_spans(), (HOSTILE[0], HOSTILE[4]), show_internal=True)
    texts["hostile"] = render(hostile, fmt)
    texts["empty"] = render(build_diagram([]), fmt)
    texts.update(log_diagrams(fmt))  # with log records (#18): notes for errors and warnings
    return texts


# --- Mermaid --------------------------------------------------------------------------------


def find_mmdc() -> str | None:
    candidates = [
        os.environ.get("SEQTRACE_MMDC", ""),
        str(ROOT / ".tools" / "node_modules" / ".bin" / "mmdc"),
        shutil.which("mmdc") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_plantuml() -> str | None:
    return os.environ.get("SEQTRACE_PLANTUML") or shutil.which("plantuml")


@dataclass
class ToolRun:
    """A tool started in the background (the runs overlap: each takes seconds)."""

    directory: Path
    names: list[str]
    process: subprocess.Popen[str] | None = None
    problem: str | None = None

    def finish(self) -> tuple[int, str]:
        if self.problem or self.process is None:
            pytest.fail(self.problem or "tool did not start")
        _, stderr = self.process.communicate(timeout=300)
        return self.process.returncode, stderr


def start_mermaid(directory: Path) -> ToolRun:
    texts = diagrams("mermaid")
    run = ToolRun(directory, list(texts))
    mmdc = find_mmdc()
    if mmdc is None:
        run.problem = (
            "mermaid-cli not found: install it with `npm install --prefix .tools "
            "@mermaid-js/mermaid-cli` (or set SEQTRACE_MMDC to the mmdc binary)"
        )
        return run
    if not CHROMIUM.is_file():
        run.problem = f"Chromium not found at {CHROMIUM}: `apt-get install chromium`"
        return run
    config = directory / "puppeteer.json"
    config.write_text(
        json.dumps({"executablePath": str(CHROMIUM), "args": ["--no-sandbox", "--disable-gpu"]})
    )
    blocks = [f"## {name}\n\n```mermaid\n{text}```\n" for name, text in texts.items()]
    source = directory / "all.md"
    source.write_text("\n".join(blocks), encoding="utf-8")
    command = [mmdc, "--puppeteerConfigFile", str(config), "-i", str(source),
               "-o", str(directory / "out.md"), "--quiet"]  # fmt: skip
    run.process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    return run


def start_plantuml(directory: Path, texts: dict[str, str]) -> ToolRun:
    """PlantUML over all ``texts`` in one JVM, writing ``out/<name>.svg``."""
    run = ToolRun(directory, list(texts))
    binary = find_plantuml()
    if binary is None:
        run.problem = "plantuml not found: `apt-get install plantuml` (or set SEQTRACE_PLANTUML)"
        return run
    files = []
    for name, text in texts.items():
        path = directory / f"{name}.puml"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    command = [binary, "-tsvg", "-charset", "UTF-8", "-nbthread", "auto",
               "-o", str(directory / "out"), *files]  # fmt: skip
    run.process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    return run


BROKEN_PLANTUML = {
    "syntax": "@startuml\na -> b : x\nthis is not plantuml\n@enduml\n",
    "crash": "@startuml\na -> b : &#36;x\n@enduml\n",  # PlantUML throws, yet exits 0
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ToolRun]]:
    started = {
        "mermaid": start_mermaid(tmp_path_factory.mktemp("mermaid")),
        "plantuml": start_plantuml(tmp_path_factory.mktemp("plantuml"), diagrams("plantuml")),
        "broken": start_plantuml(tmp_path_factory.mktemp("broken"), BROKEN_PLANTUML),
    }
    yield started
    for run in started.values():
        if run.process is not None and run.process.poll() is None:
            run.process.kill()


def test_mermaid_cli_renders_every_diagram(runs: dict[str, ToolRun]) -> None:
    run = runs["mermaid"]
    status, stderr = run.finish()
    assert status == 0, f"mmdc failed:\n{stderr[-3000:]}"
    images = sorted(run.directory.glob("out-*.svg"), key=lambda p: int(p.stem.split("-")[1]))
    assert len(images) == len(run.names), (len(images), len(run.names))
    for image in images:
        svg = image.read_text(encoding="utf-8")
        assert "Syntax error" not in svg, image.name
        assert_no_active_content(svg, image.name)
    hostile = images[run.names.index("hostile")].read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in hostile


def assert_no_active_content(svg: str, name: str) -> None:
    """Hostile labels stayed text: no script or image elements, no event handlers."""
    for element in ET.fromstring(svg.encode("utf-8")).iter():
        tag = element.tag.rsplit("}", 1)[-1].lower()
        assert tag not in ("script", "img", "iframe", "image"), (name, tag)
        assert not [a for a in element.attrib if a.lower().startswith("on")], (name, tag)


def plantuml_images(run: ToolRun) -> dict[str, str]:
    out = run.directory / "out"
    return {
        name: (out / f"{name}.svg").read_text(encoding="utf-8")
        for name in run.names
        if (out / f"{name}.svg").exists()
    }


def plantuml_errors(images: dict[str, str]) -> list[str]:
    return sorted(name for name, svg in images.items() if PLANTUML_ERRORS.search(svg))


def test_plantuml_renders_every_diagram(runs: dict[str, ToolRun]) -> None:
    run = runs["plantuml"]
    status, stderr = run.finish()
    assert status == 0, f"plantuml failed ({status}):\n{stderr[-3000:]}"
    assert stderr.strip() == "", stderr[-3000:]
    images = plantuml_images(run)
    assert sorted(images) == sorted(run.names)
    assert plantuml_errors(images) == []
    assert "&lt;img src=x onerror=alert(1)&gt;" in images["hostile"]
    assert "/root" not in images["hostile"]  # %getenv("HOME") was not expanded
    for name, svg in images.items():
        assert_no_active_content(svg, name)


def test_the_plantuml_check_catches_errors(runs: dict[str, ToolRun]) -> None:
    run = runs["broken"]
    status, _ = run.finish()
    assert status != 0
    assert plantuml_errors(plantuml_images(run)) == ["crash", "syntax"]
