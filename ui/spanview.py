"""The whole span, as text: shown when a message (Entity) or a bar (Trace) is clicked.

Span content only ever reaches the page through st.code, st.text, st.dataframe and st.json,
which show it as text; never through markdown or HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from ui import common, data
from ui.format import fmt_duration, fmt_time
from ui.logs_panel import span_logs


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def attribute_frame(attributes: Mapping[str, Any] | None) -> pl.DataFrame:
    rows = [{"key": str(k), "value": _value_text(v)} for k, v in sorted((attributes or {}).items())]
    return pl.DataFrame(rows, schema={"key": pl.String, "value": pl.String})


def find_span(trace: Mapping[str, Any], span_id: str) -> dict[str, Any] | None:
    return next((s for s in trace.get("spans") or [] if s.get("span_id") == span_id), None)


def show_span(
    span: Mapping[str, Any],
    *,
    link_to_trace: bool = True,
    logs: Sequence[Mapping[str, Any]] = (),
) -> None:
    """One span: identity, timing, status, attributes, events, its log records,
    resource, raw JSON."""
    with st.container(border=True):
        st.markdown("**Selected span**")
        st.code(f"{span.get('service_name')} · {span.get('name')}", language=None, wrap_lines=True)
        cols = st.columns(4)
        cols[0].metric("Duration", fmt_duration(span.get("duration_ns")))
        status = str(span.get("status_code") or "UNSET")
        cols[1].metric("Status", status if status in ("ERROR", "OK") else "UNSET")
        cols[2].metric("Kind", str(span.get("kind") or ""))
        cols[3].metric("Events", len(span.get("events") or []))
        st.text(
            f"start {fmt_time(span.get('start_unix_nano'))}   "
            f"trace {span.get('trace_id')}   span {span.get('span_id')}   "
            f"parent {span.get('parent_span_id') or '(root)'}"
        )
        if span.get("status_message"):
            st.text("Status message:")
            st.code(str(span["status_message"]), language=None, wrap_lines=True)
        for event in span.get("events") or []:
            if event.get("name") == "exception":
                attrs = event.get("attributes") or {}
                st.text("Exception:")
                st.code(
                    "\n".join(
                        str(attrs[k])
                        for k in ("exception.type", "exception.message", "exception.stacktrace")
                        if attrs.get(k)
                    ),
                    language=None,
                    wrap_lines=True,
                )
        # The records the caller gives (a span's own; for a message, those drawn at it).
        tabs = st.tabs(["Attributes", "Events", "Resource", "Links", "JSON", f"Logs ({len(logs)})"])
        with tabs[5]:
            span_logs(logs)
        with tabs[0]:
            st.dataframe(attribute_frame(span.get("attributes")), hide_index=True, width="stretch")
        with tabs[1]:
            events = [
                {
                    "time (UTC)": fmt_time(e.get("time_unix_nano")),
                    "name": str(e.get("name")),
                    "attributes": _value_text(e.get("attributes") or {}),
                }
                for e in span.get("events") or []
            ]
            if events:
                st.dataframe(pl.DataFrame(events), hide_index=True, width="stretch")
            else:
                st.text("No events.")
        with tabs[2]:
            st.dataframe(
                attribute_frame(span.get("resource_attributes")), hide_index=True, width="stretch"
            )
        with tabs[3]:
            links = span.get("links") or []
            if links:
                st.dataframe(
                    pl.DataFrame(
                        [
                            {
                                "trace": common.trace_link(str(link.get("trace_id"))),
                                "span": str(link.get("span_id")),
                            }
                            for link in links
                        ]
                    ),
                    hide_index=True,
                    column_config={"trace": st.column_config.LinkColumn("linked trace")},
                )
            else:
                st.text("No links.")
        with tabs[4]:
            st.json(dict(span), expanded=False)
        if link_to_trace:
            st.page_link(
                "pages/trace.py",
                label="Open the whole trace",
                icon=":material/timeline:",
                query_params={"trace": str(span.get("trace_id"))},
            )


def picked(event: Any, kind: type) -> Any:
    """The ``customdata`` of the first selected point of a plotly selection event, if it
    has the expected type (int: a message index; str: a span id)."""
    try:
        points = event["selection"]["points"] if event else []
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    custom = points[0].get("customdata")
    if isinstance(custom, list):
        custom = custom[0] if custom else None
    if kind is int and isinstance(custom, int | float):
        return int(custom)
    if kind is str and isinstance(custom, str):
        return custom
    return None


@st.dialog("Span", width="large")
def span_dialog(trace_id: str, span_id: str, logs: Sequence[Mapping[str, Any]] = ()) -> None:
    show_span_by_id(trace_id, span_id, logs)


@st.dialog("Span", width="large")
def span_dialog_for(span: Mapping[str, Any], logs: Sequence[Mapping[str, Any]] = ()) -> None:
    show_span(span, link_to_trace=False, logs=logs)


def show_span_by_id(trace_id: str, span_id: str, logs: Sequence[Mapping[str, Any]] = ()) -> None:
    trace, error = common.try_fetch(data.trace, trace_id)
    if trace is None:
        st.warning("Could not load the span's trace.")
        st.code(error or "", language=None)
        return
    span = find_span(trace, span_id)
    if span is None:
        st.warning("That span is not in its trace any more.")
        return
    show_span(span, logs=logs)
