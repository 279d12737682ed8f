"""
### Deploy the streaming jobs

Creates the registered Paimon tables (`config/tables.yaml`, `CREATE TABLE IF NOT EXISTS`, through
the SQL Gateway of `flink_default`), then deploys every registered streaming job
(`config/streaming_jobs.yaml`) to the target named by `LAKEHOUSE_DEPLOYMENT_TARGET`:

- `session` (default): each task makes the same decision as `streaming_supervision`
  (`Supervisor.supervise`; the decision table is in docs/STREAMING.md, "Supervision"): a job
  that ran before is restored from its newest savepoint or retained checkpoint, never started
  again without state, so after `make down` / `make up` nothing downstream counts an order
  twice. Each start waits until the job runs and has completed a checkpoint, and is recorded
  in `ops.streaming_deployments`.
- `kubernetes`: one Flink Kubernetes Operator resource per job (a `FlinkDeployment` in
  application mode, a `FlinkSessionJob` in session mode; `LAKEHOUSE_K8S_*` settings), created
  with the provider's `FlinkKubernetesOperator`. An existing resource gets the new spec, which
  the operator applies as a savepoint upgrade when it changed (docs/KUBERNETES.md).

Idempotent either way, so re-running this DAG is safe.

Connections: `flink_default`, `paimon_default`, `mysql_cdc` (the binlog reader's credentials);
for `kubernetes` also the Kubernetes connection (`LAKEHOUSE_K8S_CONN_ID`, default `kubernetes_default`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.core.registry import registry
from lakehouse.core.tasks import no_retry_on_deterministic
from lakehouse.streaming.kubernetes.settings import deployment_target

REGISTRY = registry()  # reads config/*.yaml from the repo; no network at parse time
TARGET = deployment_target()  # env LAKEHOUSE_DEPLOYMENT_TARGET; a bad value fails the parse with its name


@dag(
    dag_id="streaming_deploy",
    schedule=None,
    is_paused_upon_creation=False,  # runs only when triggered; unpaused, so a run triggered by any means starts
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["streaming", "flink", "paimon"] + (["kubernetes"] if TARGET == "kubernetes" else []),
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=30),  # DDL, a submission and its wait for RUNNING
    },
)
def streaming_deploy():
    @task
    @no_retry_on_deterministic
    def create_tables() -> list[str]:
        """Create every registered Paimon table that does not exist yet."""
        from lakehouse.core.resources import resources
        from lakehouse.streaming.deploy import create_tables as create

        r = resources()
        return create(list(REGISTRY.tables.values()), flink=r.flink, paimon=r.paimon)

    tables = create_tables()
    if TARGET == "kubernetes":
        # Settings are checked now (a typo fails the parse); the manifests are rendered when the tasks
        # run. The provider's operator module loads the Kubernetes client but contacts no cluster.
        from lakehouse.streaming.kubernetes.operator import FlinkJobResourceOperator, FlinkSessionClusterOperator
        from lakehouse.streaming.kubernetes.settings import KubernetesSettings

        settings = KubernetesSettings.from_env()
        upstream = tables
        if settings.mode == "session":
            upstream = tables >> FlinkSessionClusterOperator(
                task_id="deploy_session_cluster",
                settings=settings,
                doc_md=f"The session FlinkDeployment `{settings.session_cluster}` that runs the jobs.",
            )
        for job in REGISTRY.jobs.values():
            upstream >> FlinkJobResourceOperator(
                task_id=f"deploy_{job.name}",
                job_name=job.name,
                settings=settings,
                doc_md=job.description,
            )
        return

    for job in REGISTRY.jobs.values():

        @task(task_id=f"deploy_{job.name}", doc_md=job.description)
        @no_retry_on_deterministic
        def deploy(job_name: str = job.name) -> dict:
            from lakehouse.core.resources import resources
            from lakehouse.core.results import to_jsonable
            from lakehouse.streaming.locks import JobLocks
            from lakehouse.streaming.supervision import Supervisor

            r = resources()
            with JobLocks(r.ops).hold(job_name):  # one actor per job (docs/STREAMING.md)
                result = Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc).supervise(job_name)
            print(f"{job_name}: {result.action} job_id={result.job_id} {result.detail}")
            return to_jsonable(result)

        tables >> deploy()


streaming_deploy()
