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
    # loading the same files again stores nothing twice
    run("load", "--db", str(db), *map(str, sample_files()))
    assert json.loads(run("stats", "--db", str(db), "--json").stdout)["spans"] == 500
    human = run("stats", "--db", str(db))
    assert human.returncode == 0 and "spans     500" in human.stdout


def test_load_rejects_a_file_that_is_not_traces(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    out = run("load", "--db", str(tmp_path / "x.duckdb"), str(bad))
    assert out.returncode == 2 and "notes.json" in out.stderr
