"""What a table is made of (snapshots, files, small files), kept in ops.maintenance_metrics; the small-file alert."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lakehouse.core.errors import GateFailed
from lakehouse.core.ops_tables import OpsTable
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.maintenance.policy import TablePolicy

log = logging.getLogger(__name__)

METRICS_TABLE = "ops.maintenance_metrics"


class SmallFilesGrowing(GateFailed):
    """Small files grew in every one of the last maintenance runs: compaction is not keeping up.
    `tables` names the tables concerned."""

    def __init__(self, message: str, *, tables: list[str]):
        super().__init__(message)
        self.tables = list(tables)


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
        return (
            f"{self.table}: snapshots {self.snapshots} (earliest {self.earliest_snapshot_id}, latest "
            f"{self.snapshot_id}), {self.data_files} data files, {self.total_bytes / 1e6:.2f} MB, "
            f"{self.small_files} small files, {self.partitions} partitions, {self.tags} tags, "
            f"{self.consumers} consumers"
        )


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
        table=table,
        snapshot_id=ids[-1] if ids else None,
        snapshots=len(ids),
        earliest_snapshot_id=ids[0] if ids else None,
        data_files=len(files),
        total_bytes=sum(f.size for f in files),
        small_files=sum(1 for f in files if f.size < target),
        partitions=len(per_partition),
        buckets=_bucket_count(paimon, table),
        tags=len(paimon.list_tags(table)),
        consumers=len(paimon.consumers(table)),
        files_per_partition=per_partition,
    )


METRICS = OpsTable(
    METRICS_TABLE,
    lambda pa: [
        ("run_id", pa.string()),
        ("table_name", pa.string()),
        ("phase", pa.string()),
        ("measured_at", pa.timestamp("ms", tz="UTC")),
        ("snapshot_id", pa.int64()),
        ("snapshots", pa.int64()),
        ("data_files", pa.int64()),
        ("total_bytes", pa.int64()),
        ("small_files", pa.int64()),
        ("partitions", pa.int64()),
        ("tags", pa.int64()),
        ("operations", pa.string()),
    ],
)


def record_metrics(paimon: PaimonHook, run_id: str, rows: list[dict]) -> int | None:
    """Append before/after figures to ops.maintenance_metrics (a Python-owned Paimon table)."""
    now = datetime.now(UTC)
    return METRICS.append(
        paimon,
        [
            {
                "run_id": run_id,
                "table_name": r["table"],
                "phase": r["phase"],
                "measured_at": now,
                "snapshot_id": r["snapshot_id"],
                "snapshots": r["snapshots"],
                "data_files": r["data_files"],
                "total_bytes": r["total_bytes"],
                "small_files": r["small_files"],
                "partitions": r["partitions"],
                "tags": r["tags"],
                "operations": r.get("operations", ""),
            }
            for r in rows
        ],
    )


def small_file_trend(paimon: PaimonHook, table: str, runs: int) -> list[int]:
    """Small files after each of the last `runs` + 1 maintenance runs of `table`, oldest first."""
    data = METRICS.read(paimon, columns=["table_name", "phase", "measured_at", "small_files"])
    rows = sorted(
        (r for r in data if r["table_name"] == table and r["phase"] == "after"), key=lambda r: r["measured_at"]
    )
    return [r["small_files"] for r in rows[-(runs + 1) :]]


def check_small_file_growth(paimon: PaimonHook, policies: dict[str, TablePolicy]) -> list[str]:
    """Raise SmallFilesGrowing naming each table whose small files grew in each of its last runs."""
    growing, tables = [], []
    for name, policy in policies.items():
        trend = small_file_trend(paimon, name, policy.small_file_alert_runs)
        rising = all(b > a for a, b in zip(trend, trend[1:], strict=False))  # each run after the one before
        if len(trend) == policy.small_file_alert_runs + 1 and rising:
            growing.append(
                f"{name}: small files after the last {policy.small_file_alert_runs + 1} runs "
                f"{' -> '.join(map(str, trend))}"
            )
            tables.append(name)
    if growing:
        raise SmallFilesGrowing(
            "small files keep growing although maintenance ran; compaction is not keeping up "
            "(check the compaction schedule and lookback, or the writers' parallelism and checkpoint interval):\n- "
            + "\n- ".join(growing),
            tables=tables,
        )
    return growing
