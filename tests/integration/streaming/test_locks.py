"""One actor per job on the real MariaDB: the named locks of `lakehouse.streaming.locks` taken from
several connections (threads and a process that is killed while it holds one).

The locks use the session's database (`it_mysql`, as `airflow_cli` points `lakehouse_ops` at it) and
a pipeline prefix of their own, so they never contend with the streaming jobs' own locks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lakehouse.streaming.locks import JobLocks, StreamingJobBusy, lock_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PREFIX = f"itlock{os.getpid()}_"


def locks(env, holder: str, timeout: float) -> JobLocks:
    return JobLocks(env.mysql, pipeline_prefix=PREFIX, timeout=timeout, holder=holder)


def test_a_second_actor_waits_then_fails_naming_the_holder(it_env):
    with locks(it_env, "actor A", 5).hold("dwd_order_fact"):
        row = it_env.mysql.get_first(
            "SELECT holder, connection_id FROM streaming_job_locks WHERE lock_name = %s",
            (lock_name(PREFIX + "dwd_order_fact"),),
        )
        assert row[0] == "actor A"
        started = time.monotonic()
        with pytest.raises(StreamingJobBusy) as exc:
            with locks(it_env, "actor B", 2).hold("dwd_order_fact"):
                pytest.fail("actor B ran while actor A held the lock")
        assert 1.5 <= time.monotonic() - started < 10  # the server waited, bounded
        assert exc.value.holder == "actor A" and exc.value.connection_id == row[1]
        assert "actor A holds its lock" in str(exc.value)
    # Released: the next actor takes it at once, and the holder row is gone with it.
    with locks(it_env, "actor B", 0).hold("dwd_order_fact"):
        pass
    assert (
        it_env.mysql.get_first(
            "SELECT COUNT(*) FROM streaming_job_locks WHERE lock_name = %s", (lock_name(PREFIX + "dwd_order_fact"),)
        )[0]
        == 0
    )


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(it_env):
    holding, done = threading.Event(), threading.Event()

    def holder():
        with locks(it_env, "holder", 5).hold("dws_shop_hourly"):
            holding.set()
            time.sleep(2)
        done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(30)
    started = time.monotonic()
    with locks(it_env, "waiter", 60).hold("dws_shop_hourly"):
        waited = time.monotonic() - started
        assert done.wait(5)
    thread.join(30)
    assert 0.5 < waited < 30


def test_a_killed_worker_leaves_no_stale_lock(it_env):
    """The worker holding the lock is killed (-9): its connection drops and MariaDB frees the lock."""
    code = (
        "import sys, time\n"
        "from lakehouse.hooks.mysql import MySqlHook\n"
        "from lakehouse.streaming.locks import JobLocks\n"
        f"with JobLocks(MySqlHook('it_mysql'), pipeline_prefix={PREFIX!r}, timeout=5, holder='doomed')"
        ".hold('dwd_order_fact'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        # Airflow may log a line or two first (its secrets masker writes to stdout); wait for "held".
        seen = []
        while len(seen) < 50 and (not seen or seen[-1] != "held"):
            line = worker.stdout.readline()
            if not line:  # the worker ended before it held the lock
                break
            seen.append(line.strip())
        assert seen and seen[-1] == "held", seen
        with pytest.raises(StreamingJobBusy) as exc:
            with locks(it_env, "next", 1).hold("dwd_order_fact"):
                pass
        assert exc.value.holder == "doomed"
    finally:
        worker.kill()
        worker.wait(30)
    with locks(it_env, "next", 20).hold("dwd_order_fact"):  # no TTL to wait out, no row to delete by hand
        pass


def test_overlapping_cascades_in_any_order_do_not_deadlock(it_env):
    """Two actors name overlapping jobs in opposite orders; both finish, one after the other."""
    jobs = ["ods_delivery_cdc", "dwd_order_fact", "dws_city_daily"]
    finished, errors = [], []

    def actor(name, order):
        try:
            with locks(it_env, name, 30).hold(*order):
                time.sleep(1)
            finished.append(name)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=actor, args=("forward", jobs)),
        threading.Thread(target=actor, args=("backward", list(reversed(jobs)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and sorted(finished) == ["backward", "forward"]
