"""T+1 recomputation of DWD/DWS partitions on the tables the streaming jobs write.

For one day `dt` and one registered DWD/DWS table, the table's model (sql/models/<table>.sql,
the same one the streaming job uses) is rendered in batch mode and run on Flink in batch mode as

    INSERT OVERWRITE lakehouse.<db>.<table> PARTITION (dt = '<dt>') SELECT <columns> FROM (<model>)

which replaces exactly that partition, atomically, in one Paimon OVERWRITE commit: running it
twice gives the same partition (idempotent), and an empty result empties the partition.

Values reach the SQL only after validation: `dt` must be a real calendar day (YYYY-MM-DD) and the
table must be a registered DWD/DWS table with a model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

from lakehouse.core.days import parse_day
from lakehouse.core.errors import BadRequest, ConfigError, GateFailed
from lakehouse.core.flink_sql import catalog_statements, sql_context
from lakehouse.core.registry import Registry, TableSpec, registry
from lakehouse.core.sql_files import load_statements
from lakehouse.hooks.flink import BATCH_RESTARTS, FlinkHook
from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)

# Recompute order: DWD before the DWS tables that read it.
LAYER_ORDER = {"dwd": 0, "dws": 1}


def recomputable_tables(reg: Registry | None = None) -> list[TableSpec]:
    """DWD/DWS tables with a model, in dependency order."""
    reg = reg or registry()
    tables = [t for t in reg.tables.values() if t.model and t.layer in LAYER_ORDER]
    return sorted(tables, key=lambda t: (LAYER_ORDER[t.layer], t.name))


def render_overwrite(table: TableSpec, dt: str, *, paimon: PaimonHook) -> list[str]:
    """Catalog + the INSERT OVERWRITE of one partition, from the table's model in batch mode."""
    day = parse_day(dt).isoformat()
    if not table.model or table.partition != "dt":
        raise BadRequest(f"{table.name} has no model partitioned by dt: it cannot be recomputed")
    columns = [f.name for f in paimon.get_table(table.name).fields if f.name != table.partition]
    model = load_statements(table.model, {**sql_context(paimon=paimon), "mode": "batch", "dt": day})
    if len(model) != 1:
        raise ConfigError(f"{table.model} must be a single SELECT")
    select = ", ".join(f"`{c}`" for c in columns)
    overwrite = (
        f"INSERT OVERWRITE lakehouse.{table.database}.{table.table} PARTITION (dt = '{day}')\n"
        f"SELECT {select} FROM (\n{model[0]}\n) AS recomputed WHERE dt = '{day}'"
    )
    return catalog_statements(paimon) + [overwrite]


BATCH_SESSION = {
    "execution.runtime-mode": "batch",
    "table.dml-sync": "true",  # the statement returns when the batch job has finished
    "parallelism.default": "2",
    "table.exec.resource.default-parallelism": "2",
    **BATCH_RESTARTS,
}


@dataclass
class PartitionStats:
    rows: int
    totals: dict
    snapshot_id: int | None


@dataclass
class PartitionReport:
    table: str
    dt: str
    before: PartitionStats
    after: PartitionStats | None
    overwrite_snapshot_id: int | None
    duration_s: float
    dry_run: bool = False
    # Latest snapshot of each partitioned input when the recomputation that was kept started.
    # No input commit touched the day between these and the OVERWRITE (recompute_partition checks),
    # so the day of each input at these snapshots is exactly what the recomputation read.
    source_snapshots: dict = field(default_factory=dict)

    def line(self) -> str:
        after = self.after
        return (
            f"{self.table} dt={self.dt}: rows {self.before.rows} -> {after.rows if after else '-'}, "
            f"totals {self.before.totals} -> {after.totals if after else '-'}, snapshot "
            f"{self.before.snapshot_id} -> {self.overwrite_snapshot_id}, {self.duration_s:.1f} s"
            + (" (dry run)" if self.dry_run else "")
        )


def total_columns(table: str) -> tuple[str, ...]:
    """Columns summed in a partition's report (config/tables.yaml: totals); none for other tables."""
    spec = registry().tables.get(table)
    return spec.totals if spec else ()


def partition_stats(paimon: PaimonHook, table: str, dt: str, *, snapshot_id: int | None = None) -> PartitionStats:
    snap = paimon.latest_snapshot(table) if snapshot_id is None else None
    sid = snapshot_id if snapshot_id is not None else (snap.snapshot_id if snap else None)
    if sid is None:
        return PartitionStats(0, {c: 0 for c in total_columns(table)}, None)
    cols = total_columns(table)
    data = paimon.read_arrow(table, partition={"dt": dt}, snapshot_id=sid, columns=list(cols) or None)
    totals = {c: sum((v for v in data.column(c).to_pylist() if v is not None), 0) for c in cols}
    return PartitionStats(data.num_rows, totals, sid)


class SourceRaced(GateFailed):
    """A source partition kept changing while it was recomputed; nothing of the day is published.
    `table` and `dt` name the partition, `raced` maps each source to the snapshots that raced.
    Retryable: once late changes stop arriving, the same recomputation succeeds."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, table: str, dt: str, raced: dict[str, list[int]]):
        super().__init__(message)
        self.table = table
        self.dt = dt
        self.raced = dict(raced)


def recompute_partition(
    table: TableSpec,
    dt: str,
    *,
    flink: FlinkHook,
    paimon: PaimonHook,
    dry_run: bool = False,
    timeout: float = 3600,
    max_attempts: int = 3,
) -> PartitionReport:
    """Overwrite one day of one table from its model; returns what changed.

    The streaming job keeps applying late changes of that day to the same partition. A change that
    reached a source partition after the batch job read it, and that the streaming job wrote
    before the OVERWRITE committed, would be replaced by the older recomputed row. So after the
    commit we look for source commits to the day between our read and our OVERWRITE; if there
    are any, the partition is recomputed again (a change committed after the OVERWRITE is applied
    on top of it by the streaming job, as usual). A day that keeps changing for `max_attempts`
    recomputations fails the task, naming the source commits.
    """
    statements = render_overwrite(table, dt, paimon=paimon)
    before = partition_stats(paimon, table.name, dt)
    started = time.monotonic()
    if dry_run:
        log.info("dry run, would run:\n%s", statements[-1])
        return PartitionReport(table.name, dt, before, None, None, 0.0, True)
    sources = [s.name for s in registry().partitioned_inputs(table.name)]
    after_id = before.snapshot_id
    for attempt in range(1, max_attempts + 1):
        read_from = {s: _latest_id(paimon, s) for s in sources}  # the batch job reads at or after these
        # The hook waits for free slots first, and cancels the job at the timeout or when the task is killed.
        flink.execute_sql(
            statements,
            session_config={**BATCH_SESSION, "pipeline.name": f"t1_recompute {table.name} dt={dt}"},
            result_timeout=timeout,
        )
        overwrite = overwrite_snapshot_after(paimon, table.name, after_id, dt)
        raced = _source_commits_before(paimon, read_from, dt, table.name, overwrite)
        if not raced:
            break
        after_id = overwrite
        message = (
            f"{table.name} dt={dt}: sources changed while it was recomputed "
            f"({', '.join(f'{s} snapshots {ids}' for s, ids in raced.items())})"
        )
        if attempt == max_attempts:
            raise SourceRaced(
                f"{message}; gave up after {max_attempts} recomputations. Late changes to this day "
                "are still arriving: retry the task once the day is quiet.",
                table=table.name,
                dt=dt,
                raced=raced,
            )
        log.warning(
            "%s; recomputing again (attempt %d of %d) so no streamed change is replaced",
            message,
            attempt + 1,
            max_attempts,
        )
    after = partition_stats(paimon, table.name, dt, snapshot_id=overwrite)
    report = PartitionReport(
        table.name, dt, before, after, overwrite, time.monotonic() - started, source_snapshots=read_from
    )
    log.info(report.line())
    return report


def _latest_id(paimon: PaimonHook, table: str) -> int | None:
    snap = paimon.latest_snapshot(table)
    return snap.snapshot_id if snap else None


def _source_commits_before(paimon: PaimonHook, read_from: dict, dt: str, table: str, overwrite_id: int | None) -> dict:
    """Source commits to `dt` after the read marks and no later than the OVERWRITE of `table`."""
    if overwrite_id is None or not read_from:
        return {}
    overwrite = paimon.get_snapshot(table, overwrite_id)
    if overwrite is None:  # expired already: nothing to compare with; count every later commit as a race
        overwrite_time = None
    else:
        overwrite_time = overwrite.commit_time
    raced = {}
    for source, mark in read_from.items():
        early = []
        for i in paimon.commits_to_partition(source, {"dt": dt}, after_snapshot_id=mark):
            commit = paimon.get_snapshot(source, i)
            if overwrite_time is None or commit is None or commit.commit_time <= overwrite_time:
                early.append(i)
        if early:
            raced[source] = early
    return raced


def overwrite_snapshot_after(paimon: PaimonHook, table: str, after_id: int | None, dt: str) -> int | None:
    """The OVERWRITE commit after `after_id` that rewrote partition `dt`: the snapshot this recomputation wrote.

    Other days of the same table may be recomputed at the same time (t1_daily runs, backfill runs
    and lanes in parallel), each committing its own OVERWRITE, so the first one after `after_id`
    is not necessarily this day's. Without one (an empty result over an empty partition commits
    nothing): the latest snapshot."""
    ids = paimon.commits_to_partition(table, {"dt": dt}, after_snapshot_id=after_id, kinds=("OVERWRITE",))
    if ids:
        return ids[0]
    return _latest_id(paimon, table)
