"""Trace: one trace as a waterfall with its critical path, and as a sequence diagram.
Deep link: ``/?trace=ID``."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from analyzer.critical_path import critical_path, pick_root
from ui import common, data, spanview
from ui.format import fmt_duration, fmt_time
from ui.logs_panel import logs_panel, span_logs, untraced_search
from ui.seqplot import sequence_figure
from ui.waterfall import waterfall_figure

stats = common.page(
    "Trace",
    "One request end to end. Dark bands mark the critical path: the work that decided "
    "how long the trace took. Click a bar to see its span.",
)

deep = st.query_params.get("trace")
if deep and st.session_state.get("_trace_link") != deep:
    st.session_state["_trace_link"] = deep
    common.set_kept("trace_id", deep)

trace_id = st.text_input(
    "Trace id",
    **common.kept_text("trace_id"),
    placeholder="32 hex digits, e.g. from a log line",
).strip()
if not trace_id:
    st.info("Enter a trace id, or open one of the newest traces:")
    recent = common.fetch(data.recent_traces, 20)
    if recent:
        st.dataframe(
            pl.DataFrame(
                [
                    {
                        "started (UTC)": fmt_time(t["start_unix_nano"]),
                        "service": t.get("service_name"),
                        "operation": t.get("name"),
                        "errors": int(t.get("errors") or 0),
                        "trace": common.trace_link(str(t["trace_id"])),
                    }
                    for t in recent
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "trace": st.column_config.LinkColumn("trace", display_text=r"trace=([0-9a-f]+)")
            },
        )
    st.stop()

st.query_params["trace"] = trace_id
with st.spinner("Loading the trace…"):
    trace, error = common.try_fetch(data.trace, trace_id)
if trace is None:
    # A pasted prefix that several traces share lists them (analyzer.query.resolve_trace_id).
    st.warning("Several traces start so." if error and "several" in error else "Trace not found.")
    st.code(error or "", language=None)
    st.stop()

spans: list[dict[str, Any]] = list(trace.get("spans") or [])
trace_id = str(trace.get("trace_id") or trace_id)
st.set_page_config(page_title=f"trace {trace_id[:8]} · seqtrace")
root_id = pick_root(spans)
root = next((s for s in spans if s["span_id"] == root_id), spans[0] if spans else {})
errors = [s for s in spans if s.get("status_code") == "ERROR"]
sections = critical_path(spans, root_id)

st.code(f"{root.get('service_name')} · {root.get('name')}", language=None, wrap_lines=True)
cols = st.columns(5)
start = min(int(s["start_unix_nano"]) for s in spans)
end = max(int(s["end_unix_nano"]) for s in spans)
cols[0].metric("Duration", fmt_duration(end - start))
cols[1].metric("Spans", len(spans))
cols[2].metric("Error spans", len(errors))
cols[3].metric("Services", len({s.get("service_name") for s in spans}))
root_status = str(root.get("status_code") or "UNSET")
outcome = "FAILED" if root_status == "ERROR" else ("partial" if errors else "ok")
cols[4].metric(
    "Outcome",
    outcome,
    help="FAILED: the request itself (root span) failed; partial: it succeeded but a span "
    "beneath it failed.",
)
st.caption(f"Started {fmt_time(start)} · trace {trace_id}")

# Entities this trace carries (keys the store knows as entity keys), linked to their diagrams.
known_keys = {str(k["key"]) for k in (common.try_fetch(data.entity_keys)[0] or [])}
entities: dict[str, set[str]] = {}
for span in spans:
    for attr, value in (span.get("attributes") or {}).items():
        if attr in known_keys and isinstance(value, str | int):
            entities.setdefault(attr, set()).add(str(value))
if entities:
    st.dataframe(
        pl.DataFrame(
            [
                {"entity key": k, "value": v, "diagram": common.entity_link(k, v)}
                for k in sorted(entities)
                for v in sorted(entities[k])
            ]
        ),
        hide_index=True,
        column_config={
            "diagram": st.column_config.LinkColumn(
                "sequence diagram", display_text="open entity diagram"
            )
        },
    )

selected_span: str | None = st.session_state.get("trace_selected")
if st.session_state.get("_trace_sel_for") != trace_id:
    selected_span = None

fetched_logs, logs_error = common.try_fetch(data.logs, None, trace_id, None, None)
trace_logs: list[dict[str, Any]] = fetched_logs or []
tab_waterfall, tab_sequence, tab_spans, tab_logs, tab_raw = st.tabs(
    ["Waterfall", "Sequence diagram", "All spans", f"Logs ({len(trace_logs)})", "OTLP JSON"]
)
with tab_waterfall:
    if len(spans) > 1500:
        st.caption(f"Showing the first 1500 of {len(spans)} spans.")
    chart_key = f"waterfall_{trace_id}"

    def _on_pick() -> None:
        """A click on a bar: remember it (highlight) and open its span."""
        span_id = spanview.picked(st.session_state.get(chart_key), str)
        st.session_state["trace_selected"] = span_id
        st.session_state["_trace_sel_for"] = trace_id
        st.session_state["trace_pick"] = span_id

    st.plotly_chart(
        waterfall_figure(spans, sections, selected=selected_span),
        key=chart_key,
        on_select=_on_pick,
        selection_mode="points",
        config={"displayModeBar": False},
    )
    pick = st.session_state.pop("trace_pick", None)
    picked_span = spanview.find_span(trace, pick) if isinstance(pick, str) else None
    if picked_span is not None:
        own = [r for r in trace_logs if r.get("span_id") == picked_span.get("span_id")]
        spanview.span_dialog_for(picked_span, own)
    on_path = sum(s.duration_ns for s in sections)
    st.caption(
        f"Critical path: {len({s.span_id for s in sections})} spans, "
        f"{fmt_duration(on_path)} of {fmt_duration(end - start)}."
    )

with tab_sequence:
    diagram, diagram_error = common.try_fetch(data.diagram, None, trace_id, None, None, False)
    if diagram is None:
        st.warning("No sequence diagram for this trace.")
        st.code(diagram_error or "", language=None)
    else:
        figure = sequence_figure(diagram)
        common.sequence_chart(
            figure,
            f"trace_sequence_{trace_id}",
            "trace_sequence",
            config={"displayModeBar": False},
        )

with tab_spans:
    on_critical = {s.span_id for s in sections}
    st.dataframe(
        pl.DataFrame(
            [
                {
                    "start (+ms)": round((int(s["start_unix_nano"]) - start) / 1e6, 3),
                    "duration (ms)": round(int(s.get("duration_ns") or 0) / 1e6, 3),
                    "service": s.get("service_name"),
                    "operation": s.get("name"),
                    "kind": s.get("kind"),
                    "status": s.get("status_code"),
                    "message": s.get("status_message") or "",
                    "critical": s["span_id"] in on_critical,
                    "span_id": s["span_id"],
                }
                for s in sorted(spans, key=lambda s: int(s["start_unix_nano"]))
            ]
        ),
        hide_index=True,
        width="stretch",
    )

with tab_logs:
    if logs_error:
        st.warning("Could not load the trace's log records.")
        st.code(logs_error, language=None)
    logs_panel(trace_logs, key=f"trace_logs_{trace_id}")
    # Logs under each span, in the spans' start order.
    by_span: dict[str, list[dict[str, Any]]] = {}
    for record in trace_logs:
        by_span.setdefault(str(record.get("span_id") or ""), []).append(record)
    if by_span:
        st.subheader("Logs by span")
    for s in sorted(spans, key=lambda s: int(s["start_unix_nano"])):
        span_records = by_span.get(str(s["span_id"]))
        if span_records:
            st.text(f"{s.get('service_name')} · {s.get('name')}  (span {s['span_id']})")
            span_logs(span_records)
    if by_span.get(""):
        st.text("Not tied to a span (the trace only)")
        span_logs(by_span[""])
    # Records outside any trace, in the sidebar's time range (not just this trace's).
    window = common.time_range(stats)
    untraced_search(
        None if window.everything else window.start,
        None if window.everything else window.end,
        list(stats.get("services") or []),
        key="trace",
    )

with tab_raw:
    otlp, otlp_error = common.try_fetch(data.trace_otlp, trace_id)
    if otlp is None:
        st.code(otlp_error or "", language=None)
    else:
        common.json_download("Download OTLP/JSON", otlp, f"trace-{trace_id}.json", indent=1)
        st.caption("Load it elsewhere with `seqtrace load FILE`.")
        st.json(otlp, expanded=False)

st.caption("Link to this view:")
common.share_link({"trace": trace_id})
