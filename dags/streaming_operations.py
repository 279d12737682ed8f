"""
### Streaming job operations (on-call)

Trigger with the form to act on one streaming job:

| action | what happens |
|---|---|
| `stop_with_savepoint` | graceful stop, savepoint taken; supervision leaves it stopped |
| `start_from_savepoint` | start from `savepoint_path`, or from the newest known savepoint / retained checkpoint when empty |
| `restart_without_state` | stop (with a savepoint, kept for the record) and start with no state: sources re-read from the beginning. Type the job name in `confirm` |

A job restarted without state writes its whole output again. The jobs that stream that output
as a changelog would count it twice, so they restart without state with it, reading from the
first snapshot the restarted job writes: resetting `ods_delivery_cdc` also resets
`dwd_order_fact` and the four order DWS jobs; resetting `dwd_order_fact` resets those four.
`validate_request` lists them (`also_reset`) before anything is touched, and
**approve_restart_without_state** shows them in the UI (*Required actions*) and waits for a human:
Approve and the restart runs; Reject and nothing is changed; no answer within an hour and the run
fails, changing nothing. Stops and starts need no approval (the gate is skipped).

Every action is recorded in `ops.streaming_deployments`. Parameters are checked before anything
is touched: a bad request fails in `validate_request` and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.core.approvals import ApprovalGate, describe_restart
from lakehouse.core.registry import registry
from lakehouse.core.tasks import no_retry_on_deterministic

# How long a restart without state waits for its approval before the run fails, changing nothing.
APPROVAL_TIMEOUT = timedelta(hours=1)
JOBS = sorted(registry().jobs)
ACTIONS = ["stop_with_savepoint", "start_from_savepoint", "restart_without_state"]


@dag(
    dag_id="streaming_operations",
    schedule=None,
    is_paused_upon_creation=False,  # runs only when triggered; unpaused, so a run triggered by any means starts
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["streaming", "flink", "on-call"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 1,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=30),  # a savepoint (at most 5 min) and a restart
    },
    params={
        "job": Param(
            JOBS[0],
            type="string",
            enum=JOBS,
            title="Streaming job",
            description="The job to act on (config/streaming_jobs.yaml).",
        ),
        "action": Param(
            "stop_with_savepoint",
            type="string",
            enum=ACTIONS,
            title="Action",
            description="stop_with_savepoint | start_from_savepoint | restart_without_state",
        ),
        "savepoint_path": Param(
            "",
            type="string",
            title="Savepoint path",
            description="For start_from_savepoint: a savepoint or retained checkpoint "
            "(file:// or s3://). Empty: the newest one known.",
        ),
        "confirm": Param(
            "",
            type="string",
            title="Confirm restart without state",
            description="For restart_without_state only: type the job name. The job's state "
            "(source offsets, aggregates) is discarded, and that of the jobs "
            "downstream that would otherwise count its replayed output twice.",
        ),
    },
)
def streaming_operations():
    @task(retries=0)
    @no_retry_on_deterministic
    def validate_request(params=None) -> dict:
        from lakehouse.core.results import to_jsonable
        from lakehouse.streaming.operations import validate_operation

        request = validate_operation(params)
        if request.also_reset:
            print(
                f"{request.job}: restarting without state also restarts, without state: {', '.join(request.also_reset)}"
            )
        return to_jsonable(request)

    # Runs after an approval, or when none was needed (the gate skipped: stop, start).
    @task(retries=0, trigger_rule="none_failed")
    @no_retry_on_deterministic
    def run_operation(request: dict) -> list[dict]:
        from lakehouse.core.resources import resources
        from lakehouse.core.results import to_jsonable
        from lakehouse.streaming.locks import JobLocks, jobs_acted_on
        from lakehouse.streaming.operations import OperationRequest
        from lakehouse.streaming.operations import run_operation as run
        from lakehouse.streaming.supervision import Supervisor

        r = resources()
        operation = OperationRequest(**request)
        # One actor per job (docs/STREAMING.md): the locks of every job the action stops or starts,
        # a reset's whole cascade included, taken before anything is touched.
        with JobLocks(r.ops).hold(*jobs_acted_on(operation.job, operation.action)):
            results = run(operation, supervisor=Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc))
        for result in results:
            print(f"{result.job_name}: {result.action} job_id={result.job_id} {result.detail}")
        return to_jsonable(results)

    request = validate_request()
    approve = ApprovalGate(
        task_id="approve_restart_without_state",
        what="the restart without state",
        from_task="validate_request",
        describe=describe_restart,
        response_timeout=APPROVAL_TIMEOUT,
        doc_md="restart_without_state only: approve the restart of the job and of every job its cascade "
        "resets (listed); reject or let it time out to change nothing. Skipped for other actions.",
    )
    request >> approve >> run_operation(request)


streaming_operations()
