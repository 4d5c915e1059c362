"""analyzer.critical_path: Jaeger's critical-path walk."""

from __future__ import annotations

import itertools
from typing import Any

from analyzer.critical_path import Section, critical_path, pick_root


def s(span_id: str, parent: str | None, start: int, end: int) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "start_unix_nano": start,
        "end_unix_nano": end,
    }


def path(spans: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(x.span_id, x.start_unix_nano, x.end_unix_nano) for x in critical_path(spans)]


def test_empty_trace() -> None:
    assert critical_path([]) == []
    assert pick_root([]) is None


def test_a_single_span_is_its_own_critical_path() -> None:
    assert path([s("a", None, 0, 10)]) == [("a", 0, 10)]


def test_sequential_children_all_count() -> None:
    spans = [s("root", None, 0, 100), s("a", "root", 10, 40), s("b", "root", 50, 90)]
    assert path(spans) == [
        ("root", 0, 10),
        ("a", 10, 40),
        ("root", 40, 50),
        ("b", 50, 90),
        ("root", 90, 100),
    ]


def test_of_parallel_children_the_one_that_finishes_last_wins() -> None:
    # a and b overlap; b ends later, so a is off the path where they overlap.
    spans = [s("root", None, 0, 100), s("a", "root", 10, 60), s("b", "root", 20, 80)]
    assert path(spans) == [("root", 0, 20), ("b", 20, 80), ("root", 80, 100)]


def test_only_children_done_before_the_next_one_started_join_the_path() -> None:
    spans = [
        s("root", None, 0, 100),
        s("early", "root", 2, 8),  # done before b starts: on the path
        s("a", "root", 5, 30),  # still running when b starts: off the path (as in Jaeger)
        s("b", "root", 20, 90),  # last to finish
        s("c", "root", 40, 50),  # inside b's time: off the path
    ]
    assert path(spans) == [
        ("root", 0, 2),
        ("early", 2, 8),
        ("root", 8, 20),
        ("b", 20, 90),
        ("root", 90, 100),
    ]


def test_nested_children() -> None:
    spans = [
        s("root", None, 0, 100),
        s("a", "root", 10, 90),
        s("a1", "a", 20, 50),
        s("a2", "a", 60, 80),
    ]
    assert path(spans) == [
        ("root", 0, 10),
        ("a", 10, 20),
        ("a1", 20, 50),
        ("a", 50, 60),
        ("a2", 60, 80),
        ("a", 80, 90),
        ("root", 90, 100),
    ]


def test_children_are_clipped_to_their_parent() -> None:
    # clock skew: the child "ends" after its parent; one starts after the parent ended
    spans = [
        s("root", None, 0, 100),
        s("late", "root", 50, 130),
        s("gone", "root", 120, 140),
    ]
    assert path(spans) == [("root", 0, 50), ("late", 50, 100)]


def test_zero_length_spans_terminate() -> None:
    spans = [s("root", None, 0, 10), s("z", "root", 5, 5), s("z2", "z", 5, 5)]
    assert path(spans) == [("root", 0, 10)]


def test_sections_are_contiguous_and_cover_the_root() -> None:
    import random

    rng = random.Random(7)
    for _ in range(200):
        spans = [s("r", None, 0, 1000)]
        for i in range(rng.randint(1, 30)):
            parent = rng.choice(spans)["span_id"]
            start = rng.randint(-50, 1050)
            spans.append(s(f"x{i}", parent, start, start + rng.randint(0, 400)))
        sections = critical_path(spans)
        assert sections[0].start_unix_nano == 0
        assert sections[-1].end_unix_nano == 1000
        for left, right in itertools.pairwise(sections):
            assert left.end_unix_nano == right.start_unix_nano
        assert all(x.duration_ns > 0 for x in sections)


def test_the_root_is_the_earliest_parentless_span() -> None:
    spans = [s("orphan", "missing", 5, 50), s("root", None, 0, 100), s("child", "root", 1, 2)]
    assert pick_root(spans) == "orphan" or pick_root(spans) == "root"
    assert pick_root(spans) == "root"  # starts first
    assert critical_path(spans, "orphan") == [Section("orphan", 5, 50)]


def test_cycles_in_broken_data_do_not_hang() -> None:
    spans = [s("a", None, 0, 10), s("b", "c", 1, 5), s("c", "b", 2, 4)]
    assert path(spans) == [("a", 0, 10)]
