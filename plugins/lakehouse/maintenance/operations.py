"""The maintenance operations (Paimon procedures through Flink) and one table's run of them, measured."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from lakehouse.core.registry import registry
from lakehouse.core.results import to_jsonable
from lakehouse.core.sql_files import load_statements
from lakehouse.hooks.flink import BATCH_RESTARTS, FlinkHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.maintenance.metrics import TableMetrics, measure
from lakehouse.maintenance.policy import OPERATIONS, MaintenanceRequestError, TablePolicy

log = logging.getLogger(__name__)

# One slot; a failing procedure fails after a couple of restarts (BATCH_RESTARTS), not never.
PROCEDURE_SESSION = {
    "execution.runtime-mode": "batch",
    "table.dml-sync": "true",
    "parallelism.default": "1",
    **BATCH_RESTARTS,
}
_T1_TAG = re.compile(r"^t1-(\d{4}-\d{2}-\d{2})$")


# ------------------------------------------------------------------------------------ operations
@dataclass
class OperationResult:
    operation: str
    detail: str
    duration_s: float
    skipped: bool = False

    def line(self) -> str:
        return f"{self.operation}: {self.detail} ({self.duration_s:.1f} s)" + (" [skipped]" if self.skipped else "")


def _render(name: str, **values) -> str:
    (statement,) = load_statements(f"maintenance/{name}.sql", values)
    return statement


def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# Jobs that a procedure names itself whatever the session's pipeline.name says (Paimon's orphan-file
# cleaning runs `executeAndCollect("OrphanFilesClean")`): the hook cancels such a job too when the
# call times out or is interrupted, if it started after the CALL was submitted.
_SELF_NAMED_JOBS = {"remove_orphan_files": ("OrphanFilesClean",)}
_PROCEDURE = re.compile(r"\bCALL\s+(?:`?\w+`?\.)?sys\.(\w+)", re.I)


def _call(flink: FlinkHook, paimon: PaimonHook, statement: str, timeout: float = 3600) -> list:
    """Run one Paimon procedure in a batch session; its rows.

    The hook waits for a free task slot first (FlinkSlotsUnavailable after 5 minutes), and cancels
    the procedure's job when `timeout` passes or the task is killed (FlinkHook.execute_sql)."""
    from lakehouse.core.flink_sql import catalog_statements

    match = _PROCEDURE.search(statement)
    procedure = match.group(1).lower() if match else "procedure"
    results = flink.execute_sql(
        catalog_statements(paimon) + [statement],
        session_config={**PROCEDURE_SESSION, "pipeline.name": f"maintenance {procedure}"},
        result_timeout=timeout,
        job_names=_SELF_NAMED_JOBS.get(procedure, ()),
    )
    return results[-1].rows if results else []


def closed_partitions_to_compact(metrics: TableMetrics, policy: TablePolicy, today: date) -> list[str]:
    """Days before `today`, within the lookback, holding more than one file per bucket."""
    first = today - timedelta(days=policy.compaction_lookback_days)
    days = []
    for key, count in sorted(metrics.files_per_partition.items()):
        m = re.fullmatch(r"dt=(\d{4}-\d{2}-\d{2})", key)
        if m and first <= date.fromisoformat(m.group(1)) < today and count > metrics.buckets:
            days.append(m.group(1))
    return days


def compact_closed_partitions(
    policy: TablePolicy,
    *,
    flink: FlinkHook,
    paimon: PaimonHook,
    leases,
    holder: str,
    today: date,
    dry_run: bool = False,
) -> OperationResult:
    started = time.monotonic()
    spec = registry().table(policy.table)
    if policy.compaction == "none" or spec.partition != "dt":
        return OperationResult("compaction", "not configured for this table", 0.0, skipped=True)
    metrics = measure(paimon, policy.table)
    days = closed_partitions_to_compact(metrics, policy, today)
    done, busy = [], []
    for day in days:
        files = metrics.files_per_partition[f"dt={day}"]
        if dry_run:
            done.append(f"dt={day} ({files} files)")
            continue
        from lakehouse.batch.leases import LeaseHeld

        # The T+1 recomputation overwrites under the same lease: never both at once. Held (renewed)
        # while the procedure runs, released after its call returned or raised; LeaseLost if another
        # run took it over meanwhile. Only this task's lease: its holder names the mapped task.
        statement = _render("compact_partition", table=policy.table, partition_column="dt", dt=day)
        try:
            with leases.held([policy.table], day, holder):
                _call(flink, paimon, statement)
        except LeaseHeld as exc:  # raised when taking the lease, before anything ran
            busy.append(f"dt={day}: {exc}")
            continue
        done.append(f"dt={day} ({files} files)")
    detail = (
        f"{'would compact' if dry_run else 'compacted'} "
        f"{', '.join(done) or 'nothing (no closed day above one file per bucket)'}"
        + (f"; left for the next run, being overwritten: {'; '.join(busy)}" if busy else "")
    )
    return OperationResult("compaction", detail, time.monotonic() - started)


def expire_snapshots(
    policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, now: datetime, dry_run: bool = False
) -> OperationResult:
    started = time.monotonic()
    gone_pins = [] if dry_run else paimon.expire_pins(policy.table, now=now)
    before = paimon.snapshot_ids(policy.table)
    protected = paimon.consumers(policy.table)
    older_than = _utc(now - timedelta(seconds=policy.retain_time_s))
    if dry_run:
        return OperationResult(
            "snapshots",
            f"would expire beyond retain_min={policy.retain_min} "
            f"retain_max={policy.retain_max} older than {older_than}; "
            f"consumers holding snapshots: {protected or 'none'}",
            0.0,
        )
    _call(
        flink,
        paimon,
        _render(
            "expire_snapshots",
            table=policy.table,
            retain_min=policy.retain_min,
            retain_max=policy.retain_max,
            older_than=older_than,
            max_deletes=policy.max_deletes,
        ),
    )
    after = paimon.snapshot_ids(policy.table)
    detail = (
        f"{len(before) - len(after)} expired, {len(after)} kept "
        f"(earliest {after[0] if after else None}); consumers holding snapshots: {protected or 'none'}"
        + (f"; removed lapsed pins {gone_pins}" if gone_pins else "")
    )
    return OperationResult("snapshots", detail, time.monotonic() - started)


def expire_t1_tags(
    policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, today: date, dry_run: bool = False
) -> OperationResult:
    """Delete T+1 tags (t1-<day>) of days older than the retention; other tags are left alone.

    Not sys.expire_tags: it goes by a tag's creation time, and a backfill re-creates old days'
    tags today; the day a tag stands for is what the retention is about."""
    started = time.monotonic()
    if policy.tag_retention_days is None:
        return OperationResult("tags", "kept forever", 0.0, skipped=True)
    cutoff = today - timedelta(days=policy.tag_retention_days)
    old = [
        t for t in paimon.list_tags(policy.table) if (m := _T1_TAG.match(t)) and date.fromisoformat(m.group(1)) < cutoff
    ]
    if not dry_run:
        for tag in old:
            _call(flink, paimon, _render("delete_tag", table=policy.table, tag=tag))
    return OperationResult(
        "tags",
        f"{'would delete' if dry_run else 'deleted'} {len(old)} T+1 tags before {cutoff}"
        + (f": {', '.join(old)}" if old else ""),
        time.monotonic() - started,
    )


def expire_partitions(
    policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, dry_run: bool = False
) -> OperationResult:
    started = time.monotonic()
    spec = registry().table(policy.table)
    if policy.partition_retention_days is None or spec.partition != "dt":
        return OperationResult("partitions", "kept forever", 0.0, skipped=True)
    if dry_run:
        return OperationResult("partitions", f"would drop days older than {policy.partition_retention_days} d", 0.0)
    rows = _call(
        flink, paimon, _render("expire_partitions", table=policy.table, retention_days=policy.partition_retention_days)
    )
    dropped = [str(r[0]) for r in rows if r and r[0] not in (None, "No expired partitions.")]
    return OperationResult(
        "partitions",
        f"dropped {len(dropped)} partitions older than "
        f"{policy.partition_retention_days} d" + (f": {', '.join(dropped)}" if dropped else ""),
        time.monotonic() - started,
    )


def remove_orphan_files(
    policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, now: datetime, dry_run: bool = False
) -> OperationResult:
    started = time.monotonic()
    older_than = now - timedelta(seconds=policy.orphan_older_than_s)
    rows = _call(
        flink, paimon, _render("remove_orphan_files", table=policy.table, older_than=_utc(older_than), dry_run=dry_run)
    )
    # The procedure answers two rows: the number of files and their total size in bytes.
    count, size = (int(r[0]) for r in (rows + [["0"], ["0"]])[:2])
    return OperationResult(
        "orphan_files",
        f"{'would remove' if dry_run else 'removed'} {count} files ({size} bytes) older than {_utc(older_than)} UTC",
        time.monotonic() - started,
    )


@dataclass
class MaintenanceReport:
    table: str
    before: TableMetrics
    after: TableMetrics
    results: list[OperationResult]

    def lines(self) -> list[str]:
        return (
            [f"before  {self.before.line()}"]
            + [f"  {r.line()}" for r in self.results]
            + [f"after   {self.after.line()}"]
        )

    def metric_rows(self) -> list[dict]:
        ops = "; ".join(r.line() for r in self.results)
        return [
            {**to_jsonable(self.before), "phase": "before"},
            {**to_jsonable(self.after), "phase": "after", "operations": ops},
        ]


def maintain_table(
    policy: TablePolicy,
    operations: Iterable[str],
    *,
    flink: FlinkHook,
    paimon: PaimonHook,
    leases,
    holder: str,
    now: datetime,
    dry_run: bool = False,
) -> MaintenanceReport:
    """Run the chosen operations on one table in a safe order, measuring before and after.

    Compaction first (it leaves the replaced files to the snapshots that still reference them),
    then snapshot expiry (which deletes files no kept snapshot or tag references), tags and
    partitions, and orphan files last."""
    wanted = set(operations)
    unknown = wanted - set(OPERATIONS)
    if unknown:
        raise MaintenanceRequestError(
            f"unknown maintenance operations {sorted(unknown)}; known: {', '.join(OPERATIONS)}"
        )
    before = measure(paimon, policy.table)
    results = []
    if "compaction" in wanted:
        results.append(
            compact_closed_partitions(
                policy, flink=flink, paimon=paimon, leases=leases, holder=holder, today=now.date(), dry_run=dry_run
            )
        )
    if "snapshots" in wanted:
        results.append(expire_snapshots(policy, flink=flink, paimon=paimon, now=now, dry_run=dry_run))
    if "tags" in wanted:
        results.append(expire_t1_tags(policy, flink=flink, paimon=paimon, today=now.date(), dry_run=dry_run))
    if "partitions" in wanted:
        results.append(expire_partitions(policy, flink=flink, paimon=paimon, dry_run=dry_run))
    if "orphan_files" in wanted:
        results.append(remove_orphan_files(policy, flink=flink, paimon=paimon, now=now, dry_run=dry_run))
    report = MaintenanceReport(policy.table, before, measure(paimon, policy.table), results)
    for line in report.lines():
        log.info(line)
    return report


def with_overrides(policy: TablePolicy, **changes) -> TablePolicy:
    """A policy with some settings changed (tests, one-off runs), checked like the file."""
    changed = replace(policy, **changes)
    if changed.retain_min < 1 or changed.retain_max < changed.retain_min:
        raise MaintenanceRequestError(f"{policy.table}: retain_min must be >= 1 and retain_max >= retain_min")
    return changed
