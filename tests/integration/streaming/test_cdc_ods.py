"""MariaDB binlog -> Flink CDC -> Paimon ODS, on the real stack: exact, and exactly-once across a restart.

Truth is MariaDB: every ODS table is compared row by row, by key, with its source table.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from lakehouse.core.registry import registry
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.reconcile import wait_until_equal
from lakehouse.streaming.deploy import create_tables, deploy_job
from tests.integration.helpers import airflow_cli

pytestmark = pytest.mark.integration

JOB = "ods_delivery_cdc"
PIPELINE = "itx_ods_delivery_cdc"  # not it_: the session's shared pipelines may run beside it


def ods_tables():
    return registry().mirrored_tables()


def assert_ods_equals_mysql(env, timeout=180):
    diffs = wait_until_equal(ods_tables(), mysql=env.mysql, paimon=env.paimon, timeout=timeout)
    assert all(d.equal for d in diffs), "\n".join(d.summary() for d in diffs)
    return {d.table: d for d in diffs}


def appended_records(env, table: str) -> int:
    """Records committed by the writer (APPEND snapshots), before Paimon merges them by key."""
    return sum(s.delta_record_count or 0 for s in env.paimon.list_snapshots(table) if s.commit_kind == "APPEND")


@pytest.fixture(scope="module")
def ods_job(isolated_env):
    env = isolated_env
    # Rows that exist before the job starts arrive through the CDC snapshot phase ...
    LoadGenerator(env.mysql, rate=100, seed=1).run(duration_s=4)
    create_tables(ods_tables(), flink=env.flink, paimon=env.paimon)
    env.job_names.append(PIPELINE)
    deployment = deploy_job(JOB, flink=env.flink, paimon=env.paimon, cdc=env.cdc, pipeline_name=PIPELINE)
    assert not deployment.already_running
    return deployment


def test_inserts_updates_and_deletes_reach_ods_exactly(isolated_env, ods_job):
    env = isolated_env
    # ... and later ones through the binlog.
    stats = LoadGenerator(env.mysql, rate=100, seed=2).run(duration_s=8)
    assert stats.orders_created >= 700 and stats.status_updates > 0 and stats.subsidies_deleted > 0
    with env.mysql.cursor() as cur:
        cur.execute("DELETE FROM orders WHERE order_id IN (1, 2, 3)")
        cur.execute("UPDATE orders SET amount = amount + 1.25, status = 'CANCELLED' WHERE order_id BETWEEN 10 AND 19")
        cur.execute("DELETE FROM users WHERE user_id = 300")
        cur.execute("INSERT INTO shops (shop_id, name, city, category) VALUES (9001, 'late shop', 'wuhan', 'tea')")

    diffs = assert_ods_equals_mysql(env)

    orders = env.paimon.read_arrow("ods.ods_orders").to_pandas().set_index("order_id")
    truth_count, truth_amount = env.mysql.get_first("SELECT COUNT(*), SUM(amount) FROM orders")
    assert len(orders) == truth_count == diffs["ods.ods_orders"].mysql_rows
    assert orders["amount"].sum() == truth_amount
    assert not {1, 2, 3} & set(orders.index)
    assert (orders.loc[10:19, "status"] == "CANCELLED").all()
    assert 300 not in set(env.paimon.read_arrow("ods.ods_users").column("user_id").to_pylist())
    # Partitions follow the order's creation day.
    assert (orders["dt"] == orders["created_at"].dt.strftime("%Y-%m-%d")).all()


def test_restart_from_retained_checkpoint_loses_and_doubles_nothing(isolated_env, ods_job):
    """Cancel mid-load, write more (across a binlog rotation) while the job is down, restore from the checkpoint."""
    env = isolated_env
    flink = env.flink
    job_id = flink.active_jobs_named(PIPELINE)[0].job_id

    load = LoadGenerator(env.mysql, rate=100, seed=3)
    loader = threading.Thread(target=load.run, kwargs={"duration_s": 16})
    loader.start()
    time.sleep(3)
    before = flink.checkpoints(job_id).checkpoint_id or 0
    flink.wait_for_checkpoint(job_id, after_id=before, timeout=60)
    time.sleep(2)  # the job has now processed changes beyond its last checkpoint
    flink.cancel_job(job_id)
    flink.wait_for_job_state(job_id, {"CANCELED"}, timeout=60)
    checkpoint = flink.checkpoints(job_id)
    assert checkpoint.external_path, "cancelled job kept no checkpoint (RETAIN_ON_CANCELLATION)"
    with env.cdc.cursor() as cur:
        cur.execute("FLUSH BINARY LOGS")  # the restored reader must cross into the next binlog file
    loader.join()
    assert load.stats.orders_created > 1000

    restored = deploy_job(
        JOB,
        flink=env.flink,
        paimon=env.paimon,
        cdc=env.cdc,
        pipeline_name=PIPELINE,
        restore_from=checkpoint.external_path,
    )
    assert restored.job_id != job_id and restored.restored_from == checkpoint.external_path

    assert_ods_equals_mysql(env)
    # Nothing doubled: status events are insert-only at the source, so the records Paimon's writer
    # committed (before merging by key) must equal the source rows one for one. A replay of the
    # binlog after the checkpoint would commit some events twice.
    truth = env.mysql.get_first("SELECT COUNT(*) FROM order_status_events")[0]
    assert appended_records(env, "ods.ods_order_status_events") == truth


def deploy_task(env) -> str:
    """Run the streaming_deploy DAG's task for the CDC job through the Airflow CLI, on this module's
    database and warehouse, under the itx_ pipeline name; returns what the task printed."""
    out = airflow_cli(
        "tasks",
        "test",
        "streaming_deploy",
        f"deploy_{JOB}",
        "2026-11-25",
        LAKEHOUSE_PIPELINE_PREFIX="itx_",
        AIRFLOW_CONN_PAIMON_DEFAULT=os.environ["AIRFLOW_CONN_ITX_PAIMON"],
        AIRFLOW_CONN_MYSQL_CDC=os.environ["AIRFLOW_CONN_ITX_MYSQL_CDC"],
        AIRFLOW_CONN_MYSQL_SOURCE=os.environ["AIRFLOW_CONN_ITX_MYSQL"],
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_deploy_dag_resumes_a_lost_job_from_its_checkpoint(isolated_env, ods_job):
    """After the cluster lost the job (`make down`, a crash), `streaming_deploy` restores it from its
    retained checkpoint: the binlog is read on from where the job was, not the database again."""
    env = isolated_env
    assert f"{JOB}: ADOPT" in deploy_task(env)  # the running job, deployed without the DAG, is adopted
    job_id = env.flink.active_jobs_named(PIPELINE)[0].job_id
    env.flink.wait_for_checkpoint(job_id, after_id=env.flink.checkpoints(job_id).checkpoint_id or 0, timeout=60)
    env.flink.cancel_job(job_id)
    env.flink.wait_for_job_state(job_id, {"CANCELED"}, timeout=60)
    stats = LoadGenerator(env.mysql, rate=100, seed=4).run(duration_s=4)
    assert stats.orders_created > 200

    printed = deploy_task(env)
    assert f"{JOB}: RESTORE" in printed and "from checkpoint" in printed, printed[-2000:]
    restored = env.flink.active_jobs_named(PIPELINE)
    assert len(restored) == 1 and restored[0].job_id != job_id
    assert_ods_equals_mysql(env)
    # A deployment without state would take a new CDC snapshot and commit every status event again.
    truth = env.mysql.get_first("SELECT COUNT(*) FROM order_status_events")[0]
    assert appended_records(env, "ods.ods_order_status_events") == truth
