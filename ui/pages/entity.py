"""Entity: one sequence diagram for a business entity (``order.id=ORD-1002``) across all
the traces that carry it. Deep link: ``/?entity=KEY=VALUE``."""

from __future__ import annotations

import re
from typing import Any, Final

import polars as pl
import streamlit as st

from analyzer.source import SourceError, parse_entity
from ui import common, data, exports, replay, spanview
from ui.format import fmt_duration, fmt_time
from ui.logs_panel import logs_panel, untraced_search
from ui.seqplot import sequence_figure

PAGE_SIZE: Final = 300
#: label, format, file extension, mime type
EXPORTS: Final = (
    ("Mermaid", "mermaid", "mmd", "text/plain"),
    ("PlantUML", "plantuml", "puml", "text/plain"),
    ("SVG", "svg", "svg", "image/svg+xml"),
    ("Markdown", "markdown", "md", "text/markdown"),
)


def _range_words(selected: common.TimeRange) -> list[str]:
    """--from/--to of the page's range when the user narrowed it (else all the entity's
    traces, as the diagram draws them)."""
    return [w for k, v in selected.link_params().items() for w in (f"--{k}", v)]


stats = common.page(
    "Entity sequence diagram",
    "Every trace that carries the entity, as one sequence diagram: who called whom, in "
    "order, what failed. Click a message to see its span.",
)
rng = common.time_range(stats)

keys = common.fetch(data.entity_keys)
key_names = [str(k["key"]) for k in keys]
values_by_key = {str(k["key"]): int(k.get("values") or 0) for k in keys}

# A deep link (?entity=KEY=VALUE) sets the widgets once per distinct link.
deep = st.query_params.get("entity")
if deep and st.session_state.get("_entity_link") != deep:
    st.session_state["_entity_link"] = deep
    try:
        link_key, link_value = parse_entity(deep)
    except SourceError as exc:
        st.error(common.md(str(exc)))
    else:
        common.set_kept("entity_key", link_key)
        common.set_kept("entity_value", link_value)
if common.kept("entity_key") and common.kept("entity_key") not in key_names:
    key_names.append(str(common.kept("entity_key")))  # a key the store does not list
if not key_names:
    st.info(
        "No entity keys found: no span carries an attribute such as order.id, customer.id "
        "or another *.id. Add one to your spans (span.set_attribute('order.id', ...))."
    )
    st.stop()
default_key = common.kept("entity_key")
if default_key not in key_names:
    default_key = "order.id" if "order.id" in key_names else key_names[0]


def _key_changed() -> None:
    common.keep("entity_key")
    common.set_kept("entity_value", None)  # a value of the old key means nothing here


key_col, value_col, opt_col = st.columns([1, 2, 1], vertical_alignment="bottom")
key = key_col.selectbox(
    "Entity key",
    key_names,
    index=key_names.index(default_key),
    key="entity_key",
    on_change=_key_changed,
    format_func=lambda k: f"{k}  ({values_by_key[k]} values)" if k in values_by_key else k,
)
start = None if rng.everything else rng.start
end = None if rng.everything else rng.end
suggestions = common.fetch(data.entity_values, key, None, start, end, 500)
options = [str(v["value"]) for v in suggestions]
current_value = st.session_state.get("entity_value") or common.kept("entity_value")
if current_value and current_value not in options:
    options.insert(0, str(current_value))
counts = {str(v["value"]): v for v in suggestions}


def _value_label(value: str) -> str:
    info = counts.get(value)
    if not info:
        return value
    return f"{value}  ·  {info['traces']} traces · last {fmt_time(info['last_unix_nano'], False)}"


value = value_col.selectbox(
    "Value (type to search; newest first)",
    options,
    index=options.index(current_value) if current_value in options else None,
    **common.remembered("entity_value"),
    placeholder="e.g. ORD-1002",
    format_func=_value_label,
    accept_new_options=True,
)
show_internal = opt_col.toggle(
    "Internal spans",
    value=bool(common.kept("entity_internal", False)),
    **common.remembered("entity_internal"),
    help="Also draw INTERNAL spans (self-calls).",
)

if not value:
    st.info("Pick an entity value above, or open one of the newest:")
    if suggestions:
        st.dataframe(
            pl.DataFrame(
                [
                    {
                        "entity": common.entity_link(key, str(v["value"])),
                        "traces": int(v["traces"]),
                        "spans": int(v["spans"]),
                        "first seen (UTC)": fmt_time(v["first_unix_nano"]),
                        "last seen (UTC)": fmt_time(v["last_unix_nano"]),
                    }
                    for v in suggestions[:50]
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "entity": st.column_config.LinkColumn("entity", display_text=r"entity=(.*)$")
            },
        )
    st.stop()

entity = f"{key}={value}"
st.query_params["entity"] = entity
st.set_page_config(page_title=f"{entity} · seqtrace")

diagram, error = None, None
with st.spinner(f"Building the diagram of {entity}…"):
    diagram, error = common.try_fetch(data.diagram, entity, None, start, end, show_internal)
if diagram is None:
    st.warning("No diagram for this entity in the selected time range.")
    st.code(error or "", language=None, wrap_lines=True)
    st.stop()

messages: list[dict[str, Any]] = list(diagram.get("messages") or [])
traces: list[str] = list(diagram.get("traces") or [])
errors = [m for m in messages if m.get("status") == "error" and m.get("kind") != "return"]
cols = st.columns(5)
cols[0].metric("Traces", len(traces))
cols[1].metric("Messages", len(messages))
cols[2].metric("Failed calls", len(errors))
cols[3].metric("Participants", len(diagram.get("participants") or []))
if messages:
    first = min(int(m["start_unix_nano"]) for m in messages)
    last = max(int(m["start_unix_nano"]) + int(m.get("duration_ns") or 0) for m in messages)
    cols[4].metric("Spread", fmt_duration(last - first))
    st.caption(f"From {fmt_time(first)} to {fmt_time(last)}")
st.text(f"Entity: {entity}")
folded = [m for m in messages if m.get("trace_ids")]
if folded or diagram.get("omitted_messages"):
    # A busy entity (SPEC "Busy entities"): say what was folded and what was left out.
    summary = next(
        (str(n["text"]) for n in diagram.get("notes") or [] if n.get("kind") == "omitted"), ""
    )
    st.info(
        "Folded: "
        + (summary or f"{diagram.get('omitted_messages')} successful messages omitted")
        + ". An arrow marked \u00d7N stands for N calls; every failed message is drawn.",
        icon=":material/compress:",
    )

offset = 0
if len(messages) > PAGE_SIZE:
    offset = (
        st.number_input(
            f"{len(messages)} messages: showing {PAGE_SIZE} from message number",
            min_value=1,
            max_value=len(messages),
            value=1,
            step=PAGE_SIZE,
            key="entity_offset",
        )
        - 1
    )

selected: int | None = st.session_state.get("entity_selected")
if selected is not None and (
    selected >= len(messages) or st.session_state.get("_entity_sel_for") != entity
):
    selected = None
chart_key = f"entity_chart_{entity}_{show_internal}_{offset}"


def _on_pick() -> None:
    """A click on a message's dot: remember it (highlight) and open its span."""
    event = st.session_state.get(chart_key)
    index = spanview.picked(event, int)
    st.session_state["entity_selected"] = index
    st.session_state["_entity_sel_for"] = entity
    st.session_state["entity_pick"] = index


figure = sequence_figure(diagram, offset=offset, limit=PAGE_SIZE, selected=selected)
common.sequence_chart(
    figure,
    chart_key,
    "entity_sequence",
    on_select=_on_pick,
    selection_mode="points",
    config={"displayModeBar": False, "scrollZoom": False},
)
st.caption("Hover a message for its details; click its dot to open the whole span.")
pick = st.session_state.pop("entity_pick", None)
entity_logs: list[dict[str, Any]] = list(diagram.get("logs") or [])  # of the drawn spans
if isinstance(pick, int) and 0 <= pick < len(messages):
    picked_message = messages[pick]
    at_message = [r for r in entity_logs if r.get("message_index") == pick]
    spanview.span_dialog(
        str(picked_message["trace_id"]),
        str(picked_message["span_id"]),
        at_message
        + [
            r
            for r in entity_logs
            if r.get("span_id") == picked_message.get("server_span_id") and r not in at_message
        ],
    )

# ----------------------------------------------------------------------------- logs
logs_panel(entity_logs, key="entity_logs")
untraced_search(start, end, list(common.store_stats().get("services") or []), key="entity")

# ----------------------------------------------------------------------------- exports
st.subheader("Export")
safe_name = re.sub(r"[^A-Za-z0-9._=-]+", "_", entity)[:120] or "diagram"
export_cols = st.columns(len(EXPORTS) + 2)
for col, (label, fmt, ext, mime) in zip(export_cols, EXPORTS, strict=False):
    text, export_error = common.try_fetch(
        data.diagram_text, fmt, entity, None, start, end, show_internal
    )
    col.download_button(
        label,
        data=text or "",
        file_name=f"{safe_name}.{ext}",
        mime=mime,
        key=f"export_{fmt}",
        disabled=text is None,
        help=export_error if text is None else f"Download the diagram as {label}",
        icon=":material/download:",
        on_click="ignore",
    )
common.json_download(
    "JSON", diagram, f"{safe_name}.json", key="export_json", container=export_cols[-2]
)


source_now = data.get_source()
spec_now = common.kept("slo_spec") if isinstance(common.kept("slo_spec"), str) else None
export_cols[-1].download_button(
    "Postmortem",
    data=lambda: exports.postmortem_zip(source_now, entity, start, end, spec_now),
    file_name=f"postmortem-{safe_name}.zip",
    mime="application/zip",
    key="export_postmortem",
    icon=":material/folder_zip:",
    on_click="ignore",
    help="A postmortem bundle (zip): postmortem.md with the diagram inline, timeline, "
    "failures, SLO impact (with the spec from the SLOs page), and the diagram files.",
)

replay.replay_expander(
    ["--entity", entity, *_range_words(rng)], f"{entity}'s traces", key="entity_replay"
)

# ----------------------------------------------------------------------------- traces
st.subheader("Traces of this entity")
rows = []
for trace_id in traces:
    own = [m for m in messages if m.get("trace_id") == trace_id]
    rows.append(
        {
            "started (UTC)": fmt_time(min((int(m["start_unix_nano"]) for m in own), default=None))
            if own
            else "",
            "messages": len(own),
            "failed calls": sum(
                1 for m in own if m.get("status") == "error" and m.get("kind") != "return"
            ),
            "trace": common.trace_link(trace_id),
        }
    )
if rows:
    common.link_table(pl.DataFrame(rows), "trace", "trace", r"trace=([0-9a-f]+)")

st.caption("Link to this view:")
common.share_link({"entity": entity, **rng.link_params()})
