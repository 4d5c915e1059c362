"""`seqtrace find` / `seqtrace compare` and /api/v1/find, /api/v1/compare on a running
server with the sample shop: SPEC JSON shapes, the same one-line error in the CLI (exit
2) and the API (400), trace ids pasted as prefixes, and the ids-only answer flows use."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.source import HttpSource, SourceError
from tests.conftest import SEQTRACE, Server, sample_files, start_server

EVERYTHING = ["--from", "2026-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z"]
BAD = '{ duration > "2s" }'
BAD_MESSAGE = (
    "query error at position 14: expected a duration (300ms, 2s) to compare duration with, "
    "found a string"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("find") / "served.duckdb")
    loaded = subprocess.run(
        [*SEQTRACE, "load", "--api", server.api, *map(str, sample_files())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    yield server
    server.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEQTRACE, *args, "--api", server.api], capture_output=True, text=True, timeout=120
    )


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_find_json_shape_and_table(served: Server) -> None:
    done = cli(
        served,
        "find",
        "{ status = error } !< { status = error }",
        *EVERYTHING,
        "--json",
        "--limit",
        "2",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"query", "from_unix_nano", "to_unix_nano", "total", "traces"}
    assert result["total"] == 5 and len(result["traces"]) == 2
    first = result["traces"][0]
    assert set(first) >= {
        "trace_id", "root_service", "root_operation", "start_unix_nano", "duration_ns",
        "matched_spans", "outcome", "entities",
    }  # fmt: skip
    assert first["trace_id"] == "1b9c99bf234b42dac473f2244ccacf31"  # the newest of the five
    assert first["outcome"] == "partial" and first["entities"]["order.id"] == ["ORD-9999"]
    table = cli(served, "find", "{ status = error }", *EVERYTHING)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0] == "5 traces match (newest first, 5 shown)"
    assert "a379f02f3d9f" in table.stdout and "FAILED" not in table.stdout.split("OUTCOME")[0]


def test_compare_json_shape(served: Server) -> None:
    done = cli(served, "compare", "{ status = error }", *EVERYTHING, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["selection"]["spans"] == 11 and result["baseline"]["spans"] == 489
    assert result["baseline"]["query"] is None
    attribute = result["attributes"][0]
    assert set(attribute) >= {
        "key", "value", "selection_spans", "baseline_spans", "selection_fraction",
        "baseline_fraction", "score",
    }  # fmt: skip
    scores = [a["score"] for a in result["attributes"]]
    assert scores == sorted(scores, reverse=True)
    with_baseline = cli(
        served,
        "compare",
        "{ status = error }",
        "--baseline",
        "{ kind = client }",
        *EVERYTHING,
        "--json",
    )
    assert json.loads(with_baseline.stdout)["baseline"]["query"] == "{ kind = client }"


def test_one_error_line_in_cli_and_api(served: Server) -> None:
    for command in ("find", "compare"):
        done = cli(served, command, BAD, *EVERYTHING)
        assert done.returncode == 2
        assert done.stderr.strip() == f"seqtrace: error: {BAD_MESSAGE}"
    for path in ("find", "compare"):
        status, body = get(f"{served.api}/api/v1/{path}?q={urllib.parse.quote(BAD)}")
        assert (status, body) == (400, {"error": BAD_MESSAGE})


def test_find_on_a_database_file_gives_the_same_message(tmp_path: Path) -> None:
    db = tmp_path / "file.duckdb"
    loaded = subprocess.run(
        [*SEQTRACE, "load", "--db", str(db), str(sample_files()[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    done = subprocess.run(
        [*SEQTRACE, "find", BAD, "--db", str(db)], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr.strip()) == (2, f"seqtrace: error: {BAD_MESSAGE}")


def test_ids_as_people_paste_them(served: Server) -> None:
    status, body = get(f"{served.api}/api/v1/traces/1dd722018e15?view=spans")
    assert status == 200 and body["trace_id"] == "1dd722018e153afe0b5a9c61b05aa28b"
    status, body = get(f"{served.api}/api/v1/traces/0000000000ff")
    assert status == 404 and "no trace starts with 0000000000ff" in str(body["error"])
    diagram = cli(served, "diagram", "--trace", "1dd722018e15", "--format", "json")
    assert diagram.returncode == 0, diagram.stderr
    # Two sample traces start with 1d, none with 1d0: an 8-digit prefix is needed.
    status, body = get(f"{served.api}/api/v1/traces/1d")
    assert status == 404


def test_query_trace_ids_through_the_api(served: Server) -> None:
    source = HttpSource(served.api)
    ids = source.query_trace_ids("{ status = error }", 0, 1 << 62)
    assert [i[:8] for i in ids] == ["0e757124", "1b9c99bf", "1dd72201", "28aa6f8c", "a379f02f"]
    with pytest.raises(SourceError) as bad:
        source.query_trace_ids(BAD, None, None)
    assert bad.value.status == 400 and str(bad.value) == BAD_MESSAGE
