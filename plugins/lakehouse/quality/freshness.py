"""Freshness: how far each table lags behind what feeds it (docs/STREAMING.md, "Freshness SLA").

`table_freshness` measures a table's lag; `check_sla` fails with `FreshnessSlaMissed` when the lag is
over the table's `freshness_sla` (config/tables.yaml). The lag is how long the oldest input the
table has not applied yet has been waiting; a table that has applied everything its input holds
has lag 0, however old its newest row (a quiet source is fresh), and a table whose writer is stuck
falls behind by the wall-clock time since the first input it missed (stale within one check once
that is longer than the SLA). Per kind of table:

- **ODS mirrors of a MariaDB table** (`source:` in tables.yaml), measure `source`: the source's
  newest change, `MAX(change_column)` through the `mysql_source` connection, against the newest
  change ODS has applied, the maximum of the same column in the ODS table (the mirror copies it,
  so both are the same value of the same row: no second clock is involved, as it would be with
  `binlog_ts`). ODS holding that change is caught up (the CDC job applies the binlog in order);
  otherwise the lag is now - the oldest source change newer than ODS's newest
  (`MIN(change_column) WHERE change_column > <ODS's newest>`). Partitioned tables compare the
  same rows on both sides: the source rows whose `day_column` is yesterday or today (UTC) and the
  ODS partitions of those days (today's first; yesterday's only when today's lacks the source's
  newest change), so the check never scans the whole table.
- **DWD/DWS** (and any table written by a job that streams registered tables), measure
  `inputs`: the writing job's Paimon consumer on each table it streams (`consumer-id` = pipeline
  name, lakehouse.streaming.deploy.consumer_options) records, at each checkpoint (when the job
  also commits its output), the next input snapshot it will read. If no snapshot from there on
  carries data for a streaming reader (an APPEND, or a COMPACT with changelog), the job is caught
  up; otherwise the lag is now - the commit time of the first such snapshot. Lookup-joined
  tables are not streamed and do not count. The lag is the largest over the inputs.
- **Tables fed by a generator** (a writer that streams no registered table: `ods.ods_user_events`),
  measure `newest_event`: the age of the newest `freshness_column` value (today's partition, else
  yesterday's); a generator emits continuously and stamps each event when it emits it, so this
  is its lag behind the generator. Without an event time in those partitions: the latest
  snapshot's age (`snapshot`).

Source DATETIME values are naive UTC (the MariaDB server runs at +00:00, as lakehouse.batch.t1
.day_complete assumes), and so are Paimon TIMESTAMP values as pypaimon returns them: every naive
value is read as UTC, whatever the host's time zone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lakehouse.core.errors import BadRequest, GateFailed
from lakehouse.core.registry import Registry, TableSpec, pipeline_prefix, registry

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook, SnapshotInfo

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class FreshnessSlaMissed(GateFailed):
    """A table lags behind its source or inputs by more than its freshness target (or its lag cannot
    be told); `table` names it."""

    def __init__(self, message: str, *, table: str):
        super().__init__(message)
        self.table = table


@dataclass(frozen=True)
class TableFreshness:
    """One table's lag. `lag_s` is None when it cannot be told (`detail` says why, or there is no
    data at all yet); `behind_since` is when the oldest input it lacks was written (None: caught up)."""

    table: str
    measure: str  # source | inputs | newest_event | snapshot
    lag_s: float | None
    behind_since: datetime | None
    detail: str  # what the lag was measured against
    snapshot_id: int | None
    snapshot_age_s: float | None
    behind: str = ""  # for a stale table: what it is behind, as the alert says it

    def describe(self) -> str:
        snap = (
            f"snapshot {self.snapshot_id} committed {self.snapshot_age_s:.0f} s ago"
            if self.snapshot_id is not None
            else "no snapshot yet"
        )
        lag = f"lag {self.lag_s:.0f} s" if self.lag_s is not None else "lag unknown"
        return f"{self.table}: {lag}: {self.detail}; {snap}"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    """A bound parameter for a DATETIME column, which holds naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _fmt(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _quoted(name: str) -> str:
    """A registry name (lower snake case, validated on load) as a MySQL identifier."""
    if not _IDENT.match(name or ""):
        raise BadRequest(f"{name!r} is not a lower snake case registry name; refusing to put it in SQL")
    return f"`{name}`"


def _days(now: float) -> list[str]:
    today = datetime.fromtimestamp(now, tz=UTC)
    return [f"{today:%Y-%m-%d}", f"{today - timedelta(days=1):%Y-%m-%d}"]


def _newest(paimon: PaimonHook, table: str, column: str, partition: dict | None) -> datetime | None:
    values = paimon.read_arrow(table, partition=partition, columns=[column]).column(0).to_pylist()
    newest = max((v for v in values if v is not None), default=None)
    return _utc(newest) if newest is not None else None


# ------------------------------------------------------------------------------ ODS: behind the source
def _source_lag(paimon: PaimonHook, mysql: MySqlHook, spec: TableSpec, snap, now: float):
    column, source = _quoted(spec.source_change_column), _quoted(spec.source)
    conditions, params = [], []
    partitions: list[dict | None] = [None]
    if spec.partition:  # the same rows on both sides: yesterday's and today's (UTC) by the day column
        days = _days(now)
        partitions = [{spec.partition: d} for d in days]
        day = _quoted(spec.source_day_column)
        start = datetime.fromisoformat(days[1])
        conditions += [f"{day} >= %s", f"{day} < %s"]
        params += [start, start + timedelta(days=2)]

    def query(func: str, *extra: tuple[str, datetime]):
        where = conditions + [c for c, _ in extra]
        sql = f"SELECT {func}({column}) FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
        value = mysql.get_first(sql, tuple(params) + tuple(p for _, p in extra))[0]
        return _utc(value) if value is not None else None

    newest_source = query("MAX")
    if newest_source is None:
        return 0.0, None, f"{spec.source} has no rows to apply", ""
    applied = None
    if snap is not None:
        for partition in partitions:
            newest = _newest(paimon, spec.name, spec.source_change_column, partition)
            applied = newest if applied is None or (newest is not None and newest > applied) else applied
            if applied is not None and applied >= newest_source:
                break
    if applied is not None and applied >= newest_source:
        return 0.0, None, f"caught up with {spec.source} (newest change {_fmt(newest_source)}, applied)", ""
    if applied is None:
        oldest_missing = query("MIN")
    else:
        oldest_missing = query("MIN", (f"{column} > %s", _naive_utc(applied)))
    oldest_missing = oldest_missing or newest_source  # the missing rows were deleted meanwhile
    detail = (
        f"{spec.source} has changes since {_fmt(oldest_missing)} that {spec.name} lacks (newest applied "
        f"{_fmt(applied) if applied else 'none'}, source newest {_fmt(newest_source)})"
    )
    behind = f"its source {spec.source} (the oldest change it lacks is from {_fmt(oldest_missing)})"
    return max(0.0, now - oldest_missing.timestamp()), oldest_missing, detail, behind


# ------------------------------------------------------------------------------ DWD/DWS: behind the inputs
def _carries_data(snap: SnapshotInfo) -> bool:
    """Whether a streaming reader gets rows from this snapshot: an APPEND (unless empty), or a
    compaction that produced changelog (changelog-producer lookup / full-compaction). Overwrites
    (T+1 recomputations) are skipped by streaming reads; plain compactions change no content."""
    if snap.commit_kind == "APPEND":
        return not (snap.delta_record_count == 0 and not snap.changelog_record_count)
    return snap.commit_kind == "COMPACT" and bool(snap.changelog_record_count)


def _input_lag(paimon: PaimonHook, consumer: str, table: str, now: float):
    """(lag or None, since, detail, behind) of the job reading `table` as Paimon consumer `consumer`."""
    latest = paimon.latest_snapshot(table)
    if latest is None:
        return 0.0, None, f"{table} has no snapshot to consume", ""
    position = paimon.consumers(table).get(consumer)
    if position is None:
        return (
            None,
            None,
            f"{consumer} has recorded no read position on {table} (Paimon consumer '{consumer}'): it has not "
            "completed a checkpoint since it started, or has been stopped for longer than the table's "
            "consumer.expiration-time",
            "",
        )
    if position > latest.snapshot_id:
        return 0.0, None, f"{consumer} has consumed {table} up to its latest snapshot {latest.snapshot_id}", ""
    for sid in (s for s in paimon.snapshot_ids(table) if s >= position):  # expired ones are skipped
        snap = paimon.get_snapshot(table, sid)
        if snap is not None and _carries_data(snap):
            detail = f"{consumer} has not consumed {table} snapshots {sid}..{latest.snapshot_id}"
            behind = (
                f"its input {table} (the oldest snapshot it has not consumed is {sid}, committed "
                f"{_fmt(snap.commit_time)})"
            )
            return max(0.0, now - snap.commit_time.timestamp()), snap.commit_time, detail, behind
    return 0.0, None, f"{consumer} has consumed every snapshot of {table} with new data", ""


# ------------------------------------------------------------------------------ generator-fed: newest event
def _event_lag(paimon: PaimonHook, spec: TableSpec, snap, now: float):
    if snap is None:
        return None, None, "no data yet", "", "newest_event" if spec.freshness_column else "snapshot"
    if spec.freshness_column:
        for day in _days(now) if spec.partition else [None]:
            newest = _newest(paimon, spec.name, spec.freshness_column, {spec.partition: day} if day else None)
            if newest is not None:
                lag = now - newest.timestamp()
                return (
                    lag,
                    newest,
                    f"newest event {_fmt(newest)}",
                    f"its newest event is {lag:.0f} s old",
                    "newest_event",
                )
    age = now - snap.commit_time.timestamp()
    return age, snap.commit_time, "no recent event time", f"its latest snapshot is {age:.0f} s old", "snapshot"


def table_freshness(
    paimon: PaimonHook,
    spec: TableSpec,
    *,
    mysql: MySqlHook | None = None,
    reg: Registry | None = None,
    prefix: str | None = None,
    now: float | None = None,
) -> TableFreshness:
    """The table's lag behind what feeds it (see the module docstring for each kind of table).

    `mysql`: the source database (`resources().mysql_source`), needed for ODS mirrors; `prefix`: the
    pipeline prefix of the jobs whose consumers to read (default: LAKEHOUSE_PIPELINE_PREFIX);
    `now`: epoch seconds (default: the clock)."""
    now = time.time() if now is None else now
    reg = reg or registry()
    prefix = pipeline_prefix() if prefix is None else prefix
    snap = paimon.latest_snapshot(spec.name)
    streamed = [(prefix + job.name, t) for job in reg.writers(spec.name) for t in job.streamed]
    if spec.source:
        if mysql is None:
            raise BadRequest(
                f"{spec.name} mirrors {spec.source}: pass mysql= (the source database's hook, "
                "resources().mysql_source) to measure its lag behind it"
            )
        lag, since, detail, behind = _source_lag(paimon, mysql, spec, snap, now)
        measure = "source"
    elif streamed:
        measure, lag, since, details, behind = "inputs", 0.0, None, [], ""
        for consumer, table in streamed:
            one, one_since, one_detail, one_behind = _input_lag(paimon, consumer, table, now)
            details.append(one_detail)
            if one is None:
                lag, since, behind = None, None, ""
                details = [one_detail]
                break
            if one_since is not None and (since is None or one > lag):  # the input it is furthest behind
                lag, since, behind = one, one_since, one_behind
        detail = "; ".join(details)
    else:
        lag, since, detail, behind, measure = _event_lag(paimon, spec, snap, now)
    return TableFreshness(
        table=spec.name,
        measure=measure,
        lag_s=lag,
        behind_since=since,
        detail=detail,
        snapshot_id=snap.snapshot_id if snap else None,
        snapshot_age_s=now - snap.commit_time.timestamp() if snap else None,
        behind=behind,
    )


def check_sla(
    paimon: PaimonHook,
    spec: TableSpec,
    *,
    mysql: MySqlHook | None = None,
    reg: Registry | None = None,
    prefix: str | None = None,
    now: float | None = None,
) -> TableFreshness:
    """The table's freshness; raises FreshnessSlaMissed when its lag is over its `freshness_sla`, or
    cannot be told. A table without an SLA is measured and never raises."""
    reg = reg or registry()
    f = table_freshness(paimon, spec, mysql=mysql, reg=reg, prefix=prefix, now=now)
    sla = spec.freshness_sla_s
    if sla is None:
        return f
    writers = ", ".join(job.name for job in reg.writers(spec.name)) or "none registered"
    where = (
        f"Check the streaming job {writers} (streaming_supervision DAG, its Flink job and checkpoints) "
        "and what it reads; docs/STREAMING.md, Freshness SLA."
    )
    if f.lag_s is None:
        if f.snapshot_id is None and f.measure in ("newest_event", "snapshot"):
            raise FreshnessSlaMissed(f"{spec.name} has no data yet (SLA {sla:.0f} s). {where}", table=spec.name)
        raise FreshnessSlaMissed(f"{spec.name}: freshness unknown: {f.detail}. {where}", table=spec.name)
    if f.lag_s > sla:
        how = f.behind if f.measure in ("newest_event", "snapshot") else f"{f.lag_s:.0f} s behind {f.behind}"
        raise FreshnessSlaMissed(
            f"{spec.name} is stale: {how}, SLA {sla:.0f} s. {f.describe()}. {where}", table=spec.name
        )
    return f
