"""The OpenTelemetry JS SDK's OTLP log exporters (gRPC, HTTP/protobuf) send log records
written inside a span to a running collector with the real DuckDBStore: every record is
read back intact and correlated with its span; the JS metric exporters report success
(every point refused in partial_success, SPEC "Other OTLP signals")."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_collector_node import APP, ensure_node_app
from test_collector_support import open_store, running_collector

from collector import Collector
from spanstore.duckdb_store import DuckDBStore

TOKEN = "node-logs-token"


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
    if not (APP / "node_modules" / "@opentelemetry" / "exporter-logs-otlp-grpc").is_dir():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=APP, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
    env = {
        **os.environ,
        "SEQTRACE_OTLP_GRPC": f"http://{collector.addresses['otlp-grpc']}",
        "SEQTRACE_OTLP_HTTP": f"http://{collector.addresses['otlp-http']}",
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {TOKEN}",
    }
    done = subprocess.run(
        ["node", "send_logs.js"], cwd=APP, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_node_sdk_log_and_metric_exporters(collector: Collector, store: DuckDBStore) -> None:
    results = run_node(collector)
    logs = [r for r in results if "records" in r]
    metrics = [r for r in results if "metricsResult" in r]
    assert [r["protocol"] for r in logs] == ["grpc", "proto"]
    assert [(r["protocol"], r["metricsResult"]) for r in metrics] == [
        ("grpc", "success"),
        ("proto", "success"),
    ]
    assert collector.counters().metric_points_refused >= 4  # a counter and a histogram, twice
    for result in logs:
        stored = store.logs_of_traces([result["traceId"]])
        assert len(stored) == len(result["records"]) == 5, result["protocol"]
        by_attempt = {int(log.attributes["attempt"]): log for log in stored}  # type: ignore[call-overload]
        for sent in result["records"]:
            got = by_attempt[sent["attempt"]]
            assert got.body == sent["body"] and got.severity_text == sent["severityText"]
            assert got.span_id == result["spanId"] and got.trace_id == result["traceId"]
            assert got.attributes["card.brand"] == "visa"
            assert got.attributes["tags"] == ["a", "b"]
            assert got.service == f"node-logs-{result['protocol']}"
            assert got.scope_name == "node-shop.payments" and got.scope_version == "1.2.3"
        errors = [log for log in stored if log.is_error]
        assert len(errors) == 2
    assert store.stats().spans == 0  # only log records were sent
