"""Overview: is anything wrong right now? Traffic, error rate, failing traces, newest
traces."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from ui import charts, common, data
from ui.format import fmt_duration, fmt_time
from ui.live import live_run

#: The live view's refresh interval.
LIVE_EVERY_S = 5

stats = common.page(
    "Overview", "Traffic and errors over the selected time range, and the newest traces."
)

live = st.toggle(
    "Live: refresh every 5 s",
    key="overview_live",
    help="Re-reads the store every 5 seconds (useful while spans keep arriving).",
)


@st.fragment(run_every=LIVE_EVERY_S if live else None)
def body() -> None:
    # One read in flight at most: a timer run queued behind a slow one draws its answers
    # again instead of reading (ui/live.py).
    with live_run("overview", LIVE_EVERY_S):
        draw()


def draw() -> None:
    current = common.fetch(data.stats)
    rng = common.time_range(current)
    throughput: dict[str, Any] = common.fetch(
        data.throughput, rng.start, rng.end, 60, spinner="Counting spans…"
    )
    # The counts alone (no trace listed): this page shows two numbers and links the report.
    report, report_error = common.try_fetch(data.failures, rng.start, rng.end, None, 0)
    buckets = charts.filled_buckets(throughput)
    spans_in_range = sum(b["spans"] for b in buckets)
    errors_in_range = sum(b["errors"] for b in buckets)

    cols = st.columns(5)
    cols[0].metric("Spans in range", f"{spans_in_range:,}")
    cols[1].metric(
        "Error spans",
        f"{errors_in_range:,}",
        f"{100 * errors_in_range / spans_in_range:.1f}% of spans" if spans_in_range else None,
        delta_color="inverse" if errors_in_range else "off",
    )
    if report is not None:
        summary = report.get("summary", {})
        cols[2].metric("Failed traces", f"{summary.get('failed', 0):,}")
        cols[3].metric("Partly failed traces", f"{summary.get('partial', 0):,}")
    cols[4].metric("Services", f"{len(current.get('services') or []):,}")
    st.caption(f"Range: {rng.label} — {rng.describe()}")

    if report_error:
        st.warning(f"Failure report unavailable: {report_error}")
    elif report is not None and (
        report["summary"].get("failed") or report["summary"].get("partial")
    ):
        st.page_link(
            "pages/failures.py",
            label=(
                f"{report['summary'].get('failed', 0)} failed and "
                f"{report['summary'].get('partial', 0)} partly failed traces in this range: "
                "open the failure report"
            ),
            icon=":material/error:",
        )

    left, right = st.columns(2)
    spans_fig, errors_fig = charts.throughput_figures(throughput)
    left.plotly_chart(spans_fig, key="overview_spans", config={"displayModeBar": False})
    right.plotly_chart(errors_fig, key="overview_errors", config={"displayModeBar": False})

    services_col, traces_col = st.columns([2, 5])
    with services_col:
        st.subheader("Services")
        smap, smap_error = common.try_fetch(data.service_map, rng.start, rng.end)
        rows = []
        if smap is not None:
            rows = [
                {
                    "service": n["id"],
                    "spans": int(n.get("spans") or 0),
                    "errors": int(n.get("errors") or 0),
                    "error %": round(100 * int(n.get("errors") or 0) / max(1, int(n["spans"])), 2),
                }
                for n in smap.get("nodes", [])
                if n.get("kind") == "service"
            ]
        elif smap_error:
            st.caption(f"Service figures unavailable: {smap_error}")
        if not rows:
            rows = [
                {"service": s, "spans": None, "errors": None, "error %": None}
                for s in current.get("services") or []
            ]
        st.dataframe(
            pl.DataFrame(rows, infer_schema_length=None).sort(
                "errors", descending=True, nulls_last=True
            ),
            hide_index=True,
            width="stretch",
            column_config={"error %": st.column_config.NumberColumn("error %", format="%.1f")},
        )
    with traces_col:
        st.subheader("Newest traces")
        recent = common.fetch(data.recent_traces, 50)
        if not recent:
            st.caption("No traces in the newest day of data.")
        else:
            table = pl.DataFrame(
                [
                    {
                        "trace": common.trace_link(str(t["trace_id"])),
                        "started (UTC)": fmt_time(t["start_unix_nano"]),
                        "outcome": "FAILED"
                        if t.get("status_code") == "ERROR"
                        else ("partial" if int(t.get("errors") or 0) else "ok"),
                        "service": t.get("service_name"),
                        "operation": t.get("name"),
                        "duration": fmt_duration(t.get("duration_ns")),
                        "spans": int(t.get("spans") or 0),
                        "errors": int(t.get("errors") or 0),
                    }
                    for t in recent
                ]
            )
            st.dataframe(
                table,
                hide_index=True,
                width="stretch",
                column_config={"trace": common.TRACE_LINK_COLUMN},
            )


body()
st.caption("Link to this view:")
common.share_link({})
