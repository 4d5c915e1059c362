"""seqtrace UI: ``streamlit run ui/app.py`` (or ``seqtrace up`` / ``seqtrace ui``).

The entry point: page setup, navigation, deep links, and the sidebar (data source and
time range). The pages live in ``ui/pages/``; the data comes from ``ui/data.py``.

Deep links (SPEC "UI deep links"): ``/?entity=KEY=VALUE`` opens the entity's sequence
diagram, ``/?trace=ID`` one trace, ``/?failures`` the partial-failure report,
``/?flow=SERVICE:OPERATION`` the variants of that root operation, ``/?q=QUERY`` the search
page with the query run, ``/?flowq=QUERY`` the variants of the traces it selects; optional
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


def _page(name: str, title: str, icon: str) -> st.Page:
    """``ui/pages/NAME.py`` at ``/NAME`` (``_`` as ``-``), with a Material icon."""
    return st.Page(
        _PAGES_DIR / f"{name}.py",
        title=title,
        icon=f":material/{icon}:",
        url_path=name.replace("_", "-"),
    )


PAGES = {
    "overview": st.Page(
        _PAGES_DIR / "overview.py", title="Overview", icon=":material/monitoring:", default=True
    ),
    "entity": _page("entity", "Entity", "account_tree"),
    "trace": _page("trace", "Trace", "timeline"),
    "failures": _page("failures", "Failures", "error"),
    "flow": _page("flows", "Flows", "alt_route"),
    "slo": _page("slo", "SLOs", "speed"),
    "search": _page("search", "Search", "search"),
    "service_map": _page("service_map", "Service map", "hub"),
    "contracts": _page("contracts", "Contracts", "rule"),
}

page = st.navigation(list(PAGES.values()))

# Deep links arrive at "/" (the default page): send them to their page, keeping the query.
if page.url_path == PAGES["overview"].url_path:
    params = st.query_params.to_dict()
    for name in ("entity", "trace", "failures", "flow"):
        if name in params:
            st.switch_page(PAGES[name], query_params=params)
    if "q" in params:  # /?q=QUERY: the search page with the query run
        st.switch_page(PAGES["search"], query_params=params)
    if "flowq" in params:  # /?flowq=QUERY: the flows of the query's traces
        st.switch_page(PAGES["flow"], query_params=params)

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
