"""Log records in the UI (#18): a panel of a trace's or an entity's records with a severity
filter, the records of one span (its detail panel), and a search for records outside any
trace by service, severity and time.

Record text (bodies, attributes, severities, service names) is the sender's: it reaches
the page only through st.dataframe and st.code, which show text, never markdown or HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import polars as pl
import streamlit as st

from ui import common, data
from ui.format import fmt_time

#: The end of "everything stored" for the search (2116; times are Unix nanoseconds).
EVERYTHING_END: Final = 1 << 62
#: Severity filter choices -> the lowest OTLP severity number they show.
LEVELS: Final = {"all": 0, "info and above": 9, "warnings and errors": 13, "errors": 17}


def level_of(record: Mapping[str, Any]) -> str:
    number = int(record.get("severity_number") or 0)
    text = str(record.get("severity") or "").upper()
    if number >= 17 or text.startswith(("ERR", "FATAL", "CRIT")):
        return "error"
    if number >= 13 or text.startswith("WARN"):
        return "warn"
    return "info"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def log_frame(records: Sequence[Mapping[str, Any]], with_trace: bool = False) -> pl.DataFrame:
    rows = []
    for r in records:
        row = {
            "time (UTC)": fmt_time(r.get("time_unix_nano")),
            "level": level_of(r),
            "severity": str(r.get("severity") or ""),
            "service": str(r.get("service") or ""),
            "span": str(r.get("span_id") or ""),
            "body": str(r.get("body") or ""),
            "attributes": _value_text(r.get("attributes") or {}),
        }
        if with_trace:
            row["trace"] = str(r.get("trace_id") or "")
        rows.append(row)
    schema = {
        name: pl.String
        for name in ("time (UTC)", "level", "severity", "service", "span", "body", "attributes")
    }
    if with_trace:
        schema["trace"] = pl.String
    return pl.DataFrame(rows, schema=schema)


def _at_least(records: Sequence[Mapping[str, Any]], minimum: int) -> list[Mapping[str, Any]]:
    if minimum <= 0:
        return list(records)
    wanted = {13: ("warn", "error"), 17: ("error",)}.get(minimum, ("info", "warn", "error"))
    return [r for r in records if level_of(r) in wanted]


def logs_panel(records: Sequence[Mapping[str, Any]], key: str) -> None:
    """The Logs panel of a trace or an entity page: every record, a severity filter."""
    st.subheader(f"Logs ({len(records)})")
    if not records:
        st.text("No log records for these spans.")
        return
    counts = {level: sum(1 for r in records if level_of(r) == level) for level in LEVELS}
    errors, warnings = counts.get("error", 0), sum(1 for r in records if level_of(r) == "warn")
    choice = st.radio(
        "Severity",
        list(LEVELS),
        horizontal=True,
        key=f"{key}_severity",
        index=2 if errors or warnings else 0,
        help=f"{errors} error and {warnings} warning records",
    )
    shown = _at_least(records, LEVELS[str(choice)])
    st.dataframe(log_frame(shown), hide_index=True, width="stretch", key=f"{key}_table")


def span_logs(records: Sequence[Mapping[str, Any]]) -> None:
    """The records of a span or a message, for its detail panel."""
    if not records:
        st.text("No log records here.")
        return
    st.dataframe(log_frame(records), hide_index=True, width="stretch")


def untraced_search(start: int | None, end: int | None, services: Sequence[str], key: str) -> None:
    """Records outside any trace (a background job's lines), by service, severity, time."""
    with st.expander("Logs outside any trace"):
        cols = st.columns(2)
        service = cols[0].selectbox("Service", ["(all)", *services], key=f"{key}_untraced_service")
        choice = cols[1].selectbox("Severity", list(LEVELS), key=f"{key}_untraced_severity")
        records, error = common.try_fetch(
            data.logs,
            None,
            None,
            0 if start is None else start,  # no range chosen: everything stored
            EVERYTHING_END if end is None else end,
            None if service == "(all)" else str(service),
            LEVELS[str(choice)],
            True,
        )
        if records is None:
            st.warning("Could not load the log records.")
            st.code(error or "", language=None)
            return
        st.caption(f"{len(records)} records in the selected time range (newest 1,000 at most).")
        st.dataframe(log_frame(records), hide_index=True, width="stretch")
