"""ODS -> DWD -> DWS on the real cluster, supervised: DWS equals a truth computed from MariaDB,
after a TaskManager is killed mid-load and after a job's SQL changes (upgrade via savepoint)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from lakehouse.core.paths import SQL_DIR
from lakehouse.core.registry import Registry
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.streaming.supervision import Supervisor
from tests.integration.helpers import ORDER_JOBS, PREFIX, start_order_pipeline, supervise_until, wait_dws_equals_truth

pytestmark = pytest.mark.integration


def taskmanager_pids() -> list[int]:
    home = os.environ.get("LAKEHOUSE_HOME", "")
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "TaskManagerRunner" in cmd and f"lakehouse.home={home}" in cmd:
                pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def supervised(it_env):
    sup, actions = start_order_pipeline(it_env)
    assert all(a[0] in ("DEPLOY", "ADOPT", "RESTORE", "OK") for a in actions.values()), actions
    return sup


def test_dws_equals_truth_from_mariadb(it_env, supervised):
    env = it_env
    LoadGenerator(env.mysql, rate=150, seed=11).run(duration_s=10)
    diffs = wait_dws_equals_truth(env)
    assert sum(d.truth_groups for d in diffs) > 0
    dwd = env.paimon.read_arrow("dwd.dwd_order_fact")
    # What DWD keeps (sql/models/dwd_order_fact.sql): positive amounts, known statuses.
    valid = env.mysql.get_first(
        "SELECT COUNT(*) FROM orders WHERE amount > 0 AND status IN "
        "('CREATED', 'ACCEPTED', 'PICKED_UP', 'DELIVERED', 'CANCELLED')"
    )[0]
    assert dwd.num_rows == valid


def test_taskmanager_killed_mid_load_recovers_exactly(it_env, supervised):
    env, sup = it_env, supervised
    pids = taskmanager_pids()
    assert pids, "no TaskManager process of this stack found"
    load = LoadGenerator(env.mysql, rate=150, seed=12)
    loader = threading.Thread(target=load.run, kwargs={"duration_s": 25})
    loader.start()
    time.sleep(8)
    for pid in pids:
        os.kill(pid, 9)
    # The JobManager notices within the heartbeat timeout; the jobs go RESTARTING with no slots.
    deadline = time.monotonic() + 90
    while env.flink.taskmanager_count() > 0:
        assert time.monotonic() < deadline, "the JobManager still lists the killed TaskManager"
        time.sleep(1)
    actions = supervise_until(sup, ORDER_JOBS, want=("OK",), timeout=300)
    loader.join()
    assert any("START_TASKMANAGER" in a for a in actions.values()), actions
    assert env.flink.taskmanager_count() == 1
    wait_dws_equals_truth(env)


def test_changed_sql_is_upgraded_through_a_savepoint(it_env, supervised, tmp_path):
    env, sup = it_env, supervised
    job = sup.reg.job("dws_city_daily")
    changed = SQL_DIR / "dws" / "_it_dws_city_daily_v2.sql"
    changed.write_text(
        "-- test copy of dws/dws_city_daily.sql with a changed statement\n"
        "INSERT INTO lakehouse.dws.dws_city_daily\n"
        "SELECT * FROM (\n{% include 'models/dws_city_daily.sql' %}\n) WHERE order_count >= 0\n"
    )
    try:
        from dataclasses import replace

        reg2 = Registry(
            tables=sup.reg.tables, jobs={**sup.reg.jobs, job.name: replace(job, sql="dws/_it_dws_city_daily_v2.sql")}
        )
        sup2 = Supervisor(flink=env.flink, paimon=env.paimon, cdc=env.cdc, reg=reg2, pipeline_prefix=PREFIX)
        old_id = env.flink.active_jobs_named(PREFIX + job.name)[0].job_id
        load = LoadGenerator(env.mysql, rate=100, seed=13)
        loader = threading.Thread(target=load.run, kwargs={"duration_s": 15})
        loader.start()
        time.sleep(4)
        result = sup2.supervise(job.name)
        loader.join()
        assert result.action == "UPGRADE" and result.job_id != old_id
        history = sup2.history.records(PREFIX + job.name)
        stop, upgrade = history[-2], history[-1]
        assert stop.action == "STOP_FOR_UPGRADE" and stop.job_id == old_id and stop.savepoint_path
        assert upgrade.action == "UPGRADE" and upgrade.restored_from == stop.savepoint_path
        assert sup2.supervise(job.name).action == "OK"  # the hash now matches
        wait_dws_equals_truth(env)
    finally:
        changed.unlink()


@pytest.mark.parametrize("job", ["dwd_order_fact", "ods_delivery_cdc"])
def test_restart_without_state_resets_downstream_and_counts_nothing_twice(it_env, supervised, job):
    """An on-call restart without state, mid-load, through the operations DAG's two steps.

    The job writes its whole output again (DWD re-reads ODS; the CDC job takes a new snapshot of
    MariaDB); the jobs streaming that output restart with it and read only the replay onwards, so
    every DWS table still equals the truth computed from MariaDB."""
    from lakehouse.streaming.operations import run_operation, validate_operation

    env, sup = it_env, supervised
    request = validate_operation({"job": job, "action": "restart_without_state", "confirm": job})
    order_dws = ["dws_shop_hourly", "dws_shop_daily", "dws_city_hourly", "dws_city_daily"]
    assert request.also_reset == (["dwd_order_fact"] if job == "ods_delivery_cdc" else []) + order_dws
    before = {name: env.flink.active_jobs_named(PREFIX + name)[0].job_id for name in ORDER_JOBS}

    load = LoadGenerator(env.mysql, rate=100, seed=14 if job == "dwd_order_fact" else 15)
    loader = threading.Thread(target=load.run, kwargs={"duration_s": 20})
    loader.start()
    time.sleep(4)
    results = run_operation(request, supervisor=sup)
    loader.join()

    assert [(r.job_name, r.action) for r in results] == [(name, "RESET") for name in [job, *request.also_reset]]
    for name in request.also_reset:
        last = sup.history.last(PREFIX + name)
        assert last.action == "RESET" and " from snapshot " in last.detail, last
    after = {name: env.flink.active_jobs_named(PREFIX + name)[0].job_id for name in ORDER_JOBS}
    reset = {job, *request.also_reset}
    assert {n for n in ORDER_JOBS if after[n] != before[n]} == reset  # the rest kept running untouched
    wait_dws_equals_truth(env)
    # Supervision finds the restarted jobs healthy and as deployed (the snapshot options are not part of the hash).
    actions = supervise_until(sup, ORDER_JOBS, want=("OK",), timeout=180)
    assert all(a[0] == "OK" for a in actions.values()), actions
