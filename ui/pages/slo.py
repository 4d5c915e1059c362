"""SLOs: paste or upload a spec (SPEC "SLO spec file"), see budgets, burn rates, alerts and
the entities hit by bad events."""

from __future__ import annotations

import time
from typing import Any, Final

import polars as pl
import streamlit as st

from analyzer.source import SourceError
from analyzer.timeparse import parse_time
from ui import charts, common, data, replay
from ui.format import fmt_time

DEMO_SPEC: Final = """\
# Edit me: one entry per SLO (format: docs/reports.md, "The spec").
slos:
  - name: checkout-availability
    service: frontend
    operation: "POST /api/checkout"
    sli: availability
    objective: 99.5
    window: 30d
    runbook: https://runbooks.example.com/shop/checkout#availability
  - name: checkout-latency
    service: frontend
    operation: "POST /api/checkout"
    sli: latency
    threshold_ms: 500
    objective: 99
    window: 30d
  - name: payments-availability
    service: payment
    operation: "POST /api/payments"
    sli: availability
    objective: 99.9
    window: 7d
    runbook: docs/runbooks/payments.md
"""


def starter_spec(recent: list[dict[str, Any]]) -> str:
    """An availability SLO for each of the busiest root operations seen lately."""
    seen: dict[tuple[str, str], int] = {}
    for t in recent:
        pair = (str(t.get("service_name")), str(t.get("name")))
        seen[pair] = seen.get(pair, 0) + 1
    top = sorted(seen, key=lambda p: -seen[p])[:3]
    if not top:
        return DEMO_SPEC
    lines = ["# A starter spec from the newest root operations: edit me.", "slos:"]
    for i, (service, operation) in enumerate(top, 1):
        op = operation.replace("\\", "\\\\").replace('"', '\\"')
        lines += [
            f"  - name: slo-{i}-{service}",
            f"    service: {service}",
            f'    operation: "{op}"',
            "    sli: availability",
            "    objective: 99.5",
            "    window: 30d",
        ]
    return "\n".join(lines) + "\n"


stats = common.page(
    "SLOs",
    "Service level objectives evaluated on the stored spans: how much error budget is "
    "left, how fast it burns, which alerts fire, and which entities the bad events hit.",
)

if common.kept("slo_spec") is None:
    services = set(stats.get("services") or [])
    if {"frontend", "checkout", "payment"} <= services:
        common.set_kept("slo_spec", DEMO_SPEC)
    else:
        common.set_kept("slo_spec", starter_spec(common.fetch(data.recent_traces, 200)))


def _load_upload() -> None:
    upload = st.session_state.get("slo_upload")
    if upload is not None:
        common.set_kept("slo_spec", upload.getvalue().decode("utf-8", "replace"))


spec_col, opts_col = st.columns([3, 1])
with opts_col:
    st.file_uploader(
        "Upload a spec (YAML or JSON)",
        type=["yaml", "yml", "json"],
        key="slo_upload",
        on_change=_load_upload,
    )
    at_text = st.text_input(
        "Evaluate at",
        **common.kept_text("slo_at"),
        placeholder="newest span (default)",
        help="RFC 3339 (2026-11-20T10:00:00Z) or relative to now (-1h). Empty: the newest "
        "stored span's time, so an old incident database shows that incident.",
    )
with spec_col:
    spec_text = st.text_area(
        "SLO spec",
        **common.kept_text("slo_spec"),
        height=300,
    )

at: int | None = None
if at_text.strip():
    try:
        at = parse_time(at_text.strip(), time.time_ns())
    except ValueError as exc:
        st.error(common.md(str(exc)))
        st.stop()

if not spec_text.strip():
    st.info("Paste an SLO spec above.")
    st.stop()

try:
    with st.spinner("Evaluating the SLOs…"):
        report = data.slo(common.src(), spec_text, at)
except (SourceError, ValueError) as exc:  # LocalSource raises the spec's ValueError
    st.error("The spec has a problem:")
    st.code(str(exc), language=None, wrap_lines=True)
    st.stop()
except data.SourceUnavailable as exc:
    common.stop_with(str(exc))

slos: list[dict[str, Any]] = list(report.get("slos") or [])
st.caption(f"Evaluated at {fmt_time(report.get('at_unix_nano'))}")
if not slos:
    st.info("The spec has no SLOs.")
    st.stop()

# --------------------------------------------------------------------------- alerts first
firing = [(s, a) for s in slos for a in s.get("alerts") or []]
if firing:  # pages first
    firing.sort(key=lambda pair: pair[1].get("severity") != "page")
    for slo, alert in firing:
        text = (
            f"{str(alert.get('severity', '')).upper()}: {slo.get('name')} burns its budget at "
            f"{float(alert.get('burn_rate') or 0):.1f}x over {alert.get('long_window')} "
            f"(and over {alert.get('short_window')})"
        )
        shown = common.md(text)
        if slo.get("runbook"):  # what to do, next to the alert
            shown += " — runbook: " + replay.runbook_markdown(str(slo["runbook"]))
        if alert.get("severity") == "page":
            st.error(shown, icon="🚨")
        else:
            st.warning(shown, icon="🎫")
overspent = [s for s in slos if float(s.get("error_budget_remaining") or 0) < 0]
if overspent:
    st.warning(
        common.md(
            "Error budget overspent: "
            + ", ".join(
                f"{s.get('name')} ({100 * float(s['error_budget_remaining']):.0f}%)"
                for s in overspent
            )
        ),
        icon="⚠️",
    )
if not firing:
    st.success(
        "No burn-rate alert fires now (an alert needs both its long and its short window "
        "burning; an incident that has stopped no longer pages)."
        if overspent
        else "No burn-rate alert fires."
    )

table = pl.DataFrame(
    [
        {
            "SLO": str(s.get("name")),
            "window": str(s.get("window")),
            "objective %": float(s.get("objective") or 0),
            "SLI %": round(100 * float(s.get("sli") or 0), 3),
            "budget left %": round(100 * float(s.get("error_budget_remaining") or 0), 1),
            "events": int(s.get("total") or 0),
            "bad": int(s.get("bad") or 0),
            "good but partial": int(s.get("partial") or 0),
            "alerts": ", ".join(
                f"{a.get('severity')} {a.get('long_window')}" for a in s.get("alerts") or []
            )
            or "none",
            "runbook": str(s.get("runbook") or ""),
        }
        for s in slos
    ]
)
st.dataframe(table, hide_index=True, width="stretch", key="slo_table")
with_runbooks = [s for s in slos if s.get("runbook")]
if with_runbooks:
    st.markdown(
        "**Runbooks**\n\n"
        + "\n".join(
            f"- {common.md(s.get('name'))}: {replay.runbook_markdown(str(s['runbook']))}"
            for s in with_runbooks
        )
    )

left, right = st.columns(2)
left.plotly_chart(charts.budget_figure(slos), key="slo_budget", config={"displayModeBar": False})
right.plotly_chart(charts.burn_figure(slos), key="slo_burn", config={"displayModeBar": False})

st.subheader("Entities hit by bad events")
entity_rows = [
    {"SLO": str(s.get("name")), "entity": common.entity_link(str(k), str(v))}
    for s in slos
    for k, values in (s.get("affected_entities") or {}).items()
    for v in values
]
if entity_rows:
    common.link_table(pl.DataFrame(entity_rows), "entity", "entity diagram", r"entity=(.*)$")
else:
    st.caption("No bad events, so no affected entities.")
