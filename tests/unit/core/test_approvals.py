"""Destructive operations wait for a human (lakehouse.core.approvals): what the UI shows, and what
happens on approve, reject, timeout, or when there is nothing to approve. The gates of the real
DAGs run through Airflow's own task runner (tests/support/task_runner.py): no database, no
triggerer; a deferral is what the runner reports, a resumption is fed the trigger's event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse.core.approvals import ApprovalTimedOut, describe_backfill, describe_restart
from lakehouse.core.registry import registry
from tests.support.task_runner import run_task

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS), include_examples=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


def _request(job: str, action: str) -> dict:
    also = [c.name for c, _ in registry().reset_cascade(job)] if action == "restart_without_state" else []
    return {"job": job, "action": action, "savepoint_path": None, "also_reset": also}


def _preview(dry_run: bool) -> dict:
    before = {"rows": 120, "totals": {"gmv": "1520.50"}, "snapshot_id": 41}
    rows = [
        {"dt": dt, "table": t, "before": before, "after": None, "overwrite_snapshot_id": None, "dry_run": True}
        for dt in ("2026-11-23", "2026-11-24")
        for t in ("dwd.dwd_order_fact", "dws.dws_city_daily")
    ]
    return {"dry_run": dry_run, "parallel_days": 2, "rows": rows}


# ------------------------------------------------------------------------------------ descriptions
def test_a_restart_without_state_lists_the_job_and_its_whole_cascade():
    request = _request("ods_delivery_cdc", "restart_without_state")
    assert request["also_reset"], "the CDC job's reset cascades downstream"
    approval = describe_restart(request)
    assert "ods_delivery_cdc" in approval.subject and f"{len(request['also_reset'])} jobs" in approval.subject
    for job in ["ods_delivery_cdc", *request["also_reset"]]:
        assert f"`{job}`" in approval.body, job
    assert "discarded" in approval.body and "Reject" in approval.body


@pytest.mark.parametrize("action", ["stop_with_savepoint", "start_from_savepoint"])
def test_stops_and_starts_need_no_approval(action):
    assert describe_restart(_request("ods_delivery_cdc", action)) is None


def test_a_backfill_with_writes_shows_its_dry_run_report():
    approval = describe_backfill(_preview(dry_run=False))
    assert approval.subject == "Overwrite 4 partitions: 2 tables x 2 days (2026-11-23 .. 2026-11-24)"
    assert "| 2026-11-24 | dws.dws_city_daily | 120 | {'gmv': '1520.50'} | 41 |" in approval.body
    assert "nothing is written" in approval.body


def test_a_dry_run_needs_no_approval():
    assert describe_backfill(_preview(dry_run=True)) is None


# ------------------------------------------------------------------------------------ the gates in the DAGs
GATES = {
    "streaming_operations": ("approve_restart_without_state", "validate_request"),
    "t1_backfill": ("approve_writes", "preview"),
}


@pytest.mark.parametrize(
    "dag_id, upstream",
    [
        ("streaming_operations", _request("ods_delivery_cdc", "stop_with_savepoint")),
        ("t1_backfill", _preview(dry_run=True)),
    ],
    ids=["stop", "dry-run"],
)
def test_the_gate_is_skipped_when_nothing_destructive_is_asked(dags, dag_id, upstream):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    gate, source = GATES[dag_id]
    outcome = run_task(dags[dag_id], gate, xcoms={source: upstream})
    assert outcome.state == TaskInstanceState.SKIPPED, outcome.error
    assert not [m for m in outcome.sent if type(m).__name__ == "CreateHITLDetailPayload"], "nobody is asked"


@pytest.mark.parametrize(
    "dag_id, upstream, shows",
    [
        ("streaming_operations", _request("ods_delivery_cdc", "restart_without_state"), "`dwd_order_fact`"),
        ("t1_backfill", _preview(dry_run=False), "| 2026-11-23 | dwd.dwd_order_fact | 120 |"),
    ],
    ids=["restart", "backfill-writes"],
)
def test_the_gate_asks_in_the_ui_showing_what_will_happen_then_waits(dags, dag_id, upstream, shows):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    gate, source = GATES[dag_id]
    outcome = run_task(dags[dag_id], gate, xcoms={source: upstream})
    assert outcome.state == TaskInstanceState.DEFERRED, outcome.error  # on the triggerer, until answered
    (asked,) = [m for m in outcome.sent if type(m).__name__ == "CreateHITLDetailPayload"]
    assert asked.options == ["Approve", "Reject"] and asked.defaults is None
    assert shows in asked.body
    trigger = outcome.message.trigger_kwargs
    assert "timeout_datetime" in str(trigger), trigger


def _event(**extra) -> dict:
    return {"chosen_options": None, "params_input": {}, "responded_at": None, "responded_by_user": None, **extra}


@pytest.mark.parametrize("dag_id", sorted(GATES))
def test_no_answer_in_time_fails_the_gate_without_retry(dags, dag_id):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    gate, _ = GATES[dag_id]
    timeout = {"error": "The timeout has passed, and the response has not yet been received.", "error_type": "timeout"}
    outcome = run_task(dags[dag_id], gate, resume=("execute_complete", {"event": _event(**timeout)}))
    assert outcome.state == TaskInstanceState.FAILED  # retries=0 whatever default_args say
    assert isinstance(outcome.error, ApprovalTimedOut)
    assert "nothing was done" in str(outcome.error) and "Trigger the run again" in str(outcome.error)


@pytest.mark.parametrize("dag_id", sorted(GATES))
def test_approve_lets_the_operation_run_and_reject_skips_it(dags, dag_id):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    gate, _ = GATES[dag_id]
    now = datetime.now(UTC)
    for option, skips in (("Approve", False), ("Reject", True)):
        answered = _event(
            chosen_options=[option], responded_at=now, responded_by_user={"id": "oncall", "name": "oncall"}
        )
        outcome = run_task(dags[dag_id], gate, resume=("execute_complete", {"event": answered}))
        assert outcome.state == TaskInstanceState.SUCCESS, outcome.error
        skipped = [m for m in outcome.sent if type(m).__name__ == "SkipDownstreamTasks"]
        assert bool(skipped) == skips, (option, outcome.sent)
