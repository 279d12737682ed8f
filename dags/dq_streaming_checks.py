"""
### Data quality checks on the streaming tables

Every 30 minutes, each table's Great Expectations suite (`expectations/<table>.json`) runs on the
table's latest snapshot: today's partition of partitioned tables, the whole of dimension tables.
The snapshot is pinned while it is read. Closed-day reconciliations (row counts against MariaDB,
DWS totals against DWD) need a closed day and are skipped here: the T+1 audit runs them.

These checks never block the streaming jobs. A failed critical expectation fails the table's
task (the alert), listing each expectation with its observed value and sample keys; warnings are
logged. Every result is kept in `ops.dq_validations`, with GX Data Docs under
`$LAKEHOUSE_DATA_DOCS` (default `.stack/data_docs`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.core.pools import QUALITY_POOL
from lakehouse.core.tasks import no_retry_on_deterministic
from lakehouse.quality.suites import suite_tables

TABLES = suite_tables()


@dag(
    dag_id="dq_streaming_checks",
    schedule=timedelta(minutes=30),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,  # a check of the latest snapshot: missed runs are not worth replaying
    is_paused_upon_creation=False,  # operational: live from the first start (docs/AIRFLOW.md)
    max_active_runs=1,
    doc_md=__doc__,
    tags=["quality", "great-expectations", "paimon"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 0,
        "execution_timeout": timedelta(minutes=20),
    },
)
def dq_streaming_checks():
    for table in TABLES:
        # One task per table (its name in the task id); they queue in the quality pool, a few at a time.
        @task(task_id=f"check_{table.replace('.', '__')}", pool=QUALITY_POOL)
        @no_retry_on_deterministic
        def check(table_name: str = table, run_id=None, data_interval_end=None) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.quality.audit import check_streaming_tables, enforce
            from lakehouse.streaming.supervision import skip_until_deployed

            paimon = resources().paimon
            skip_until_deployed(table_name, paimon=paimon)  # a fresh stack before streaming_deploy: skipped
            (report,) = check_streaming_tables(
                [table_name], paimon=paimon, today=data_interval_end.strftime("%Y-%m-%d"), run_id=run_id
            )
            print("\n".join(report.lines()))
            enforce([report], what=f"streaming check of {table_name}")
            return {"passed": report.passed, "warnings": len(report.warnings), "snapshot_id": report.snapshot_id}

        check()


dq_streaming_checks()
