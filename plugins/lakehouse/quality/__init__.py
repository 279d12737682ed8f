"""Data quality with Great Expectations: audit a partition at a snapshot, quarantine, gate publication.

Suites live in expectations/<database>.<table>.json (GX 1.x suite JSON, one per table). Each
expectation has a GX `severity`: "critical" fails the audit and blocks publication (no tag, no
Asset event), "warning" is logged and recorded. Expectations may take run-time values as
{"$PARAMETER": name} (reconciliation totals, the day's bounds, the known shop ids), computed here
from the source of truth; an expectation whose parameter a check cannot provide (a streaming check
has no closed-day totals) is skipped and reported as skipped.

Every audit reads the table at one snapshot (the one the recomputation wrote, or the latest,
pinned while it is read), records a row in ops.dq_validations, copies rows that break row-level
expectations to ops.dq_quarantine with the reason and the run, and writes GX Data Docs (HTML).
"""
