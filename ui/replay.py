"""The "Replay this" expander: the `seqtrace replay` command line for what the page shows,
to copy into a terminal (docs/ui.md). The UI itself never sends traffic anywhere.

Entity values, trace ids and paths are attacker-controlled text: every word of the
command goes through :func:`shlex.quote`, so pasting it runs `seqtrace replay` with
exactly those arguments and nothing else.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import streamlit as st

from analyzer.slo import is_web_link, markdown_runbook
from ui import common
from ui.data import SourceConfig, source_config

__all__ = ["replay_command", "replay_expander", "runbook_markdown"]

DEFAULT_ENDPOINT = "http://localhost:4317"


def _source_words(config: SourceConfig) -> list[str]:
    """Where `seqtrace replay` reads: the UI's own source (never its token: the command
    reads SEQTRACE_READ_TOKEN from the environment, as every analysis command does)."""
    if config.kind == "api":
        return ["--api", config.target]
    if config.kind == "store":
        from ui.data import _without_password

        return ["--store", _without_password(config.target)]
    if config.kind == "db":
        return ["--db", config.target]
    return []


def replay_command(
    selection: Sequence[str], endpoint: str, config: SourceConfig, protocol: str = "grpc"
) -> str:
    """``seqtrace replay SOURCE SELECTION --endpoint URL``, each word shell-quoted."""
    words = ["seqtrace", "replay", *_source_words(config), *selection, "--endpoint", endpoint]
    if protocol != "grpc":
        words += ["--protocol", protocol]
    return " ".join(shlex.quote(word) for word in words)


def replay_expander(selection: Sequence[str], what: str, key: str) -> None:
    """An expander with the command that replays ``selection`` (``--entity K=V``, ``--from
    T --to T`` ...) into an endpoint typed here."""
    with st.expander("Replay this"):
        st.caption(
            common.md(
                f"Re-send {what} to an OTLP endpoint (a staging seqtrace, your collector) as "
                "if it were happening now: fresh trace and span ids, times shifted so the "
                "newest span ends now. Copy the command into a terminal; this page sends nothing."
            )
        )
        left, right = st.columns([3, 1])
        endpoint = left.text_input("Endpoint", DEFAULT_ENDPOINT, key=f"{key}_endpoint")
        protocol = right.selectbox("Protocol", ("grpc", "http"), key=f"{key}_protocol")
        command = replay_command(
            selection, endpoint.strip() or DEFAULT_ENDPOINT, source_config(), str(protocol)
        )
        st.code(command, language="bash", wrap_lines=True)
        st.caption("Add --speed 1 to replay in real time, --keep-ids to keep the ids.")


def runbook_markdown(runbook: str) -> str:
    """A runbook for a markdown element: a link when it is an http(s) URL, else the path as
    escaped text."""
    return markdown_runbook(runbook) if is_web_link(runbook) else common.md(runbook)
