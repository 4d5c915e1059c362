"""Contracts: paste or upload a sequence contract (docs/contracts.md), check every entity of a
key (or one entity) over the time range, and see the diff of each violating entity.

Span text is shown as text only: tables (st.dataframe), code blocks (st.code) and
markdown with every special character escaped (common.md); never as HTML.
"""

from __future__ import annotations

from typing import Any, Final

import polars as pl
import streamlit as st

from analyzer.contracts import (
    ContractSyntaxError,
    contract_check,
    contract_diff,
    contract_init,
    render_diff_mermaid,
)
from analyzer.source import SourceError
from ui import common, data, replay

TEXT_KEY: Final = "contract_text"
MAX_ROWS: Final = 2_000
MAX_CHOICES: Final = 500
STARTER: Final = """\
%% Paste a contract here, upload a .mmd file, or draft one from an entity (right).
sequenceDiagram
    actor client
    client->>frontend: POST /api/checkout
    frontend->>checkout: POST /api/orders
"""


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _check(
    src: str,
    name: str,
    text: str,
    entity: str | None,
    key: str | None,
    start: int | None,
    end: int | None,
) -> dict[str, Any]:
    return contract_check(
        data.get_source(), [(name, text)], entity=entity, key=key, start=start, end=end, steps=False
    )


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _diff(
    src: str, name: str, text: str, entity: str, start: int | None, end: int | None
) -> dict[str, Any]:
    return contract_diff(data.get_source(), text, entity, start, end, name)


def _load_upload() -> None:
    upload = st.session_state.get("contract_upload")
    if upload is not None:
        st.session_state[TEXT_KEY] = upload.getvalue().decode("utf-8", "replace")
        st.session_state["contract_name"] = str(upload.name)


def _draft(start: int | None, end: int | None) -> None:
    entity = str(st.session_state.get("contract_draft_entity") or "").strip()
    if not entity:
        st.session_state["contract_draft_error"] = "Give an entity as KEY=VALUE to draft from."
        return
    try:
        st.session_state[TEXT_KEY] = contract_init(data.get_source(), entity, start, end)
        st.session_state["contract_name"] = entity.replace("=", "_") + ".mmd"
        st.session_state["contract_draft_error"] = ""
    except (SourceError, ValueError, data.SourceUnavailable) as exc:
        st.session_state["contract_draft_error"] = str(exc)


stats = common.page(
    "Contracts",
    "A contract is a Mermaid sequence diagram of how a business flow should go. Check the "
    "stored traffic against it: missing and unexpected calls, calls out of order, sync/async "
    "mismatches and failures. Rules: docs/contracts.md.",
)
window = common.time_range(stats)
st.caption(f"Time range: {common.md(window.describe())} (change it in the sidebar)")

if TEXT_KEY not in st.session_state:
    st.session_state[TEXT_KEY] = STARTER
    st.session_state["contract_name"] = "contract.mmd"

text_col, side_col = st.columns([3, 2])
with side_col:
    st.file_uploader(
        "Upload a contract (.mmd)",
        type=["mmd", "mermaid", "md", "txt"],
        key="contract_upload",
        on_change=_load_upload,
    )
    st.text_input(
        "Draft from an entity", key="contract_draft_entity", placeholder="order.id=ORD-1001"
    )
    st.button(
        "Draft contract",
        on_click=_draft,
        args=(window.start, window.end),
        help="Writes the entity's observed sequence (in the time range) as a contract.",
    )
    draft_error = st.session_state.get("contract_draft_error")
    if draft_error:
        st.error(common.md(draft_error))
with text_col:
    contract_text = st.text_area("Contract", key=TEXT_KEY, height=320)
contract_name = str(st.session_state.get("contract_name") or "contract.mmd")

keys = [str(k.get("key")) for k in common.fetch(data.entity_keys)]
scope = st.radio(
    "Check", ["Every entity of a key", "One entity"], horizontal=True, key="contract_scope"
)
entity: str | None = None
key: str | None = None
if scope == "One entity":
    entity = (
        st.text_input("Entity", key="contract_entity", placeholder="order.id=ORD-1001").strip()
        or None
    )
    if entity is None:
        st.info("Give an entity as KEY=VALUE.")
        st.stop()
else:
    if not keys:
        st.info("No entity keys are stored yet.")
        st.stop()
    index = keys.index("order.id") if "order.id" in keys else 0
    key = st.selectbox("Entity key", keys, index=index, key="contract_key")

if not contract_text.strip():
    st.info("Paste a contract above.")
    st.stop()

try:
    with st.spinner("Checking…"):
        result = _check(
            common.src(), contract_name, contract_text, entity, key, window.start, window.end
        )
except ContractSyntaxError as exc:
    st.error("The contract is outside the supported Mermaid subset:")
    st.code(str(exc), language=None, wrap_lines=True)
    st.stop()
except SourceError as exc:
    common.stop_with(str(exc), "warning" if exc.status == 404 else "error")
except data.SourceUnavailable as exc:
    common.stop_with(str(exc))

report = result["contracts"][0]
checked, conforming = int(report["checked"]), int(report["conforming"])
left, middle, right = st.columns(3)
left.metric("Entities checked", checked)
middle.metric("Conform", conforming)
right.metric("Violate", checked - conforming)
if checked == 0:
    st.info("No entity of that key has spans in the time range.")
    st.stop()
if checked == conforming:
    st.success(f"Every entity conforms to {common.md(contract_name)}.")
elif report.get("runbook"):  # what to do about the violations, next to them
    st.warning(
        f"{checked - conforming} violate {common.md(contract_name)}: runbook "
        + replay.runbook_markdown(str(report["runbook"])),
        icon="📕",
    )

rows = [
    {
        "entity": f"{r['entity']['key']}={r['entity']['value']}",
        "result": "✓ conforms" if r["conforming"] else "✗ violates",
        "violations": int(r["violations"]),
        "kinds": ", ".join(f"{n} {k}" for k, n in sorted((r.get("kinds") or {}).items())),
        "traces": int(r.get("traces") or 0),
    }
    for r in report.get("entities") or []
]
rows.sort(key=lambda r: (-r["violations"], r["entity"]))
st.dataframe(pl.DataFrame(rows[:MAX_ROWS]), hide_index=True, width="stretch", key="contract_table")
if len(rows) > MAX_ROWS:
    st.caption(f"The first {MAX_ROWS} of {len(rows)} entities.")

violating = [r["entity"] for r in rows if r["violations"]]
if not violating:
    st.stop()

st.subheader("Diff of a violating entity")
chosen = st.selectbox("Entity", violating[:MAX_CHOICES], key="contract_diff_entity")
if chosen:
    try:
        diff = _diff(common.src(), contract_name, contract_text, chosen, window.start, window.end)
    except SourceError as exc:
        common.stop_with(str(exc), "warning" if exc.status == 404 else "error")
    summary = diff["summary"]
    st.caption(
        common.md(
            f"{chosen} against {contract_name}: {summary['missing']} missing, "
            f"{summary['unexpected']} unexpected, {summary['changed']} changed, "
            f"{summary['same']} as drawn"
        )
    )
    st.code(render_diff_mermaid(diff), language=None)
    differences = [
        {
            "#": int(s["step"]) + 1,
            "difference": ", ".join(s.get("problems") or []) or s["status"],
            "expected": s.get("expected") or "",
            "observed": s.get("observed") or "",
            "detail": s.get("message") or "",
            "trace": (s.get("trace_id") or "")[:16],
        }
        for s in diff["steps"]
        if s["status"] != "same"
    ]
    st.dataframe(
        pl.DataFrame(differences), hide_index=True, width="stretch", key="contract_diff_table"
    )
    st.markdown(f"[Open the entity's diagram]({common.entity_link(*chosen.split('=', 1))})")
