"""Text helpers shared by the builder and the renderers: one-line labels, durations, ids.

Span names and attributes are attacker-controlled, so the builder stores labels that are
already one printable line (:func:`analyzer.escaping.one_line`) and every renderer still
escapes them for its own format with :mod:`analyzer.escaping`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from analyzer.escaping import ELLIPSIS, one_line, safe_aliases, shorten

__all__ = [
    "ATTRIBUTE_LIMIT",
    "ELLIPSIS",
    "ERROR_LIMIT",
    "LABEL_LIMIT",
    "TIMES",
    "format_duration",
    "format_offset",
    "format_span_of_time",
    "format_utc",
    "label_text",
    "one_line",
    "safe_aliases",
    "shorten",
]
#: The multiplication sign before the count of a collapsed run of calls.
TIMES = "\u00d7"
LABEL_LIMIT = 60
ERROR_LIMIT = 120
ATTRIBUTE_LIMIT = 120


def label_text(value: object, limit: int = LABEL_LIMIT) -> str:
    return shorten(one_line(value), limit)


def format_duration(ns: int) -> str:
    """A short human duration: ``850 µs``, ``12.3 ms``, ``1.20 s``, ``3 min 5 s``."""
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    if ns < 60_000_000_000:
        return f"{ns / 1_000_000_000:.2f} s"
    return format_span_of_time(ns)


_UNITS = (("day", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def format_span_of_time(ns: int) -> str:
    """The two most significant units, rounded: ``2 days 4 h``, ``1 h``, ``5 min 12 s``."""
    seconds = max(0, round(ns / 1_000_000_000))
    sizes = [size for _, size in _UNITS]
    top = next((i for i, size in enumerate(sizes) if seconds >= size), len(sizes) - 1)
    precision = sizes[min(top + 1, len(sizes) - 1)]
    seconds = round(seconds / precision) * precision
    parts: list[str] = []
    for name, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount and len(parts) < 2:
            unit = f"{name}s" if name == "day" and amount != 1 else name
            parts.append(f"{amount} {unit}")
        elif parts:
            break
    return " ".join(parts) or "0 s"


def format_offset(ns: int) -> str:
    """A time offset from a trace's start: ``+0 ms``, ``+12.3 ms``, ``+1.20 s``."""
    if ns <= 0:
        return "+0 ms"
    return "+" + format_duration(ns)


def format_utc(unix_nano: int) -> str:
    """``2026-11-20 09:21:07.310 UTC``."""
    moment = datetime.fromtimestamp(unix_nano / 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
