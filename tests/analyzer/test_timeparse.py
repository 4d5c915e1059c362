"""Times and durations as users type them (analyzer.timeparse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.timeparse import (
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    NS_PER_SECOND,
    format_duration,
    format_unix_nano,
    parse_duration,
    parse_time,
)

NOW = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z


def test_spec_example_is_exact() -> None:
    expected = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    assert parse_time("2026-11-25T10:00:00Z", NOW) == expected == NOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T11:00:00+01:00", NOW),
        ("2026-11-25T04:30:00-05:30", NOW),
        ("2026-11-25t10:00:00z", NOW),
        ("2026-11-25 10:00:00Z", NOW),
        ("2026-11-25T10:00:00.5Z", NOW + 500_000_000),
        ("2026-11-25T10:00:00.123456789Z", NOW + 123_456_789),
        # Digits below a nanosecond are cut, never rounded up past the instant.
        ("2026-11-25T10:00:00.9999999999Z", NOW + 999_999_999),
        ("2026-11-25", NOW - 10 * NS_PER_HOUR),
        ("  2026-11-25T10:00:00Z  ", NOW),
    ],
)
def test_rfc3339_forms(text: str, expected: int) -> None:
    assert parse_time(text, 0) == expected


def test_leap_second_folds_into_next_second() -> None:
    assert parse_time("2026-12-31T23:59:60Z", 0) == parse_time("2027-01-01T00:00:00Z", 0)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("now", 0),
        ("NOW", 0),
        ("-1h", -NS_PER_HOUR),
        ("-30m", -30 * NS_PER_MINUTE),
        ("-2d", -2 * NS_PER_DAY),
        ("-90s", -90 * NS_PER_SECOND),
        ("+5m", 5 * NS_PER_MINUTE),
        ("now-1h30m", -90 * NS_PER_MINUTE),
        ("now - 15m", -15 * NS_PER_MINUTE),
    ],
)
def test_relative_times(text: str, delta: int) -> None:
    assert parse_time(text, NOW) == NOW + delta


def test_integer_is_unix_nanoseconds() -> None:
    # What the JSON shapes carry, so an API client can send from_unix_nano back.
    assert parse_time(str(NOW), 0) == NOW


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("yesterday", "RFC 3339"),
        ("", "RFC 3339"),
        ("-1x", "relative to now"),
        ("now+", "relative to now"),
        ("nowish", "relative to now"),
        ("2026-11-25T10:00:00", "UTC offset"),
        ("2026-13-01", "month 13"),
        ("2026-02-30", "day 30"),
        ("2026-11-25T24:00:00Z", "time of day"),
        ("2026-11-25T10:00:00+25:00", "offset"),
        ("25/11/2026", "RFC 3339"),
    ],
)
def test_bad_times_say_what_is_accepted(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid time") as info:
        parse_time(text, NOW)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("30d", 30 * NS_PER_DAY),
        ("7d", 7 * NS_PER_DAY),
        ("1h", NS_PER_HOUR),
        ("90m", 90 * NS_PER_MINUTE),
        ("5m", 5 * NS_PER_MINUTE),
        ("90s", 90 * NS_PER_SECOND),
        ("250ms", 250_000_000),
        ("1h30m", 90 * NS_PER_MINUTE),
        ("2w", 14 * NS_PER_DAY),
        ("1.5h", 90 * NS_PER_MINUTE),
        ("1.1h", 3960 * NS_PER_SECOND),  # exact, no float error
        ("10us", 10_000),
        ("7ns", 7),
        (" 1h ", NS_PER_HOUR),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["30", "30x", "", "h", "1h 30m", "1 h", "30 days", "1mo", "1e3s"])
def test_bad_durations_list_units(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert "units: ns, us, ms, s, m, h, d, w" in str(info.value)


def test_negative_duration_is_explained() -> None:
    with pytest.raises(ValueError, match="no sign"):
        parse_duration("-1h")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (30 * NS_PER_DAY, "30d"),
        (NS_PER_HOUR, "1h"),
        (70 * NS_PER_SECOND, "1m10s"),
        (250_000_000, "250ms"),
        (0, "0s"),
        (NS_PER_DAY + NS_PER_MINUTE, "1d1m"),
    ],
)
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@given(st.integers(min_value=1, max_value=400 * NS_PER_DAY))
def test_format_duration_round_trips(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_rfc3339_agrees_with_datetime(moment: datetime, offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat()  # 2026-11-25T11:00:00.123456+01:00
    expected = (
        int(moment.replace(microsecond=0).timestamp()) * NS_PER_SECOND + moment.microsecond * 1000
    )
    assert parse_time(text, 0) == expected


def test_format_unix_nano() -> None:
    assert format_unix_nano(NOW + 1_500_000) == "2026-11-25T10:00:00.001Z"
