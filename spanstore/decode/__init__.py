"""OTLP in, the store's Arrow batches out: where ingest decodes requests.

Decoding lives in the storage layer because what it produces is the store's own row
layout (``spanstore/sql/*/schema.sql``): span columns, entity and link rows, resources
and scopes by id. The collector hands request bytes to ``SpanWriter.write`` and never
decodes spans itself.

* :mod:`spanstore.decode.pool`: decoder processes (the work runs off the server's
  interpreter lock), one pipe each;
* :mod:`spanstore.decode.scan`: the C scanner (``_otlpscan.c``), the path every request
  takes when it is built;
* :mod:`spanstore.decode.prepare`: the same in Python, the reference the C scanner is
  tested against and the fallback when it cannot be imported; ``PreparedBatch``.
"""
