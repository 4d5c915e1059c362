"""Failures: the partial-failure report. Which traces failed, which only partly, and the
root cause of each. Deep link: ``/?failures``."""

from __future__ import annotations

from typing import Any, Final

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from ui import charts, common, data, replay
from ui.format import clip, esc, fmt_duration, fmt_time, rfc3339

PATTERN_HELP: Final = {
    "failed": "the request itself failed (root span is an error)",
    "failed_branch": "a branch failed and the request went on without it",
    "degraded": "a dependency failed and the caller answered with less",
    "retried": "a call failed and a retry succeeded",
}
OUTCOME_ICON: Final = {"failed": "FAILED", "partial": "partial"}
#: The queries (docs/query.md) that select this page's bad events: the error spans, and
#: the last error of each cascade (an error span that is the parent of no error span).
BAD_EVENTS_QUERY: Final = "{ status = error }"
ROOT_CAUSE_QUERY: Final = "{ status = error } !< { status = error }"

stats = common.page(
    "Failures",
    "Traces with an error span: **failed** when the request itself failed, **partial** "
    "when it succeeded but something beneath it did not. Root cause = the deepest error.",
)
rng = common.time_range(stats)

services = ["(all services)", *sorted(stats.get("services") or [])]
filter_cols = st.columns([1, 1, 1, 2])
kept_service = common.kept("failures_service")
service_choice = filter_cols[0].selectbox(
    "Service",
    services,
    index=services.index(kept_service) if kept_service in services else 0,
    **common.remembered("failures_service"),
)
service = None if service_choice == services[0] else service_choice
report: dict[str, Any] = common.fetch(
    data.failures, rng.start, rng.end, service, spinner="Classifying traces…"
)
summary = report.get("summary", {})
patterns = filter_cols[1].multiselect(
    "Pattern",
    list(PATTERN_HELP),
    default=common.kept("failures_patterns", []),
    **common.remembered("failures_patterns"),
    help="\n".join(f"- {k}: {v}" for k, v in PATTERN_HELP.items()),
)
outcomes = filter_cols[2].multiselect(
    "Outcome",
    ["failed", "partial"],
    default=common.kept("failures_outcomes", []),
    **common.remembered("failures_outcomes"),
)
search = filter_cols[3].text_input(
    "Search root cause / operation / entity",
    **common.kept_text("failures_search"),
    placeholder="e.g. deadlock, payment, ORD-1005",
)

cols = st.columns(4)
cols[0].metric("Traces in range", f"{summary.get('traces', 0):,}")
cols[1].metric("OK", f"{summary.get('ok', 0):,}")
cols[2].metric("Partly failed", f"{summary.get('partial', 0):,}")
cols[3].metric("Failed", f"{summary.get('failed', 0):,}")
st.caption(
    f"Range: {rng.label} — {fmt_time(report.get('from_unix_nano'), False)} → "
    f"{fmt_time(report.get('to_unix_nano'), False)}"
    + (" · service filter applied" if service else "")
)

rows: list[dict[str, Any]] = []
for t in report.get("traces") or []:
    cause = t.get("root_cause") or {}
    entity_pairs = [(k, v) for k, values in (t.get("entities") or {}).items() for v in values]
    preferred = next((p for p in entity_pairs if p[0] == "order.id"), None)
    first_entity = preferred or (entity_pairs[0] if entity_pairs else None)
    row = {
        "started (UTC)": fmt_time(t.get("start_unix_nano")),
        "outcome": OUTCOME_ICON.get(str(t.get("outcome")), str(t.get("outcome"))),
        "pattern": str(t.get("pattern")),
        "trace": common.trace_link(str(t["trace_id"])),
        "entity": common.entity_link(*first_entity) if first_entity else None,
        # The trace's variant among its root operation's traces (Flows page).
        "variant": common.link(
            flow=f"{t.get('root_service')}:{t.get('root_operation')}",
            variant_of=str(t["trace_id"]),
        ),
        "root cause": f"{cause.get('service')}: {cause.get('operation')}",
        "message": clip(cause.get("message") or "", 200),
        "request": f"{t.get('root_service')}: {t.get('root_operation')}",
        "errors": int(t.get("error_spans") or 0),
        "duration": fmt_duration(t.get("duration_ns")),
        "entities": ", ".join(f"{k}={v}" for k, v in entity_pairs),
        "_outcome": str(t.get("outcome")),
    }
    rows.append(row)

table = pl.DataFrame(
    rows,
    schema={
        "started (UTC)": pl.String,
        "outcome": pl.String,
        "pattern": pl.String,
        "trace": pl.String,
        "entity": pl.String,
        "variant": pl.String,
        "root cause": pl.String,
        "message": pl.String,
        "request": pl.String,
        "errors": pl.Int64,
        "duration": pl.String,
        "entities": pl.String,
        "_outcome": pl.String,
    },
)
if patterns:
    table = table.filter(pl.col("pattern").is_in(patterns))
if outcomes:
    table = table.filter(pl.col("_outcome").is_in(outcomes))
if search.strip():
    needle = search.strip().lower()
    table = table.filter(
        pl.concat_str(["request", "root cause", "message", "entities", "trace"], separator=" ")
        .str.to_lowercase()
        .str.contains(needle, literal=True)
    )

st.subheader(f"Failing traces ({table.height} shown)")
omitted = int(report.get("omitted_traces") or 0)
if omitted:
    st.info(
        f"{omitted:,} more failing traces in this range are not listed: the report lists "
        f"{len(report.get('traces') or []):,}, the failed ones first, then the newest. "
        "Narrow the time range or pick a service to see the others; the counts above cover "
        "every trace, the patterns and root causes by service the listed ones."
    )
if table.height == 0:
    if not report.get("traces"):
        st.success("No failed or partly failed traces in this range.")
    else:
        st.info("No trace matches the filters.")
else:
    common.trace_table(
        table.drop("_outcome"),
        "failures_table",
        "Open the sequence diagram of the entity",
        variant=st.column_config.LinkColumn(
            "variant",
            display_text="variant",
            help="Open the trace's variant among the traces of its root operation (Flows)",
        ),
        message=st.column_config.TextColumn("root-cause message", width="large"),
    )

by_service = report.get("by_service") or []
if by_service:
    st.subheader("Root causes by service")
    names = [esc(b["service"]) for b in by_service]
    fig = go.Figure(
        [
            go.Bar(
                name=outcome,
                y=names,
                x=[int(b.get(outcome) or 0) for b in by_service],
                orientation="h",
                marker={"color": color},
            )
            for outcome, color in (("failed", charts.ERROR_RED), ("partial", charts.WARN_AMBER))
        ]
    )
    fig.update_layout(
        barmode="stack",
        height=max(160, 50 + 32 * len(by_service)),
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"title": "traces whose root cause is in the service", "dtick": 1},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    st.plotly_chart(fig, key="failures_by_service", config={"displayModeBar": False})

if rng.start is not None and rng.end is not None:
    replay.replay_expander(
        ["--from", rfc3339(rng.start), "--to", rfc3339(rng.end)],
        "every trace of this time range",
        key="failures_replay",
    )

st.caption("Link to this view:")
st.markdown(
    f"[Search these errors]({common.link(q=BAD_EVENTS_QUERY, **rng.link_params())}) · "
    f"[their root causes]({common.link(q=ROOT_CAUSE_QUERY, **rng.link_params())}) "
    "(the query language: what sets them apart)"
)
common.share_link({"failures": "", **rng.link_params()})
