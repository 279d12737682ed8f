"""
### T+1 daily: recompute yesterday on the streaming tables, verify, publish

One run per day, live from the first start, for the day that just ended. For the run's data
interval `dt`:

1. **wait_for_day** — until ODS holds every change of `dt` (the CDC job's newest binlog time
   in ODS has passed the end of the day, or the source has nothing newer);
2. **recompute_day** — under a lease on every (table, `dt`), each DWD/DWS table's partition
   `dt` is rebuilt by Flink in batch mode with `INSERT OVERWRITE ... PARTITION (dt = ...)` from
   the same SQL model the streaming job runs (idempotent: a re-run gives the same partition);
   the snapshot each overwrite wrote is pinned against expiry until it is tagged;
3. **verify** — row counts and totals of the rebuilt partitions against ODS;
4. **audit** — the Great Expectations suites (`expectations/`) on the day's ODS partitions and on
   each rebuilt partition at the snapshot its recomputation wrote; a failed critical expectation
   fails here, listing each with its observed value and sample keys, and the breaking rows are
   copied to `ops.dq_quarantine`;
5. **publish** — a Paimon tag `t1-<dt>` on each table at the snapshot the recomputation
   wrote (a stable T+1 view; an existing tag is never moved), and the tables' Asset events;
6. **refresh_serving** — the StarRocks materialized views over those tables, for that day
   (skipped where StarRocks is not deployed).

A failed verification or audit fails the run before anything is published. Backfills of older days:
the `t1_backfill` DAG, or `airflow backfill create --dag-id t1_daily`.

**Which days it runs for.** Only days the warehouse holds: `catchup=False`, so when the DAG first
appears (and after the scheduler was down) the scheduler creates one run, for the latest complete
day, never one per day since `start_date` (which stays fixed: a start date computed at deploy time
would change with every parse); `wait_for_day` then holds that run until ODS has every change of the
day. With catchup on, a fresh stack recomputed and tagged every day since `start_date`, days the
source never had. A day the source had nothing on (the day before a fresh stack's first) is recomputed
as empty, which is what the source says about it. Days missed while the scheduler was down are
rebuilt on purpose with `t1_backfill`. `start_date` only bounds how far back runs and backfills of
this DAG may go.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.batch.recompute import BATCH_SESSION, recomputable_tables
from lakehouse.core.assets import table_asset
from lakehouse.core.pools import FLINK_BATCH_POOL, QUALITY_POOL, slots_of
from lakehouse.core.tasks import no_retry_on_deterministic

TABLES = recomputable_tables()
OUTLETS = [table_asset(t) for t in TABLES]


@dag(
    dag_id="t1_daily",
    # A run per day interval [dt, dt + 1 day), run after it ends. Not "@daily": in Airflow 3 that is a
    # CronTriggerTimetable, whose run at midnight has a zero-length interval starting at that midnight,
    # so the run (and a backfill including today) would recompute and publish the day just begun.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 20, tz="UTC"),
    catchup=False,  # only the latest complete day, never every day since start_date (see "Which days")
    is_paused_upon_creation=False,  # live from the first start (docs/AIRFLOW.md)
    max_active_runs=2,
    # No deadline=: `airflow dags test t1_daily` fails in Airflow 3.2.1 when the DAG has one (docs/ALERTS.md);
    # table_freshness.check_t1_published alerts for a day not published by t1_published_by instead.
    doc_md=__doc__,
    tags=["batch", "t+1", "paimon", "flink"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=2),  # recompute_day: every DWD/DWS table of a day
    },
)
def t1_daily():
    # Gives up after `timeout` (6 h) in all; each poke (rescheduled) gets at most execution_timeout.
    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule", execution_timeout=timedelta(minutes=10))
    @no_retry_on_deterministic
    def wait_for_day(data_interval_start=None):
        from airflow.sdk import PokeReturnValue

        from lakehouse.batch.t1 import day_complete
        from lakehouse.core.resources import resources

        dt = data_interval_start.strftime("%Y-%m-%d")
        r = resources()
        done, reason = day_complete(dt, paimon=r.paimon, mysql=r.mysql_source, flink=r.flink)
        print(f"{dt}: {reason}")
        return PokeReturnValue(is_done=done, xcom_value=dt)

    # Flink batch statements of BATCH_SESSION's parallelism: as many slots of the shared flink_batch pool.
    @task(pool=FLINK_BATCH_POOL, pool_slots=slots_of(BATCH_SESSION))
    @no_retry_on_deterministic
    def recompute_day(dt: str, run_id=None) -> dict:
        from lakehouse.batch.leases import LeaseManager, lease_holder
        from lakehouse.batch.t1 import run_day, select_tables
        from lakehouse.core.resources import resources
        from lakehouse.core.results import to_jsonable

        r = resources()
        result = run_day(
            dt,
            select_tables(),
            holder=lease_holder("t1_daily", run_id),
            flink=r.flink,
            paimon=r.paimon,
            leases=LeaseManager(r.ops),
            verify=False,
            keep_pins=True,
        )
        for report in result.reports:
            print(report.line())
        # The pins are this run's (a backfill of the day never removes them); publish unpins them.
        return {"dt": dt, "reports": to_jsonable(result.reports), "pin_holder": result.pin_holder}

    @task
    @no_retry_on_deterministic
    def verify(result: dict) -> dict:
        from lakehouse.batch.t1 import reports_from_dicts, verify_day
        from lakehouse.core.resources import resources

        for line in verify_day(result["dt"], reports_from_dicts(result["reports"]), paimon=resources().paimon):
            print("ok:", line)
        return result

    # A failed gate fails at once (no_retry_on_deterministic); a database that did not answer is retried.
    @task(pool=QUALITY_POOL)  # Great Expectations validations share the machine's quality slots
    @no_retry_on_deterministic
    def audit(result: dict, run_id=None) -> dict:
        from lakehouse.batch.t1 import reports_from_dicts
        from lakehouse.core.resources import resources
        from lakehouse.quality.audit import audit_day

        reports = reports_from_dicts(result["reports"])
        r = resources()
        for report in audit_day(result["dt"], reports, paimon=r.paimon, mysql=r.mysql_source, run_id=run_id):
            print("\n".join(report.lines()))
        return result

    @task(outlets=OUTLETS)
    @no_retry_on_deterministic
    def publish(result: dict, *, outlet_events=None) -> dict:
        from lakehouse.batch.t1 import publish_day, reports_from_dicts
        from lakehouse.core.resources import resources

        tagged = publish_day(
            result["dt"],
            reports_from_dicts(result["reports"]),
            paimon=resources().paimon,
            pin_holder=result.get("pin_holder"),  # absent from runs recomputed before pins had run holders
        )
        for asset in OUTLETS:
            outlet_events[asset].extra = {"dt": result["dt"], "tag_snapshot": tagged.get(asset.name)}
        print(f"published {result['dt']}: {tagged or 'tags already existed'}")
        return tagged

    @task
    @no_retry_on_deterministic
    def refresh_serving(result: dict) -> list[str]:
        """StarRocks materialized views over the published tables, refreshed for the day (skipped
        where StarRocks is not deployed: no `starrocks_default` connection)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lakehouse.serving.config import serving_configured
        from lakehouse.serving.refresh import refresh_after_publish

        if not serving_configured():
            raise AirflowSkipException("no starrocks_default connection: StarRocks serving is not deployed here")
        from lakehouse.core.resources import resources

        tables = [r["table"] for r in result["reports"] if r["overwrite_snapshot_id"]]
        refreshed = refresh_after_publish(result["dt"], tables, starrocks=resources().starrocks)
        print(f"refreshed for {result['dt']}: {refreshed or 'no view reads these tables'}")
        return refreshed

    checked = audit(verify(recompute_day(wait_for_day())))
    publish(checked) >> refresh_serving(checked)


t1_daily()
