"""Live views that never pile up reads (issue 20).

A live fragment (``st.fragment(run_every=5)``) is rerun by a timer in the browser. While
a run waits for a slow answer (the store under a flood), the timer's next request waits
in Streamlit's queue and runs the moment the slow run ends: back to back, the page keeps
one read in flight all the time. Here a slow answer skips a refresh instead: a timer run
that starts less than half an interval after the previous run of the fragment ended
(it was queued behind that run) reads nothing and draws the previous run's answers
again, so there is at most one read in flight per page and a pause after a slow one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

__all__ = ["live_run", "recorded"]

T = TypeVar("T")


@dataclass
class _Raised:
    error: BaseException


@dataclass
class _Run:
    replay: bool
    answers: list[Any] = field(default_factory=list)
    at: int = 0


_current: ContextVar[_Run | None] = ContextVar("seqtrace_live_run", default=None)


def _timer_run() -> bool:
    """Whether this run reruns fragments only (the live timer), not the whole page."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


@contextlib.contextmanager
def live_run(key: str, every: float) -> Iterator[bool]:
    """Around a live fragment's body; yields True when this run replays the last answers."""
    state: dict[str, Any] = st.session_state.setdefault(f"_live_{key}", {})
    ended = state.get("ended")
    replay = (
        _timer_run()
        and ended is not None
        and "answers" in state
        and time.monotonic() - ended < every / 2
    )
    run = _Run(replay, list(state["answers"]) if replay else [])
    token = _current.set(run)
    try:
        yield replay
    finally:
        _current.reset(token)
        if not replay:
            state["answers"] = run.answers
            state["ended"] = time.monotonic()
            state["reads"] = state.get("reads", 0) + 1


def recorded(call: Callable[[], T]) -> T:
    """``call()``, or inside a replaying live run the answer it gave last time."""
    run = _current.get()
    if run is None:
        return call()
    if run.replay and run.at < len(run.answers):
        answer = run.answers[run.at]
        run.at += 1
        if isinstance(answer, _Raised):
            raise answer.error
        return answer  # type: ignore[no-any-return]
    try:
        value = call()
    except Exception as exc:
        run.answers.append(_Raised(exc))
        raise
    run.answers.append(value)
    return value
