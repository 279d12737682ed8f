"""Run one task of a DAG through Airflow's own task runner, in this process, with no database.

`airflow.sdk.execution_time.task_runner.run` is what a worker runs for a task instance: it renders
the templates (unmapping a mapped task and rendering its `map_index_template`), calls the task and
turns its outcome into a state (SUCCESS, UP_FOR_RETRY, FAILED, ...). Here the supervisor it talks to
is a stub that answers XCom reads from a dict and records everything else, and the API server's
run context says whether a retry is left (`should_retry`), as the server does from `max_tries`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock


@dataclass
class TaskRun:
    state: Any  # TaskInstanceState
    message: Any  # what the runner sent the supervisor at the end (TaskState, RetryTask, ...)
    error: BaseException | None
    rendered_map_index: str | None
    sent: list = field(default_factory=list)


def run_task(
    dag,
    task_id: str,
    *,
    map_index: int = -1,
    xcoms: dict[str, Any] | None = None,
    conf: dict | None = None,
    should_retry: bool | None = None,
    prepare_only: bool = False,
    resume: tuple[str, dict] | None = None,
) -> TaskRun:
    """Run `task_id` of `dag` (or, with prepare_only, only render it as the runner does first).

    `xcoms` maps an upstream task id to its return value (for a mapped task's expansion: the list).
    `resume` = (method, kwargs) resumes a deferred task as the server does once its trigger fired."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
    from airflow.sdk.execution_time import comms, task_runner
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.serde import serialize

    xcoms = xcoms or {}
    sent: list = []

    def send(msg):
        sent.append(msg)
        if isinstance(msg, comms.GetXComSequenceSlice):  # xcom_pull of a task that might be mapped
            return comms.XComSequenceSliceResult(root=[xcoms[msg.task_id]] if msg.task_id in xcoms else [])
        if isinstance(msg, comms.GetXComSequenceItem):
            return comms.XComSequenceIndexResult(root=xcoms[msg.task_id][msg.offset])
        if isinstance(msg, comms.GetXCom):
            return comms.XComResult(key=msg.key, value=xcoms.get(msg.task_id))
        return None

    now = datetime.now(UTC)
    task = dag.get_task(task_id)
    run_context = TIRunContext(
        dag_run=DagRun(
            dag_id=dag.dag_id,
            run_id="manual__test",
            run_after=now,
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            consumed_asset_events=[],
            conf=conf or {},
        ),
        max_tries=task.retries,
        should_retry=task.retries > 0 if should_retry is None else should_retry,
        next_method=resume[0] if resume else None,
        next_kwargs=serialize(resume[1]) if resume else None,
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=dag.dag_id,
        run_id="manual__test",
        try_number=1,
        map_index=map_index,
        task=task,
        start_date=now,
        max_tries=task.retries,
        dag_version_id=uuid.uuid4(),
    )
    ti._ti_context_from_server = run_context
    with mock.patch.object(task_runner, "SUPERVISOR_COMMS", create=True) as supervisor:
        supervisor.send.side_effect = send
        context = ti.get_template_context()
        if prepare_only:
            task_runner._prepare(ti, task_runner.log, context)
            return TaskRun(None, None, None, ti.rendered_map_index, sent)
        state, message, error = task_runner.run(ti, context, task_runner.log)
    return TaskRun(state, message, error, ti.rendered_map_index, sent)
