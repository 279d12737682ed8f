"""Compaction of closed days under the partition leases: each mapped task holds its own, renews
them while the Flink procedure runs, and releases only its own, after the procedure stopped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from lakehouse.batch.leases import LeaseLost, LeaseManager
from lakehouse.maintenance import operations
from lakehouse.maintenance.metrics import TableMetrics
from lakehouse.maintenance.policy import TablePolicy
from tests.support.leases import SqliteLeaseStore
from tests.unit.batch.test_leases import eventually
from tests.unit.batch.test_t1_leases_and_pins import load_dag

TODAY = date(2026, 11, 25)
DAY = "2026-11-23"
TABLE = "dwd.dwd_order_fact"


def metrics(table: str, files: dict[str, int]) -> TableMetrics:
    return TableMetrics(table, 9, 9, 1, sum(files.values()), 0, 0, len(files), 1, 0, 0, files_per_partition=files)


@pytest.fixture
def procedure(monkeypatch):
    """The Flink procedure call (operations._call): records each statement's run and end in `events`."""
    state = SimpleNamespace(events=[], during=None, fail_with=None)
    monkeypatch.setattr(operations, "measure", lambda paimon, table: metrics(table, {f"dt={DAY}": 5}))

    def call(flink, paimon, statement, timeout=3600):
        state.events.append("flink job running")
        if state.during:
            state.during()
        if state.fail_with is not None:
            state.events.append("flink job cancelled")
            raise state.fail_with
        state.events.append("flink job finished")
        return []

    monkeypatch.setattr(operations, "_call", call)
    return state


def compact(leases, holder="table_maintenance/run/0", table=TABLE):
    return operations.compact_closed_partitions(
        TablePolicy(table), flink=None, paimon=None, leases=leases, holder=holder, today=TODAY
    )


def test_one_tasks_compaction_never_releases_another_tasks_lease(procedure):
    """Mapped tasks of one run used to share a holder; a release now frees only its own table's day."""
    store = SqliteLeaseStore(procedure.events)
    leases = LeaseManager(store)
    leases.acquire(["ods.ods_orders"], DAY, "table_maintenance/run")  # the other task, mid-compaction
    result = compact(leases, holder="table_maintenance/run")
    assert f"compacted dt={DAY} (5 files)" in result.detail
    assert [r[:3] for r in store.rows()] == [("ods.ods_orders", DAY, "table_maintenance/run")]


@pytest.mark.parametrize("fail_with", [None, TimeoutError("no result"), KeyboardInterrupt()], ids=str)
def test_the_lease_is_renewed_during_the_procedure_and_released_after_it_stopped(procedure, fail_with):
    store = SqliteLeaseStore(procedure.events)
    leases = LeaseManager(store, renew_every=0.005)
    procedure.fail_with = fail_with
    procedure.during = lambda: eventually(lambda: any(e[:2] == ("sql", "UPDATE") for e in list(procedure.events)))
    if fail_with is None:
        compact(leases)
    else:
        with pytest.raises(type(fail_with)):
            compact(leases)
    events = procedure.events
    release = max(i for i, e in enumerate(events) if e[:2] == ("sql", "DELETE"))
    stopped = events.index("flink job finished" if fail_with is None else "flink job cancelled")
    assert events.index("flink job running") < stopped < release
    assert not any(e[:2] == ("sql", "UPDATE") for e in events[release:])
    assert store.rows() == []


def test_a_day_someone_else_overwrites_is_left_for_the_next_run(procedure):
    store = SqliteLeaseStore(procedure.events)
    leases = LeaseManager(store)
    leases.acquire([TABLE], DAY, "t1_backfill/run/1")
    result = compact(leases)
    assert "left for the next run, being overwritten" in result.detail and "t1_backfill/run/1" in result.detail
    assert "flink job running" not in procedure.events
    assert [r[2] for r in store.rows()] == ["t1_backfill/run/1"]


def test_a_compaction_whose_lease_was_taken_over_fails(procedure):
    store = SqliteLeaseStore(procedure.events)
    clock = SimpleNamespace(t=datetime(2026, 11, 25, 1, 0))
    leases = LeaseManager(store, now=lambda: clock.t, renew_every=3600)

    def stall():
        clock.t += timedelta(hours=3)
        LeaseManager(store, now=lambda: clock.t).acquire([TABLE], DAY, "t1_backfill/run/0")

    procedure.during = stall
    with pytest.raises(LeaseLost, match="taken over by t1_backfill/run/0"):
        compact(leases)
    assert [r[2] for r in store.rows()] == ["t1_backfill/run/0"]


def test_the_maintenance_dag_gives_each_mapped_task_its_own_holder(monkeypatch):
    from lakehouse.core import resources
    from lakehouse.maintenance import policy

    holders = []

    def maintain_table(policy, ops, *, leases, holder, **_):
        holders.append(holder)
        before = metrics(policy.table, {})
        return operations.MaintenanceReport(policy.table, before, before, [])

    monkeypatch.setattr(operations, "maintain_table", maintain_table)
    monkeypatch.setattr(resources, "resources", lambda: SimpleNamespace(flink=None, paimon=None, ops=None))
    monkeypatch.setattr(
        policy, "load_policies", lambda: {TABLE: TablePolicy(TABLE), "ods.ods_orders": TablePolicy("x")}
    )
    maintain = load_dag("table_maintenance").get_task("maintain").python_callable
    now = datetime(2026, 11, 25, 2, tzinfo=UTC)
    for index, table in enumerate([TABLE, "ods.ods_orders"]):
        item = {"table": table, "operations": ["compaction"], "dry_run": False}
        ti = SimpleNamespace(map_index=index)  # Airflow passes the map index on the task instance only
        maintain(item, run_id="scheduled__2026-11-25T01:00:00+00:00", ti=ti, data_interval_end=now)
    assert holders == [
        "table_maintenance/scheduled__2026-11-25T01:00:00+00:00/0",
        "table_maintenance/scheduled__2026-11-25T01:00:00+00:00/1",
    ]
