"""
### Supervise the streaming jobs

Every two minutes, for each job in `config/streaming_jobs.yaml`:

- **not running** → resubmitted from the newest of its last savepoint and its last retained
  checkpoint (a job stopped on purpose from `streaming_operations` stays stopped);
- **restarting without TaskManagers** → a TaskManager is started (standalone clusters);
- **SQL or settings changed** since it was deployed (content hash) → stopped with a savepoint
  and redeployed from it;
- **checkpoints stale or failing** → the task fails with the job's exception: Paimon commits on
  checkpoints, so a job that does not checkpoint publishes nothing.

Every action lands in the Paimon table `ops.streaming_deployments` (job id, SQL hash, savepoint,
time), which the task log also prints.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.core.registry import registry

REGISTRY = registry()


@dag(
    dag_id="streaming_supervision",
    schedule=timedelta(minutes=2),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    doc_md=__doc__,
    tags=["streaming", "flink", "supervision"],
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=20)},
)
def streaming_supervision():
    for job in REGISTRY.jobs.values():

        @task(task_id=f"supervise_{job.name}", doc_md=job.description)
        def supervise(job_name: str = job.name) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.core.results import to_jsonable
            from lakehouse.streaming.supervision import Supervisor

            r = resources()
            result = Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc).supervise(job_name)
            print(f"{job_name}: {result.action} {result.job_id or ''} {result.detail}")
            return to_jsonable(result)

        supervise()


streaming_supervision()
