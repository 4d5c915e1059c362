"""The failure report read from a store (analyzer.failures_store) equals the analysis of
the range's whole span frame (analyzer.failures.failure_report over ``span_frame``), which
it replaces in LocalSource: on random traces written to a real DuckDB store (in two
writes, with the rows kept from the first report reused in the second where a trace did
not change), on the shop incident and the public captures; and when more traces fail
than it lists, it lists the failed ones first, then the newest, with exact counts and
``omitted_traces``; a kept row is used only while its trace's spans are the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.failures import failing_trace_ids, failure_report, render_failures_table
from analyzer.failures_store import (
    LISTED_TRACES,
    KeptRows,
    listed_trace_ids,
    store_failure_report,
)
from analyzer.source import LocalSource
from collector.files import read_trace_file
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import HOUR_NS, Span, SpanEvent
from spanstore.reader import RowIdRanges
from spanstore.rows import request_from_spans

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "sample_traces").glob("*.json"))
REAL = sorted((REPO / "tests" / "data" / "real_traces").glob("*.json"))
MS = 1_000_000
T0 = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z
#: Each hypothesis example's spans live in a window of their own, far from the others'
#: (whole traces are searched an hour around a range; spans reach 1.5 h beyond it).
WINDOW = 6 * HOUR_NS
_examples = itertools.count(1)


def old_report(
    store: DuckDBStore, start: int, end: int, service: str | None = None
) -> dict[str, Any]:
    """The report as LocalSource made it before: every span of the range in one frame
    (whole traces: their spans within an hour of the range), with those spans' entities."""
    frame = store.span_frame(start, end, service)
    ids = failing_trace_ids(frame, start, end, service)
    entities = store.trace_entities(ids, start - HOUR_NS, end + HOUR_NS)
    return failure_report(frame, entities, start, end, service)


# --------------------------------------------------------------------------- random stores

STATUS = ("UNSET", "OK", "ERROR")
#: What the error rule looks at beyond the status: cancellations in the type or message.
MESSAGES = ("", "boom", "context canceled", "payment declined: order cancelled")
EXCEPTIONS = (None, "ValueError", "asyncio.exceptions.CancelledError")


@st.composite
def traces(draw: st.DrawFn, example: int, window: int) -> list[Span]:
    """A few traces around a one-hour range starting at ``window``: roots before, inside
    and after it, orphans, all-zero and missing parents, rootless traces, equal start
    times, HTTP codes, cancellations, and some entity attributes."""
    spans: list[Span] = []
    for t in range(draw(st.integers(1, 6))):
        trace_id = f"{example:08x}{t:04x}{draw(st.integers(0, 2**80 - 1)):020x}"
        base = window + draw(st.sampled_from([-HOUR_NS // 2, 0, HOUR_NS // 3, HOUR_NS - MS]))
        ids: list[str] = []
        for n in range(draw(st.integers(1, 8))):
            span_id = f"{draw(st.integers(0, 255)):02x}{t:02x}{n:012x}"
            if n == 0:
                parent = draw(st.sampled_from([None, None, "0000000000000000", "feedfacefeedface"]))
            else:
                parent = draw(st.sampled_from([*ids, "00000000deadbeef", None]))
            start = base + draw(st.sampled_from([0, 0, 3 * MS, 7 * MS, HOUR_NS // 2]))
            status = draw(st.sampled_from(STATUS))
            attributes: dict[str, Any] = {}
            http = draw(st.sampled_from([None, None, 200, 404, 499, 503]))
            if http is not None:
                attributes["http.response.status_code"] = http
            if draw(st.booleans()):
                attributes["order.id"] = f"ORD-{draw(st.integers(1, 3))}"
            events: tuple[SpanEvent, ...] = ()
            exception = draw(st.sampled_from(EXCEPTIONS))
            if exception is not None:
                events = (
                    SpanEvent(
                        "exception",
                        start,
                        {"exception.type": exception, "exception.message": "it broke"},
                    ),
                )
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name=draw(st.sampled_from(["GET /a", "charge"])),
                    kind=draw(st.sampled_from(["SERVER", "CLIENT", "INTERNAL"])),
                    start_unix_nano=start,
                    end_unix_nano=start + draw(st.integers(0, 20)) * MS,
                    service_name=draw(st.sampled_from(["front", "pay", "db"])),
                    status_code=status,
                    status_message=draw(st.sampled_from(MESSAGES)) if status == "ERROR" else "",
                    attributes=attributes,
                    events=events,
                )
            )
            ids.append(span_id)
    return spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    duck = DuckDBStore(tmp_path_factory.mktemp("failures") / "random.duckdb")
    yield duck
    duck.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), service=st.sampled_from([None, "front", "pay", "db"]))
def test_store_report_equals_the_whole_frame_analysis(
    store: DuckDBStore, data: st.DataObject, service: str | None
) -> None:
    example = next(_examples)
    window = T0 + example * WINDOW
    spans = data.draw(traces(example, window))
    start, end = window, window + HOUR_NS
    # Two writes: the second report keeps the first one's rows of unchanged traces.
    kept = KeptRows()
    split = data.draw(st.integers(0, len(spans) - 1))
    if split:
        store.write(request_from_spans(spans[:split]))
        first = store_failure_report(store, start, end, service, kept=kept)
        assert first == old_report(store, start, end, service)
    store.write(request_from_spans(spans[split:]))
    expected = old_report(store, start, end, service)
    assert store_failure_report(store, start, end, service, kept=kept) == expected
    assert store_failure_report(store, start, end, service, kept=kept) == expected
    assert store_failure_report(store, start, end, service) == expected

    # Cut at `limit`: the same counts, the listed traces are the old report's rows of the
    # failed traces first, then the newest, and the others are counted as omitted.
    limit = data.draw(st.integers(0, 3))
    cut = store_failure_report(store, start, end, service, limit=limit, kept=kept)
    summary = {k: v for k, v in cut["summary"].items() if k != "patterns"}
    assert summary == {k: v for k, v in expected["summary"].items() if k != "patterns"}
    ranked = sorted(
        expected["traces"],
        key=lambda t: (t["outcome"] != "failed", -t["start_unix_nano"], t["trace_id"]),
    )
    listed = sorted(ranked[:limit], key=lambda t: (t["start_unix_nano"], t["trace_id"]))
    assert cut["traces"] == listed
    assert cut["omitted_traces"] == len(expected["traces"]) - len(listed)
    if cut["omitted_traces"] == 0:
        assert cut == expected


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """The shop incident and the public captures (HotROD, the OpenTelemetry demo, ...)."""
    duck = DuckDBStore(tmp_path_factory.mktemp("captures") / "captures.duckdb")
    for file in [*SAMPLES, *REAL]:
        for request in read_trace_file(file):
            duck.write(request)
    yield duck
    duck.close()


def test_captures_report_equals_the_whole_frame_analysis(captures: DuckDBStore) -> None:
    stats = captures.stats()
    assert stats.first_unix_nano is not None and stats.last_unix_nano is not None
    first, last = stats.first_unix_nano, stats.last_unix_nano + 1
    # Every hour that holds spans (a range cuts traces at both ends), each service over all.
    hours = captures.throughput(first, last, HOUR_NS).filter(pl.col("spans") > 0)
    ranges = [(h, h + HOUR_NS, None) for h in hours["bucket_unix_nano"].to_list()]
    ranges += [(0, 1 << 62, s) for s in [None, *stats.services]]
    ranges += [(first, last, None), (last - 24 * HOUR_NS, last, "frontend")]
    compared = 0
    for start, end, service in ranges:
        expected = old_report(captures, start, end, service)
        got = store_failure_report(captures, start, end, service)
        assert got == expected, (start, end, service)
        compared += len(expected["traces"])
    assert compared > 0, "the captures hold failing traces"
    everything = LocalSource(captures).failures(0, 1 << 62)
    assert everything == old_report(captures, 0, 1 << 62)
    assert everything["summary"]["failed"] >= 1 and everything["omitted_traces"] == 0


# --------------------------------------------------------------------------- the cut


def test_a_busy_range_lists_the_failed_then_the_newest(tmp_path: Path) -> None:
    """LISTED_TRACES + 5 failing traces (3 of them failed at the root, the oldest ones)
    and 10 fine ones: the report lists LISTED_TRACES, the 3 failed first, counts every
    trace, and says 5 are not listed, in the JSON and on the terminal."""
    t0 = T0
    spans: list[Span] = []
    for i in range(LISTED_TRACES + 15):
        trace_id = f"{i + 1:032x}"
        start = t0 + i * MS
        failed_root = i < 3
        fails = i < LISTED_TRACES + 5
        spans.append(
            Span(trace_id, f"{1:016x}", None, "GET /cart", "SERVER", start, start + 5 * MS,
                 "front", "ERROR" if failed_root else "UNSET")
        )  # fmt: skip
        spans.append(
            Span(trace_id, f"{2:016x}", f"{1:016x}", "charge", "CLIENT", start + MS,
                 start + 2 * MS, "pay", "ERROR" if fails else "OK",
                 attributes={"order.id": f"ORD-{i}"})
        )  # fmt: skip
    with DuckDBStore(tmp_path / "busy.duckdb") as store:
        store.write(request_from_spans(spans))
        report = LocalSource(store).failures(t0, t0 + HOUR_NS)
        expected = old_report(store, t0, t0 + HOUR_NS)
    assert report["summary"] == {
        "traces": LISTED_TRACES + 15,
        "ok": 10,
        "partial": LISTED_TRACES + 2,
        "failed": 3,
        "patterns": {"retried": 0, "degraded": LISTED_TRACES - 3, "failed_branch": 0, "failed": 3},
    }
    assert report["omitted_traces"] == 5
    listed = report["traces"]
    assert len(listed) == LISTED_TRACES
    # The failed (oldest) ones, then the newest partial ones: the 5 oldest partial are cut.
    assert [t["trace_id"] for t in listed[:4]] == [f"{i + 1:032x}" for i in (0, 1, 2, 8)]
    assert listed[-1]["trace_id"] == f"{LISTED_TRACES + 5:032x}"
    assert {t["trace_id"] for t in listed} <= {t["trace_id"] for t in expected["traces"]}
    old_rows = {t["trace_id"]: t for t in expected["traces"]}
    assert all(t == old_rows[t["trace_id"]] for t in listed)
    assert listed[0]["entities"] == {"order.id": ["ORD-0"]}
    assert expected["summary"]["patterns"]["degraded"] == LISTED_TRACES + 2
    text = render_failures_table(report)
    assert "5 more failing traces not listed" in text


# --------------------------------------------------------------------------- kept rows


class CountingReader:
    """A store whose traces_frame calls are recorded (which traces a report read)."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.read: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def traces_frame(
        self, trace_ids: list[str], start: int, end: int, rowids: RowIdRanges | None = None
    ) -> pl.DataFrame:
        self.read.append(sorted(trace_ids))
        return self.store.traces_frame(trace_ids, start, end, rowids)


def _failing_trace(n: int, start: int, *, order: str) -> list[Span]:
    trace_id = f"{n:032x}"
    return [
        Span(trace_id, f"{1:016x}", None, "GET /cart", "SERVER", start, start + 9 * MS,
             "front", "UNSET"),
        Span(trace_id, f"{2:016x}", f"{1:016x}", "charge", "CLIENT", start + MS,
             start + 2 * MS, "pay", "ERROR", "card declined", attributes={"order.id": order}),
    ]  # fmt: skip


def test_kept_rows_are_reused_only_while_their_trace_is_unchanged(tmp_path: Path) -> None:
    """Three failing traces: a second report reads no trace; after a span joins one trace
    (a retry that succeeded) or one trace's only change is a span beyond the range, the
    next report reads that trace alone, and every report equals the whole-frame analysis
    (the changed trace's pattern turns from degraded to retried)."""
    start, end = T0, T0 + HOUR_NS
    with DuckDBStore(tmp_path / "kept.duckdb") as store:
        reader = CountingReader(store)
        kept = KeptRows()
        for n in (1, 2, 3):
            store.write(request_from_spans(_failing_trace(n, T0 + n * MS, order=f"ORD-{n}")))

        def report() -> dict[str, Any]:
            got = store_failure_report(reader, start, end, kept=kept)  # type: ignore[arg-type]
            assert got == old_report(store, start, end)
            return got

        first = report()
        assert reader.read == [[f"{n:032x}" for n in (1, 2, 3)]]
        assert {t["pattern"] for t in first["traces"]} == {"degraded"}
        assert report() == first and len(reader.read) == 1  # nothing changed: nothing read

        retry = Span(f"{2:032x}", f"{3:016x}", f"{1:016x}", "charge", "CLIENT",
                     T0 + 2 * MS + 3 * MS, T0 + 2 * MS + 4 * MS, "pay", "OK",
                     attributes={"order.id": "ORD-2b"})  # fmt: skip
        store.write(request_from_spans([retry]))
        second = report()
        assert reader.read[1:] == [[f"{2:032x}"]]
        row = next(t for t in second["traces"] if t["trace_id"] == f"{2:032x}")
        assert row["pattern"] == "retried" and row["entities"] == {"order.id": ["ORD-2", "ORD-2b"]}

        # Within an hour of the range a span belongs to the trace's row (its entities too);
        # beyond, it does not.
        late = Span(f"{3:032x}", f"{4:016x}", f"{1:016x}", "audit", "INTERNAL",
                    end + HOUR_NS + MS, end + HOUR_NS + 2 * MS, "front", "UNSET",
                    attributes={"order.id": "ORD-late"})  # fmt: skip
        store.write(request_from_spans([late]))
        assert report() == second and len(reader.read) == 2
        near = Span(f"{3:032x}", f"{5:016x}", f"{1:016x}", "audit", "INTERNAL",
                    end + MS, end + 2 * MS, "front", "UNSET")  # fmt: skip
        store.write(request_from_spans([near]))
        third = report()
        assert reader.read[2:] == [[f"{3:032x}"]]
        row = next(t for t in third["traces"] if t["trace_id"] == f"{3:032x}")
        assert row["spans"] == 3 and row["entities"] == {"order.id": ["ORD-3"]}

        # A retention step marks every hour changed: rows may have lost entity rows since
        # (retention deletes spans and entity rows in separate steps), so all are read.
        assert report() == third and len(reader.read) == 3
        store._changes.mark_all()
        assert report() == third and reader.read[3:] == [[f"{n:032x}" for n in (1, 2, 3)]]


def test_a_reader_that_cannot_tell_deletions_keeps_nothing(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "other.duckdb") as store:
        store.write(request_from_spans(_failing_trace(1, T0 + MS, order="ORD-1")))
        reader = CountingReader(store)
        reader.data_versions = lambda ranges: None  # type: ignore[method-assign]
        kept = KeptRows()
        for _ in range(2):
            store_failure_report(reader, T0, T0 + HOUR_NS, kept=kept)  # type: ignore[arg-type]
        assert reader.read == [[f"{1:032x}"], [f"{1:032x}"]] and len(kept) == 0


def test_kept_rows_are_bounded_and_copies() -> None:
    """KeptRows holds at most its capacity (the least recently used go first), and what
    a caller gets is its own: changing a returned row does not change the kept one."""
    kept = KeptRows(capacity=2)

    def row(n: int) -> dict[str, Any]:
        return {"trace_id": f"t{n}", "root_cause": {"service": "a"}, "entities": {"k": ["v"]},
                "error_services": ["a"], "pattern": "failed"}  # fmt: skip

    prints = {f"t{n}": (n, 0, 0, 0) for n in (1, 2, 3)}
    kept.keep([row(1), row(2)], prints)
    assert set(kept.take({"t1": (1, 0, 0, 0)})) == {"t1"}  # t1 is now the newest used
    kept.keep([row(3)], prints)
    assert len(kept) == 2 and not kept.take({"t2": (2, 0, 0, 0)})
    got = kept.take({"t1": (1, 0, 0, 0), "t3": (3, 0, 0, 0), "t9": (9, 0, 0, 0)})
    assert set(got) == {"t1", "t3"}
    assert not kept.take({"t1": (1, 0, 0, 1)})  # another fingerprint: not this row
    got["t1"]["entities"]["k"].append("changed")
    got["t1"]["root_cause"]["service"] = "b"
    again = kept.take({"t1": (1, 0, 0, 0)})["t1"]
    assert again["entities"] == {"k": ["v"]} and again["root_cause"] == {"service": "a"}


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.text("abc", min_size=1, max_size=3), st.booleans(), st.integers(0, 5)),
        unique_by=lambda row: row[0],
        max_size=30,
    ),
    limit=st.integers(-1, 35),
)
def test_the_listed_traces_are_the_first_of_the_whole_order(
    rows: list[tuple[str, bool, int]], limit: int
) -> None:
    """listed_trace_ids picks the newest with top_k: the same ids, in the same order, as
    sorting every failing trace (failed first, newest root start, then the id) and taking
    the first ``limit``; ties of root start included."""
    failing = pl.DataFrame(
        rows,
        schema={"trace_id": pl.String, "root_error": pl.Boolean, "root_start": pl.Int64},
        orient="row",
    )
    whole_order = failing.sort(
        ["root_error", "root_start", "trace_id"], descending=[True, True, False]
    )
    assert listed_trace_ids(failing, limit) == whole_order.head(max(0, limit))["trace_id"].to_list()
