"""recompute_partition's guard against replacing a streamed late change (hooks faked: the SQL and
the Paimon snapshot timeline are what matter here; the real engines run in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from lakehouse.batch import recompute as batch
from lakehouse.core.errors import BadRequest, ConfigError
from lakehouse.core.registry import registry
from lakehouse.hooks.paimon import SnapshotInfo

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
DAY = "2026-11-23"


def snap(sid: int, kind: str, second: int) -> SnapshotInfo:
    return SnapshotInfo(sid, T0 + timedelta(seconds=second), kind, None, None, None, None)


class Timeline:
    """Snapshots per table; each batch run appends an OVERWRITE to the target and, per scenario,
    source APPEND commits to the day (a late update the streaming job carried) before or after it."""

    def __init__(self, races: list[str]):
        self.snaps = {
            "dwd.dwd_order_fact": [snap(1, "APPEND", 0)],
            "ods.ods_orders": [snap(1, "APPEND", 0)],
            "ods.ods_order_subsidies": [snap(1, "APPEND", 0)],
        }
        self.day_commits = {name: set() for name in self.snaps}
        self.races, self.clock, self.runs = list(races), 1, 0

    def add(self, table: str, kind: str, *, to_day: bool = True) -> int:
        self.clock += 1
        sid = self.snaps[table][-1].snapshot_id + 1
        self.snaps[table].append(snap(sid, kind, self.clock))
        if to_day:
            self.day_commits[table].add(sid)
        return sid

    def execute_sql(self, statements, **_):
        self.runs += 1
        race = self.races.pop(0) if self.races else "none"
        if race == "before":
            self.add("ods.ods_orders", "APPEND")
        self.add("dwd.dwd_order_fact", "OVERWRITE")
        if race == "after":
            self.add("ods.ods_orders", "APPEND")
        if race == "other-day":
            self.add("ods.ods_orders", "APPEND", to_day=False)

    # PaimonHook surface used by recompute_partition
    def latest_snapshot(self, table):
        return self.snaps[table][-1]

    def get_snapshot(self, table, sid):
        return next(s for s in self.snaps[table] if s.snapshot_id == sid)

    def commits_to_partition(self, table, partition, *, after_snapshot_id, kinds=("APPEND", "OVERWRITE")):
        return [
            s.snapshot_id
            for s in self.snaps[table]
            if s.snapshot_id > (after_snapshot_id or 0)
            and s.commit_kind in kinds
            and s.snapshot_id in self.day_commits[table]
        ]


@pytest.fixture
def fake(monkeypatch):
    def make(races):
        timeline = Timeline(races)
        monkeypatch.setattr(batch, "render_overwrite", lambda table, dt, paimon: ["INSERT OVERWRITE ..."])
        monkeypatch.setattr(
            batch,
            "partition_stats",
            lambda paimon, table, dt, snapshot_id=None: batch.PartitionStats(1, {}, snapshot_id),
        )
        return timeline

    return make


DWD = registry().table("dwd.dwd_order_fact")


@pytest.mark.parametrize("races", [["none"], ["after"], ["other-day"]])
def test_one_recomputation_when_no_source_change_precedes_the_overwrite(fake, races):
    timeline = fake(races)
    report = batch.recompute_partition(DWD, DAY, flink=timeline, paimon=timeline)
    assert timeline.runs == 1
    assert report.overwrite_snapshot_id == 2


def test_a_change_committed_during_the_recomputation_makes_it_run_again(fake, caplog):
    timeline = fake(["before", "none"])
    report = batch.recompute_partition(DWD, DAY, flink=timeline, paimon=timeline)
    assert timeline.runs == 2
    assert report.overwrite_snapshot_id == 3  # the second OVERWRITE is the one reported and tagged
    assert "ods.ods_orders snapshots [2]" in caplog.text and "attempt 2 of 3" in caplog.text


def test_a_day_that_keeps_changing_fails_naming_the_commits(fake):
    timeline = fake(["before", "before", "before"])
    with pytest.raises(
        batch.SourceRaced, match=r"gave up after 3 recomputations.*retry the task once the day is quiet"
    ) as exc:
        batch.recompute_partition(DWD, DAY, flink=timeline, paimon=timeline)
    assert timeline.runs == 3
    assert (exc.value.table, exc.value.dt) == (DWD.name, DAY) and list(exc.value.raced) == ["ods.ods_orders"]
    assert exc.value.retryable  # a gate that passes once the day is quiet


# ---------------------------------------------------------------------------- what cannot be recomputed
def test_a_table_without_a_model_is_a_bad_request():
    with pytest.raises(BadRequest, match=r"^ods\.ods_orders has no model partitioned by dt: it cannot be recomputed$"):
        batch.render_overwrite(registry().table("ods.ods_orders"), DAY, paimon=None)


def test_a_model_of_more_than_one_statement_is_a_config_error(monkeypatch):
    class Paimon:
        def get_table(self, name):
            return SimpleNamespace(fields=[SimpleNamespace(name="order_id"), SimpleNamespace(name="dt")])

    monkeypatch.setattr(batch, "sql_context", lambda paimon: {})
    monkeypatch.setattr(batch, "load_statements", lambda path, context: ["SELECT 1", "SELECT 2"])
    with pytest.raises(ConfigError, match=rf"^{DWD.model} must be a single SELECT$"):
        batch.render_overwrite(DWD, DAY, paimon=Paimon())
