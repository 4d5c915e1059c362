-- The rows of every trace the failure report covers (failure_trace_rows.sql): traces whose
-- root starts in [start, end), with their spans that may be errors, searched in [lo, hi)
-- as failure_candidates.sql does, in one statement: what analyzer/failures_store.py's kept
-- counts (failure_parts.sql) give, and its answer when a deletion ran meanwhile.
WITH
@failure_traces_ctes
@failure_trace_rows
