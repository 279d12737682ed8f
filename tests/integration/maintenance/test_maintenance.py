"""Table maintenance on the real stack: Paimon's procedures through Flink, beside running jobs.

- compaction of a closed day of the live pipeline tables: one file per bucket, same rows, the
  streaming jobs keep running and DWS still equals MariaDB;
- a streaming reader with a consumer id, stopped while snapshots are expired, resumes and
  reads everything; a tag made before the expiry still reads what it tagged;
- orphan-file removal while a write is in flight leaves the write's files alone (and removes a
  planted old orphan), and the write then commits;
- the table_maintenance DAG (airflow dags test) records before/after figures.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.batch.leases import LeaseManager
from lakehouse.core.flink_sql import catalog_statements
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.maintenance import metrics, operations
from lakehouse.maintenance import policy as maint_policy
from tests.integration.helpers import (
    ORDER_JOBS,
    PREFIX,
    airflow_cli,
    backdated_clock,
    start_order_pipeline,
    wait_dws_equals_truth,
)

pytestmark = pytest.mark.integration

UTC = UTC
DAY = (datetime.now(UTC).date() - timedelta(days=5)).isoformat()  # other modules use the 4 days after it
BATCH = {"execution.runtime-mode": "batch", "table.dml-sync": "true"}
COMPACTED = ["ods.ods_orders", "ods.ods_order_status_events"]  # ODS tables of the live pipeline, 2 buckets each


def rows(env, table: str, **kwargs) -> list[tuple]:
    data = env.paimon.read_arrow(table, **kwargs)
    return sorted(map(tuple, zip(*(data.column(c).to_pylist() for c in data.column_names), strict=True)))


def day_files(env, table: str) -> int:
    return sum(1 for f in env.paimon.data_files(table) if f.partition.get("dt") == DAY)


@pytest.fixture(scope="module")
def closed_day(it_env):
    """The live order pipeline with a past day loaded in bursts, each spread over several checkpoints."""
    env = it_env
    start_order_pipeline(env)
    # Bursts of load for the closed day, a checkpoint (5 s) apart: each leaves new files per bucket,
    # until the writers' own compaction (which merges at 5 sorted runs) has left more than one file
    # per bucket in at least one ODS table (the test needs something to compact).
    for burst in range(8):
        LoadGenerator(env.mysql, rate=100, seed=70 + burst, clock=backdated_clock(DAY)).run(duration_s=4)
        time.sleep(6)
        if burst >= 2 and any(day_files(env, t) > metrics.measure(env.paimon, t).buckets for t in COMPACTED):
            break
    wait_dws_equals_truth(env)
    return env


def test_compaction_of_a_closed_day_leaves_a_file_per_bucket_and_the_same_rows(closed_day):
    env = closed_day
    policies = maint_policy.load_policies()
    tables = COMPACTED
    before = {t: rows(env, t, partition={"dt": DAY}) for t in tables}
    files_before = {t: day_files(env, t) for t in tables}
    buckets = {t: metrics.measure(env.paimon, t).buckets for t in tables}
    assert any(files_before[t] > buckets[t] for t in tables), (
        f"precondition: dt={DAY} should hold more files than buckets in one of {tables}: {files_before}, {buckets}"
    )
    leases = LeaseManager(env.mysql)
    for table in tables:
        report = operations.maintain_table(
            policies[table],
            ["compaction"],
            flink=env.flink,
            paimon=env.paimon,
            leases=leases,
            holder="it-maintenance",
            now=datetime.now(UTC),
        )
        if files_before[table] > buckets[table]:
            assert f"compacted dt={DAY} ({files_before[table]} files)" in report.results[0].detail
        assert day_files(env, table) <= buckets[table], f"{table}: {day_files(env, table)} files after compaction"
        assert rows(env, table, partition={"dt": DAY}) == before[table], f"{table} dt={DAY} changed"
        assert report.after.data_files < report.before.data_files or files_before[table] <= buckets[table]
    assert leases.holders(tables, DAY) == {}  # the compaction's leases were released
    # The streaming writers were not disturbed: still running, and the pipeline still adds up.
    for job in ORDER_JOBS:
        assert env.flink.active_jobs_named(PREFIX + job), f"{job} stopped"
    LoadGenerator(env.mysql, rate=50, seed=79, clock=backdated_clock(DAY)).run(duration_s=3)  # late changes
    wait_dws_equals_truth(env)


@pytest.fixture(scope="module")
def scratch(it_env):
    """A database of this module's own tables, written by Flink."""
    env = it_env
    env.flink.execute_sql(
        catalog_statements(env.paimon)
        + [
            "CREATE DATABASE IF NOT EXISTS lakehouse.it_maint",
            # Paimon refuses consumer ids on a table without consumer.expiration-time: a reader gone
            # for good would otherwise hold snapshots forever.
            "CREATE TABLE IF NOT EXISTS lakehouse.it_maint.source (id BIGINT, v BIGINT, PRIMARY KEY (id) NOT ENFORCED) "
            "WITH ('bucket' = '1', 'consumer.expiration-time' = '1 d')",
            "CREATE TABLE IF NOT EXISTS lakehouse.it_maint.sink (id BIGINT, v BIGINT, PRIMARY KEY (id) NOT ENFORCED) "
            "WITH ('bucket' = '1')",
            "CREATE TABLE IF NOT EXISTS lakehouse.it_maint.clicks (id BIGINT, payload STRING) WITH ('bucket' = '-1')",
        ]
    )
    return env


def write_batch(env, k: int) -> int:
    """Snapshot k of it_maint.source: ten new ids and an update of id 0."""
    values = ", ".join(f"({k * 10 + i}, {k})" for i in range(1, 11)) + f", (0, {k})"
    env.flink.execute_sql(
        catalog_statements(env.paimon) + [f"INSERT INTO lakehouse.it_maint.source VALUES {values}"],
        session_config=BATCH,
    )
    return env.paimon.latest_snapshot("it_maint.source").snapshot_id


def start_reader(env) -> str:
    env.flink.execute_sql(
        catalog_statements(env.paimon)
        + [
            "INSERT INTO lakehouse.it_maint.sink SELECT id, v FROM lakehouse.it_maint.source "
            "/*+ OPTIONS('consumer-id' = 'it-reader') */"
        ],
        session_config={
            "execution.runtime-mode": "streaming",
            "execution.checkpointing.interval": "2s",
            "pipeline.name": f"{PREFIX}maint_reader",
        },
    )
    reader = env.flink.active_jobs_named(f"{PREFIX}maint_reader")[0]
    return env.flink.wait_for_job_state(reader.job_id, ["RUNNING"]).job_id


def wait_sink_equals_source(env, timeout=120):
    deadline = time.monotonic() + timeout
    while rows(env, "it_maint.sink") != rows(env, "it_maint.source"):
        assert time.monotonic() < deadline, "the reader did not catch up with the source"
        time.sleep(2)


def test_consumer_reader_survives_snapshot_expiry_and_a_tag_still_reads(scratch):
    env = scratch
    env.job_names.append(f"{PREFIX}maint_reader")
    for k in (1, 2, 3):
        write_batch(env, k)
    reader = start_reader(env)
    wait_sink_equals_source(env)
    # The consumer position is saved when a checkpoint completes after the rows were read.
    env.flink.wait_for_checkpoint(reader, after_id=env.flink.checkpoints(reader).checkpoint_id or 0)
    env.flink.cancel_job(reader)  # a reader that is down while maintenance runs
    next_snapshot = env.paimon.consumers("it_maint.source")["it-reader"]
    assert next_snapshot == 4  # it has read snapshots 1-3

    tagged_rows = rows(env, "it_maint.source", snapshot_id=2)
    env.paimon.create_tag("it_maint.source", "it-before-expiry", snapshot_id=2)
    latest = max(write_batch(env, k) for k in range(4, 10))
    policy = operations.with_overrides(
        maint_policy.TablePolicy("it_maint.source"), retain_min=1, retain_max=1, retain_time_s=0
    )
    result = operations.expire_snapshots(
        policy, flink=env.flink, paimon=env.paimon, now=datetime.now(UTC) + timedelta(minutes=1)
    )

    kept = env.paimon.snapshot_ids("it_maint.source")
    assert kept[0] == next_snapshot and kept[-1] == latest, f"kept {kept}: the consumer's snapshots must stay"
    assert "3 expired" in result.detail and "it-reader" in result.detail
    assert rows(env, "it_maint.source", tag="it-before-expiry") == tagged_rows  # snapshot 2 is gone, its tag reads

    start_reader(env)  # no savepoint: it resumes from its consumer position
    wait_sink_equals_source(env)
    assert rows(env, "it_maint.sink")[0] == (0, 9)  # the last update reached the reader


def test_orphan_removal_spares_a_write_in_flight(scratch):
    env = scratch
    env.job_names.append(f"{PREFIX}maint_clicks_writer")
    try:
        _orphan_removal_beside_a_writer(env)
    finally:  # the writer holds task slots: it must not outlive this test, pass or fail
        for job in env.flink.active_jobs_named(f"{PREFIX}maint_clicks_writer"):
            env.flink.cancel_job(job.job_id)


def _orphan_removal_beside_a_writer(env) -> None:
    env.flink.execute_sql(
        catalog_statements(env.paimon)
        + [
            "CREATE TEMPORARY TABLE gen (id BIGINT, payload STRING) WITH ('connector' = 'datagen', "
            "'rows-per-second' = '2000', 'fields.payload.length' = '100')",
            "INSERT INTO lakehouse.it_maint.clicks SELECT id, payload FROM gen",
        ],
        session_config={
            "execution.runtime-mode": "streaming",
            "execution.checkpointing.interval": "45s",
            "pipeline.name": f"{PREFIX}maint_clicks_writer",
        },
    )
    job = env.flink.wait_for_job_state(
        env.flink.active_jobs_named(f"{PREFIX}maint_clicks_writer")[0].job_id, ["RUNNING"]
    ).job_id
    table_dir = Path(str(env.warehouse)) / "it_maint.db" / "clicks"
    deadline = time.monotonic() + 40
    in_flight: list[Path] = []
    while not in_flight:  # files written, no snapshot yet: the write is in flight
        assert time.monotonic() < deadline, "the writer wrote no file"
        time.sleep(2)
        in_flight = [p for p in table_dir.glob("bucket-*/data-*") if p.is_file()]
    assert env.paimon.latest_snapshot("it_maint.clicks") is None
    planted = in_flight[0].parent / "data-planted-orphan-0.parquet"
    planted.write_bytes(b"left behind by a crashed job")
    two_days_ago = time.time() - 2 * 86400
    os.utime(planted, (two_days_ago, two_days_ago))

    policy = maint_policy.load_policies()["ods.ods_orders"]  # the real threshold (1 day), applied to this table
    result = operations.remove_orphan_files(
        operations.with_overrides(policy, table="it_maint.clicks"),
        flink=env.flink,
        paimon=env.paimon,
        now=datetime.now(UTC),
    )
    assert not planted.exists(), "the old orphan was not removed"
    assert "removed 1 files" in result.detail
    assert all(p.exists() for p in in_flight), "a file of the write in flight was deleted"

    env.flink.wait_for_checkpoint(job, timeout=120)  # the write commits what it had in flight
    deadline = time.monotonic() + 30
    while env.paimon.latest_snapshot("it_maint.clicks") is None:
        assert time.monotonic() < deadline, "no snapshot after the checkpoint"
        time.sleep(1)
    committed = {f.name for f in env.paimon.data_files("it_maint.clicks")}
    assert {p.name for p in in_flight} <= committed
    assert env.paimon.read_arrow("it_maint.clicks", columns=["id"]).num_rows > 0
    assert env.flink.job_status(job).state == "RUNNING" and env.flink.job_exception(job) is None


def test_maintenance_dag_records_before_and_after_figures(closed_day):
    env = closed_day
    conf = {"tables": ["ods.ods_orders", "dwd.dwd_order_fact"], "operations": list(maint_policy.OPERATIONS)}
    out = airflow_cli("dags", "test", "table_maintenance", "-c", json.dumps(conf))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    history = env.paimon.read_arrow(metrics.METRICS_TABLE).to_pylist()
    run = [r for r in history if r["table_name"] in conf["tables"]]
    assert sorted((r["table_name"], r["phase"]) for r in run) == [
        ("dwd.dwd_order_fact", "after"),
        ("dwd.dwd_order_fact", "before"),
        ("ods.ods_orders", "after"),
        ("ods.ods_orders", "before"),
    ]
    for r in run:
        assert r["data_files"] > 0 and r["snapshots"] > 0 and r["total_bytes"] > 0
    after = {r["table_name"]: r for r in run if r["phase"] == "after"}
    assert "compaction:" in after["ods.ods_orders"]["operations"]
    assert (
        "snapshots:" in after["ods.ods_orders"]["operations"]
        and "orphan_files:" in after["ods.ods_orders"]["operations"]
    )
    assert "small files are not growing" in out.stdout + out.stderr
    for job in ORDER_JOBS:
        assert env.flink.active_jobs_named(PREFIX + job), f"{job} stopped"
    wait_dws_equals_truth(env)
