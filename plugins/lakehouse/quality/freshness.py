"""Freshness: how current each table is, and how long after a MySQL write a row is visible.

`table_freshness` / `check_sla` report per table the age of the latest Paimon snapshot and of
the newest event time in it, and fail with a clear message when a table is staler than its SLA
(config/tables.yaml: freshness_sla).

Insert-to-visible delay (`VisibilityProbe`): how long after a row is written in MySQL it can be
read in Paimon.

The load generator stamps each order's created_at with the wall-clock time of its insert. For
every new Paimon snapshot of ods.ods_orders, the orders that became visible in it give one
delay each: snapshot commit time - created_at. Reads are incremental (order_id above the
largest seen so far), so polling stays cheap as the table grows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakehouse.core.errors import GateFailed
from lakehouse.core.registry import TableSpec
from lakehouse.hooks.paimon import PaimonHook


class FreshnessSlaMissed(GateFailed):
    """A table is staler than its freshness target; `table` names it."""

    def __init__(self, message: str, *, table: str):
        super().__init__(message)
        self.table = table


@dataclass(frozen=True)
class TableFreshness:
    table: str
    snapshot_id: int | None
    snapshot_age_s: float | None
    newest_event: datetime | None
    event_age_s: float | None

    def describe(self) -> str:
        snap = (
            f"snapshot {self.snapshot_id} committed {self.snapshot_age_s:.0f} s ago"
            if self.snapshot_id
            else "no snapshot yet"
        )
        event = (
            f"newest event {self.newest_event:%Y-%m-%d %H:%M:%S} UTC ({self.event_age_s:.0f} s ago)"
            if self.newest_event
            else "no event time"
        )
        return f"{self.table}: {snap}; {event}"


def table_freshness(paimon: PaimonHook, spec: TableSpec, *, now: float | None = None) -> TableFreshness:
    """Age of the latest snapshot and of the newest `freshness_column` value (today's, else yesterday's partition)."""
    now = time.time() if now is None else now
    snap = paimon.latest_snapshot(spec.name)
    newest = None
    if snap and spec.freshness_column:
        days = [None]
        if spec.partition:
            today = datetime.fromtimestamp(now, tz=UTC)
            days = [f"{today:%Y-%m-%d}", f"{today - timedelta(days=1):%Y-%m-%d}"]
        for day in days:
            part = {spec.partition: day} if day else None
            column = paimon.read_arrow(spec.name, partition=part, columns=[spec.freshness_column]).column(0)
            values = [v for v in column.to_pylist() if v is not None]
            if values:
                newest = max(values)
                newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
                break
    return TableFreshness(
        table=spec.name,
        snapshot_id=snap.snapshot_id if snap else None,
        snapshot_age_s=now - snap.commit_time.timestamp() if snap else None,
        newest_event=newest,
        event_age_s=now - newest.timestamp() if newest else None,
    )


def check_sla(paimon: PaimonHook, spec: TableSpec, *, now: float | None = None) -> TableFreshness:
    """Raise FreshnessSlaMissed when the table is staler than its SLA (event age, else snapshot age)."""
    f = table_freshness(paimon, spec, now=now)
    if spec.freshness_sla_s is None:
        return f
    age = f.event_age_s if f.event_age_s is not None else f.snapshot_age_s
    if age is None:
        raise FreshnessSlaMissed(f"{spec.name} has no data yet (SLA {spec.freshness_sla_s:.0f} s)", table=spec.name)
    if age > spec.freshness_sla_s:
        measure = "newest event" if f.event_age_s is not None else "latest snapshot"
        raise FreshnessSlaMissed(
            f"{spec.name} is stale: {measure} is {age:.0f} s old, SLA {spec.freshness_sla_s:.0f} s. {f.describe()}. "
            "Check the streaming jobs that write it (streaming_supervision DAG) and their sources.",
            table=spec.name,
        )
    return f
