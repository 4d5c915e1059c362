-- The rows of every trace the failure report covers (failure_trace_rows.sql): traces whose
-- root starts in [start, end), with their spans that may be errors, searched in [lo, hi)
-- as failure_candidates.sql does. analyzer/failures_store.py keeps them between reports
-- and brings them up to date with failure_traces_of.sql.
WITH
@failure_traces_ctes
@failure_trace_rows
