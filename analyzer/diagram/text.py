"""Text helpers shared by the builder and the renderers: one-line labels, durations, ids.

Span names and attributes are attacker-controlled, so the builder stores labels that are
already one printable line (no control, format or surrogate characters) and every
renderer still escapes them for its own format.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

ELLIPSIS = "…"
#: The multiplication sign before the count of a collapsed run of calls.
TIMES = "\u00d7"
LABEL_LIMIT = 60
ERROR_LIMIT = 120
ATTRIBUTE_LIMIT = 120

_WHITESPACE = re.compile(r"\s+")
# Categories that never belong in a one-line label: controls, invisible format characters
# (bidi overrides can make a label read differently from what it says), separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_REPLACEMENT = "\ufffd"


def _printable(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cs" or char in ("\ufffe", "\uffff"):
        return _REPLACEMENT
    if category in _DROPPED_CATEGORIES:
        return ""
    return char


def one_line(value: object) -> str:
    """The text as one printable line: whitespace runs become one space, controls vanish."""
    text = str(value)
    if text.isprintable():  # the common case; no newline, control or format character
        return _WHITESPACE.sub(" ", text).strip() if "  " in text else text.strip()
    text = _WHITESPACE.sub(" ", text)
    return "".join(_printable(char) for char in text).strip()


def shorten(text: str, limit: int = LABEL_LIMIT) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


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


_ALIAS_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def safe_aliases(ids: list[str], reserved: frozenset[str]) -> dict[str, str]:
    """Distinct identifiers made of ``[A-Za-z0-9_]`` for participant ids.

    Names that are keywords of the target language (``end``, ``loop``...) or start with a
    digit get a ``p_`` prefix; clashes get a numeric suffix, first come first served.
    """
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for participant_id in ids:
        base = _ALIAS_UNSAFE.sub("_", participant_id).strip("_") or "p"
        if base.lower() in reserved or base[0].isdigit():
            base = "p_" + base
        alias = base
        number = 2
        while alias.lower() in taken:
            alias = f"{base}_{number}"
            number += 1
        taken.add(alias.lower())
        aliases[participant_id] = alias
    return aliases
