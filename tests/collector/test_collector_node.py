"""A second language: the OpenTelemetry JS SDK's OTLP exporters (gRPC, HTTP/protobuf,
HTTP/JSON), installed from npm into tests/node_exporter, send to a running collector
with the real DuckDBStore; the spans are read back and checked field by field."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_collector_support import open_store, running_collector

from collector import Collector
from spanstore.duckdb_store import DuckDBStore

APP = Path(__file__).resolve().parents[1] / "node_exporter"
TOKEN = "node-test-token"


def ensure_node_app() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm are required for the Node.js exporter test (apt-get install nodejs npm)",
            pytrace=False,
        )
    if (APP / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-grpc").is_dir():
        return
    command = [npm, "ci", "--no-audit", "--no-fund"]
    done = subprocess.run(command, cwd=APP, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        pytest.fail(f"npm ci in {APP} failed: {tail}", pytrace=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with open_store(tmp_path) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store, ingest_token=TOKEN) as c:
        yield c


def run_node(collector: Collector) -> list[dict[str, Any]]:
    ensure_node_app()
    env = {
        **os.environ,
        "SEQTRACE_OTLP_GRPC": f"http://{collector.addresses['otlp-grpc']}",
        "SEQTRACE_OTLP_HTTP": f"http://{collector.addresses['otlp-http']}",
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {TOKEN}",
    }
    done = subprocess.run(
        ["node", "send.js"], cwd=APP, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_node_sdk_exporters(collector: Collector, store: DuckDBStore) -> None:
    results = run_node(collector)
    assert [r["protocol"] for r in results] == ["grpc", "proto", "json"]
    assert store.stats().spans == 9
    for result in results:
        protocol = result["protocol"]
        ids = {s["name"]: s["spanId"] for s in result["spans"]}
        spans = {s.name: s for s in store.spans([result["traceId"], result["warmupTraceId"]])}
        assert {name: s.span_id for name, s in spans.items()} == ids, protocol
        root, child, warmup = spans["POST /orders"], spans["call inventory"], spans["warmup"]

        assert root.trace_id == child.trace_id == result["traceId"]
        assert root.parent_span_id is None and child.parent_span_id == root.span_id
        assert (root.kind, child.kind, warmup.kind) == ("SERVER", "CLIENT", "INTERNAL")
        assert root.attributes == {
            "http.request.method": "POST",
            "http.response.status_code": 502,
            "order.id": "ord-js-7",
            "cart.total": 12.75,
            "user.vip": False,
            "tags": ["x", "y"],
            "quantities": [4, 5],
        }, protocol
        assert child.attributes == {"peer.service": "inventory", "retry.count": 2}
        assert root.resource_attributes == {
            "service.name": f"node-{protocol}",
            "service.version": "2.0.0",
            "deployment.environment": "test",
            "process.pid": 4242,
        }
        assert root.service_name == f"node-{protocol}"
        assert (root.scope_name, root.scope_version) == ("node-shop", "0.3.1")
        assert root.status_code == "ERROR" and root.status_message == ""
        assert child.status_code == "ERROR" and child.status_message == "inventory timeout"
        assert warmup.status_code == "UNSET"
        sent, exception = child.events
        assert sent.name == "request.sent" and sent.attributes == {"bytes": 512}
        assert exception.name == "exception"
        assert exception.attributes["exception.type"] == "Error"
        assert exception.attributes["exception.message"] == "inventory timeout"
        assert "send.js" in str(exception.attributes["exception.stacktrace"])
        # The JS SDK takes start times in whole milliseconds and measures durations
        # with a finer clock, so orderings between spans hold to within a millisecond.
        slack = 2_000_000
        assert child.start_unix_nano - slack <= sent.time_unix_nano <= child.end_unix_nano + slack
        (link,) = child.links
        assert (link.trace_id, link.span_id) == (warmup.trace_id, warmup.span_id)
        assert link.attributes == {"link.reason": "caused-by"}
        assert root.start_unix_nano <= child.start_unix_nano + slack
        assert child.start_unix_nano <= child.end_unix_nano
        assert root.end_unix_nano + slack >= child.end_unix_nano
