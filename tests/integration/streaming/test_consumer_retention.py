"""Snapshot expiry never breaks a stopped streaming reader: the consumer ids of the streaming jobs.

A throw-away order pipeline (CDC -> DWD -> dws_shop_hourly, pipelines `itr_*`) in this module's
own database and warehouse (`isolated_env`), whose DWD writer expires snapshots as hard as Paimon
lets it (at most 3 kept, none older than 1 s). The DWS job is stopped with a savepoint, DWD moves
on well past that window, the writer's own expiry and the maintenance procedure
(`sys.expire_snapshots`, retain_max 1, retain_time 0) both run, and still:

- every DWD snapshot from the stopped job's consumer position on is kept, and nothing before it;
- the job resumes from its savepoint and dws_shop_hourly equals the truth computed from MariaDB;
- a restart without state of the same pipeline (same consumer id, old position on file) reads
  DWD in full instead of from that position, and DWS still equals the truth.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.core.flink_sql import catalog_statements, sql_quote
from lakehouse.core.registry import registry
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.truth import compare_dws
from lakehouse.maintenance import operations
from lakehouse.maintenance import policy as maint_policy
from lakehouse.streaming.deploy import create_tables
from lakehouse.streaming.supervision import Supervisor
from tests.integration.helpers import supervise_until

pytestmark = pytest.mark.integration

PREFIX = "itr_"  # not it_ (the session's shared pipelines) nor itx_ (test_cdc_ods)
JOBS = ["ods_delivery_cdc", "dwd_order_fact", "dws_shop_hourly"]
READER = "dws_shop_hourly"
DWD = "dwd.dwd_order_fact"
DWS = "dws.dws_shop_hourly"
# The DWD writer's own expiry after each commit, far below the defaults (1 h) and the policy (2 h / 500).
TINY_RETENTION = {"snapshot.num-retained.min": "1", "snapshot.num-retained.max": "3", "snapshot.time-retained": "1 s"}


def wait_dws_equals_truth(env, timeout=240):
    """compare_dws of the one DWS table this pipeline writes (helpers.wait_dws_equals_truth wants all four)."""
    deadline = time.monotonic() + timeout
    while True:
        diff = compare_dws(DWS, mysql=env.mysql, paimon=env.paimon)
        if diff.equal or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert diff.equal, diff.summary()
    assert diff.truth_groups > 0
    return diff


def load_until_snapshots(env, table: str, at_least: int, *, seed: int, timeout=180) -> int:
    """Bursts of orders until `table` has committed snapshot `at_least` (one commit per checkpoint)."""
    deadline = time.monotonic() + timeout
    burst = 0
    while True:
        latest = env.paimon.latest_snapshot(table)
        if latest and latest.snapshot_id >= at_least:
            return latest.snapshot_id
        assert time.monotonic() < deadline, f"{table} is at snapshot {latest and latest.snapshot_id}, want {at_least}"
        LoadGenerator(env.mysql, rate=50, seed=seed + burst).run(duration_s=3)
        burst += 1
        time.sleep(3)


@pytest.fixture(scope="module")
def pipeline(isolated_env):
    env = isolated_env
    reg = registry()
    create_tables(list(reg.tables.values()), flink=env.flink, paimon=env.paimon)
    LoadGenerator(env.mysql, rate=100, seed=31).run(duration_s=3)
    sup = Supervisor(flink=env.flink, paimon=env.paimon, cdc=env.cdc, reg=reg, pipeline_prefix=PREFIX)
    env.job_names.extend(PREFIX + j for j in JOBS)
    supervise_until(sup, JOBS)
    wait_dws_equals_truth(env)
    # Only now the hard retention: the readers' consumers exist (first checkpoints done). The writer
    # reads its table's options when it starts: stop it, alter, start it from its savepoint.
    sup.stop("dwd_order_fact")  # to shrink its retention
    options = ", ".join(f"'{sql_quote(k)}' = '{sql_quote(v)}'" for k, v in TINY_RETENTION.items())
    env.flink.execute_sql(
        catalog_statements(env.paimon) + [f"ALTER TABLE lakehouse.dwd.dwd_order_fact SET ({options})"]
    )
    assert sup.start("dwd_order_fact", savepoint_path=None).action == "START"
    return sup


def test_every_streaming_read_is_a_consumer(isolated_env, pipeline):
    env = isolated_env
    LoadGenerator(env.mysql, rate=50, seed=32).run(duration_s=4)
    wait_dws_equals_truth(env)
    assert PREFIX + "dwd_order_fact" in env.paimon.consumers("ods.ods_orders")
    assert PREFIX + "dwd_order_fact" in env.paimon.consumers("ods.ods_order_subsidies")
    assert PREFIX + READER in env.paimon.consumers(DWD)
    assert env.paimon.consumers("ods.ods_shops") == {}  # looked up, not streamed
    assert dict(env.paimon.get_table(DWD).table_schema.options)["consumer.expiration-time"] == "1 d"


def test_a_reader_stopped_past_the_retention_window_resumes_from_its_savepoint(isolated_env, pipeline):
    env, sup = isolated_env, pipeline
    stop = sup.stop(READER)  # past the retention window
    savepoint = stop.detail
    position = env.paimon.consumers(DWD)[PREFIX + READER]  # the next DWD snapshot the stopped job needs

    # DWD moves on: many more commits than the writer keeps.
    latest = load_until_snapshots(env, DWD, position + 8, seed=40)
    # The writer's own expiry (every commit) went as far as the consumer lets it, and no further.
    deadline = time.monotonic() + 60
    while env.paimon.snapshot_ids(DWD)[0] < position:
        assert time.monotonic() < deadline, f"the DWD writer did not expire: {env.paimon.snapshot_ids(DWD)}"
        time.sleep(2)
    kept = env.paimon.snapshot_ids(DWD)
    assert kept[0] == position, f"kept {kept}: snapshot {position} on are the stopped reader's"
    assert len(kept) > int(TINY_RETENTION["snapshot.num-retained.max"]), kept  # past the window, still there
    assert kept == list(range(position, kept[-1] + 1)) and kept[-1] >= latest

    # The maintenance run, with a policy that keeps a single snapshot of any age.
    policy = operations.with_overrides(maint_policy.TablePolicy(DWD), retain_min=1, retain_max=1, retain_time_s=0)
    result = operations.expire_snapshots(
        policy, flink=env.flink, paimon=env.paimon, now=datetime.now(UTC) + timedelta(minutes=1)
    )
    assert env.paimon.snapshot_ids(DWD)[0] == position, result.detail
    assert PREFIX + READER in result.detail  # "consumers holding snapshots: {...}"

    # Resume from the savepoint: it reads DWD on from where it stopped, nothing skipped, nothing twice.
    started = sup.start(READER, savepoint_path=None)
    assert started.action == "START"
    assert sup.history.last(PREFIX + READER).restored_from == savepoint
    wait_dws_equals_truth(env)
    LoadGenerator(env.mysql, rate=50, seed=50).run(duration_s=4)
    wait_dws_equals_truth(env)
    deadline = time.monotonic() + 60
    while env.paimon.consumers(DWD)[PREFIX + READER] <= position:  # the consumer follows the job again
        assert time.monotonic() < deadline, "the resumed job's consumer did not move"
        time.sleep(2)
    assert supervise_until(sup, JOBS)[READER][-1] == "OK"


def test_a_restart_without_state_ignores_the_old_consumer_position(isolated_env, pipeline):
    """Same pipeline name, so same consumer id, with a position on file: without state the job must
    read DWD in full (scan.mode latest-full), not from that position with empty aggregates."""
    env, sup = isolated_env, pipeline
    sup.stop(READER)  # before a restart without state
    old_position = env.paimon.consumers(DWD)[PREFIX + READER]
    load_until_snapshots(env, DWD, old_position + 3, seed=60)  # changes the reset must not miss
    results = sup.reset(READER)  # a DWS job: no cascade, it restarts alone
    assert [(r.job_name, r.action) for r in results] == [(READER, "RESET")]
    LoadGenerator(env.mysql, rate=50, seed=70).run(duration_s=4)  # updates of groups summed before
    wait_dws_equals_truth(env)
    assert env.paimon.consumers(DWD)[PREFIX + READER] > old_position
