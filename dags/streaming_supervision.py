"""
### Supervise the streaming jobs

Every two minutes, each job in `config/streaming_jobs.yaml` is checked and, where needed,
restored, upgraded through a savepoint, or reported: a job that does not checkpoint publishes
nothing, so stale or failing checkpoints fail the task with the job's exception. What is done
in which case is the decision table in docs/STREAMING.md, "Supervision" (one place).
A job that was never deployed is skipped (`NOT_DEPLOYED`): deploying is the `streaming_deploy`
DAG's, so a stack nobody deployed yet gets no jobs from this schedule.

Every action lands in the Paimon table `ops.streaming_deployments` (job id, SQL hash, savepoint,
time), which the task log also prints.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.alerts.notifier import LakehouseNotifier, streaming_down_deadline
from lakehouse.core.registry import registry
from lakehouse.core.tasks import no_retry_on_deterministic

REGISTRY = registry()


@dag(
    dag_id="streaming_supervision",
    schedule=timedelta(minutes=2),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # operational: live from the first start (docs/AIRFLOW.md)
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    deadline=streaming_down_deadline(),  # a job down longer than N minutes (config/alerts.yaml)
    doc_md=__doc__,
    tags=["streaming", "flink", "supervision"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 1,
        "retry_delay": timedelta(seconds=20),
        "execution_timeout": timedelta(minutes=10),  # a check, or a restart from the latest checkpoint
    },
)
def streaming_supervision():
    for job in REGISTRY.jobs.values():

        @task(task_id=f"supervise_{job.name}", doc_md=job.description)
        @no_retry_on_deterministic
        def supervise(job_name: str = job.name) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.core.results import to_jsonable
            from lakehouse.streaming.locks import JobLocks
            from lakehouse.streaming.supervision import Supervisor

            r = resources()
            # One actor per job (docs/STREAMING.md): a deploy or an on-call operation on this job
            # finishes first; held longer than the wait, this task fails with StreamingJobBusy.
            with JobLocks(r.ops).hold(job_name):
                result = Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc).supervise(job_name, deploy_new=False)
            print(f"{job_name}: {result.action} {result.job_id or ''} {result.detail}")
            if result.action == "NOT_DEPLOYED":  # nothing to supervise until streaming_deploy ran
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(f"{job_name}: {result.detail}")
            return to_jsonable(result)

        supervise()


streaming_supervision()
