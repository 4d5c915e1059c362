"""Shared fixtures: sample data, temporary stores, a running `seqtrace serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# In CI every property test draws the same examples on every run (reproducible, not
# flaky); locally they explore new ones each time. Deadlines are off: the CI machine's
# two cores are busy with browsers and servers.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
#: Public trace files from other projects (Apache-2.0; see its README.md), kept in the repo
#: so the suite needs nothing outside the checkout.
REAL_TRACES = ROOT / "tests" / "data" / "real_traces"
SEQTRACE = [sys.executable, "-m", "seqtrace.cli"]

# tests/ mirrors the packages (tests/spanstore, tests/collector, ...). Test modules import
# helpers from each other by their bare names (``from test_clickhouse import ch``), which
# is also the name pytest imports them under: one module object each, so test_clickhouse's
# one chdb engine per process stays one. Every folder is on the path from the start, so a
# single file runs alone too.
for _folder in ("spanstore", "collector", "analyzer", "ui", "seqtrace"):
    sys.path.insert(0, str(ROOT / "tests" / _folder))


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Streamlit's AppTest leaves the page it ran as ``sys.modules["__main__"]``; worker
    processes started later in this process (the store's decoder pool) would then re-run
    that page as they start, fail, and be restarted forever. Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """A database file holding every sample trace (the shop incident)."""
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path / "samples.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    return path


class Server:
    def __init__(self, process: subprocess.Popen[str], addresses: dict[str, str]) -> None:
        self.process = process
        self.addresses = addresses

    @property
    def api(self) -> str:
        return f"http://{self.addresses['api']}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_server(db: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`seqtrace serve` on free ports; returns once every listener is printed."""
    process = subprocess.Popen(
        [
            *SEQTRACE,
            "serve",
            "--db",
            str(db),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--api-port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    addresses: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline and len(addresses) < 3:
        line = process.stdout.readline()
        if not line:
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"seqtrace serve exited: {err}")
        match = re.match(r"seqtrace: listening (\S+)=(\S+)", line)
        if match:
            addresses[match.group(1)] = match.group(2)
    assert len(addresses) == 3, addresses
    return Server(process, addresses)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "served.duckdb")
    yield srv
    srv.stop()


def load_json(path: Path) -> object:
    return json.loads(path.read_text())


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
