"""The UI's "Replay this" command: every word shell-quoted (entity values are attacker
text), the UI's own source, never its token."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from ui.data import SourceConfig
from ui.replay import replay_command, runbook_markdown


def test_the_command_names_the_source_selection_and_endpoint() -> None:
    api = SourceConfig("api", "http://127.0.0.1:4319", token="s3cret")
    command = replay_command(["--entity", "order.id=ORD-1002"], "http://stage:4317", api)
    assert command == (
        "seqtrace replay --api http://127.0.0.1:4319 --entity order.id=ORD-1002 "
        "--endpoint http://stage:4317"
    )
    assert "s3cret" not in command
    db = SourceConfig("db", "/data/incident copy.duckdb")
    http = replay_command(["--from", "2026-11-20T09:00:00Z"], "http://x:4318", db, "http")
    assert shlex.split(http) == [
        "seqtrace", "replay", "--db", "/data/incident copy.duckdb", "--from",
        "2026-11-20T09:00:00Z", "--endpoint", "http://x:4318", "--protocol", "http",
    ]  # fmt: skip
    store = SourceConfig("store", "clickhouse://ops:pw@ch:8123/otel")
    assert "pw" not in replay_command(["--trace", "ab"], "http://x", store)


def test_a_hostile_entity_value_stays_one_argument() -> None:
    value = 'ORD-1\'; rm -rf ~; echo $(id) `x` "y" \n z'
    command = replay_command(
        ["--entity", f"order.id={value}"], "http://x:4317", SourceConfig("db", "/d")
    )
    assert shlex.split(command)[5] == f"order.id={value}"


@given(st.text(min_size=1))
def test_any_value_round_trips_through_the_shell(value: str) -> None:
    words = ["--entity", f"k={value}"]
    command = replay_command(words, "http://x:4317", SourceConfig("api", "http://a:4319"))
    assert shlex.split(command) == [
        "seqtrace",
        "replay",
        "--api",
        "http://a:4319",
        *words,
        "--endpoint",
        "http://x:4317",
    ]


def test_runbooks_are_links_only_when_web_urls_and_always_escaped() -> None:
    assert runbook_markdown("https://wiki.example.com/a_b") == (
        "[https://wiki.example.com/a\\_b](https://wiki.example.com/a_b)"
    )
    assert runbook_markdown("ops/<b>x</b>.md") == "ops/\\<b\\>x\\</b\\>\\.md"
    assert runbook_markdown("javascript:alert(1)") == "javascript\\:alert\\(1\\)"
    assert "](" not in runbook_markdown("javascript:alert(1)")
