"""T+1 recomputation and backfills on the tables the streaming jobs write, on the real stack.

The backfill runs through `airflow dags test t1_backfill` (the DAG as on-call triggers it), with
the default connections pointed at this session's throw-away database and warehouse.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.batch.leases import LeaseHeld, LeaseManager
from lakehouse.batch.recompute import recomputable_tables
from lakehouse.batch.t1 import publish_day, run_day, select_tables
from lakehouse.core.days import tag_name
from lakehouse.dev.loadgen import LoadGenerator
from tests.integration.helpers import airflow_cli, backdated_clock, start_order_pipeline, wait_dws_equals_truth

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
D1, D2 = (TODAY - timedelta(days=2)).isoformat(), (TODAY - timedelta(days=1)).isoformat()


def backfill(conf: dict, env) -> subprocess.CompletedProcess:
    # `dags test` has no UI to approve the writes in: the approval gate is marked approved (succeeded)
    # without running; tests/integration/batch/test_backfill_rest_api.py approves through the API.
    return airflow_cli(
        "dags", "test", "t1_backfill", "-c", json.dumps(conf), "--mark-success-pattern", "approve_writes"
    )


def table_rows(env, table: str, day: str) -> list[tuple]:
    data = env.paimon.read_arrow(table, partition={"dt": day})
    return sorted(map(tuple, zip(*(data.column(c).to_pylist() for c in data.column_names), strict=True)))


def overwrites_since(env, before: dict) -> dict:
    """OVERWRITE commits (what a recomputation writes) after the given snapshot ids. The streaming
    writers keep committing APPEND and COMPACT snapshots meanwhile; those are not the backfill's."""
    out = {}
    for table, sid in before.items():
        new = [
            s.snapshot_id
            for s in env.paimon.list_snapshots(table)
            if s.snapshot_id > (sid or 0) and s.commit_kind == "OVERWRITE"
        ]
        if new:
            out[table] = new
    return out


def snapshot_ids(env) -> dict:
    return {
        t.name: (env.paimon.latest_snapshot(t.name) or type("S", (), {"snapshot_id": None})).snapshot_id
        for t in recomputable_tables()
    }


@pytest.fixture(scope="module")
def past_days(it_env):
    env = it_env
    start_order_pipeline(env)
    for i, day in enumerate((D1, D2)):
        LoadGenerator(env.mysql, rate=100, seed=40 + i, clock=backdated_clock(day)).run(duration_s=6)
    wait_dws_equals_truth(env)
    return env


def test_backfill_twice_gives_identical_tables_and_equals_truth_beside_streaming(past_days):
    env = past_days
    tables = [t.name for t in recomputable_tables() if t.name != "dws.dws_shop_traffic_hourly"]
    conf = {
        "tables": ["dwd", "dws.dws_shop_hourly", "dws.dws_shop_daily", "dws.dws_city_hourly", "dws.dws_city_daily"],
        "start_date": D1,
        "end_date": D2,
        "parallel_days": 2,
    }
    # Today's orders keep streaming in while the backfill rewrites the two past days.
    import threading

    today_load = threading.Thread(target=LoadGenerator(env.mysql, rate=50, seed=44).run, kwargs={"duration_s": 20})
    today_load.start()
    # The generator also advances orders of D1 and D2 left open by the fixture: late changes to
    # the very partitions being overwritten (recompute_partition recomputes a day again when one
    # lands between its read and its OVERWRITE).
    first = backfill(conf, env)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    today_load.join()
    wait_dws_equals_truth(env)  # and the streaming jobs have caught up with every change
    after_first = {(t, d): table_rows(env, t, d) for t in tables for d in (D1, D2)}
    snaps_first = snapshot_ids(env)
    assert all(after_first[("dwd.dwd_order_fact", d)] for d in (D1, D2)), "the backfilled days are empty"

    second = backfill(conf, env)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    for key, rows in after_first.items():
        assert table_rows(env, *key) == rows, f"{key} differs after the second backfill"
    assert set(overwrites_since(env, snaps_first)) == set(tables), "the second backfill committed nothing"
    assert "rows before" in second.stdout and f"{D2} dwd.dwd_order_fact" in second.stdout
    wait_dws_equals_truth(env)


def test_late_update_is_corrected_and_the_published_tag_stays(past_days):
    env = past_days
    leases = LeaseManager(env.mysql)
    tables = select_tables(["dwd.dwd_order_fact", "dws.dws_city_daily"])
    result = run_day(D2, tables, holder="test-daily", flink=env.flink, paimon=env.paimon, leases=leases)
    tagged = publish_day(D2, result.reports, paimon=env.paimon)
    assert set(tagged) == {"dwd.dwd_order_fact", "dws.dws_city_daily"}
    published = env.paimon.read_arrow("dws.dws_city_daily", tag=tag_name(D2)).to_pylist()

    # Any valid order of that day (how far the generator moved it through its lifecycle varies).
    row = env.mysql.get_first(
        "SELECT order_id, amount FROM orders WHERE DATE(created_at) = %s AND amount > 0 ORDER BY order_id LIMIT 1",
        (D2,),
    )
    assert row, f"the fixture generated no order for {D2}"
    order_id, amount = row
    with env.mysql.cursor() as cur:
        cur.execute("UPDATE orders SET amount = amount + 100 WHERE order_id = %s", (order_id,))
    wait_dws_equals_truth(env)  # the streaming jobs apply the late update to the past partition

    result = run_day(D2, tables, holder="test-backfill", flink=env.flink, paimon=env.paimon, leases=leases)
    assert publish_day(D2, result.reports, paimon=env.paimon) == {}  # tags are not moved
    dwd = env.paimon.read_arrow("dwd.dwd_order_fact", partition={"dt": D2}).to_pandas().set_index("order_id")
    assert dwd.loc[order_id, "amount"] == amount + 100
    at_tag = env.paimon.read_arrow("dwd.dwd_order_fact", tag=tag_name(D2)).to_pandas().set_index("order_id")
    assert at_tag.loc[order_id, "amount"] == amount
    assert env.paimon.read_arrow("dws.dws_city_daily", tag=tag_name(D2)).to_pylist() == published
    wait_dws_equals_truth(env)


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"tables": ["all"], "start_date": D2, "end_date": D1}, f"end_date {D1} is before start_date {D2}"),
        ({"tables": ["all"], "start_date": D2, "end_date": TODAY.isoformat()}, "is not in the past"),
        # The form itself (Param format "date") refuses an impossible day before any task runs.
        ({"tables": ["dws"], "start_date": "2026-02-30", "end_date": D2}, "'2026-02-30' is not a 'date'"),
        ({"tables": ["dwd"], "start_date": "2025-01-01", "end_date": D2}, "split the range"),
        ({"tables": [], "start_date": D1, "end_date": D2}, "choose at least one table"),
    ],
)
def test_bad_backfill_request_fails_first_and_writes_nothing(past_days, conf, message):
    env = past_days
    before = snapshot_ids(env)
    out = backfill(conf, env)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert message in text
    if "is not a 'date'" not in message:
        assert "Nothing was written. Fix the backfill request" in text and "validate_request" in text
    assert overwrites_since(env, before) == {}


def test_a_held_lease_blocks_a_second_writer(past_days):
    env = past_days
    leases = LeaseManager(env.mysql)
    leases.acquire(["dwd.dwd_order_fact"], D1, "t1_daily/other-run")
    before = snapshot_ids(env)
    try:
        with pytest.raises(LeaseHeld, match=r"dwd.dwd_order_fact held by t1_daily/other-run"):
            run_day(
                D1,
                select_tables(["dwd.dwd_order_fact"]),
                holder="backfill/me",
                flink=env.flink,
                paimon=env.paimon,
                leases=leases,
                lease_wait_s=0,
            )
        assert overwrites_since(env, before) == {}
    finally:
        leases.release("t1_daily/other-run")
