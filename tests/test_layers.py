"""The layering contract (pyproject.toml [tool.importlinter]) and the pinned public APIs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_layers_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(linter)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_storage_public_api_is_pinned() -> None:
    import spanstore

    assert sorted(spanstore.__all__) == [
        "SchemaVersionError",
        "Span",
        "SpanEvent",
        "SpanLink",
        "SpanReader",
        "SpanWriter",
        "StoreError",
        "StoreStats",
        "StoreUnavailable",
        "WriteResult",
        "open_store",
    ]


def test_collector_public_api_is_pinned() -> None:
    import collector

    assert sorted(collector.__all__) == [
        "Collector",
        "HttpAnswer",
        "IngestCounters",
        "OtlpHttpHandler",
        "ReceiverConfig",
    ]


def test_read_side_public_api_is_pinned() -> None:
    from analyzer import source

    assert sorted(source.__all__) == [
        "DEFAULT_RANGE_NS",
        "HttpSource",
        "LocalSource",
        "Source",
        "SourceError",
        "open_database",
        "parse_entity",
    ]
