"""
### Table freshness

Every five minutes, for each registered Paimon table: its lag behind what feeds it, checked
against `freshness_sla` (`config/tables.yaml`). ODS mirrors: behind the MariaDB source's newest
change (a quiet source is fresh); DWD/DWS: behind the input snapshots their job has not consumed;
a generator's table: the age of its newest event (docs/STREAMING.md, "Freshness SLA"). A stale
table fails its task with a message saying how far behind what, against which target, and where
to look.

Each check that passes emits the table's Asset event (extra: lag, how it was measured, snapshot
id), so DAGs can be scheduled on fresh data.

**check_t1_published**: each of the last days whose deadline has passed (`t1_published_by` UTC the
next day, `config/alerts.yaml`) and whose ODS holds rows must carry the tag `t1-<dt>` on every
DWD/DWS table. It fails (alert `t1_not_published`) for a day whose `t1_daily` run failed, hangs, or
was never created (scheduler down over midnight, DAG paused); rebuild such a day with `t1_backfill`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.core.assets import table_asset
from lakehouse.core.registry import registry
from lakehouse.core.tasks import no_retry_on_deterministic

REGISTRY = registry()


@dag(
    dag_id="table_freshness",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # operational: live from the first start (docs/AIRFLOW.md)
    max_active_runs=1,
    doc_md=__doc__,
    tags=["paimon", "freshness", "sla"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=5),
    },
)
def table_freshness():
    for table in REGISTRY.tables.values():
        asset = table_asset(table)

        @task(task_id=f"check_{table.name.replace('.', '__')}", outlets=[asset])
        @no_retry_on_deterministic
        def check(table_name: str = table.name, outlet=asset, *, outlet_events=None) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.quality.freshness import check_sla
            from lakehouse.streaming.supervision import skip_until_deployed

            r = resources()
            skip_until_deployed(table_name, paimon=r.paimon, reg=REGISTRY)  # before streaming_deploy: skipped
            f = check_sla(r.paimon, REGISTRY.table(table_name), mysql=r.mysql_source, reg=REGISTRY)
            print(f.describe())
            outlet_events[outlet].extra = {
                "lag_s": round(f.lag_s, 1) if f.lag_s is not None else None,
                "measure": f.measure,
                "snapshot_id": f.snapshot_id,
                "snapshot_age_s": round(f.snapshot_age_s, 1) if f.snapshot_age_s is not None else None,
            }
            return outlet_events[outlet].extra

        check()

    @task
    @no_retry_on_deterministic
    def check_t1_published() -> list[str]:
        from lakehouse.alerts.settings import load_settings
        from lakehouse.batch.published import check_published
        from lakehouse.core.resources import resources

        deadlines = load_settings().deadlines
        status = check_published(
            resources().paimon, published_by=deadlines.t1_published_by, days=deadlines.t1_watch_days, reg=REGISTRY
        )
        for day in status:
            print(day.line())
        return [day.line() for day in status]

    check_t1_published()


table_freshness()
