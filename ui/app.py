"""seqtrace UI: ``streamlit run ui/app.py`` (or ``seqtrace up`` / ``seqtrace ui``).

The entry point: page setup, navigation, deep links, and the sidebar (data source and
time range). The pages live in ``ui/pages/``; the data comes from ``ui/data.py``.

Deep links (SPEC "UI deep links"): ``/?entity=KEY=VALUE`` opens the entity's sequence
diagram, ``/?trace=ID`` one trace, ``/?failures`` the partial-failure report,
``/?flow=SERVICE:OPERATION`` the variants of that root operation; optional
``from``/``to`` (RFC 3339 or relative) set the time range.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project: make `import ui` work
# from a source checkout as it does from an installed package.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from ui import common, data  # noqa: E402
from ui.format import fmt_duration, fmt_time  # noqa: E402

st.set_page_config(page_title="seqtrace", page_icon="🧭", layout="wide")

_PAGES_DIR = Path(__file__).resolve().parent / "pages"
PAGES = {
    "overview": st.Page(
        _PAGES_DIR / "overview.py", title="Overview", icon=":material/monitoring:", default=True
    ),
    "entity": st.Page(
        _PAGES_DIR / "entity.py", title="Entity", icon=":material/account_tree:", url_path="entity"
    ),
    "trace": st.Page(
        _PAGES_DIR / "trace.py", title="Trace", icon=":material/timeline:", url_path="trace"
    ),
    "failures": st.Page(
        _PAGES_DIR / "failures.py",
        title="Failures",
        icon=":material/error:",
        url_path="failures",
    ),
    "flow": st.Page(
        _PAGES_DIR / "flows.py", title="Flows", icon=":material/alt_route:", url_path="flows"
    ),
    "slo": st.Page(_PAGES_DIR / "slo.py", title="SLOs", icon=":material/speed:", url_path="slo"),
    "service_map": st.Page(
        _PAGES_DIR / "service_map.py",
        title="Service map",
        icon=":material/hub:",
        url_path="service-map",
    ),
    "contracts": st.Page(
        _PAGES_DIR / "contracts.py", title="Contracts", icon=":material/rule:", url_path="contracts"
    ),
}

page = st.navigation(list(PAGES.values()))

# Deep links arrive at "/" (the default page): send them to their page, keeping the query.
if page.url_path == PAGES["overview"].url_path:
    params = st.query_params.to_dict()
    for name in ("entity", "trace", "failures", "flow"):
        if name in params:
            st.switch_page(PAGES[name], query_params=params)

# ----------------------------------------------------------------------------- sidebar
config = data.source_config()
stats, error = common.try_fetch(data.stats)
with st.sidebar:
    st.markdown("### seqtrace")
    st.caption(f"Reading {config.describe()}")
    if error:
        st.error(error)
    elif stats and stats.get("last_unix_nano"):
        newest = int(stats["last_unix_nano"])
        age = time.time_ns() - newest
        st.caption(
            f"{stats['spans']:,} spans · {stats['traces']:,} traces · "
            f"newest span {fmt_time(newest, False)}"
            + (f" ({fmt_duration(age)} ago)" if age > 0 else "")
        )
common.time_range_sidebar(stats)

page.run()
