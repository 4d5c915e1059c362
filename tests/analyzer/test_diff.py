"""`seqtrace diff`: goldens for Mermaid and Markdown, the JSON shape, and real mermaid-cli."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.contracts import contract_diff, contract_init, diff
from analyzer.source import LocalSource, SourceError, open_database
from tests.conftest import ROOT, assert_golden, sample_files

PUPPETEER = {"executablePath": "/usr/bin/chromium", "args": ["--no-sandbox", "--disable-gpu"]}
PAIRS = [("ORD-1001", "ORD-1004"), ("ORD-1003", "ORD-1005"), ("ORD-1001", "ORD-1002")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSource]:
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("diff") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    source = open_database(str(path))
    yield source
    source.reader.close()  # type: ignore[attr-defined]


def golden(name: str, text: str) -> None:
    assert_golden(f"contracts/{name}", text)


def mmdc() -> str:
    """mermaid-cli: $SEQTRACE_MMDC, else .tools/, else /tmp/mmdc/. Missing is a failure."""
    for candidate in (
        os.environ.get("SEQTRACE_MMDC"),
        str(ROOT / ".tools" / "node_modules" / ".bin" / "mmdc"),
        "/tmp/mmdc/node_modules/.bin/mmdc",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "mermaid-cli (mmdc) not found: run `make tools` or set SEQTRACE_MMDC", pytrace=False
    )


def render_with_mmdc(source: str, tmp_path: Path) -> str:
    if not Path(str(PUPPETEER["executablePath"])).exists() and not shutil.which("chromium"):
        pytest.fail("chromium not found at /usr/bin/chromium: run `make tools`", pytrace=False)
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps(PUPPETEER))
    given = tmp_path / "diagram.mmd"
    given.write_text(source, encoding="utf-8")
    out = tmp_path / "diagram.svg"
    done = subprocess.run(
        [mmdc(), "-p", str(config), "-i", str(given), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    svg = out.read_text(encoding="utf-8")
    assert "Syntax error" not in svg and "<svg" in svg
    return svg


@pytest.mark.parametrize(("base", "other"), PAIRS)
def test_diff_goldens(shop: LocalSource, base: str, other: str) -> None:
    mermaid = diff(shop, f"order.id={base}", f"order.id={other}", "mermaid")
    markdown = diff(shop, f"order.id={base}", f"order.id={other}", "markdown")
    assert isinstance(mermaid, str) and isinstance(markdown, str)
    golden(f"diff-{base}-{other}.mmd", mermaid)
    golden(f"diff-{base}-{other}.md", markdown)
    assert mermaid.strip() in markdown


def test_what_ord_1004_did_that_ord_1001_did_not(shop: LocalSource) -> None:
    result = diff(shop, "order.id=ORD-1001", "order.id=ORD-1004", "json")
    assert isinstance(result, dict)
    json.dumps(result)
    assert result["base"]["entity"] == {"key": "order.id", "value": "ORD-1001"}
    assert result["other"] == {"key": "order.id", "value": "ORD-1004"}
    unexpected = [s["observed"] for s in result["steps"] if s["status"] == "unexpected"]
    assert "frontend->recommendation: RecommendationService/ListRecommendations" in unexpected
    assert "recommendation->recommendation: load user features" in unexpected
    missing = [s["expected"] for s in result["steps"] if s["status"] == "missing"]
    assert "client->fulfillment: POST /webhooks/carrier" in missing  # ORD-1001's carrier webhook
    assert result["summary"]["same"] > 15
    assert sum(result["summary"].values()) == len(result["steps"])
    for step in result["steps"]:
        assert step["status"] in ("same", "missing", "unexpected", "changed")
        assert (step["expected"] is None) == (step["status"] == "unexpected")
        assert (step["observed"] is None) == (step["status"] == "missing")


def test_diff_mermaid_styles(shop: LocalSource) -> None:
    text = diff(shop, "order.id=ORD-1003", "order.id=ORD-1005", "mermaid")
    assert isinstance(text, str)
    assert "rect rgba(128, 128, 128, 0.15)" in text  # missing: grey
    assert "-->>orders_db: ❌ missing: INSERT order_items" in text  # dashed
    assert "rect rgba(255, 0, 0, 0.12)" in text  # unexpected: red
    assert "\u2795 unexpected: POST /api/payments/#123;paymentId#125;/void" in text
    assert "checkout-xorders_db: ⚠ changed: INSERT orders (failed: DeadlockDetected" in text
    same = diff(shop, "order.id=ORD-1003", "order.id=ORD-1003", "markdown")
    assert isinstance(same, str) and "No differences" in same


def test_the_same_entity_has_no_differences(shop: LocalSource) -> None:
    result = diff(shop, "order.id=ORD-1002", "order.id=ORD-1002", "json")
    assert isinstance(result, dict) and result["conforming"]
    # the retried order's base has a loop, so the single-attempt order matches it too
    single = diff(shop, "order.id=ORD-1002", "order.id=ORD-1003", "json")
    assert isinstance(single, dict)
    assert not [
        s for s in single["steps"] if "payprovider" in s["from"] + s["to"] and s["status"] != "same"
    ]


def test_contract_diff_for_the_ui(shop: LocalSource) -> None:
    text = contract_init(shop, "order.id=ORD-1003")
    result = contract_diff(shop, text, "order.id=ORD-1005", name="happy.mmd")
    assert result["base"] == {"kind": "contract", "name": "happy.mmd", "entity": None}
    assert result["summary"]["missing"] == 8 and result["summary"]["changed"] == 3


def test_bad_format_and_entity(shop: LocalSource) -> None:
    with pytest.raises(SourceError, match="unknown diff format"):
        diff(shop, "order.id=ORD-1001", "order.id=ORD-1004", "svg")
    with pytest.raises(SourceError):
        diff(shop, "order.id=ORD-1001", "nonsense", "json")


def test_hostile_labels_stay_inside_their_arrows(shop: LocalSource) -> None:
    result = diff(shop, "order.id=ORD-1003", "order.id=ORD-1666", "markdown")
    assert isinstance(result, str)
    body = result.split("```mermaid", 1)[1].split("```", 1)[0]
    for line in body.strip().splitlines()[1:]:
        assert line.startswith("    "), line  # one statement per line, nothing breaks out
    assert "<img" not in result and "</script>" not in result


@pytest.mark.parametrize(("base", "other"), PAIRS)
def test_diff_renders_with_mermaid_cli(
    shop: LocalSource, base: str, other: str, tmp_path: Path
) -> None:
    mermaid = diff(shop, f"order.id={base}", f"order.id={other}", "mermaid")
    assert isinstance(mermaid, str)
    svg = render_with_mmdc(mermaid, tmp_path)
    assert "missing" in svg or base == other


def test_init_renders_with_mermaid_cli(shop: LocalSource, tmp_path: Path) -> None:
    """A drafted contract is a diagram people can look at (GitHub renders it too)."""
    text = contract_init(shop, "order.id=ORD-1004")
    svg = render_with_mmdc(text, tmp_path)
    assert "ListRecommendations" in svg
