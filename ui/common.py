"""Pieces every page uses: the time range, error handling, links, the empty-store note."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeVar

import streamlit as st

from analyzer.escaping import markdown_literal
from analyzer.source import SourceError
from analyzer.timeparse import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, parse_time
from ui import data
from ui.format import fmt_time, rfc3339
from ui.live import recorded

T = TypeVar("T")

EMPTY_STORE: Final = (
    "No spans yet. Point an exporter at it: "
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 or run `seqtrace load FILE`"
)

#: label -> length of the window that ends at the newest stored span (None: everything)
PRESETS: Final[dict[str, int | None]] = {
    "Everything stored": None,
    "Last 15 min of data": 15 * NS_PER_MINUTE,
    "Last 1 h of data": NS_PER_HOUR,
    "Last 6 h of data": 6 * NS_PER_HOUR,
    "Last 24 h of data": NS_PER_DAY,
    "Last 7 days of data": 7 * NS_PER_DAY,
}
CUSTOM: Final = "Custom (from / to)"
#: The default is "Everything stored" unless the store covers more than this.
_ALL_BY_DEFAULT_NS: Final = 7 * NS_PER_DAY


def src() -> str:
    """The cache key of the current source."""
    return data.source_config().key


#: ``text`` for a markdown element (st.error, st.caption...), every markdown and HTML
#: character backslash-escaped so it shows literally: messages can quote span data.
md = markdown_literal


def stop_with(message: str, kind: str = "error") -> NoReturn:
    getattr(st, kind)(md(message))
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises; this keeps the type checker happy


def fetch(fn: Callable[..., T], *args: Any, spinner: str | None = None) -> T:
    """Call a cached read; a read that fails shows its one-line message and ends the page."""
    try:
        if spinner:
            with st.spinner(spinner):
                return recorded(lambda: fn(src(), *args))
        return recorded(lambda: fn(src(), *args))
    except data.SourceUnavailable as exc:
        stop_with(str(exc))
    except SourceError as exc:
        stop_with(str(exc), "warning" if exc.status == 404 else "error")


def try_fetch(fn: Callable[..., T], *args: Any) -> tuple[T | None, str | None]:
    """Like :func:`fetch` but hands the error back instead of ending the page."""
    try:
        return recorded(lambda: fn(src(), *args)), None
    except (data.SourceUnavailable, SourceError) as exc:
        return None, str(exc)


def store_stats() -> dict[str, Any]:
    result: dict[str, Any] = fetch(data.stats)
    return result


def show_empty_store() -> None:
    st.info(EMPTY_STORE, icon="📭")
    st.code(
        "export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318\n"
        "# or import a file:\n"
        "seqtrace load traces.json",
        language="bash",
    )


def page(title: str, caption: str) -> dict[str, Any]:
    """Every page's head: its title and what it shows, then the store's stats; an empty
    store shows how to send spans and ends the page."""
    st.title(title)
    st.caption(caption)
    stats = store_stats()
    if not stats.get("spans"):
        show_empty_store()
        st.stop()
    return stats


def json_download(label: str, value: Any, file_name: str, **options: Any) -> None:
    """A button that downloads ``value`` as a JSON file (the page does not rerun)."""
    container = options.pop("container", st)
    container.download_button(
        label,
        data=json.dumps(value, indent=options.pop("indent", 2), ensure_ascii=False),
        file_name=file_name,
        mime="application/json",
        icon=":material/download:",
        on_click="ignore",
        **options,
    )


#: A table column of trace links (``common.trace_link``), shown by the id's first digits.
TRACE_LINK_COLUMN: Final = st.column_config.LinkColumn(
    "trace", display_text=r"trace=([0-9a-f]{12})", help="Open the trace"
)


def entity_link_column(help: str) -> Any:
    """A table column of entity links (``common.entity_link``), shown as KEY=VALUE."""
    return st.column_config.LinkColumn("entity diagram", display_text=r"entity=(.*)$", help=help)


def trace_table(rows: Any, key: str, entity_help: str, **columns: Any) -> None:
    """A table of traces whose ``trace`` and ``entity`` columns link to the trace and the
    entity's diagram; ``columns``: the other columns' configuration."""
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            "trace": TRACE_LINK_COLUMN,
            "entity": entity_link_column(entity_help),
            **columns,
        },
    )


def link_table(rows: Any, column: str, label: str, pattern: str) -> None:
    """A table whose ``column`` holds links shown by what ``pattern`` captures."""
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={column: st.column_config.LinkColumn(label, display_text=pattern)},
    )


# --------------------------------------------------------------------------- widget memory
# Streamlit forgets a widget's value on a run that does not draw it, so going to another
# page and back would reset every field. Widgets copy their value to ``keep_<key>`` on
# change and start from it; code that wants to set a widget (a deep link) sets
# ``keep_<key>`` and drops the widget's own state (``set_kept``).


def kept(key: str, default: Any = None) -> Any:
    return st.session_state.get(f"keep_{key}", default)


def keep(key: str) -> None:
    """on_change callback: remember the widget's value across pages."""
    st.session_state[f"keep_{key}"] = st.session_state.get(key)


def set_kept(key: str, value: Any) -> None:
    st.session_state[f"keep_{key}"] = value
    st.session_state.pop(key, None)


def remembered(key: str) -> dict[str, Any]:
    """A widget's ``key`` and the callback that remembers its value: ``**remembered(k)``."""
    return {"key": key, "on_change": keep, "args": (key,)}


def kept_text(key: str) -> dict[str, Any]:
    """:func:`remembered` plus the text the widget last held (text inputs and areas)."""
    return {"value": str(kept(key, "") or ""), **remembered(key)}


def kept_selectbox(label: str, options: list[str], key: str, **widget: Any) -> Any:
    """A remembered selectbox that starts at its last value (the first option when that
    is not offered)."""
    last = kept(key)
    index = options.index(last) if last in options else 0
    return st.selectbox(label, options, index=index, **remembered(key), **widget)


# --------------------------------------------------------------------------- time range


@dataclass(frozen=True)
class TimeRange:
    start: int | None
    end: int | None
    everything: bool
    label: str
    error: str | None = None

    def describe(self) -> str:
        if self.start is None or self.end is None:
            return "no spans stored"
        return f"{fmt_time(self.start, False)} → {fmt_time(self.end, False)}"

    def link_params(self) -> dict[str, str]:
        """``from``/``to`` for a shareable link; nothing when the range is the default."""
        if self.everything or self.start is None or self.end is None:
            return {}
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[-1]) if value else ""
    return str(value)


_STATE: Final = {
    "range": "range_choice",
    "range_from": "range_from_text",
    "range_to": "range_to_text",
}


def _keep(widget_key: str) -> None:
    """Copy a sidebar widget's value to a plain session key: widget state is dropped on
    runs that do not draw the widget, the plain key survives page changes."""
    st.session_state[_STATE[widget_key]] = st.session_state[widget_key]


def time_range_sidebar(stats: dict[str, Any] | None) -> None:
    """The sidebar's range picker (rendered once, in app.py; pages read :func:`time_range`)."""
    if _STATE["range"] not in st.session_state:
        params = st.query_params
        if "from" in params or "to" in params:
            st.session_state[_STATE["range"]] = CUSTOM
            st.session_state[_STATE["range_from"]] = _first(params.get("from", ""))
            st.session_state[_STATE["range_to"]] = _first(params.get("to", "now"))
        else:
            first = (stats or {}).get("first_unix_nano")
            last = (stats or {}).get("last_unix_nano")
            wide = first is not None and last is not None and last - first > _ALL_BY_DEFAULT_NS
            st.session_state[_STATE["range"]] = "Last 24 h of data" if wide else "Everything stored"
    options = [*PRESETS, CUSTOM]
    choice = st.session_state[_STATE["range"]]
    st.sidebar.selectbox(
        "Time range",
        options,
        index=options.index(choice) if choice in options else 0,
        key="range",
        on_change=_keep,
        args=("range",),
        help="Windows end at the newest stored span, so a database copied from an old "
        "incident still shows that incident.",
    )
    if st.session_state[_STATE["range"]] == CUSTOM:
        for key, label, placeholder in (
            ("range_from", "From", "2026-11-25T10:00:00Z or -1h"),
            ("range_to", "To", "now"),
        ):
            st.sidebar.text_input(
                label,
                value=str(st.session_state.get(_STATE[key]) or ""),
                key=key,
                on_change=_keep,
                args=(key,),
                placeholder=placeholder,
            )
    current = time_range(stats)
    if current.error:
        st.sidebar.error(md(current.error))
    st.sidebar.caption(current.describe())


def time_range(stats: dict[str, Any] | None) -> TimeRange:
    choice = st.session_state.get(_STATE["range"], "Everything stored")
    first = (stats or {}).get("first_unix_nano")
    last = (stats or {}).get("last_unix_nano")
    if choice == CUSTOM:
        now = time.time_ns()
        text_from = str(st.session_state.get(_STATE["range_from"]) or "").strip()
        text_to = str(st.session_state.get(_STATE["range_to"]) or "").strip() or "now"
        try:
            start = parse_time(text_from, now) if text_from else (first or 0)
            end = parse_time(text_to, now)
        except ValueError as exc:
            return _everything(first, last, str(exc))
        if end <= start:
            return _everything(first, last, "'To' must be after 'From'.")
        return TimeRange(start, end, False, CUSTOM)
    if first is None or last is None:
        return TimeRange(None, None, True, choice)
    window = PRESETS.get(choice)
    if window is None:
        return _everything(first, last)
    return TimeRange(last + 1 - window, last + 1, False, choice)


def _everything(first: int | None, last: int | None, error: str | None = None) -> TimeRange:
    label = "Everything stored" + (" (the custom range is invalid)" if error else "")
    if first is None or last is None:
        return TimeRange(None, None, True, label, error)
    return TimeRange(first, last + 1, True, label, error)


# --------------------------------------------------------------------------- links


def base_url() -> str:
    """The app's address as the browser sees it, for links to copy into a chat."""
    url = ""
    try:
        url = st.context.url or ""
    except Exception:  # older runtimes, tests
        url = ""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return "http://localhost:8501"
    base_path = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{parts.scheme}://{parts.netloc}" + (f"/{base_path}" if base_path else "")


def query_string(params: dict[str, str]) -> str:
    """``entity=order.id=ORD-1002&from=...``; a flag without a value stays bare
    (``failures``), as SPEC writes it. ``=``, ``:`` and ``/`` stay readable."""
    parts = []
    for key, value in params.items():
        name = urllib.parse.quote(key, safe="")
        parts.append(name if value == "" else f"{name}={urllib.parse.quote(value, safe='=:/.,@')}")
    return "&".join(parts)


def link(**params: str) -> str:
    """A relative deep link (``./?entity=order.id=ORD-1002``) for tables and markdown."""
    return f"./?{query_string(params)}" if params else "./"


def share_link(params: dict[str, str]) -> None:
    """Show the current view's shareable link (SPEC "UI deep links") in a copyable box."""
    query = query_string(params)
    st.code(base_url() + "/" + (f"?{query}" if query else ""), language=None)


def entity_link(key: str, value: str) -> str:
    return link(entity=f"{key}={value}")


def trace_link(trace_id: str) -> str:
    return link(trace=trace_id)


def sequence_chart(figure: Any, key: str, box: str, **options: Any) -> Any:
    """``st.plotly_chart`` of a sequence figure (ui.seqplot). A figure with a width of its
    own (more participants than fit the page) is drawn at that width inside a box
    (``box``: its key) that scrolls both ways and is at most 80 % of the window high, so
    that its scroll bars are in view, as a wide diagram scrolls in other viewers:
    Streamlit alone would shrink it to the page and the names would overlap again."""
    width = figure.layout.width
    if not width:
        return st.plotly_chart(figure, key=key, width="stretch", **options)
    st.html(
        f"<style>.st-key-{box} {{overflow: auto; max-height: 80vh}} .st-key-{box} "
        f"[data-testid=stElementContainer] {{width: {int(width)}px !important; "
        "max-width: none !important}</style>"
    )
    with st.container(key=box):
        return st.plotly_chart(figure, key=key, width="content", **options)
