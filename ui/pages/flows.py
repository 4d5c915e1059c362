"""Flows: every trace of a root operation (or every entity of a key, or the traces a query
selects) folded into variants, one sequence per distinct shape, most frequent first. Deep
links: ``/?flow=SERVICE:OPERATION`` (optional ``variant_of=TRACE_ID`` opens that trace's
variant) and ``/?flowq=QUERY`` (the traces the query language selects, docs/query.md; the
Search page's "Open the matches as a flow").

Span text reaches the page only as widget labels, dataframe cells, st.text/st.code and the
plotly figure (which escapes it); never as markdown or HTML.
"""

from __future__ import annotations

from typing import Any, Final

import polars as pl
import streamlit as st

from analyzer.diagram.text import TIMES
from ui import common, data, spanview
from ui.format import fmt_duration
from ui.seqplot import sequence_figure

MODES: Final = ("Root operation", "Entity key", "Query")

stats = common.page(
    "Flows",
    "Every trace of a root operation, folded into variants: one sequence per distinct shape "
    "(ids templated, repeated calls as one loop, concurrent calls in any order), most "
    "frequent first. Against variant 1, `+` marks an extra message, `!` one that fails here.",
)
rng = common.time_range(stats)
# "Everything stored" is the stored span times, not the API's default of the last 24 hours.
start, end = rng.start, rng.end


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / max(1, whole):.1f}%"


def _root_name(text: str) -> str:
    """``SERVICE:OPERATION`` or ``SERVICE: OPERATION`` -> ``SERVICE: OPERATION``."""
    service, _, operation = text.partition(":")
    return f"{service.strip()}: {operation.strip()}"


# A deep link (?flow=SERVICE:OPERATION) sets the widgets once per distinct link.
deep = st.query_params.get("flow")
if deep and st.session_state.get("_flow_link") != deep:
    st.session_state["_flow_link"] = deep
    common.set_kept("flow_mode", MODES[0])
    common.set_kept("flow_root", _root_name(deep))
    st.session_state.pop("flow_variant", None)
# ?flowq=QUERY (the Search page's matches) likewise: the Query mode with that query.
deep_query = st.query_params.get("flowq")
if deep_query and st.session_state.get("_flowq_link") != deep_query:
    st.session_state["_flowq_link"] = deep_query
    common.set_kept("flow_mode", MODES[2])
    common.set_kept("flow_query", deep_query)
    st.session_state.pop("flow_variant", None)

mode = st.radio(
    "Fold the traces of",
    MODES,
    index=MODES.index(common.kept("flow_mode", MODES[0])),
    horizontal=True,
    key="flow_mode",
    on_change=common.keep,
    args=("flow_mode",),
)

root: str | None = None
key: str | None = None
query: str | None = None
if mode != MODES[2]:
    st.query_params.pop("flowq", None)
if mode == MODES[0]:
    roots = common.fetch(data.flow_roots, start, end, spinner="Listing root operations…")
    if not roots:
        st.info("No root spans (spans without a parent) in the selected time range.")
        st.stop()
    names = [f"{r['service']}: {r['operation']}" for r in roots]
    by_name = dict(zip(names, roots, strict=True))
    wanted = common.kept("flow_root")
    if wanted and wanted not in names:
        names.insert(0, str(wanted))  # a deep link to an operation outside the range

    def _root_label(name: str) -> str:
        info = by_name.get(name)
        if not info:
            return name
        share = 100.0 * int(info["failed"]) / max(1, int(info["traces"]))
        return f"{name}  ·  {info['traces']} traces · {share:.1f}% failed"

    root = common.kept_selectbox(
        "Root operation (busiest first)", names, "flow_root", format_func=_root_label
    )
    with st.expander("All root operations of the range", expanded=False):
        st.dataframe(
            pl.DataFrame(
                [
                    {
                        "root operation": common.link(flow=f"{r['service']}:{r['operation']}"),
                        "traces": int(r["traces"]),
                        "failed": int(r["failed"]),
                        "failed share": _percent(int(r["failed"]), int(r["traces"])),
                    }
                    for r in roots
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "root operation": st.column_config.LinkColumn(
                    "root operation", display_text=r"flow=(.*)$"
                )
            },
        )
    service, _, operation = str(root).partition(": ")
    st.query_params["flow"] = f"{service}:{operation}"
elif mode == MODES[2]:
    st.query_params.pop("flow", None)
    query = st.text_input(
        "Query: the traces it selects (docs/query.md)",
        value=str(common.kept("flow_query") or ""),
        key="flow_query",
        on_change=common.keep,
        args=("flow_query",),
        placeholder="{ status = error }",
    ).strip()
    if not query:
        st.info("Type a query, e.g. `{ status = error }`.")
        st.stop()
    st.query_params["flowq"] = query
else:
    st.query_params.pop("flow", None)
    keys = [str(k["key"]) for k in common.fetch(data.entity_keys)]
    if not keys:
        st.info("No entity keys found (no span carries an attribute such as order.id).")
        st.stop()
    key = common.kept_selectbox(
        "Entity key: each value's traces (links followed) make one sequence", keys, "flow_key"
    )

body, error = None, None
with st.spinner("Folding traces into variants…"):
    body, error = common.try_fetch(data.flow, root, key, start, end, None, query)
if body is None and query is not None:
    st.error(common.md(error or "no answer"), icon="⚠️")  # the parser's one-line message
    st.stop()
if body is None:
    st.warning("No flow for this selection in the selected time range.")
    st.code(error or "", language=None, wrap_lines=True)
    st.stop()
variants: list[dict[str, Any]] = list(body.get("variants") or [])
if not variants:
    st.info(
        "The query selects no traces in the selected time range."
        if query is not None
        else "No traces in the selected time range."
    )
    st.stop()

total = int(body["traces"])
bad = sum(int(v["partial"]) + int(v["failed"]) for v in variants)
cols = st.columns(4)
cols[0].metric("Entities" if key else "Traces", total)
cols[1].metric("Variants", len(variants))
cols[2].metric("With an error", f"{100.0 * bad / max(1, total):.1f}%")
cols[3].metric("Most frequent", f"{100.0 * float(variants[0]['share']):.1f}%")


def _differences(v: dict[str, Any]) -> str:
    calls = [m for m in v["messages"] if m["kind"] != "return"]
    extra = sum(1 for m in calls if m.get("diff") == "extra")
    failing = sum(1 for m in calls if m.get("diff") == "failed")
    parts = [f"+{extra}" if extra else "", f"-{len(v['missing'])}" if v["missing"] else ""]
    parts.append(f"!{failing}" if failing else "")
    return " ".join(p for p in parts if p) or ("(reference)" if v is variants[0] else "")


st.subheader("Variants")
table = pl.DataFrame(
    [
        {
            "#": rank,
            "variant": str(v["id"]),
            "traces": int(v["count"]),
            "share": f"{100.0 * float(v['share']):.1f}%",
            "ok": int(v["ok"]),
            "partial": int(v["partial"]),
            "failed": int(v["failed"]),
            "error share": _percent(int(v["partial"]) + int(v["failed"]), int(v["count"])),
            "p50": fmt_duration(int(v["duration_p50_ns"])),
            "p95": fmt_duration(int(v["duration_p95_ns"])),
            "vs #1": _differences(v),
        }
        for rank, v in enumerate(variants, 1)
    ]
)
picked_rows = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="flow_table",
)

# Which variant: a row clicked in the table, the variant of ?variant_of=TRACE, or #1.
ids = [str(v["id"]) for v in variants]
variant_of = st.query_params.get("variant_of")
if variant_of and st.session_state.get("_flow_variant_of") != variant_of:
    st.session_state["_flow_variant_of"] = variant_of
    own, own_error = common.try_fetch(data.flow, None, None, None, None, variant_of)
    own_id = str(own["variants"][0]["id"]) if own and own.get("variants") else None
    if own_id in ids:
        st.session_state["flow_variant"] = ids.index(own_id)
    else:
        st.warning(f"Trace {variant_of} is not among these traces: {own_error or 'other shape'}")
rows = (picked_rows.get("selection") or {}).get("rows") if picked_rows else None
if rows:
    st.session_state["flow_variant"] = int(rows[0])
index = int(st.session_state.get("flow_variant") or 0)
if index >= len(variants):
    index = 0
index = st.selectbox(
    "Variant",
    range(len(variants)),
    index=index,
    format_func=lambda i: (
        f"{i + 1} · {variants[i]['count']} traces ({100.0 * float(variants[i]['share']):.1f}%)"
        f" · {variants[i]['failed']} failed, {variants[i]['partial']} partial"
        f" · p95 {fmt_duration(int(variants[i]['duration_p95_ns']))}"
    ),
    key="flow_variant",
)
variant = variants[index]


def _drawn(v: dict[str, Any]) -> dict[str, Any]:
    """The variant as a diagram for the sequence figure: counts and p95 in the labels."""
    messages = []
    for m in v["messages"]:
        mark = {"extra": "+ ", "failed": "! "}.get(str(m.get("diff")), "")
        label = str(m["label"])
        if int(m.get("count") or 1) > 1:
            label += f" {TIMES}{m['count']}"  # the figure draws the label as it is
        if m["kind"] != "return":
            errors = f"{m['errors']} failed, " if m["errors"] else ""
            label = f"{label} [{errors}p95 {fmt_duration(int(m['p95_ns']))}]"
        messages.append({**m, "label": mark + label})
    notes = []
    if v["missing"]:
        notes.append({"index": 0, "kind": "variant", "text": "lacks, against variant 1: "
                      + "; ".join(v["missing"]), "participants": []})  # fmt: skip
    return {
        "entity": None,
        "traces": v["trace_ids"],
        "participants": v["participants"],
        "messages": messages,
        "blocks": v["blocks"],
        "notes": notes,
    }


st.subheader(f"Variant {index + 1}")
st.caption(
    f"{variant['count']} traces: {variant['ok']} ok, {variant['partial']} partial, "
    f"{variant['failed']} failed · duration p50 {fmt_duration(int(variant['duration_p50_ns']))},"
    f" p95 {fmt_duration(int(variant['duration_p95_ns']))}. Each arrow: the calls it stands "
    "for over all these traces (\u00d7N), how many failed, and their p95. Click a dot for the "
    "message."
)
chart_key = f"flow_chart_{body['selection']}_{variant['id']}"


def _on_pick() -> None:
    st.session_state["flow_message"] = (
        variant["id"],
        spanview.picked(st.session_state.get(chart_key), int),
    )


figure = sequence_figure(_drawn(variant))
common.sequence_chart(
    figure,
    chart_key,
    "flow_sequence",
    on_select=_on_pick,
    selection_mode="points",
    config={"displayModeBar": False, "scrollZoom": False},
)

picked_message = st.session_state.get("flow_message")
message: dict[str, Any] | None = None
if (
    isinstance(picked_message, tuple)
    and picked_message[0] == variant["id"]
    and isinstance(picked_message[1], int)
    and 0 <= picked_message[1] < len(variant["messages"])
):
    message = variant["messages"][picked_message[1]]
    st.markdown("**Selected message**")
    st.code(
        f"{message['from']} -> {message['to']}: {message['label']}\n"
        f"{message['count']} calls, {message['errors']} failed, p50 "
        f"{fmt_duration(int(message['p50_ns']))}, p95 {fmt_duration(int(message['p95_ns']))}",
        language=None,
        wrap_lines=True,
    )

st.subheader("Traces of this message" if message else "Traces of this variant")
st.caption("Up to 20 examples, failing first. Open one to see it whole.")
st.dataframe(
    pl.DataFrame({"trace": [common.trace_link(t) for t in variant["trace_ids"]]}),
    hide_index=True,
    width="stretch",
    column_config={
        "trace": st.column_config.LinkColumn("trace", display_text=r"trace=([0-9a-f]+)")
    },
)
st.caption("Link to this view:")
link = {"flow": f"{root.partition(': ')[0]}:{root.partition(': ')[2]}"} if root else {}
if query is not None:
    link = {"flowq": query}
common.share_link({**link, **rng.link_params()})
