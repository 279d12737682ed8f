"""run_day and t1_daily: the leases are held (and renewed) while the day is recomputed and released
after the Flink work stopped; each run pins and unpins under its own holder, so a backfill of the
same day never removes the daily run's pins between its recomputation and its publish."""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from lakehouse.batch import leases as leases_module
from lakehouse.batch import t1
from lakehouse.batch.leases import LeaseLost, LeaseManager
from lakehouse.batch.recompute import PartitionReport, PartitionStats
from tests.support.leases import SqliteLeaseStore
from tests.unit.batch.test_leases import eventually

DAY = "2026-11-23"
DAILY = "t1_daily/scheduled__2026-11-24T00:00:00+00:00"
BACKFILL = "t1_backfill/manual__2026-11-25T09:30:00.123456+00:00/0"
DAGS = Path(__file__).resolve().parents[3] / "dags"
_HOLDER = re.compile(r"^[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)*$")  # PaimonHook's rule for pin holders


class FakePaimon:
    """Pins and tags the way PaimonHook keeps them: a pin is (table, holder, snapshot)."""

    def __init__(self) -> None:
        self.pins: dict[str, tuple[str, str, int]] = {}
        self.tags: dict[str, dict[str, int]] = defaultdict(dict)

    def pin_snapshot(self, table, snapshot_id, *, holder, ttl_s=6 * 3600):
        assert _HOLDER.match(holder), holder
        consumer_id = f"pin-{holder}-until-{len(self.pins)}"
        self.pins[consumer_id] = (table, holder, snapshot_id)
        return consumer_id

    def unpin(self, table, *, holder):
        gone = [c for c, (t, h, _) in self.pins.items() if t == table and h == holder]
        for c in gone:
            del self.pins[c]
        return len(gone)

    def holders(self) -> set[str]:
        return {h for _, h, _ in self.pins.values()}

    def list_tags(self, table):
        return sorted(self.tags[table])

    def create_tag(self, table, tag, *, snapshot_id=None):
        self.tags[table][tag] = snapshot_id


def tables(*names):
    return [SimpleNamespace(name=n) for n in names]


def fake_recompute(monkeypatch, events: list, *, fail_on: str | None = None, during=None):
    """recompute_partition as a Flink batch statement: runs, then finishes (or is cancelled and raises)."""
    snapshots = iter(range(10, 100))

    def recompute_partition(table, dt, *, flink, paimon, dry_run=False, **_):
        events.append(f"flink {table.name} running")
        if during:
            during(table.name)
        if table.name == fail_on:
            events.append(f"flink {table.name} cancelled")
            raise TimeoutError(f"{table.name}: no result within 3600 s")
        events.append(f"flink {table.name} finished")
        stats = PartitionStats(1, {}, 1)
        return PartitionReport(table.name, dt, stats, stats, next(snapshots), 0.1)

    monkeypatch.setattr(t1, "recompute_partition", recompute_partition)


def test_a_backfill_ending_does_not_remove_the_daily_runs_pins(monkeypatch):
    fake_recompute(monkeypatch, [])
    paimon = FakePaimon()
    leases = LeaseManager(SqliteLeaseStore())
    kwargs = dict(flink=None, paimon=paimon, leases=leases, verify=False)
    daily = t1.run_day(DAY, tables("dwd.a", "dws.b"), holder=DAILY, keep_pins=True, **kwargs)
    assert daily.pin_holder == t1.pin_holder(DAY, DAILY) and DAY in daily.pin_holder
    assert paimon.holders() == {daily.pin_holder}
    # A backfill of the same day runs (and ends) between t1_daily's recompute and its publish.
    backfill = t1.run_day(DAY, tables("dwd.a", "dws.b"), holder=BACKFILL, **kwargs)
    assert backfill.pin_holder != daily.pin_holder
    assert paimon.holders() == {daily.pin_holder}  # the daily run's pins are still there
    assert {(t, s) for t, _, s in paimon.pins.values()} == {("dwd.a", 10), ("dws.b", 11)}
    t1.publish_day(DAY, daily.reports, paimon=paimon, pin_holder=daily.pin_holder)
    assert paimon.pins == {} and paimon.tags["dwd.a"] == {"t1-2026-11-23": 10}


def test_pin_holders_name_the_day_and_the_run():
    daily, retry = t1.pin_holder(DAY, DAILY), t1.pin_holder(DAY, DAILY)
    lanes = {t1.pin_holder(DAY, f"t1_backfill/manual__x/{i}") for i in range(4)}
    assert daily == retry and len(lanes) == 4 and daily not in lanes
    assert t1.pin_holder("2026-11-22", DAILY) != daily
    assert all(_HOLDER.match(h) for h in lanes | {daily})
    assert daily.startswith("t1-2026-11-23-t1_daily_scheduled__2026-11-24T00_00_00_00_00")


def test_the_leases_are_released_after_the_flink_work_stopped(monkeypatch):
    events: list = []
    store = SqliteLeaseStore(events)
    fake_recompute(monkeypatch, events, fail_on="dws.b")
    paimon = FakePaimon()
    with pytest.raises(TimeoutError):
        t1.run_day(DAY, tables("dwd.a", "dws.b"), holder=DAILY, flink=None, paimon=paimon, leases=LeaseManager(store))
    release = max(i for i, e in enumerate(events) if e[:2] == ("sql", "DELETE"))
    assert events.index("flink dws.b cancelled") < release
    assert store.rows() == [] and paimon.pins == {}  # nothing left held or pinned


def test_a_lost_lease_stops_the_day_before_the_next_overwrite(monkeypatch):
    events: list = []
    store = SqliteLeaseStore(events)
    clock = SimpleNamespace(t=datetime(2026, 11, 24, 1, 0))
    leases = LeaseManager(store, now=lambda: clock.t, renew_every=0.005)
    lost_logged: list = []
    real_error = leases_module.log.error
    monkeypatch.setattr(
        leases_module.log, "error", lambda msg, *args: (lost_logged.append(msg % args), real_error(msg, *args))
    )

    def stall_then_lose(table):
        if table == "dwd.a":  # the worker stalls past the TTL; a backfill takes the day over
            clock.t += timedelta(hours=3)
            LeaseManager(store, now=lambda: clock.t).acquire(["dwd.a", "dws.b"], DAY, BACKFILL)
            # Until the renewal thread has seen the takeover (it logs "... lost"): a SELECT alone may be
            # seen before the renewal has noted the loss, and the next overwrite would then start.
            eventually(lambda: lost_logged)

    fake_recompute(monkeypatch, events, during=stall_then_lose)
    paimon = FakePaimon()
    with pytest.raises(LeaseLost, match=f"taken over by {re.escape(BACKFILL)}"):
        t1.run_day(DAY, tables("dwd.a", "dws.b"), holder=DAILY, flink=None, paimon=paimon, leases=leases)
    assert "flink dws.b running" not in events  # no overwrite after the lease was lost
    assert {r[2] for r in store.rows()} == {BACKFILL}  # the backfill keeps its leases
    assert paimon.pins == {}


def test_a_failed_day_releases_its_pins_even_when_they_were_to_outlive_it(monkeypatch):
    fake_recompute(monkeypatch, [], fail_on="dws.b")
    paimon = FakePaimon()
    with pytest.raises(TimeoutError):
        t1.run_day(
            DAY,
            tables("dwd.a", "dws.b"),
            holder=DAILY,
            flink=None,
            paimon=paimon,
            leases=LeaseManager(SqliteLeaseStore()),
            keep_pins=True,
        )
    assert paimon.pins == {}  # publish will not run for this attempt: its pins would only wait to lapse


# ------------------------------------------------------------------------------ the DAG's tasks
def load_dag(name: str):
    """The DAG of dags/<name>.py (its function is named like the file), with its tasks' callables."""
    spec = importlib.util.spec_from_file_location(f"dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # Airflow's own deprecations inside @task.sensor's imports
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
        return getattr(module, name)()


def test_t1_daily_publishes_and_unpins_with_the_holder_its_recompute_pinned_with(monkeypatch):
    from lakehouse.core import resources

    fake_recompute(monkeypatch, [])
    paimon = FakePaimon()
    store = SqliteLeaseStore()
    monkeypatch.setattr(resources, "resources", lambda: SimpleNamespace(flink=None, paimon=paimon, ops=store))
    dag = load_dag("t1_daily")
    run_id = "scheduled__2026-11-24T00:00:00+00:00"
    result = dag.get_task("recompute_day").python_callable(DAY, run_id=run_id)
    assert result["pin_holder"] == t1.pin_holder(DAY, f"t1_daily/{run_id}")
    assert paimon.holders() == {result["pin_holder"]} and store.rows() == []
    # A backfill of the day ends in between.
    backfill = LeaseManager(store)
    t1.run_day(
        DAY, tables("dwd.dwd_order_fact"), holder=BACKFILL, flink=None, paimon=paimon, leases=backfill, verify=False
    )
    assert paimon.holders() == {result["pin_holder"]}
    outlets = defaultdict(SimpleNamespace)
    tagged = dag.get_task("publish").python_callable(result, outlet_events=outlets)
    assert set(tagged) == {r["table"] for r in result["reports"]}
    assert paimon.pins == {}


def test_a_backfill_lane_leases_and_pins_under_its_own_holder(monkeypatch):
    from lakehouse.batch import backfill
    from lakehouse.core import resources

    holders = []
    monkeypatch.setattr(backfill, "run_lane", lambda days, tables, *, holder, **_: holders.append(holder) or [])
    monkeypatch.setattr(
        resources, "resources", lambda: SimpleNamespace(flink=None, paimon=None, ops=None, mysql_source=None)
    )
    lane = load_dag("t1_backfill").get_task("backfill_lane").python_callable
    for index in range(2):
        lane(
            {"days": [DAY], "tables": ["all"], "dry_run": False},
            run_id="manual__x",
            ti=SimpleNamespace(map_index=index),
        )
    assert holders == ["t1_backfill/manual__x/0", "t1_backfill/manual__x/1"]


@pytest.mark.parametrize("name", sorted(p.stem for p in DAGS.glob("*.py") if not p.stem.startswith("_")))
def test_task_arguments_airflow_fills_in_are_context_keys(name):
    """A task argument defaulting to None is filled from the context only if the context has that key:
    `map_index` is not one (the map index is `ti.map_index`), and left every lane the holder `.../None`."""
    import inspect

    from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS

    for task in load_dag(name).tasks:
        callable_ = getattr(task, "python_callable", None)
        for arg, parameter in inspect.signature(callable_).parameters.items() if callable_ else []:
            if parameter.default is None:
                assert arg in KNOWN_CONTEXT_KEYS, f"{name}.{task.task_id}: {arg!r} is not in Airflow's task context"
