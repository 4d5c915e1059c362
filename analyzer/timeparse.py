"""Times and durations as users type them: RFC 3339, relative times, window lengths.

Every command, the query API and the SLO spec parse through here, so ``-1h`` or ``30d``
means the same thing everywhere and a typo gets the same message naming the forms that
are accepted. Results are integers in Unix nanoseconds (times) or nanoseconds
(durations): the store's unit, so no float ever rounds a span boundary away.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Final

__all__ = [
    "DURATION_UNITS",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "format_duration",
    "format_unix_nano",
    "parse_duration",
    "parse_time",
]

NS_PER_SECOND: Final = 1_000_000_000
NS_PER_MINUTE: Final = 60 * NS_PER_SECOND
NS_PER_HOUR: Final = 60 * NS_PER_MINUTE
NS_PER_DAY: Final = 24 * NS_PER_HOUR

#: unit -> nanoseconds. ``m`` is minutes (as in Prometheus and Go), never months: a
#: month has no fixed length, so a window of "1 month" would not be reproducible.
DURATION_UNITS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": NS_PER_MINUTE,
    "h": NS_PER_HOUR,
    "d": NS_PER_DAY,
    "w": 7 * NS_PER_DAY,
}

_DURATION_FORMS: Final = (
    "a number and a unit, e.g. 30d, 7d, 1h, 90m, 90s, 250ms, or a sum like 1h30m "
    "(units: ns, us, ms, s, m, h, d, w)"
)
_TIME_FORMS: Final = (
    "an RFC 3339 time (2026-11-25T10:00:00Z, 2026-11-25T10:00:00.5+01:00, 2026-11-25), "
    "'now', a time relative to now (-1h, -30m, -2d, now-90m), "
    "or an integer of Unix nanoseconds"
)

# One term of a duration: digits with an optional fraction, then a unit. Longer unit
# names come first in the alternation so "ms" is not read as "m" followed by "s".
_TERM = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")

_RFC3339 = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [Tt\ ]
        (?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})
        (?:\.(?P<fraction>\d+))?
        (?P<offset>[Zz]|[+-]\d{2}:\d{2})?
    )?
    """,
    re.VERBOSE,
)


def parse_duration(text: str) -> int:
    """A duration such as ``30d``, ``1h``, ``90m``, ``250ms`` or ``1h30m``, in nanoseconds.

    Raises ``ValueError`` naming the accepted forms. Negative durations are refused: a
    window or a look-back is a length; relative *times* take their sign in
    :func:`parse_time`.
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected {_DURATION_FORMS}")
    cleaned = text.strip()
    if not cleaned:
        raise ValueError(f"invalid duration {text!r}: expected {_DURATION_FORMS}")
    if cleaned[0] in "+-":
        raise ValueError(f"invalid duration {text!r}: a duration has no sign; {_DURATION_FORMS}")
    total = 0
    position = 0
    while position < len(cleaned):
        match = _TERM.match(cleaned, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r}: expected {_DURATION_FORMS}")
        number, unit = match.groups()
        scale = DURATION_UNITS[unit]
        if "." in number:
            whole, _, fraction = number.partition(".")
            # Integer arithmetic on the digits: 1.1h must be exactly 3960 s, not a float
            # a nanosecond away from it.
            digits = len(fraction)
            value = int(whole or "0") * scale + int(fraction) * scale // 10**digits
        else:
            value = int(number) * scale
        total += value
        position = match.end()
    return total


def format_duration(ns: int) -> str:
    """The shortest exact spelling of a duration in the units :func:`parse_duration` reads.

    ``format_duration(parse_duration(x))`` parses back to the same value, which lets
    reports print scaled alert windows (``1m10s``) that users can paste into a spec.
    """
    if ns < 0:
        return "-" + format_duration(-ns)
    if ns == 0:
        return "0s"
    parts: list[str] = []
    remaining = ns
    for unit, size in (
        ("d", NS_PER_DAY),
        ("h", NS_PER_HOUR),
        ("m", NS_PER_MINUTE),
        ("s", NS_PER_SECOND),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _parse_rfc3339(text: str, original: str) -> int:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid time {original!r}: expected {_TIME_FORMS}")
    year, month, day = (int(match[name]) for name in ("year", "month", "day"))
    hour = int(match["hour"] or 0)
    minute = int(match["minute"] or 0)
    second = int(match["second"] or 0)
    if match["hour"] is not None and match["offset"] is None:
        # Without an offset the same text names different instants on different
        # machines; an incident timeline must not depend on the responder's laptop.
        raise ValueError(
            f"invalid time {original!r}: add a UTC offset (Z or +01:00), e.g. 2026-11-25T10:00:00Z"
        )
    if not 1 <= month <= 12:
        raise ValueError(f"invalid time {original!r}: month {month} is out of range")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise ValueError(f"invalid time {original!r}: day {day} is out of range")
    # 60 is allowed for a leap second (RFC 3339 section 5.7); Unix time folds it into
    # the next second, as timegm does.
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"invalid time {original!r}: time of day is out of range")
    offset_ns = 0
    offset = match["offset"]
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        off_hours, off_minutes = int(offset[1:3]), int(offset[4:6])
        if off_hours > 23 or off_minutes > 59:
            raise ValueError(f"invalid time {original!r}: UTC offset {offset} is out of range")
        offset_ns = sign * (off_hours * NS_PER_HOUR + off_minutes * NS_PER_MINUTE)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction = match["fraction"] or ""
    # Digits past the ninth are below a nanosecond; truncate rather than round so a
    # bound never moves past a span that starts on it.
    fraction_ns = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * NS_PER_SECOND + fraction_ns - offset_ns


def parse_time(text: str, now_unix_nano: int) -> int:
    """A point in time, in Unix nanoseconds.

    Accepts RFC 3339 (``2026-11-25T10:00:00Z``, offsets, fractions to the nanosecond, a
    bare date meaning midnight UTC), ``now``, relative times (``-1h``, ``-30m``,
    ``now-2d``, ``+5m``) measured from ``now_unix_nano``, and plain integers of Unix
    nanoseconds (what the JSON shapes carry, so a client can send a value back).
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid time {text!r}: expected {_TIME_FORMS}")
    cleaned = text.strip()
    if not cleaned:
        raise ValueError(f"invalid time {text!r}: expected {_TIME_FORMS}")
    lowered = cleaned.lower()
    if lowered == "now":
        return now_unix_nano
    if lowered.startswith("now"):
        lowered = lowered[3:].lstrip()
        if not lowered or lowered[0] not in "+-":
            raise ValueError(f"invalid time {text!r}: expected {_TIME_FORMS}")
    if lowered[0] in "+-":
        sign = -1 if lowered[0] == "-" else 1
        try:
            delta = parse_duration(lowered[1:].strip())
        except ValueError:
            raise ValueError(f"invalid time {text!r}: expected {_TIME_FORMS}") from None
        return now_unix_nano + sign * delta
    if cleaned.isdigit():
        return int(cleaned)
    return _parse_rfc3339(cleaned, text)


def format_unix_nano(unix_nano: int) -> str:
    """RFC 3339 in UTC with millisecond precision, for tables and markdown (not JSON)."""
    seconds, ns = divmod(unix_nano, NS_PER_SECOND)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1_000_000:03d}Z"
