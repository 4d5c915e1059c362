"""Every UI page under streamlit.testing's AppTest: with the sample shop, and empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, sample_files

APP = str(ROOT / "ui" / "app.py")
PAGES = [
    "pages/overview.py",
    "pages/entity.py",
    "pages/trace.py",
    "pages/failures.py",
    "pages/slo.py",
    "pages/service_map.py",
]
ORD_1002_TRACE = "28aa6f8cecf63975079bb73dfbbeb308"  # the retried payment
EMPTY_MESSAGE = "No spans yet. Point an exporter at it"


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("ui") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    return path


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("ui") / "empty.duckdb"
    DuckDBStore(path).close()
    return path


@pytest.fixture
def use_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(path: Path) -> None:
        monkeypatch.delenv("SEQTRACE_API", raising=False)
        monkeypatch.delenv("SEQTRACE_READ_TOKEN", raising=False)
        monkeypatch.setenv("SEQTRACE_DB", str(path))

    yield use


def run(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def plotly_charts(at: AppTest) -> list[Any]:
    return list(at.get("plotly_chart"))


def texts(at: AppTest) -> str:
    """Every text the page shows, across element types."""
    out: list[str] = []
    for kind in ("markdown", "caption", "text", "code", "info", "warning", "error", "success"):
        out += [str(e.value) for e in at.get(kind)]
    out += [str(m.label) + str(m.value) for m in at.get("metric")]
    return "\n".join(out)


# ----------------------------------------------------------------------------- with data


def test_overview_with_data(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run()
    assert at.title[0].value == "Overview"
    assert len(plotly_charts(at)) == 2  # spans/s and error rate
    assert len(at.dataframe) == 2  # services, newest traces
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Failed traces"] == "1"  # ORD-1005's deadlock
    assert metrics["Partly failed traces"] == "4"
    assert at.toggle(key="overview_live") is not None


def test_every_page_runs_with_data(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    for page in PAGES:
        at = run(page)
        assert at.title, page


def test_entity_deep_link_draws_the_diagram(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(entity="order.id=ORD-1002")
    assert at.title[0].value == "Entity sequence diagram"
    assert at.selectbox(key="entity_key").value == "order.id"
    assert at.selectbox(key="entity_value").value == "ORD-1002"
    assert len(plotly_charts(at)) == 1
    labels = {b.label for b in at.get("download_button")}
    assert {"Mermaid", "PlantUML", "SVG", "Markdown", "JSON"} <= labels
    assert "/?entity=order.id=ORD-1002" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Failed calls"] == "2"  # the two 503s before the retry succeeded


def test_entity_page_shows_the_clicked_span(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(entity="order.id=ORD-1002")
    # what the click callback leaves behind (AppTest cannot click plotly points)
    at.session_state["entity_selected"] = 13
    at.session_state["_entity_sel_for"] = "order.id=ORD-1002"
    at.session_state["entity_pick"] = 13
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Selected span" in shown
    assert "payment · POST /v1/charges" in shown
    assert "503 Service Unavailable" in shown
    assert len(at.dataframe) >= 3  # attributes, resource, traces of the entity
    at.run()  # the dialog opens once per click, not on every rerun
    assert "Selected span" not in texts(at)


def test_entity_page_without_a_value_lists_entities(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/entity.py")
    assert "Pick an entity value" in texts(at)
    assert len(at.dataframe) == 1


def test_unknown_entity_says_so(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(entity="order.id=ORD-0000")
    assert "No diagram for this entity" in texts(at)


def test_hostile_entity_renders_as_text(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(entity="order.id=ORD-1666")
    assert len(plotly_charts(at)) == 1
    at.session_state["entity_internal"] = True
    at.run()
    assert not at.exception
    figure = plotly_charts(at)[0].proto.spec
    assert "<img" not in figure
    assert "&lt;img src=x onerror=alert(1)&gt;" in figure


def test_trace_deep_link(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(trace=ORD_1002_TRACE)
    assert at.title[0].value == "Trace"
    assert at.text_input(key="trace_id").value == ORD_1002_TRACE
    assert len(plotly_charts(at)) == 2  # waterfall and sequence diagram
    assert "Critical path" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Spans"] == "22"
    assert metrics["Error spans"] == "2"


def test_trace_page_shows_the_clicked_span(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(trace=ORD_1002_TRACE)
    at.session_state["trace_selected"] = "15deb8aa39d8e080"  # a failed charge
    at.session_state["_trace_sel_for"] = ORD_1002_TRACE
    at.session_state["trace_pick"] = "15deb8aa39d8e080"
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Selected span" in shown
    assert "503 Service Unavailable" in shown


def test_unknown_trace_says_so(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(trace="0" * 32)
    assert "Trace not found" in texts(at)


def test_failures_deep_link_and_filters(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(failures="")
    assert at.title[0].value == "Failures"
    table = at.dataframe[0].value
    assert len(table) == 5
    assert set(table["pattern"]) >= {"retried", "failed", "degraded"}
    assert all(link.startswith("./?trace=") for link in table["trace"])
    assert "./?entity=order.id=ORD-1005" in set(table["entity"])
    at.multiselect(key="failures_patterns").select("failed").run()
    assert len(at.dataframe[0].value) == 1
    at.text_input(key="failures_search").input("nothing matches this").run()
    assert "No trace matches the filters" in texts(at)
    assert "not listed" not in texts(at)  # every failing trace of the shop is listed


def test_failures_page_says_when_traces_are_not_listed(
    use_db: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """More failing traces than the report lists: the page says how many are left out."""
    from analyzer.failures_store import LISTED_TRACES
    from spanstore.duckdb_store import DuckDBStore
    from spanstore.model import Span
    from spanstore.rows import request_from_spans

    t0 = 1_795_600_800_000_000_000
    spans = [
        Span(f"{i + 1:032x}", f"{1:016x}", None, "GET /cart", "SERVER", t0 + i * 1000,
             t0 + i * 1000 + 500, "front", "ERROR")
        for i in range(LISTED_TRACES + 3)
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("ui") / "busy.duckdb"
    with DuckDBStore(path) as store:
        store.write(request_from_spans(spans))
    use_db(path)
    at = run(failures="")
    assert len(at.dataframe[0].value) == LISTED_TRACES
    assert f"Failed{LISTED_TRACES + 3:,}" in texts(at)
    assert "3 more failing traces in this range are not listed" in texts(at)


def test_failures_service_filter(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/failures.py")
    at.selectbox(key="failures_service").select("payment").run()
    assert not at.exception


def test_slo_page_evaluates_the_spec(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/slo.py")
    assert len(at.dataframe) >= 1
    assert len(plotly_charts(at)) == 2  # budget, burn rates
    at.text_area(key="slo_spec").input("slos: [{name: x}]").run()
    assert not at.exception
    assert "The spec has a problem" in texts(at)


def test_slo_page_evaluated_in_the_incident_fires_alerts(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/slo.py")
    at.text_input(key="slo_at").input("2026-11-20T10:00:00Z").run()
    assert not at.exception
    assert "PAGE" in texts(at) or "TICKET" in texts(at)


def test_service_map_page(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/service_map.py")
    assert len(plotly_charts(at)) == 1
    edges = at.dataframe[0].value
    assert ("payment", "payprovider") in set(zip(edges["from"], edges["to"], strict=True))


def test_time_range_from_the_link(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(failures="", **{"from": "2026-11-20T09:40:00Z", "to": "2026-11-20T09:45:00Z"})
    assert len(at.dataframe[0].value) == 1  # only ORD-1005's failure at 09:41
    assert "from=2026-11-20T09:40:00Z" in texts(at)


def test_time_range_presets(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run()
    at.selectbox(key="range").select("Last 1 h of data").run()
    assert not at.exception
    # (AppTest drops the sidebar after switch_page; the choice lives in session state)
    at.switch_page("pages/failures.py").run()
    assert not at.exception
    assert "No failed or partly failed traces" in texts(at)  # the last hour is calm


# ----------------------------------------------------------------------------- empty store


def test_every_page_explains_an_empty_store(use_db: Any, empty_db: Path) -> None:
    use_db(empty_db)
    for page in [None, *PAGES]:
        at = run(page)
        assert EMPTY_MESSAGE in texts(at), page
        assert "seqtrace load" in texts(at)


def test_empty_store_deep_links(use_db: Any, empty_db: Path) -> None:
    use_db(empty_db)
    for query in ({"entity": "order.id=ORD-1"}, {"trace": "a" * 32}, {"failures": ""}):
        at = run(**query)
        assert EMPTY_MESSAGE in texts(at), query


# ----------------------------------------------------------------------------- no source


def test_missing_database_file_is_explained(use_db: Any, tmp_path: Path) -> None:
    use_db(tmp_path / "nope.duckdb")
    at = run()
    assert "nope.duckdb" in texts(at)


def test_unreachable_api_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQTRACE_API", "http://127.0.0.1:9")
    at = run()
    assert "cannot reach the query API" in texts(at)


def test_no_source_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQTRACE_API", raising=False)
    monkeypatch.delenv("SEQTRACE_DB", raising=False)
    at = run()
    assert "without a data source" in texts(at)


def test_pages_remember_their_fields_across_navigation(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run("pages/entity.py")
    at.selectbox(key="entity_value").select("ORD-1005").run()
    assert len(plotly_charts(at)) == 1
    at.switch_page("pages/slo.py").run()
    at.text_area(key="slo_spec").input(
        "slos:\n  - {name: mine, service: frontend, operation: POST /api/checkout,"
        " sli: availability, objective: 99, window: 7d}\n"
    ).run()
    at.switch_page("pages/failures.py").run()
    at.switch_page("pages/entity.py").run()
    assert not at.exception
    assert at.selectbox(key="entity_value").value == "ORD-1005"
    assert len(plotly_charts(at)) == 1
    at.switch_page("pages/slo.py").run()
    assert "name: mine" in at.text_area(key="slo_spec").value
    assert at.dataframe[0].value["SLO"].tolist() == ["mine"]


def test_changing_the_key_clears_the_value(use_db: Any, shop_db: Path) -> None:
    use_db(shop_db)
    at = run(entity="order.id=ORD-1002")
    at.selectbox(key="entity_key").select("customer.id").run()
    assert not at.exception
    assert at.selectbox(key="entity_value").value is None
    assert "Pick an entity value" in texts(at)
