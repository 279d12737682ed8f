"""Table maintenance: compaction, snapshot/tag/partition expiry and orphan-file removal, measured.

Paimon's own procedures do the work (`sys.compact`, `sys.expire_snapshots`, `sys.expire_partitions`,
`sys.delete_tag`, `sys.remove_orphan_files`), run through Flink's SQL Gateway: pypaimon has none
of them. What to do to each table, and when, is the policy in config/maintenance.yaml. Each run
measures every table before and after (snapshots, data files, bytes, small files, partitions),
keeps the figures in the Paimon table ops.maintenance_metrics, and alerts when small files keep
growing.

Readers are never broken:
- snapshot expiry keeps what a consumer id still needs (streaming readers; pins of running
  backfills and checks, see PaimonHook.pin_snapshot) and the files of tagged snapshots;
- compaction only touches closed days, under the same partition lease the T+1 recomputation takes;
- orphan removal only deletes files older than a threshold longer than any write.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from airflow.sdk.exceptions import AirflowException

from lakehouse.hooks.flink import FlinkHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.paths import CONFIG_DIR
from lakehouse.registry import Registry, RegistryError, parse_duration, registry
from lakehouse.sql_files import load_statements

log = logging.getLogger(__name__)

OPERATIONS = ("compaction", "snapshots", "tags", "partitions", "orphan_files")
METRICS_TABLE = "ops.maintenance_metrics"
# A T+1 recomputation may run this long (batch.recompute_partition's timeout); no write lasts longer.
LONGEST_WRITE_S = 3600.0
PROCEDURE_SESSION = {"execution.runtime-mode": "batch", "table.dml-sync": "true",
                     "parallelism.default": "1"}
_T1_TAG = re.compile(r"^t1-(\d{4}-\d{2}-\d{2})$")


class MaintenanceError(AirflowException):
    """A maintenance policy or run that cannot go ahead; the message says what to fix."""


class SmallFilesGrowing(AirflowException):
    """Small files grew in every one of the last maintenance runs: compaction is not keeping up."""


# --------------------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class TablePolicy:
    table: str
    compaction: str = "closed-partitions"  # closed-partitions | none
    compaction_schedule: str = "20 * * * *"
    compaction_lookback_days: int = 7
    snapshots_schedule: str = "40 * * * *"
    retain_min: int = 10
    retain_max: int = 500
    retain_time_s: float = 7200.0
    max_deletes: int = 2000
    tag_retention_days: int | None = 90
    partition_retention_days: int | None = None
    orphan_schedule: str = "10 3 * * *"
    orphan_older_than_s: float = 86400.0
    small_file_alert_runs: int = 3

    def schedule(self, operation: str) -> str:
        """The cron of an operation; tags and partitions go with snapshot expiry."""
        return {"compaction": self.compaction_schedule, "orphan_files": self.orphan_schedule}.get(
            operation, self.snapshots_schedule)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = _merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MaintenanceError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return value


def _cron(value: Any, where: str) -> str:
    from croniter import croniter

    if not isinstance(value, str) or not croniter.is_valid(value):
        raise MaintenanceError(f"{where}: {value!r} is not a cron expression such as '20 * * * *'")
    return value


def _duration(value: Any, where: str) -> float:
    try:
        return parse_duration(str(value), where)
    except RegistryError as exc:
        raise MaintenanceError(str(exc).replace("'36h'", "'36h' or '1d'")) from None


def _days_duration(value: Any, where: str) -> float:
    text = str(value).strip()
    if re.fullmatch(r"\d+\s*d", text):
        return int(text[:-1]) * 86400.0
    return _duration(text, where)


def parse_policy(name: str, spec: dict) -> TablePolicy:
    """One table's merged settings -> TablePolicy, every value checked; errors name the setting."""
    where = f"maintenance.yaml: {name}"
    known = {"compaction", "snapshots", "tags", "partitions", "orphan_files", "small_files"}
    if set(spec) - known:
        raise MaintenanceError(f"{where}: unknown sections {sorted(set(spec) - known)}; known: {sorted(known)}")
    comp, snaps = spec.get("compaction") or {}, spec.get("snapshots") or {}
    tags, parts = spec.get("tags") or {}, spec.get("partitions") or {}
    orphans, small = spec.get("orphan_files") or {}, spec.get("small_files") or {}
    strategy = comp.get("strategy", "closed-partitions")
    if strategy not in ("closed-partitions", "none"):
        raise MaintenanceError(f"{where}: compaction.strategy must be closed-partitions or none, got {strategy!r}")
    retain_min = _int(snaps.get("retain_min", 10), f"{where}: snapshots.retain_min", minimum=1)
    retain_max = _int(snaps.get("retain_max", 500), f"{where}: snapshots.retain_max", minimum=1)
    if retain_max < retain_min:
        raise MaintenanceError(f"{where}: snapshots.retain_max ({retain_max}) is below retain_min ({retain_min})")
    older_than = _days_duration(orphans.get("older_than", "1d"), f"{where}: orphan_files.older_than")
    if older_than < LONGEST_WRITE_S:
        raise MaintenanceError(
            f"{where}: orphan_files.older_than must be at least {LONGEST_WRITE_S / 3600:g}h, the longest write "
            f"(a T+1 recomputation); a younger file may belong to a write in flight. Got {orphans.get('older_than')!r}")
    tag_days, part_days = tags.get("retention_days", 90), parts.get("retention_days")
    return TablePolicy(
        table=name,
        compaction=strategy,
        compaction_schedule=_cron(comp.get("schedule", "20 * * * *"), f"{where}: compaction.schedule"),
        compaction_lookback_days=_int(comp.get("lookback_days", 7), f"{where}: compaction.lookback_days", minimum=1),
        snapshots_schedule=_cron(snaps.get("schedule", "40 * * * *"), f"{where}: snapshots.schedule"),
        retain_min=retain_min,
        retain_max=retain_max,
        retain_time_s=_days_duration(snaps.get("retain_time", "2h"), f"{where}: snapshots.retain_time"),
        max_deletes=_int(snaps.get("max_deletes", 2000), f"{where}: snapshots.max_deletes", minimum=1),
        tag_retention_days=None if tag_days is None else _int(tag_days, f"{where}: tags.retention_days", minimum=1),
        partition_retention_days=None if part_days is None else _int(
            part_days, f"{where}: partitions.retention_days", minimum=1),
        orphan_schedule=_cron(orphans.get("schedule", "10 3 * * *"), f"{where}: orphan_files.schedule"),
        orphan_older_than_s=older_than,
        small_file_alert_runs=_int(small.get("alert_after_runs", 3), f"{where}: small_files.alert_after_runs",
                                   minimum=2),
    )


def load_policies(path: Path | None = None, reg: Registry | None = None) -> dict[str, TablePolicy]:
    """Every registered table's policy (defaults merged with its overrides), checked as a whole."""
    import yaml

    reg = reg or registry()
    path = path or CONFIG_DIR / "maintenance.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MaintenanceError(f"cannot read {path}: {exc}") from exc
    overrides = data.get("tables") or {}
    unknown = sorted(set(overrides) - set(reg.tables))
    if unknown:
        raise MaintenanceError(f"maintenance.yaml names unregistered tables {unknown}; "
                               f"registered: {', '.join(sorted(reg.tables))}")
    defaults = data.get("defaults") or {}
    policies = {name: parse_policy(name, _merge(defaults, overrides.get(name) or {})) for name in sorted(reg.tables)}
    _check_retention_chain(policies, reg)
    return policies


def _check_retention_chain(policies: dict[str, TablePolicy], reg: Registry) -> None:
    """A table recomputed from inputs must not keep days its inputs have dropped: a backfill of
    such a day would read empty inputs and overwrite the partition with nothing."""
    for name, policy in policies.items():
        if not reg.tables[name].model:
            continue
        for source in reg.partitioned_inputs(name):
            src_days = policies[source.name].partition_retention_days
            own = policy.partition_retention_days
            if src_days is not None and (own is None or own > src_days):
                raise MaintenanceError(
                    f"maintenance.yaml: {name} keeps partitions {'forever' if own is None else f'{own} days'} "
                    f"but its input {source.name} keeps {src_days} days: a backfill of an older day would "
                    f"overwrite it with nothing. Give {name} partitions.retention_days <= {src_days}.")


def due_operations(policy: TablePolicy, start: datetime, end: datetime) -> list[str]:
    """Operations whose schedule fires in [start, end): what an hourly run does for this table."""
    from croniter import croniter

    due = []
    for operation in OPERATIONS:
        fire = croniter(policy.schedule(operation), start - timedelta(microseconds=1)).get_next(datetime)
        if start <= fire < end:
            due.append(operation)
    return due


# -------------------------------------------------------------------------------------- metrics
@dataclass
class TableMetrics:
    table: str
    snapshot_id: int | None
    snapshots: int
    earliest_snapshot_id: int | None
    data_files: int
    total_bytes: int
    small_files: int
    partitions: int
    buckets: int
    tags: int
    consumers: int
    files_per_partition: dict = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.table}: snapshots {self.snapshots} (earliest {self.earliest_snapshot_id}, latest "
                f"{self.snapshot_id}), {self.data_files} data files, {self.total_bytes / 1e6:.2f} MB, "
                f"{self.small_files} small files, {self.partitions} partitions, {self.tags} tags, "
                f"{self.consumers} consumers")


def _bucket_count(paimon: PaimonHook, table: str) -> int:
    """Fixed buckets per partition; 1 for dynamic (-1) and unaware-bucket tables' single directory."""
    return max(1, int(paimon.get_table(table).total_buckets))


def _target_file_size(paimon: PaimonHook, table: str) -> int:
    """The table's target-file-size, or Paimon's default (128 MB primary-key, 256 MB append)."""
    handle = paimon.get_table(table)
    return int(handle.options.target_file_size(bool(handle.primary_keys)))


def measure(paimon: PaimonHook, table: str) -> TableMetrics:
    """What the latest snapshot of `table` is made of (metadata only, no data read)."""
    ids = paimon.snapshot_ids(table)
    files = paimon.data_files(table)
    target = _target_file_size(paimon, table)
    per_partition: dict[str, int] = {}
    for f in files:
        key = "/".join(f"{k}={v}" for k, v in f.partition.items())
        per_partition[key] = per_partition.get(key, 0) + 1
    return TableMetrics(
        table=table, snapshot_id=ids[-1] if ids else None, snapshots=len(ids),
        earliest_snapshot_id=ids[0] if ids else None, data_files=len(files),
        total_bytes=sum(f.size for f in files), small_files=sum(1 for f in files if f.size < target),
        partitions=len(per_partition), buckets=_bucket_count(paimon, table),
        tags=len(paimon.list_tags(table)), consumers=len(paimon.consumers(table)),
        files_per_partition=per_partition)


def _metrics_schema():
    import pyarrow as pa

    return pa.schema([
        ("run_id", pa.string()), ("table_name", pa.string()), ("phase", pa.string()),
        ("measured_at", pa.timestamp("ms", tz="UTC")), ("snapshot_id", pa.int64()), ("snapshots", pa.int64()),
        ("data_files", pa.int64()), ("total_bytes", pa.int64()), ("small_files", pa.int64()),
        ("partitions", pa.int64()), ("tags", pa.int64()), ("operations", pa.string()),
    ])


def record_metrics(paimon: PaimonHook, run_id: str, rows: list[dict]) -> int | None:
    """Append before/after figures to ops.maintenance_metrics (a Python-owned Paimon table)."""
    import pyarrow as pa

    paimon.ensure_ops_table(METRICS_TABLE, _metrics_schema())
    now = datetime.now(timezone.utc)
    table = pa.Table.from_pylist([{
        "run_id": run_id, "table_name": r["table"], "phase": r["phase"], "measured_at": now,
        "snapshot_id": r["snapshot_id"], "snapshots": r["snapshots"], "data_files": r["data_files"],
        "total_bytes": r["total_bytes"], "small_files": r["small_files"], "partitions": r["partitions"],
        "tags": r["tags"], "operations": r.get("operations", ""),
    } for r in rows], schema=_metrics_schema())
    return paimon.append_rows(METRICS_TABLE, table)


def small_file_trend(paimon: PaimonHook, table: str, runs: int) -> list[int]:
    """Small files after each of the last `runs` + 1 maintenance runs of `table`, oldest first."""
    if not paimon.table_exists(METRICS_TABLE):
        return []
    data = paimon.read_arrow(METRICS_TABLE, columns=["table_name", "phase", "measured_at", "small_files"])
    rows = sorted((r for r in data.to_pylist() if r["table_name"] == table and r["phase"] == "after"),
                  key=lambda r: r["measured_at"])
    return [r["small_files"] for r in rows[-(runs + 1):]]


def check_small_file_growth(paimon: PaimonHook, policies: dict[str, TablePolicy]) -> list[str]:
    """Raise SmallFilesGrowing naming each table whose small files grew in each of its last runs."""
    growing = []
    for name, policy in policies.items():
        trend = small_file_trend(paimon, name, policy.small_file_alert_runs)
        if len(trend) == policy.small_file_alert_runs + 1 and all(b > a for a, b in zip(trend, trend[1:])):
            growing.append(f"{name}: small files after the last {policy.small_file_alert_runs + 1} runs "
                           f"{' -> '.join(map(str, trend))}")
    if growing:
        raise SmallFilesGrowing(
            "small files keep growing although maintenance ran; compaction is not keeping up "
            "(check the compaction schedule and lookback, or the writers' parallelism and checkpoint interval):\n- "
            + "\n- ".join(growing))
    return growing


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
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _call(flink: FlinkHook, paimon: PaimonHook, statement: str, timeout: float = 3600) -> list:
    from lakehouse.streaming import catalog_statements

    results = flink.execute_sql(catalog_statements(paimon) + [statement], session_config=PROCEDURE_SESSION,
                                result_timeout=timeout)
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


def compact_closed_partitions(policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, leases,
                              holder: str, today: date, dry_run: bool = False) -> OperationResult:
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
        from lakehouse.leases import LeaseHeld

        try:  # the T+1 recomputation overwrites under the same lease: never both at once
            leases.acquire([policy.table], day, holder)
        except LeaseHeld as exc:
            busy.append(f"dt={day}: {exc}")
            continue
        try:
            _call(flink, paimon, _render("compact_partition", table=policy.table, partition_column="dt", dt=day))
        finally:
            leases.release(holder, day)
        done.append(f"dt={day} ({files} files)")
    detail = (f"{'would compact' if dry_run else 'compacted'} {', '.join(done) or 'nothing (no closed day above one file per bucket)'}"
              + (f"; left for the next run, being overwritten: {'; '.join(busy)}" if busy else ""))
    return OperationResult("compaction", detail, time.monotonic() - started)


def expire_snapshots(policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, now: datetime,
                     dry_run: bool = False) -> OperationResult:
    started = time.monotonic()
    gone_pins = [] if dry_run else paimon.expire_pins(policy.table, now=now)
    before = paimon.snapshot_ids(policy.table)
    protected = paimon.consumers(policy.table)
    if dry_run:
        return OperationResult("snapshots", f"would expire beyond retain_min={policy.retain_min} "
                               f"retain_max={policy.retain_max} older than {_utc(now - timedelta(seconds=policy.retain_time_s))}; "
                               f"consumers holding snapshots: {protected or 'none'}", 0.0)
    _call(flink, paimon, _render(
        "expire_snapshots", table=policy.table, retain_min=policy.retain_min, retain_max=policy.retain_max,
        older_than=_utc(now - timedelta(seconds=policy.retain_time_s)), max_deletes=policy.max_deletes))
    after = paimon.snapshot_ids(policy.table)
    detail = (f"{len(before) - len(after)} expired, {len(after)} kept "
              f"(earliest {after[0] if after else None}); consumers holding snapshots: {protected or 'none'}"
              + (f"; removed lapsed pins {gone_pins}" if gone_pins else ""))
    return OperationResult("snapshots", detail, time.monotonic() - started)


def expire_t1_tags(policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, today: date,
                   dry_run: bool = False) -> OperationResult:
    """Delete T+1 tags (t1-<day>) of days older than the retention; other tags are left alone.

    Not sys.expire_tags: it goes by a tag's creation time, and a backfill re-creates old days'
    tags today; the day a tag stands for is what the retention is about."""
    started = time.monotonic()
    if policy.tag_retention_days is None:
        return OperationResult("tags", "kept forever", 0.0, skipped=True)
    cutoff = today - timedelta(days=policy.tag_retention_days)
    old = [t for t in paimon.list_tags(policy.table)
           if (m := _T1_TAG.match(t)) and date.fromisoformat(m.group(1)) < cutoff]
    if not dry_run:
        for tag in old:
            _call(flink, paimon, _render("delete_tag", table=policy.table, tag=tag))
    return OperationResult("tags", f"{'would delete' if dry_run else 'deleted'} {len(old)} T+1 tags before {cutoff}"
                           + (f": {', '.join(old)}" if old else ""), time.monotonic() - started)


def expire_partitions(policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook,
                      dry_run: bool = False) -> OperationResult:
    started = time.monotonic()
    spec = registry().table(policy.table)
    if policy.partition_retention_days is None or spec.partition != "dt":
        return OperationResult("partitions", "kept forever", 0.0, skipped=True)
    if dry_run:
        return OperationResult("partitions", f"would drop days older than {policy.partition_retention_days} d", 0.0)
    rows = _call(flink, paimon, _render("expire_partitions", table=policy.table,
                                        retention_days=policy.partition_retention_days))
    dropped = [str(r[0]) for r in rows if r and r[0] not in (None, "No expired partitions.")]
    return OperationResult("partitions", f"dropped {len(dropped)} partitions older than "
                           f"{policy.partition_retention_days} d" + (f": {', '.join(dropped)}" if dropped else ""),
                           time.monotonic() - started)


def remove_orphan_files(policy: TablePolicy, *, flink: FlinkHook, paimon: PaimonHook, now: datetime,
                        dry_run: bool = False) -> OperationResult:
    started = time.monotonic()
    older_than = now - timedelta(seconds=policy.orphan_older_than_s)
    rows = _call(flink, paimon, _render("remove_orphan_files", table=policy.table, older_than=_utc(older_than),
                                        dry_run=dry_run))
    # The procedure answers two rows: the number of files and their total size in bytes.
    count, size = (int(r[0]) for r in (rows + [["0"], ["0"]])[:2])
    return OperationResult("orphan_files", f"{'would remove' if dry_run else 'removed'} {count} files "
                           f"({size} bytes) older than {_utc(older_than)} UTC", time.monotonic() - started)


@dataclass
class MaintenanceReport:
    table: str
    before: TableMetrics
    after: TableMetrics
    results: list[OperationResult]

    def lines(self) -> list[str]:
        return [f"before  {self.before.line()}"] + [f"  {r.line()}" for r in self.results] + [
            f"after   {self.after.line()}"]

    def metric_rows(self) -> list[dict]:
        ops = "; ".join(r.line() for r in self.results)
        return [{**asdict(self.before), "phase": "before"}, {**asdict(self.after), "phase": "after", "operations": ops}]


def maintain_table(policy: TablePolicy, operations: Iterable[str], *, flink: FlinkHook, paimon: PaimonHook,
                   leases, holder: str, now: datetime, dry_run: bool = False) -> MaintenanceReport:
    """Run the chosen operations on one table in a safe order, measuring before and after.

    Compaction first (it leaves the replaced files to the snapshots that still reference them),
    then snapshot expiry (which deletes files no kept snapshot or tag references), tags and
    partitions, and orphan files last."""
    wanted = set(operations)
    unknown = wanted - set(OPERATIONS)
    if unknown:
        raise MaintenanceError(f"unknown maintenance operations {sorted(unknown)}; known: {', '.join(OPERATIONS)}")
    before = measure(paimon, policy.table)
    results = []
    if "compaction" in wanted:
        results.append(compact_closed_partitions(policy, flink=flink, paimon=paimon, leases=leases, holder=holder,
                                                 today=now.date(), dry_run=dry_run))
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
        raise MaintenanceError(f"{policy.table}: retain_min must be >= 1 and retain_max >= retain_min")
    return changed
