"""`seqtrace logs`, `/api/v1/logs`, `stats`, `load` of log files and the postmortem's log
quotes (#18), against a real `seqtrace serve` and a real database file."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SEQTRACE, Server, start_server

SAMPLES = ROOT / "sample_traces"
ORD_1002_TRACE = "28aa6f8cecf63975079bb73dfbbeb308"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEQTRACE, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("logs") / "served.duckdb"
    server = start_server(db)
    try:
        files = [str(p) for p in sorted(SAMPLES.glob("*.json"))]
        files += [str(p) for p in sorted((SAMPLES / "logs").glob("*.json"))]
        loaded = run("load", "--api", server.api, *files)
        assert loaded.returncode == 0, loaded.stderr
        assert "and 90 log records" in loaded.stdout
        yield server
    finally:
        server.stop()


def get(server: Server, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(server.api + path, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_logs_of_an_entity_as_spec_json(served: Server) -> None:
    done = run("logs", "--api", served.api, "--entity", "order.id=ORD-1002", "--json")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)["logs"]
    spec_keys = {"time_unix_nano", "severity", "severity_number", "body", "service",
                 "trace_id", "span_id", "attributes"}  # fmt: skip
    assert all(spec_keys <= set(r) for r in records)
    times = [r["time_unix_nano"] for r in records]
    assert times == sorted(times)
    warnings = [r["body"] for r in records if r["severity"] == "WARN"]
    assert warnings == [
        "payprovider answered 503; retry 1 in 100 ms",
        "payprovider answered 503; retry 2 in 200 ms",
    ]
    assert {r["trace_id"] for r in records} <= set(
        json.loads(run("diagram", "--api", served.api, "--entity", "order.id=ORD-1002",
                       "--format", "json").stdout)["traces"]
    )  # fmt: skip
    status, body = get(served, "/api/v1/logs?entity=order.id%3DORD-1002")
    assert status == 200 and body["logs"] == records


def test_logs_of_a_trace_as_a_table(served: Server) -> None:
    done = run("logs", "--api", served.api, "--trace", ORD_1002_TRACE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["time", "severity", "service", "span", "body"]
    assert any("payprovider answered 503; retry 1 in 100 ms" in line for line in lines)


def test_the_diagram_json_carries_logs_with_message_index(served: Server) -> None:
    status, diagram = get(served, "/api/v1/diagram?entity=order.id%3DORD-1002")
    assert status == 200
    logs = diagram["logs"]
    assert len(logs) == 8
    for record in logs:
        index = record["message_index"]
        assert index is not None
        message = diagram["messages"][index]
        assert message["trace_id"] == record["trace_id"]


def test_untraced_records_are_searched_by_service_and_severity(served: Server) -> None:
    status, body = get(
        served,
        "/api/v1/logs?service=inventory&severity=13&untraced=1&from=0&to=2000000000000000000",
    )
    assert status == 200
    assert [r["body"] for r in body["logs"]] == [
        "stock sync lagging: last warehouse feed 9 min old"
    ]
    assert body["logs"][0]["trace_id"] is None


def test_stats_count_logs_and_refused_metric_points(served: Server) -> None:
    status, stats = get(served, "/api/v1/stats")
    assert status == 200
    assert (stats["logs"], stats["logs_without_trace"]) == (90, 3)
    assert stats["metric_points_refused"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --entity KEY=VALUE or --trace ID"),
        (("--entity", "a=b", "--trace", "00"), "not both"),
        (("--trace", "xyz"), "trace"),
        (("--entity", "novalue"), "KEY=VALUE"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    served: Server, args: tuple[str, ...], message: str
) -> None:
    done = run("logs", "--api", served.api, *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_logs_from_a_file_and_the_postmortem_quotes(tmp_path: Path) -> None:
    db = tmp_path / "file.duckdb"
    files = [str(p) for p in sorted(SAMPLES.glob("*.json"))]
    files += [str(p) for p in sorted((SAMPLES / "logs").glob("*.json"))]
    assert run("load", "--db", str(db), *files).returncode == 0
    direct = run("logs", "--db", str(db), "--entity", "order.id=ORD-1005", "--json")
    assert direct.returncode == 0, direct.stderr
    errors = [r for r in json.loads(direct.stdout)["logs"] if r["severity"] == "ERROR"]
    assert errors and all(r["service"] for r in errors)
    out = tmp_path / "pm"
    done = run("postmortem", "--db", str(db), "--entity", "order.id=ORD-1005", "--out", str(out))
    assert done.returncode == 0, done.stderr
    markdown = (out / "postmortem.md").read_text(encoding="utf-8")
    assert "Error and warning logs" in markdown
    quoted = markdown.split("Error and warning logs", 1)[1]
    assert errors[0]["body"].split(":")[0] in quoted


def test_refused_metric_points_are_counted_in_stats(served: Server) -> None:
    from logs_support import make_metrics

    request = urllib.request.Request(
        f"http://{served.addresses['otlp-http']}/v1/metrics",
        data=make_metrics(5).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    status, stats = get(served, "/api/v1/stats")
    assert status == 200 and stats["metric_points_refused"] == 5
    status, ingest = get(served, "/api/v1/ingest-stats")
    assert ingest["receivers"]["metric_points_refused"] == 5
    assert ingest["receivers"]["logs_accepted"] == 90  # the samples, through the API port
