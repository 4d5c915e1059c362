"""The service map: who calls whom, how often, how often it fails, how slow.

Works on the span frame (``spanstore.frame.FRAME_SCHEMA``), one polars pass, no Python loop
over spans. The result is a plain dict for the query API and the UI::

    {"nodes": [{"id", "kind": service|database|queue|external, "spans", "errors"}],
     "edges": [{"from", "to", "calls", "errors", "error_rate", "p50_ms"}]}

Edges come from three places:

* a span whose parent span is in another service: ``parent service -> child service``
  (a PRODUCER -> CONSUMER pair with a messaging destination goes through the queue:
  ``producer -> queue -> consumer``);
* a CLIENT or PRODUCER span with no child span in another service (a database, a queue, an
  uninstrumented API): ``service -> peer``, the peer named by the semantic conventions
  (:func:`peer_id_expr`);
* a CONSUMER span whose producer is not in the frame (the usual case: consumers start a
  new trace and link to the producer): ``queue -> consumer service``.

A call counts as failed when the callee's span is an error, or the caller's CLIENT/PRODUCER
span is (a timeout leaves the callee's span fine); "error" means what the failure report
means by it (:func:`analyzer.failures.error_expr`). ``p50_ms`` is the median latency the
caller saw: the CLIENT/PRODUCER span's duration where there is one, else the callee's.
"""

from __future__ import annotations

from typing import Any, Final

import polars as pl

from analyzer.failures import error_expr
from spanstore.frame import FRAME_SCHEMA

__all__ = [
    "assemble",
    "peer_id_expr",
    "peer_kind_expr",
    "service_map",
    "service_map_of_figures",
]

_CALLER_KINDS: Final = ("CLIENT", "PRODUCER")
_CALL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "from": pl.String(),
    "to": pl.String(),
    "to_kind": pl.String(),
    "error": pl.Boolean(),
    "duration_ns": pl.Int64(),
}


def peer_kind_expr() -> pl.Expr:
    """``queue`` / ``database`` / ``external`` for a CLIENT or PRODUCER span's peer."""
    return (
        pl.when(
            pl.col("messaging_destination").is_not_null()
            | pl.col("messaging_system").is_not_null()
            | (pl.col("kind") == "PRODUCER")
        )
        .then(pl.lit("queue"))
        .when(pl.col("db_system").is_not_null())
        .then(pl.lit("database"))
        .otherwise(pl.lit("external"))
    )


def peer_id_expr(services: list[str] | None = None) -> pl.Expr:
    """The peer's name, from the semantic-convention columns (null when nothing names it).

    The same rules as the diagram's participants (``analyzer.diagram.semantics``), so a
    node here is a lifeline there:

    * ``peer.service`` or ``server.address`` naming an instrumented service: that service;
    * queue: ``messaging.destination.name``, else ``peer.service``, else the messaging system;
    * database: ``peer.service``, else ``server.address``, else ``db.name`` (unless it is a
      number, as Redis database indexes are), else ``db.system``;
    * external: ``peer.service``, else ``rpc.service``, else ``server.address``.
    """
    kind = peer_kind_expr()
    known = services or []
    db_name = pl.when(pl.col("db_name").str.contains(r"^\d+$")).then(None).otherwise("db_name")
    return (
        pl.when(pl.col("peer_service").is_in(known))
        .then(pl.col("peer_service"))
        .when(pl.col("server_address").is_in(known))
        .then(pl.col("server_address"))
        .when(kind == "queue")
        .then(pl.coalesce("messaging_destination", "peer_service", "messaging_system"))
        .when(kind == "database")
        .then(pl.coalesce("peer_service", "server_address", db_name, "db_system"))
        .otherwise(pl.coalesce("peer_service", "rpc_service", "server_address"))
    )


def _complete(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the frame columns a hand-built frame lacks, as nulls of the right type."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in FRAME_SCHEMA.items()
        if name not in frame.columns
    ]
    return frame.with_columns(missing) if missing else frame


def _empty_calls() -> pl.DataFrame:
    return pl.DataFrame(schema=_CALL_SCHEMA)


def _edges(
    frame: pl.DataFrame, source: str, target: str, kind: pl.Expr, error: str, duration: str
) -> pl.DataFrame:
    """One call per row of ``frame``: from ``source`` to ``target`` (a node of ``kind``)."""
    return frame.select(
        pl.col(source).alias("from"),
        pl.col(target).alias("to"),
        kind.alias("to_kind"),
        pl.col(error).alias("error"),
        pl.col(duration).alias("duration_ns"),
    )


def service_map(frame: pl.DataFrame) -> dict[str, Any]:
    """Nodes and edges of the service map for the spans in ``frame``."""
    if frame.height == 0:
        return {"nodes": [], "edges": []}
    frame = _complete(frame)
    known = frame.get_column("service_name").drop_nulls().unique().to_list()
    spans = frame.with_columns(
        error_expr().alias("_error"),
        pl.coalesce("duration_ns", pl.col("end_unix_nano") - pl.col("start_unix_nano"))
        .fill_null(0)
        .alias("_duration"),
        peer_id_expr(known).alias("_peer"),
        peer_kind_expr().alias("_peer_kind"),
    ).select(
        "trace_id",
        "span_id",
        "parent_span_id",
        "service_name",
        "kind",
        "_error",
        "_duration",
        "_peer",
        "_peer_kind",
        "messaging_destination",
    )
    parents = spans.select(
        "trace_id",
        pl.col("span_id").alias("parent_span_id"),
        pl.col("service_name").alias("p_service"),
        pl.col("kind").alias("p_kind"),
        pl.col("_error").alias("p_error"),
        pl.col("_duration").alias("p_duration"),
        pl.col("messaging_destination").alias("p_destination"),
    )
    linked = spans.join(parents, on=["trace_id", "parent_span_id"], how="inner")
    cross = linked.filter(pl.col("p_service") != pl.col("service_name"))
    caller_is_client = pl.col("p_kind").is_in(_CALLER_KINDS)
    cross = cross.with_columns(
        (pl.col("_error") | (caller_is_client & pl.col("p_error"))).alias("call_error"),
        pl.when(caller_is_client)
        .then(pl.col("p_duration"))
        .otherwise(pl.col("_duration"))
        .alias("call_duration"),
        pl.coalesce("messaging_destination", "p_destination").alias("queue"),
    )
    via_queue = (
        (pl.col("p_kind") == "PRODUCER")
        & (pl.col("kind") == "CONSUMER")
        & pl.col("queue").is_not_null()
    )
    direct = _edges(
        cross.filter(~via_queue),
        "p_service",
        "service_name",
        pl.lit("service"),
        "call_error",
        "call_duration",
    )
    queued = cross.filter(via_queue)
    to_queue = _edges(queued, "p_service", "queue", pl.lit("queue"), "p_error", "p_duration")
    from_queue = _edges(queued, "queue", "service_name", pl.lit("service"), "_error", "_duration")

    # CLIENT/PRODUCER spans with no child in another service call their peer.
    answered = cross.select("trace_id", pl.col("parent_span_id").alias("span_id")).unique()
    to_peer = _edges(
        spans.filter(pl.col("kind").is_in(_CALLER_KINDS) & pl.col("_peer").is_not_null()).join(
            answered, on=["trace_id", "span_id"], how="anti"
        ),
        "service_name",
        "_peer",
        pl.col("_peer_kind"),
        "_error",
        "_duration",
    )

    # CONSUMER spans whose producer is not their parent: the queue delivered to them.
    produced = queued.select("trace_id", "span_id")
    consumers = spans.filter(
        (pl.col("kind") == "CONSUMER") & pl.col("messaging_destination").is_not_null()
    )
    from_orphan_queue = _edges(
        consumers.join(produced, on=["trace_id", "span_id"], how="anti"),
        "messaging_destination",
        "service_name",
        pl.lit("service"),
        "_error",
        "_duration",
    )

    calls = pl.concat(
        [
            _empty_calls(),
            *(
                part.cast(_CALL_SCHEMA)  # type: ignore[arg-type]
                for part in (direct, to_queue, from_queue, to_peer, from_orphan_queue)
            ),
        ]
    ).filter(pl.col("from").is_not_null() & pl.col("to").is_not_null())

    edges = calls.group_by("from", "to").agg(
        pl.len().alias("calls"),
        pl.col("error").sum().alias("errors"),
        pl.col("duration_ns").median().alias("median_ns"),
    )
    services = spans.group_by("service_name").agg(
        pl.len().alias("spans"), pl.col("_error").sum().alias("errors")
    )
    service_ids = services.get_column("service_name").to_list()
    peers = (
        calls.filter(~pl.col("to").is_in(service_ids))
        .group_by("to")
        .agg(
            pl.col("to_kind").first().alias("kind"),
            pl.len().alias("spans"),
            pl.col("error").sum().alias("errors"),
        )
        .rename({"to": "id"})
    )
    return assemble(edges, services.rename({"service_name": "id"}), peers)


def service_map_of_figures(figures: pl.DataFrame) -> dict[str, Any]:
    """The service map from the store's aggregates (``spanstore.reader.SERVICE_MAP_SCHEMA``):
    the figures :func:`service_map` computes from a frame, computed by the store."""
    if figures.height == 0:
        return {"nodes": [], "edges": []}
    edges = figures.filter(pl.col("row") == "edge").select(
        pl.col("from_id").alias("from"),
        pl.col("to_id").alias("to"),
        "calls",
        "errors",
        "median_ns",
    )
    services = figures.filter(pl.col("row") == "service").select(
        pl.col("to_id").alias("id"), pl.col("calls").alias("spans"), "errors"
    )
    peers = figures.filter(pl.col("row") == "peer").select(
        pl.col("to_id").alias("id"), "kind", pl.col("calls").alias("spans"), "errors"
    )
    return assemble(edges, services, peers)


def assemble(edges: pl.DataFrame, services: pl.DataFrame, peers: pl.DataFrame) -> dict[str, Any]:
    """The map's dict from its figures: ``edges`` (from, to, calls, errors, median_ns),
    ``services`` (id, spans, errors) and ``peers`` (id, kind, spans, errors: targets that
    are no service), rounded and ordered the same whichever side computed them."""
    edges = (
        edges.with_columns(
            (pl.col("median_ns") / 1e6).round(3).alias("p50_ms"),
            (pl.col("errors") / pl.col("calls")).round(4).alias("error_rate"),
        )
        .sort(["calls", "from", "to"], descending=[True, False, False])
        .select("from", "to", "calls", "errors", "error_rate", "p50_ms")
    )
    services = services.with_columns(pl.lit("service").alias("kind")).sort("id")
    service_ids = set(services.get_column("id").to_list())
    peers = peers.sort("id")
    # A queue that only delivers (its producer is outside the frame) is a node too.
    sources_only = (
        edges.filter(~pl.col("from").is_in(list(service_ids)))
        .select(pl.col("from").alias("id"))
        .unique()
        .join(peers.select("id"), on="id", how="anti")
        .with_columns(
            pl.lit("queue").alias("kind"),
            pl.lit(0, dtype=pl.Int64).alias("spans"),
            pl.lit(0, dtype=pl.Int64).alias("errors"),
        )
    )
    columns = ["id", "kind", "spans", "errors"]
    nodes = pl.concat(
        [
            frame_.select(columns).cast({"spans": pl.Int64, "errors": pl.Int64})
            for frame_ in (services, peers, sources_only.sort("id"))
        ]
    )
    return {
        "nodes": nodes.to_dicts(),
        "edges": [
            {**edge, "p50_ms": edge["p50_ms"] if edge["p50_ms"] is not None else 0.0}
            for edge in edges.to_dicts()
        ],
    }
