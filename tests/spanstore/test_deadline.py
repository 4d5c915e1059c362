"""spanstore.deadline: the shared alarm thread that interrupts reads at their deadline,
and the start of a read request (what its statements must see)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from spanstore.deadline import (
    call_at,
    cancel_call,
    carried,
    query_deadline,
    read_started,
    time_left,
)


def test_a_call_runs_at_its_time_and_a_sooner_one_is_not_kept_waiting() -> None:
    fired: dict[str, float] = {}
    done = threading.Event()
    start = time.monotonic()

    def note(name: str) -> None:
        fired[name] = time.monotonic() - start
        if len(fired) == 2:
            done.set()

    call_at(start + 1.5, lambda: note("late"))
    call_at(start + 0.2, lambda: note("soon"))  # while the thread waits for "late"
    assert done.wait(10)
    assert 0.2 <= fired["soon"] < 1.0
    assert fired["late"] >= 1.5


def test_a_cancelled_call_never_runs() -> None:
    ran = threading.Event()
    number = call_at(time.monotonic() + 0.2, ran.set)
    cancel_call(number)
    witness = threading.Event()
    call_at(time.monotonic() + 0.4, witness.set)  # the thread is past 0.2 s by then
    assert witness.wait(10)
    assert not ran.is_set()


def test_many_threads_share_one_alarm_thread() -> None:
    before = {t.name for t in threading.enumerate()}
    numbers = [call_at(time.monotonic() + 60, lambda: None) for _ in range(200)]
    for number in numbers:
        cancel_call(number)
    started = [t for t in threading.enumerate() if t.name not in before]
    assert len([t for t in threading.enumerate() if t.name == "seqtrace-deadlines"]) == 1
    assert all(t.name == "seqtrace-deadlines" for t in started)


def test_read_started_is_the_outermost_request_start() -> None:
    assert read_started() is None
    with query_deadline(5.0):
        outer = read_started()
        assert outer is not None and outer <= time.monotonic()
        time.sleep(0.01)
        with query_deadline(1.0):
            assert read_started() == outer
        assert read_started() == outer
    assert read_started() is None


def test_a_carried_call_runs_under_the_callers_deadline_and_read_start() -> None:
    """A report reads its listed traces' entities on another thread: that read must stop
    at the request's deadline and see what the request must (its read start)."""

    def seen(_: object) -> tuple[float | None, float | None]:
        return time_left(), read_started()

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(seen, None).result() == (None, None)
        with query_deadline(30.0):
            started = read_started()
            left, seen_start = pool.submit(carried(seen), None).result()
            plain = pool.submit(seen, None).result()
        # The worker's own thread state is back as it was afterwards.
        assert pool.submit(seen, None).result() == (None, None)
    assert left is not None and 25.0 < left <= 30.0
    assert seen_start == started is not None
    assert plain == (None, None)  # without carried: no deadline there
