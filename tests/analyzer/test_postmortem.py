"""`seqtrace postmortem` on the sample incident: a bundle an incident review can use."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_diagram_tools import CHROMIUM, find_mmdc

from tests.conftest import SAMPLES, SEQTRACE

ENTITIES = ["order.id=ORD-1002", "order.id=ORD-1005", "order.id=ORD-1666"]


@pytest.fixture
def bundle(sample_db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "pm"
    args = [*SEQTRACE, "postmortem", "--db", str(sample_db), "--out", str(out)]
    for entity in ENTITIES:
        args += ["--entity", entity]
    args += ["--slo-spec", str(SAMPLES / "slo.yaml")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    return out


def test_bundle_holds_every_section_and_file(bundle: Path) -> None:
    md = (bundle / "postmortem.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Timeline", "## Failures", "## SLO impact",
                    "## Affected entities"):  # fmt: skip
        assert heading in md, heading
    assert md.count("```mermaid") == len(ENTITIES)
    # the root causes the report found are named
    assert "deadlock detected" in md and "503 Service Unavailable" in md
    assert "checkout-availability" in md
    for entity in ENTITIES:
        stem = entity.replace("=", "-")
        for suffix in ("svg", "puml", "json", "mmd"):
            assert (bundle / f"{stem}.{suffix}").is_file(), f"{stem}.{suffix}"
        diagram = json.loads((bundle / f"{stem}.json").read_text())
        assert diagram["entity"]["value"] == entity.split("=", 1)[1]
        ET.fromstring((bundle / f"{stem}.svg").read_text(encoding="utf-8"))  # well-formed


def test_hostile_text_stays_text_in_the_markdown(bundle: Path) -> None:
    md = (bundle / "postmortem.md").read_text(encoding="utf-8")
    assert "<img" not in md and "onerror=alert(1)>" not in md.replace("&lt;", "<").split("```")[0]


def test_the_markdown_mermaid_blocks_render(bundle: Path, tmp_path: Path) -> None:
    mmdc = find_mmdc()
    if mmdc is None:
        pytest.fail("mermaid-cli not found: run `make tools` (or set SEQTRACE_MMDC)")
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install chromium`")
    config = tmp_path / "puppeteer.json"
    config.write_text(
        json.dumps({"executablePath": str(CHROMIUM), "args": ["--no-sandbox", "--disable-gpu"]})
    )
    out = tmp_path / "rendered.md"
    done = subprocess.run(
        [
            mmdc,
            "--puppeteerConfigFile",
            str(config),
            "-i",
            str(bundle / "postmortem.md"),
            "-o",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    svgs = sorted(tmp_path.glob("rendered-*.svg"))
    assert len(svgs) == len(ENTITIES)
    for svg in svgs:
        text = svg.read_text(encoding="utf-8")
        assert "Syntax error" not in text
        ET.fromstring(text)
