"""Text helpers for the UI: times, durations, and escaping span text for plotly.

Plotly renders hover labels, annotations and tick labels as a small HTML dialect, so
every string that comes from span data goes through :func:`esc` before it reaches a
figure. Streamlit elements (st.text, st.code, st.dataframe, st.json) show text as text and
need no escaping.
"""

from __future__ import annotations

import html
import time
from typing import Any, Final

NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000


def esc(value: Any, limit: int | None = None) -> str:
    """Span text made safe for plotly's HTML-ish labels: ``& < >`` escaped, line breaks
    kept as ``<br>``, optionally shortened to ``limit`` characters first."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if limit is not None and len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    return html.escape(text, quote=False).replace("\n", "<br>")


def clip(value: Any, limit: int) -> str:
    """A one-line plain-text version of ``value`` of at most ``limit`` characters."""
    text = " ".join(("" if value is None else str(value)).split())
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def fmt_time(unix_nano: int | None, with_ms: bool = True) -> str:
    """``2026-11-20 10:01:07.460 UTC``; an empty string for None."""
    if unix_nano is None:
        return ""
    seconds, ns = divmod(int(unix_nano), NS_PER_S)
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    if with_ms:
        text += f".{ns // NS_PER_MS:03d}"
    return text + " UTC"


def rfc3339(unix_nano: int) -> str:
    """``2026-11-20T10:01:07Z`` (second precision, rounded down), for links."""
    seconds, ns = divmod(int(unix_nano), NS_PER_S)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if ns:
        text += f".{ns:09d}".rstrip("0")
    return text + "Z"


def fmt_duration(ns: int | float | None) -> str:
    """A duration for humans: ``850 µs``, ``12.3 ms``, ``4.20 s``, ``3 min 5 s``,
    ``2 d 4 h``."""
    if ns is None:
        return ""
    value = float(ns)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1_000:
        return f"{sign}{value:.0f} ns"
    if value < NS_PER_MS:
        return f"{sign}{value / 1_000:.0f} µs"
    if value < 100 * NS_PER_MS:
        return f"{sign}{value / NS_PER_MS:.1f} ms"
    if value < NS_PER_S:
        return f"{sign}{value / NS_PER_MS:.0f} ms"
    if value < 60 * NS_PER_S:
        return f"{sign}{value / NS_PER_S:.2f} s"
    seconds = int(value // NS_PER_S)
    if seconds < 3_600:
        return f"{sign}{seconds // 60} min {seconds % 60} s"
    if seconds < 86_400:
        return f"{sign}{seconds // 3_600} h {seconds % 3_600 // 60} min"
    return f"{sign}{seconds // 86_400} d {seconds % 86_400 // 3_600} h"


def short_id(trace_id: str, n: int = 8) -> str:
    return trace_id[:n]
