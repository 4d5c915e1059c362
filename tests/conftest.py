"""Shared fixtures: sample data, temporary stores, a running `seqtrace serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
for _folder in ("spanstore", "collector", "analyzer", "ui", "seqtrace", "httpbase"):
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


LISTENING = re.compile(r"seqtrace: listening (\S+)=(\S+)")


class Server:
    """A running `seqtrace serve` or `seqtrace up`: its process, the addresses it printed
    (``api``, ``otlp-grpc``, ``otlp-http``, ``ui``) and every line of its stdout so far."""

    def __init__(self, process: subprocess.Popen[str], addresses: dict[str, str]) -> None:
        self.process = process
        self.addresses = addresses
        self.lines: list[str] = []

    @property
    def api(self) -> str:
        return f"http://{self.addresses['api']}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the server (SIGTERM: drain and stop), wait, and keep the rest of its
        stdout in :attr:`lines`; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.lines += self.process.stdout.read().splitlines()
        return code


def start_seqtrace(
    command: str,
    *args: str,
    env: dict[str, str] | None = None,
    clean_env: bool = False,
    cwd: Path | None = None,
    timeout: float = 120,
) -> Server:
    """`seqtrace serve|up ARGS` with every listener on a free port; returns once it has
    printed all of them (the line that ends in "Ctrl-C stops" comes after the last).
    ``clean_env`` drops the SEQTRACE_* variables of the test run before adding ``env``."""
    ports = ["--grpc-port", "0", "--http-port", "0", "--api-port", "0"]
    if command == "up":
        ports += ["--ui-port", "0"]
    base = {k: v for k, v in os.environ.items() if not (clean_env and k.startswith("SEQTRACE_"))}
    process = subprocess.Popen(
        [*SEQTRACE, command, *args, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
    )
    server = Server(process, {})
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"seqtrace {command} exited: {server.lines} {err[-2000:]}")
        server.lines.append(line.rstrip("\n"))
        match = LISTENING.match(line)
        if match:
            server.addresses[match.group(1)] = match.group(2)
        if "Ctrl-C stops" in line:
            return server
    process.kill()
    raise AssertionError(f"seqtrace {command} did not start in {timeout} s: {server.lines}")


def start_server(db: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`seqtrace serve --db DB` on free ports; returns once every listener is printed."""
    server = start_seqtrace("serve", "--db", str(db), *extra, env=env)
    assert len(server.addresses) == 3, server.lines
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "served.duckdb")
    yield srv
    srv.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` every 20 ms until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


#: Golden files: expected renderings, compared byte for byte (tests/golden/<area>/<name>).
GOLDEN = ROOT / "tests" / "golden"
#: SEQTRACE_UPDATE_GOLDEN=1 rewrites them from the code (then review the diff); any other
#: value, or none, only compares.
UPDATE_GOLDEN = os.environ.get("SEQTRACE_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, text: str) -> None:
    """``text`` equals the golden file ``tests/golden/<name>`` (``diagram/ORD-1001.mmd``)."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    if not path.exists():
        pytest.fail(f"{path} is missing: run with SEQTRACE_UPDATE_GOLDEN=1 to write it")
    # Bytes, not text: a hostile id may hold a carriage return that text mode would change.
    assert text == path.read_bytes().decode("utf-8"), (
        f"{name} differs from its golden; if intended, rerun with SEQTRACE_UPDATE_GOLDEN=1 "
        "and review the diff"
    )


def load_json(path: Path) -> object:
    return json.loads(path.read_text())
