"""Service map: who calls whom in the selected range; edge width = calls, colour = error
rate (green none, amber under 5 %, red 5 % and more)."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from ui import charts, common, data

stats = common.page(
    "Service map",
    "Callers on the left, callees to the right. Edge width grows with calls; colour is "
    "the error rate (green 0 %, amber < 5 %, red ≥ 5 %). Hover an edge's dot for numbers.",
)
rng = common.time_range(stats)

smap: dict[str, Any] = common.fetch(
    data.service_map, rng.start, rng.end, spinner="Drawing the service map…"
)
st.caption(f"Range: {rng.label} — {rng.describe()}")
if not smap.get("nodes"):
    st.info("No spans in this time range.")
    st.stop()

st.plotly_chart(
    charts.service_map_figure(smap), key="service_map", config={"displayModeBar": False}
)

edges = pl.DataFrame(
    smap.get("edges") or [],
    schema={
        "from": pl.String,
        "to": pl.String,
        "calls": pl.Int64,
        "errors": pl.Int64,
        "error_rate": pl.Float64,
        "p50_ms": pl.Float64,
    },
)
if edges.height:
    st.subheader("Calls")
    st.dataframe(
        edges.with_columns((pl.col("error_rate") * 100).round(2).alias("error %"))
        .drop("error_rate")
        .sort(["errors", "calls"], descending=True),
        hide_index=True,
        width="stretch",
        column_config={"p50_ms": st.column_config.NumberColumn("p50 (ms)", format="%.1f")},
    )
