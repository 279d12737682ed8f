"""
### Deploy the streaming jobs

Creates the registered Paimon tables (`config/tables.yaml`, `CREATE TABLE IF NOT EXISTS`) and
submits every registered streaming job (`config/streaming_jobs.yaml`) to the Flink session
cluster through the SQL Gateway, then waits until each job runs and has completed a checkpoint.

Idempotent: a job already running under its name is left alone, so re-running this DAG is safe.

Connections: `flink_default`, `paimon_default`, `mysql_cdc` (the binlog reader's credentials).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.registry import registry

REGISTRY = registry()  # reads config/*.yaml from the repo; no network at parse time


@dag(
    dag_id="streaming_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["streaming", "flink", "paimon"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
)
def streaming_deploy():
    @task
    def create_tables() -> list[str]:
        """Create every registered Paimon table that does not exist yet."""
        from lakehouse.hooks.flink import FlinkHook
        from lakehouse.hooks.paimon import PaimonHook
        from lakehouse.streaming import create_tables as create

        return create(list(REGISTRY.tables.values()), flink=FlinkHook(), paimon=PaimonHook())

    tables = create_tables()
    for job in REGISTRY.jobs.values():

        @task(task_id=f"deploy_{job.name}", doc_md=job.description)
        def deploy(job_name: str = job.name) -> dict:
            from lakehouse.streaming import deploy_job

            d = deploy_job(job_name)
            return {"job_name": d.job_name, "job_id": d.job_id, "already_running": d.already_running}

        tables >> deploy()


streaming_deploy()
