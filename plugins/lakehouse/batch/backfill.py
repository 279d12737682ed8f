"""On-call backfills: validate the request, split the days into parallel lanes, report per partition."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lakehouse.batch.recompute import recomputable_tables
from lakehouse.core.days import parse_day
from lakehouse.core.errors import BadRequest

MAX_DAYS = int(os.environ.get("LAKEHOUSE_BACKFILL_MAX_DAYS", "62"))
MAX_PARALLEL_DAYS = 4
SELECTORS = ("all", "dwd", "dws")


class InvalidBackfillRequest(BadRequest):
    """The backfill form was filled in wrongly; nothing was written. `problems` lists each mistake."""

    def __init__(self, problems: list[str]):
        super().__init__("Nothing was written. Fix the backfill request:\n- " + "\n- ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class BackfillRequest:
    tables: list[str]
    days: list[str]
    dry_run: bool
    parallel_days: int

    def lanes(self) -> list[list[str]]:
        """Days dealt round-robin into `parallel_days` lanes; each lane runs its days in order."""
        n = min(self.parallel_days, len(self.days))
        return [self.days[i::n] for i in range(n)]


def table_choices() -> list[str]:
    return list(SELECTORS) + [t.name for t in recomputable_tables()]


def validate_backfill(params: Mapping[str, Any], *, today: date | None = None) -> BackfillRequest:
    """Check every field before anything is touched; one message lists every problem."""
    today = today or datetime.now(UTC).date()
    problems: list[str] = []
    known = {t.name for t in recomputable_tables()}
    raw_tables = params.get("tables") or []
    if isinstance(raw_tables, str):
        raw_tables = [raw_tables]
    selected: list[str] = []
    for item in raw_tables:
        item = str(item).strip()
        if item == "all":
            selected += sorted(known)
        elif item in ("dwd", "dws"):
            selected += [t.name for t in recomputable_tables() if t.layer == item]
        elif item in known:
            selected.append(item)
        else:
            problems.append(f"tables: {item!r} is not one of {', '.join(table_choices())}")
    if not raw_tables:
        problems.append("tables: choose at least one table, a layer (dwd, dws) or all")
    start = end = None
    for field in ("start_date", "end_date"):
        try:
            value = parse_day(str(params.get(field) or ""), field=field)
        except BadRequest as exc:
            problems.append(str(exc))
            continue
        if field == "start_date":
            start = value
        else:
            end = value
    if start and end:
        if end < start:
            problems.append(f"end_date {end} is before start_date {start}")
        if end >= today:
            problems.append(
                f"end_date {end} is not in the past: today's partition ({today}) is still being written by "
                "the streaming jobs, and later days do not exist yet; the latest day to backfill is "
                f"{today - timedelta(days=1)}"
            )
        span = (end - start).days + 1
        if span > MAX_DAYS:
            problems.append(
                f"{span} days requested; at most {MAX_DAYS} per backfill (LAKEHOUSE_BACKFILL_MAX_DAYS): split the range"
            )
    parallel = params.get("parallel_days", 1)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= MAX_PARALLEL_DAYS:
        problems.append(f"parallel_days must be a whole number from 1 to {MAX_PARALLEL_DAYS}, got {parallel!r}")
    dry_run = params.get("dry_run", False)
    if not isinstance(dry_run, bool):
        problems.append(f"dry_run must be true or false, got {dry_run!r}")
    if problems:
        raise InvalidBackfillRequest(problems)
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    order = [t.name for t in recomputable_tables()]
    tables = [t for t in order if t in set(selected)]
    return BackfillRequest(tables=tables, days=days, dry_run=dry_run, parallel_days=parallel)


def run_lane(
    days: list[str],
    tables: list[str],
    *,
    holder: str,
    run_id: str,
    flink,
    paimon,
    leases,
    mysql,
    dry_run: bool = False,
    echo=print,
) -> list:
    """Rebuild a lane's days in order, each under its leases, and audit each rebuilt day.

    Each day is recomputed as t1_daily does it (`run_day`: leases, INSERT OVERWRITE, verification)
    and audited with the Great Expectations suites at the snapshots it wrote. A failed audit does
    not stop the lane: every day is audited, then the lane fails with all the failed gates
    (QualityGateFailed). Returns the partition reports, in order. `echo` prints progress (the task
    log)."""
    from lakehouse.batch.t1 import run_day, select_tables
    from lakehouse.quality.audit import QualityGateFailed, audit_day

    reports, gate_failures = [], []
    for dt in days:
        result = run_day(
            dt, select_tables(tables), holder=holder, flink=flink, paimon=paimon, leases=leases, dry_run=dry_run
        )
        for report in result.reports:
            echo(report.line())
            reports.append(report)
        if dry_run:
            continue
        try:
            for audit in audit_day(dt, result.reports, paimon=paimon, mysql=mysql, run_id=f"{run_id}/{dt}"):
                echo("\n".join(audit.lines()))
        except QualityGateFailed as exc:
            gate_failures.append(str(exc))
    if gate_failures:
        raise QualityGateFailed("\n".join(gate_failures))
    return reports
