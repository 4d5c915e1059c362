"""Live mode (issue 20): a slow answer skips a refresh, it does not queue one.

Streamlit runs one script run per page at a time, and a ``run_every`` timer that fires
during a run is kept and run the moment that run ends (``ScriptRequests`` coalesces the
fragment reruns into one waiting request). So behind a slow read the page would read
again at once, back to back, for as long as the store is slow. ``ui.live`` makes such a
run (a timer run that starts within half an interval of the previous run's end) draw
the previous answers instead of reading. These tests run a live fragment under
streamlit's AppTest; the only thing simulated is *which* runs the browser's timer
started (``ui.live._timer_run``): the queued run is then started at once, as Streamlit
does.
"""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from ui import live

EVERY_S = 1.0
SLOW_S = 0.8


def live_page(every: float, slow: float) -> None:
    """A page with one live fragment whose read takes ``slow`` seconds."""
    import time

    import streamlit as st

    from ui.live import live_run, recorded

    def slow_read() -> int:
        time.sleep(slow)
        done: int = st.session_state.get("reads_done", 0) + 1
        st.session_state["reads_done"] = done
        if st.session_state.get("fail_next"):
            raise RuntimeError(f"store unavailable (read {done})")
        return done

    @st.fragment(run_every=every)
    def body() -> None:
        with live_run("probe", every):
            try:
                st.text(f"answer of read {recorded(slow_read)}")
            except RuntimeError as exc:
                st.text(f"error: {exc}")

    body()


def start() -> AppTest:
    at = AppTest.from_function(live_page, args=(EVERY_S, SLOW_S), default_timeout=30)
    at.run()  # the page's first run (not the timer's): reads
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["reads_done"] == 1
    return at


def shown(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.text]


def test_a_timer_run_queued_behind_a_slow_read_reads_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = start()
    monkeypatch.setattr(live, "_timer_run", lambda: True)
    started = time.monotonic()
    at.run()  # the refresh the timer asked for while the slow read ran
    assert at.session_state["reads_done"] == 1, "the queued refresh read again"
    assert time.monotonic() - started < SLOW_S, "the queued refresh waited for a read"
    assert shown(at) == ["answer of read 1"]  # the previous answer, drawn again
    assert at.session_state["_live_probe"]["reads"] == 1


def test_the_next_timer_run_reads_again(monkeypatch: pytest.MonkeyPatch) -> None:
    at = start()
    monkeypatch.setattr(live, "_timer_run", lambda: True)
    at.run()  # queued: skipped
    time.sleep(EVERY_S / 2 + 0.1)  # the timer's next run, half an interval later or more
    at.run()
    assert at.session_state["reads_done"] == 2
    assert shown(at) == ["answer of read 2"]
    at.run()  # and the one queued behind it is skipped again
    assert at.session_state["reads_done"] == 2


def test_a_whole_page_run_always_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # A person changed something (not the timer): never answered from the last run.
    at = start()
    at.run()
    assert at.session_state["reads_done"] == 2


def test_an_error_is_replayed_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    at = AppTest.from_function(live_page, args=(EVERY_S, SLOW_S), default_timeout=30)
    at.session_state["fail_next"] = True
    at.run()
    assert shown(at) == ["error: store unavailable (read 1)"]
    monkeypatch.setattr(live, "_timer_run", lambda: True)
    at.run()
    assert at.session_state["reads_done"] == 1
    assert shown(at) == ["error: store unavailable (read 1)"]
