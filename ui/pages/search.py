"""Search: the traces a query selects (docs/query.md), and what sets their spans apart
from the rest. Deep link: ``/?q=QUERY``; the matches open as a flow with ``/?flowq=QUERY``.
"""

from __future__ import annotations

from typing import Any, Final

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from ui import charts, common, data
from ui.format import clip, fmt_duration, fmt_time

#: (what it finds, the query): drawn from the incidents docs/query.md walks through.
EXAMPLES: Final = [
    ("Errors", "{ status = error }"),
    ("A cascade's root cause (the last error)", "{ status = error } !< { status = error }"),
    (
        "Payment errors beneath a checkout",
        '{ name = "POST /api/checkout" } >> '
        '{ resource.service.name = "payment" && status = error }',
    ),
    (
        "Slow calls to an external API",
        '{ kind = client && span.server.address =~ ".*\\\\.example" && duration > 200ms }',
    ),
    (
        "N+1: one statement run more than once per trace",
        '{ span.db.operation = "UPDATE" && span.db.sql.table = "stock" } | count() > 1',
    ),
    ("Slow requests", "{ kind = server && trace:duration > 500ms }"),
]
OUTCOME_LABEL: Final = {"failed": "FAILED", "partial": "partial", "ok": "ok"}

stats = common.page(
    "Search",
    "A TraceQL subset: `{ conditions }` selects spans; `>>` `>` `<<` `<` `~` (and `!` forms) "
    "relate them; `| count() > N` filters traces. See docs/query.md.",
)
rng = common.time_range(stats)

# The query box's value lives in session state (set before the widget is drawn), so a
# deep link or an example replaces what the box shows, not only what the page runs.
linked = st.query_params.get("q")
if linked is not None and st.session_state.get("search_linked") != linked:
    st.session_state["search_linked"] = linked
    st.session_state["keep_search_q"] = linked
    st.session_state["search_q"] = linked
if "search_q" not in st.session_state:
    st.session_state["search_q"] = common.kept("search_q", EXAMPLES[0][1])


def _use_example() -> None:
    chosen = st.session_state.get("search_example")
    for label, text in EXAMPLES:
        if label == chosen:
            st.session_state["keep_search_q"] = text
            st.session_state["search_q"] = text


query_cols = st.columns([4, 2])
query = query_cols[0].text_input(
    "Query",
    key="search_q",
    on_change=common.keep,
    args=("search_q",),
    placeholder="{ status = error }",
)
query_cols[1].selectbox(
    "Examples",
    [label for label, _ in EXAMPLES],
    index=None,
    placeholder="Pick an example…",
    key="search_example",
    on_change=_use_example,
)
query = (query or "").strip()
if not query:
    st.info("Type a query, or pick an example.")
    st.stop()

result, error = common.try_fetch(data.find, query, rng.start, rng.end, 200)
if error is not None or result is None:
    st.error(common.md(error or "no answer"), icon="⚠️")  # the parser's one-line message
    st.stop()

traces: list[dict[str, Any]] = result.get("traces") or []
head = st.columns([3, 1])
head[0].subheader(
    f"{result['total']:,} matching traces"
    + (f" (newest {len(traces)})" if result["total"] > len(traces) else "")
)
head[1].link_button(
    "Open the matches as a flow",
    common.link(flowq=query, **rng.link_params()),
    help="The matching traces folded into variants (the flows page)",
    width="stretch",
)

rows = []
for t in traces:
    entities = sorted((k, v) for k, values in (t.get("entities") or {}).items() for v in values)
    rows.append(
        {
            "started (UTC)": fmt_time(t.get("start_unix_nano"), False),
            "outcome": OUTCOME_LABEL.get(str(t.get("outcome")), str(t.get("outcome"))),
            "trace": common.trace_link(str(t["trace_id"])),
            "entity": common.entity_link(*entities[0]) if entities else None,
            "request": clip(f"{t.get('root_service')}: {t.get('root_operation')}", 120),
            "duration": fmt_duration(t.get("duration_ns")),
            "matched spans": int(t.get("matched_spans") or 0),
            "entities": clip(", ".join(f"{k}={v}" for k, v in entities), 200),
        }
    )
schema = {
    "started (UTC)": pl.String,
    "outcome": pl.String,
    "trace": pl.String,
    "entity": pl.String,
    "request": pl.String,
    "duration": pl.String,
    "matched spans": pl.Int64,
    "entities": pl.String,
}
if not rows:
    st.info("No trace in this range matches the query.")
else:
    common.trace_table(
        pl.DataFrame(rows, schema=schema), "search_table", "Open the entity's diagram"
    )

# ----------------------------------------------------------------------------- compare
st.subheader("What sets these apart")
baseline = st.text_input(
    "Baseline query (empty: every other span in the range)",
    value=common.kept("search_baseline", ""),
    key="search_baseline",
    on_change=common.keep,
    args=("search_baseline",),
)
comparison, compare_error = common.try_fetch(
    data.compare, query, baseline.strip() or None, rng.start, rng.end
)
if compare_error is not None or comparison is None:
    st.error(common.md(compare_error or "no answer"), icon="⚠️")
else:
    selection, base = comparison["selection"], comparison["baseline"]
    st.caption(
        f"{selection['spans']:,} matching spans against {base['spans']:,} "
        f"({'the baseline query' if base['query'] else 'every other span'}); shares from "
        f"samples of {selection.get('sampled_spans', selection['spans']):,} and "
        f"{base.get('sampled_spans', base['spans']):,} spans."
    )
    top = [a for a in comparison.get("attributes") or [] if a["score"] > 0][:15]
    if not top:
        st.info("No attribute value is more common in the matching spans than in the baseline.")
    else:
        labels = [clip(f"{a['key']} = {a['value']}", 70) for a in reversed(top)]
        figure = go.Figure(
            [
                go.Bar(
                    name="matching spans",
                    y=labels,
                    x=[a["selection_fraction"] for a in reversed(top)],
                    orientation="h",
                    marker_color=charts.ERROR_RED,
                ),
                go.Bar(
                    name="baseline",
                    y=labels,
                    x=[a["baseline_fraction"] for a in reversed(top)],
                    orientation="h",
                    marker_color="#9aa5b1",
                ),
            ]
        )
        figure.update_layout(
            barmode="group",
            height=120 + 34 * len(top),
            xaxis_tickformat=".0%",
            margin={"l": 10, "r": 10, "t": 30, "b": 10},
            legend={"orientation": "h", "y": 1.08},
        )
        st.plotly_chart(figure, width="stretch", key="search_compare_chart")
    durations = comparison.get("durations") or {}
    buckets = durations.get("buckets") or []
    if buckets:
        names = [
            "≤ " + fmt_duration(b["le_ns"]) if b["le_ns"] is not None else "longer" for b in buckets
        ]
        latency = go.Figure(
            [
                go.Bar(
                    name="matching spans",
                    x=names,
                    y=[b["selection_fraction"] for b in buckets],
                    marker_color=charts.ERROR_RED,
                ),
                go.Bar(
                    name="baseline",
                    x=names,
                    y=[b["baseline_fraction"] for b in buckets],
                    marker_color="#9aa5b1",
                ),
            ]
        )
        latency.update_layout(
            barmode="group",
            height=300,
            yaxis_tickformat=".0%",
            title="Span durations",
            margin={"l": 10, "r": 10, "t": 40, "b": 10},
        )
        st.plotly_chart(latency, width="stretch", key="search_latency_chart")
        sel, bas = durations["selection"], durations["baseline"]
        st.caption(
            f"p50 {fmt_duration(sel['p50_ns'])} vs {fmt_duration(bas['p50_ns'])} · "
            f"p90 {fmt_duration(sel['p90_ns'])} vs {fmt_duration(bas['p90_ns'])} · "
            f"p99 {fmt_duration(sel['p99_ns'])} vs {fmt_duration(bas['p99_ns'])}"
        )

common.share_link({"q": query, **rng.link_params()})
