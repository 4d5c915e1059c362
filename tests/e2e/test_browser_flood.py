"""The UI while ingest is saturated (issue 20), in a real browser (Debian Chromium).

* The entity page renders its diagram while client threads flood the collector with
  distinct requests as fast as they are acknowledged.
* The overview's live mode keeps at most one read in flight and skips a refresh after a
  slow answer instead of queueing one: behind a proxy that makes every API answer slow,
  the page's requests never overlap and pause between refreshes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, start_server
from tests.e2e.test_browser import Up, browser, page, settle, shoot, up  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_entity_page_renders_while_a_flood_runs(page: Any, up: Up) -> None:  # noqa: F811
    # The flood runs in a process of its own: in this one its threads would starve
    # Playwright's event loop of the interpreter lock.
    flood = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "bench" / "bench_ingest.py"), "client"),
            *("--target", up.addresses["otlp-grpc"], "--phase", "sustained"),
            *("--duration", "240", "--streams", "4", "--spans", "510", "--warmup", "0"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the server has taken flood spans
            with urllib.request.urlopen(up.api + "/api/v1/ingest-stats", timeout=30) as r:
                if json.loads(r.read())["receivers"]["spans_accepted"] > 20_000:
                    break
            time.sleep(0.5)
        started = time.monotonic()
        # The flood's spans are newer than the sample shop's: the default range (the
        # last 24 h of data) would end before ORD-1002's traces, so ask for all of it.
        page.goto(up.ui + "/?entity=order.id=ORD-1002&from=2000-01-01T00:00:00Z&to=now")
        settle(page, "Entity sequence diagram")
        try:
            page.locator(".js-plotly-plot").first.wait_for(timeout=150_000)
            page.get_by_text("retry: 3 attempts, 2 failed").wait_for(timeout=150_000)
        except Exception:
            shoot(page, "entity-ORD-1002-under-flood-failed", height=1200)
            raise
        elapsed = time.monotonic() - started
        still_flooding = flood.poll() is None
        shoot(page, "entity-ORD-1002-under-flood", height=1200)
    finally:
        flood.kill()
        flood.wait(30)
    assert still_flooding
    assert elapsed < 150, elapsed
    assert not page.watch.errors, page.watch.errors


class _SlowProxy:
    """Forwards GETs to the query API, each answer DELAY seconds late; records when each
    request started and ended, and the most that were in flight at once."""

    DELAY = 2.0

    def __init__(self, upstream: str) -> None:
        proxy = self
        self.upstream = upstream
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests: list[tuple[float, float, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                started = time.monotonic()
                with proxy.lock:
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    time.sleep(proxy.DELAY)
                    try:
                        with urllib.request.urlopen(proxy.upstream + self.path, timeout=60) as r:
                            status, body, kind = r.status, r.read(), r.headers["Content-Type"]
                    except urllib.error.HTTPError as exc:
                        status, body, kind = exc.code, exc.read(), "application/json"
                    self.send_response(status)
                    self.send_header("Content-Type", kind or "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1
                        proxy.requests.append((started, time.monotonic(), self.path))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def slow_ui(tmp_path: Path) -> Iterator[tuple[str, _SlowProxy]]:
    from tests.conftest import sample_files

    db = tmp_path / "live.duckdb"
    load = [sys.executable, "-m", "seqtrace.cli", "load", "--db", str(db)]
    subprocess.run([*load, *map(str, sample_files())], check=True, capture_output=True, cwd=ROOT)
    server = start_server(db)
    proxy = _SlowProxy(server.api)
    ui = subprocess.Popen(
        [sys.executable, "-m", "seqtrace.cli", "ui", "--api", proxy.url, "--ui-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    address = ""
    assert ui.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = ui.stdout.readline()
        match = re.match(r"seqtrace: listening ui=(\S+)", line)
        if match:
            address = match.group(1)
            break
        if not line:
            break
    try:
        assert address, "seqtrace ui did not start"
        yield f"http://{address}", proxy
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(30)
        proxy.server.shutdown()
        server.stop()


def test_live_mode_keeps_one_read_in_flight_and_skips_a_refresh_after_a_slow_one(
    page: Any,  # noqa: F811
    slow_ui: tuple[str, _SlowProxy],
) -> None:
    url, proxy = slow_ui
    page.goto(url + "/")
    settle(page, "Overview")
    page.get_by_text("Live: refresh every 5 s").click()
    switched_on = time.monotonic()
    page.wait_for_timeout(45_000)
    with proxy.lock:
        live = sorted(r for r in proxy.requests if r[0] >= switched_on)
        most = proxy.most_in_flight
    assert most == 1, "the page had two reads in flight at once"
    # A run reads ~5 answers at 2 s each (> the 5 s interval): without skipping, the
    # queued refresh starts the moment a run ends and the requests follow each other
    # with no pause; with it, a queued refresh draws the last answers and the next
    # reads wait for the timer.
    assert len(live) >= 5, live
    pauses = [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(live)]
    assert max(pauses) >= 1.5, pauses
    shoot(page, "overview-live-slow-api")
