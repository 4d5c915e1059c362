"""The command line: SPEC's commands, exit codes, one-line errors, documentation."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from seqtrace.cli import build_parser
from seqtrace.errors import render_error
from tests.conftest import ROOT, SEQTRACE, sample_files

COMMANDS = ["serve", "up", "ui", "load", "stats", "entities", "diagram", "failures", "slo"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEQTRACE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_error_line_shape_is_pinned() -> None:
    assert render_error("no such file\n  x") == "seqtrace: error: no such file x"


def test_every_command_has_help_and_is_listed() -> None:
    top = run("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", top.stdout, re.M), command
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: seqtrace " + command in sub.stdout


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and re.match(r"seqtrace \d+\.\d+", out.stdout)


def test_every_command_and_flag_is_documented() -> None:
    """Like datasette's documentation tests: an undocumented command or flag fails."""
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():  # type: ignore[union-attr]
        assert f"seqtrace {name}" in docs, f"`seqtrace {name}` is not documented"
        for action in subparser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in docs, f"{name} {flag} is not documented in docs/cli.md"


def test_missing_data_is_exit_2_with_one_line(tmp_path: Path) -> None:
    out = run("stats", "--db", str(tmp_path / "nope.duckdb"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("seqtrace: error: ")
    assert "nope.duckdb" in out.stderr and "Traceback" not in out.stderr


def test_no_server_no_file_names_both(tmp_path: Path) -> None:
    out = run("stats", cwd=tmp_path)
    assert out.returncode == 2
    assert "query API at http://127.0.0.1:4319" in out.stderr
    assert "seqtrace.duckdb" in out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["diagram"], "--entity KEY=VALUE or --trace ID"),
        (["diagram", "--entity", "order.id"], "KEY=VALUE"),
        (["failures", "--from", "yesterday"], "--from"),
        (["entities", "--key", ""], "--key: give an attribute key"),
        (["load", "/nonexistent/file.json"], "/nonexistent/file.json"),
    ],
)
def test_usage_errors(sample_db: Path, args: list[str], needle: str) -> None:
    out = run(*args, "--db", str(sample_db))
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1


def test_load_then_stats_and_entities(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    loaded = run("load", "--db", str(db), *map(str, sample_files()))
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 500 spans" in loaded.stdout
    stats = json.loads(run("stats", "--db", str(db), "--json").stdout)
    assert set(stats) >= {"spans", "traces", "services", "first_unix_nano", "last_unix_nano"}
    assert stats["spans"] == 500 and stats["traces"] == 47
    assert "payment" in stats["services"]
    keys = json.loads(run("entities", "--db", str(db), "--json").stdout)
    assert {"order.id", "customer.id"} <= {k["key"] for k in keys["keys"]}
    values = json.loads(run("entities", "--db", str(db), "--key", "order.id", "--json").stdout)
    assert values["key"] == "order.id"
    by_value = {v["value"]: v for v in values["values"]}
    assert by_value["ORD-1001"]["traces"] == 4
    assert (
        by_value["ORD-1001"]["last_unix_nano"] - by_value["ORD-1001"]["first_unix_nano"]
        > 2 * 86400e9 - 3600e9
    )
    # loading the same files again stores nothing twice, and says so
    again = run("load", "--db", str(db), *map(str, sample_files()))
    assert "(500 of them already stored)" in again.stdout, again.stdout
    assert json.loads(run("stats", "--db", str(db), "--json").stdout)["spans"] == 500
    human = run("stats", "--db", str(db))
    assert human.returncode == 0 and "spans     500" in human.stdout


def test_load_rejects_a_file_that_is_not_traces(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    out = run("load", "--db", str(tmp_path / "x.duckdb"), str(bad))
    assert out.returncode == 2 and "notes.json" in out.stderr


# --------------------------------------------------------------------------- QA regressions


@pytest.mark.parametrize("flag", ["--from", "--to"])
def test_relative_times_are_values_not_flags(sample_db: Path, flag: str) -> None:
    """README's `seqtrace failures --from -1h`: argparse took -1h for an unknown option."""
    out = run("failures", "--db", str(sample_db), flag, "-1h30m", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["from_unix_nano"] < report["to_unix_nano"]


def test_from_after_the_newest_span_reports_up_to_now(sample_db: Path) -> None:
    """--from alone, after the newest span: the range ends now, not before it starts."""
    out = run("failures", "--db", str(sample_db), "--from", "-1h", "--json")
    report = json.loads(out.stdout)
    assert report["to_unix_nano"] - report["from_unix_nano"] >= 3600 * 10**9 - 10**9
    assert report["summary"]["traces"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["failures", "--since", "-1h"], "failures: unrecognized arguments: --since -1h"),
        (["diagram", "--entity", "order.id=ORD-1002", "--format", "png"], "diagram: argument"),
        (["entities", "--limit", "abc"], "entities: argument --limit"),
        (["contract", "check", "--key", "order.id"], "contract check: the following"),
        (["slo", "--spec", "x.yaml", "--json", "--markdown"], "not allowed with"),
    ],
)
def test_argparse_errors_are_one_line(sample_db: Path, args: list[str], needle: str) -> None:
    out = run(*args, "--db", str(sample_db))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("seqtrace: error: ")
    assert needle in out.stderr and "--help" in out.stderr and "usage:" not in out.stderr


def test_diagram_out_to_a_missing_folder_is_a_usage_error(sample_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.mmd"
    for out_path in (target, tmp_path):  # a missing folder, then a folder itself
        out = run(
            "diagram",
            "--db",
            str(sample_db),
            "--entity",
            "order.id=ORD-1002",
            "--out",
            str(out_path),
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("seqtrace: error: cannot write ")
        assert out.stderr.count("\n") == 1 and "internal error" not in out.stderr


def test_binary_spec_and_contract_files_name_the_file(sample_db: Path, tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00slos:")
    for args in (
        ["slo", "--spec", str(binary)],
        ["contract", "check", str(binary), "--key", "order.id"],
    ):
        out = run(*args, "--db", str(sample_db))
        assert out.returncode == 2, out.stderr
        assert "binary.yaml: not UTF-8 text" in out.stderr and out.stderr.count("\n") == 1


def test_a_database_held_by_serve_says_what_to_do(tmp_path: Path) -> None:
    from tests.conftest import start_server

    db = tmp_path / "held.duckdb"
    srv = start_server(db)
    try:
        out = run("stats", "--db", str(db))
        assert out.returncode == 2
        assert "held by another process" in out.stderr and "--api" in out.stderr
        assert "start `seqtrace serve`" not in out.stderr  # it is running
        assert out.stderr.count("\n") == 1
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize(
    ("flag", "listener"), [("--grpc-port", "otlp-grpc"), ("--api-port", "api")]
)
def test_a_port_in_use_is_one_line_naming_the_listener(
    tmp_path: Path, flag: str, listener: str
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"--grpc-port": "0", "--http-port": "0", "--api-port": "0", flag: str(port)}
        args = [a for item in ports.items() for a in item]
        out = run("serve", "--db", str(tmp_path / "x.duckdb"), *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("seqtrace: error: ")
    assert f"{listener}: cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr
    assert flag in out.stderr


@pytest.mark.parametrize("command", [["stats"], ["load", "x.json"], ["ui", "--ui-port", "0"]])
def test_an_api_that_is_not_a_url_is_named(command: list[str]) -> None:
    out = run(*command, "--api", "localhost:4319")
    assert out.returncode == 2
    assert out.stderr == (
        "seqtrace: error: --api: 'localhost:4319' is not a URL; give the server's query API, "
        "e.g. http://127.0.0.1:4319\n"
    )


def test_diagram_entity_and_trace_together_is_a_usage_error(sample_db: Path) -> None:
    out = run("diagram", "--db", str(sample_db), "--entity", "order.id=ORD-1002", "--trace", "ab")
    assert out.returncode == 2 and "not both" in out.stderr


def test_failures_on_an_empty_database_covers_the_last_day(tmp_path: Path) -> None:
    from spanstore.duckdb_store import DuckDBStore

    db = tmp_path / "empty.duckdb"
    DuckDBStore(db).close()
    report = json.loads(run("failures", "--db", str(db), "--json").stdout)
    assert report["to_unix_nano"] > 1_700_000_000 * 10**9  # now, not 1970
    assert report["to_unix_nano"] - report["from_unix_nano"] == 86400 * 10**9


def test_missing_tokens_say_which_flag_to_give(tmp_path: Path) -> None:
    """The 401 of `load` was a protobuf Status read as text (a stray length byte)."""
    from tests.conftest import start_server

    srv = start_server(
        tmp_path / "guarded.duckdb", "--ingest-token", "in-1", "--read-token", "rd-1"
    )
    try:
        load = run("load", "--api", srv.api, str(sample_files()[0]))
        assert load.returncode == 2 and load.stderr.count("\n") == 1
        assert "refused the spans (401): missing or wrong ingest token" in load.stderr
        assert "--ingest-token TOKEN" in load.stderr
        stats = run("stats", "--api", srv.api)
        assert stats.returncode == 2 and "--read-token TOKEN" in stats.stderr
        assert run("stats", "--api", srv.api, "--read-token", "rd-1").returncode == 0
    finally:
        assert srv.stop() == 0


def test_an_entity_outside_the_range_names_the_range(sample_db: Path) -> None:
    """It has spans, just not in --from/--to: "no spans carry" alone sent users astray."""
    out = run(
        "diagram", "--db", str(sample_db), "--entity", "order.id=ORD-1002", "--to", "2020-01-01"
    )
    assert out.returncode == 2
    assert "no spans carry order.id=ORD-1002 before 2020-01-01T00:00:00.000Z" in out.stderr
    assert "--from/--to" in out.stderr
    out = run("diagram", "--db", str(sample_db), "--entity", "order.id=NOPE")
    assert out.stderr == "seqtrace: error: no spans carry order.id=NOPE\n"


def test_a_ui_port_in_use_is_one_line(sample_db: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run("ui", "--db", str(sample_db), "--ui-port", str(port))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert f"ui: cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr
    assert "--ui-port" in out.stderr


def test_up_moves_the_sample_so_its_newest_span_ends_now_and_says_when(tmp_path: Path) -> None:
    """`up` loads the sample shop so its newest span ends now and prints the times: the
    newest is an order's carrier webhook two days after the incident, and "the incident
    ends now" (as it said) sent a new user to look at the last hours for it."""
    import time

    from seqtrace.server import _load_demo
    from spanstore.duckdb_store import DuckDBStore

    store = DuckDBStore(tmp_path / "demo.duckdb")
    try:
        before = time.time_ns()
        loaded = _load_demo(store)
        assert loaded is not None and loaded.spans == store.stats().spans == 500
        assert before - 10**9 <= loaded.last_end_unix_nano <= time.time_ns()
        day = 24 * 3600 * 10**9
        assert 2 * day < loaded.last_end_unix_nano - loaded.first_start_unix_nano < 3 * day
        first = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(loaded.first_start_unix_nano / 1e9))
        assert loaded.message() == (
            f"loaded 500 sample spans from sample_traces/, moved so that the newest ends now: "
            f"{first} to "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(loaded.last_end_unix_nano / 1e9))}"
            " (--no-demo to skip)"
        )
    finally:
        store.close()
