"""Write -> audit -> publish with Great Expectations, on the real stack, through the t1_daily DAG.

Bad rows of each kind are written at the source (MariaDB) for one past day and travel through
CDC and the streaming jobs; `airflow dags test t1_daily <day>` then recomputes the day, and its
audit must fail naming the right expectations, copy the rows to ops.dq_quarantine and publish no
tag, while the good rows are untouched. A clean day passes and publishes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lakehouse.batch.recompute import recomputable_tables
from lakehouse.core.days import tag_name
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.quality.audit import QUARANTINE_TABLE, RESULTS_TABLE
from tests.integration.helpers import PREFIX, airflow_cli, backdated_clock, start_order_pipeline, wait_dws_equals_truth

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
# Days no other module recomputes (test_maintenance loads clean orders on today-5 and only
# compacts them). Both runs' logical dates must not precede t1_daily's start_date, or `dags test`
# creates a run with no task instances and calls it a success.
BAD_DAY, CLEAN_DAY = (TODAY - timedelta(days=6)).isoformat(), (TODAY - timedelta(days=5)).isoformat()


def run_daily(day: str, docs):
    """`airflow dags test t1_daily` for the run whose data interval is `day` (a manual run at the
    day's end: CronDataIntervalTimetable gives it the interval that just ended)."""
    run_after = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    return airflow_cli(
        "dags", "test", "t1_daily", run_after, LAKEHOUSE_PIPELINE_PREFIX=PREFIX, LAKEHOUSE_DATA_DOCS=str(docs)
    )


@pytest.fixture(scope="module")
def days(it_env):
    """A clean day, and a day with one row of each bad kind among good ones, through the live pipeline."""
    env = it_env
    start_order_pipeline(env)
    for seed, day in ((90, CLEAN_DAY), (91, BAD_DAY)):
        LoadGenerator(env.mysql, rate=50, seed=seed, clock=backdated_clock(day)).run(duration_s=4)
    ts = f"{BAD_DAY} 12:00:00"
    base = env.mysql.get_first("SELECT MAX(order_id) FROM orders")[0] + 1000
    bad = {
        "dangling_shop": base + 1,  # the order's shop does not exist ("null shop" after the join)
        "negative_amount": base + 2,
        "unknown_status": base + 3,
        "future_time": base + 4,  # delivered in 2036: a wrong clock at the source
        "subsidy_above_amount": base + 5,
        "replayed_event": base + 6,  # its CREATED event arrives twice
    }
    with env.mysql.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        insert = (
            "INSERT INTO orders (order_id, user_id, shop_id, city, status, amount, created_at, delivered_at) "
            "VALUES (%s, 1, %s, 'wuhan', %s, %s, %s, %s)"
        )
        cur.execute(insert, (bad["dangling_shop"], 999999, "CREATED", Decimal("20.00"), ts, None))
        cur.execute(insert, (bad["negative_amount"], 1, "CREATED", Decimal("-5.00"), ts, None))
        cur.execute(insert, (bad["unknown_status"], 1, "LOST", Decimal("12.00"), ts, None))
        cur.execute(insert, (bad["future_time"], 1, "DELIVERED", Decimal("30.00"), ts, "2036-01-01 00:00:00"))
        cur.execute(insert, (bad["subsidy_above_amount"], 1, "CREATED", Decimal("10.00"), ts, None))
        cur.execute(insert, (bad["replayed_event"], 1, "CREATED", Decimal("15.00"), ts, None))
        cur.execute(
            "INSERT INTO order_subsidies (order_id, payer, amount, created_at) VALUES (%s, 'PLATFORM', 50.00, %s)",
            (bad["subsidy_above_amount"], ts),
        )
        events = [(order_id, "CREATED", ts) for order_id in bad.values()] + [(bad["replayed_event"], "CREATED", ts)]
        cur.executemany("INSERT INTO order_status_events (order_id, status, event_time) VALUES (%s, %s, %s)", events)
    wait_dws_equals_truth(env)  # CDC and the streaming jobs carried everything
    return env, bad


def quarantined(env, run_filter) -> list[dict]:
    return [r for r in env.paimon.read_arrow(QUARANTINE_TABLE).to_pylist() if run_filter(r)]


def test_bad_rows_fail_the_audit_are_quarantined_and_nothing_is_published(days, tmp_path):
    env, bad = days
    out = run_daily(BAD_DAY, tmp_path / "docs")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert f"T+1 audit of {BAD_DAY}: data quality gate failed, nothing published" in text, text[-5000:]
    # The right expectation fails for each kind of bad row ...
    expected = {
        "negative_amount": ("ods.ods_orders", "expect_column_values_to_be_between(amount)"),
        "unknown_status": ("ods.ods_orders", "expect_column_values_to_be_in_set(status)"),
        "future_time": ("ods.ods_orders", "expect_column_values_to_be_between(delivered_at)"),
        "replayed_event": ("ods.ods_order_status_events", "expect_compound_columns_to_be_unique(order_id, status)"),
        "dangling_shop": ("dwd.dwd_order_fact", "expect_column_values_to_be_in_set(shop_id)"),
        "subsidy_above_amount": (
            "dwd.dwd_order_fact",
            "expect_column_pair_values_a_to_be_greater_than_b(amount >= subsidy_total)",
        ),
    }
    for kind, (_table, expectation) in expected.items():
        assert f"FAILED {expectation}" in text, f"{kind}: {expectation} did not fail"
    assert "FAILED expect_column_values_to_be_between(delivery_minutes)" in text  # the 2036 delivery, in DWD
    assert "FAILED expect_column_values_to_not_be_null(shop_name)" in text

    # ... and its rows are in quarantine, with the reason and the run.
    rows = quarantined(env, lambda r: r["partition"] == f"dt={BAD_DAY}")
    assert rows and len({r["run_id"] for r in rows}) == 1
    for kind, (table, expectation) in expected.items():
        hits = [r for r in rows if r["table_name"] == table and r["expectation"] == expectation]
        order_ids = {json.loads(r["row_json"])["order_id"] for r in hits}
        assert bad[kind] in order_ids, f"{kind}: order {bad[kind]} not quarantined under {table} {expectation}"
        assert all(r["severity"] == "critical" and r["reason"] for r in hits)
    replayed = [json.loads(r["row_key"]) for r in rows if r["table_name"] == "ods.ods_order_status_events"]
    assert len(replayed) == 2  # both copies of the replayed event, by their event ids

    # Nothing was published: no tag on any table; the summary records the failures.
    for table in recomputable_tables():
        assert tag_name(BAD_DAY) not in env.paimon.list_tags(table.name), f"{table.name} was tagged"
    results = [r for r in env.paimon.read_arrow(RESULTS_TABLE).to_pylist() if r["partition"] == f"dt={BAD_DAY}"]
    failed_tables = {r["table_name"] for r in results if not r["passed"]}
    assert failed_tables == {"ods.ods_orders", "ods.ods_order_status_events", "dwd.dwd_order_fact"}, results
    assert all(r["docs"] and (tmp_path / "docs").exists() for r in results)

    # The good rows are untouched: DWD holds every other valid order of the day as MariaDB has it.
    dwd = {
        r["order_id"]: r["amount"]
        for r in env.paimon.read_arrow(
            "dwd.dwd_order_fact", partition={"dt": BAD_DAY}, columns=["order_id", "amount"]
        ).to_pylist()
    }
    good = dict(
        env.mysql.get_records(
            "SELECT order_id, amount FROM orders WHERE created_at >= %s AND created_at < %s AND order_id < %s",
            (BAD_DAY, (datetime.fromisoformat(BAD_DAY) + timedelta(days=1)).date().isoformat(), min(bad.values())),
        )
    )
    assert good and {k: dwd.get(k) for k in good} == good


def test_a_clean_day_passes_and_publishes(days, tmp_path):
    env, _ = days
    out = run_daily(CLEAN_DAY, tmp_path / "docs")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    # Every recomputed table is tagged (the traffic table only if it holds anything: no click
    # stream runs in these tests, so its recomputation commits nothing to tag).
    written = [t.name for t in recomputable_tables() if env.paimon.latest_snapshot(t.name) is not None]
    assert {
        "dwd.dwd_order_fact",
        "dws.dws_shop_hourly",
        "dws.dws_shop_daily",
        "dws.dws_city_hourly",
        "dws.dws_city_daily",
    } <= set(written)
    for table in written:
        assert tag_name(CLEAN_DAY) in env.paimon.list_tags(table), (
            f"{table} not tagged:\n" + (out.stdout + out.stderr)[-6000:]
        )
    results = [r for r in env.paimon.read_arrow(RESULTS_TABLE).to_pylist() if r["partition"] == f"dt={CLEAN_DAY}"]
    assert {r["table_name"] for r in results} == {
        "ods.ods_orders",
        "ods.ods_order_status_events",
        "ods.ods_order_subsidies",
        "ods.ods_user_events",
        *written,
    }
    assert all(r["passed"] for r in results), [r for r in results if not r["passed"]]
    assert not quarantined(env, lambda r: r["partition"] == f"dt={CLEAN_DAY}")
    assert (tmp_path / "docs" / "dwd.dwd_order_fact" / f"dt={CLEAN_DAY}").exists()
