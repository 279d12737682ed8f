"""
### Table freshness

Every five minutes, for each registered Paimon table: the age of its latest snapshot and of the
newest event time in it (`freshness_column`), checked against `freshness_sla`
(`config/tables.yaml`). A stale table fails its task with a message saying how stale, against
which target, and where to look.

Each check that passes emits the table's Asset event (extra: snapshot id and ages), so DAGs can
be scheduled on fresh data.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.core.assets import table_asset
from lakehouse.core.registry import registry

REGISTRY = registry()


@dag(
    dag_id="table_freshness",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["paimon", "freshness", "sla"],
    default_args={
        "owner": "data-platform",
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=5),
    },
)
def table_freshness():
    for table in REGISTRY.tables.values():
        asset = table_asset(table)

        @task(task_id=f"check_{table.name.replace('.', '__')}", outlets=[asset])
        def check(table_name: str = table.name, outlet=asset, *, outlet_events=None) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.quality.freshness import check_sla

            f = check_sla(resources().paimon, REGISTRY.table(table_name))
            print(f.describe())
            outlet_events[outlet].extra = {
                "snapshot_id": f.snapshot_id,
                "snapshot_age_s": round(f.snapshot_age_s, 1) if f.snapshot_age_s is not None else None,
                "event_age_s": round(f.event_age_s, 1) if f.event_age_s is not None else None,
            }
            return outlet_events[outlet].extra

        check()


table_freshness()
