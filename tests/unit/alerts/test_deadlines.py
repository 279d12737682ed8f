"""Deadline alerts (Airflow 3.1+ DeadlineAlert, run by the triggerer): `t1-<day>` published by
HH:MM, and a streaming job down longer than N minutes (on streaming_supervision runs)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from lakehouse.alerts.history import read_alerts
from lakehouse.alerts.messages import alert_for_failure
from lakehouse.alerts.notifier import AlertDispatcher, streaming_down_deadline, t1_published_deadline
from lakehouse.alerts.settings import AlertSettings
from lakehouse.streaming.supervision import StreamingJobUnhealthy
from tests.unit.alerts.conftest import PAIMON_CONN_ID, WEBHOOK_CONN_ID, failure_context

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def dag_run(dag_id: str, run_id: str, *, state: str, queued_at: datetime, logical_date=None, run_type="scheduled"):
    """DAGRunResponse.model_dump(mode="json"), as the scheduler puts it in the callback's context."""
    return {
        "dag_run_id": run_id,
        "dag_id": dag_id,
        "logical_date": (logical_date or queued_at).isoformat(),
        "queued_at": queued_at.isoformat(),
        "start_date": queued_at.isoformat(),
        "end_date": None,
        "data_interval_start": (logical_date or queued_at).isoformat(),
        "data_interval_end": ((logical_date or queued_at) + timedelta(days=1)).isoformat(),
        "run_after": queued_at.isoformat(),
        "run_type": run_type,
        "state": state,
    }


def deadline_context(run: dict, deadline_time: datetime) -> dict:
    return {"dag_run": run, "deadline": {"id": "0195-abc", "deadline_time": deadline_time}}


def dispatcher(paimon, clock) -> AlertDispatcher:
    settings = AlertSettings(destinations={"webhook": {"conn_id": WEBHOOK_CONN_ID}})
    return AlertDispatcher(paimon=paimon, settings=settings, clock=clock)


# ------------------------------------------------------------------------------ the DAGs' deadlines
def test_t1_daily_deadline_is_the_day_after_at_the_configured_time():
    from airflow.sdk import AsyncCallback, DeadlineReference

    alert = t1_published_deadline(published_by="06:30")
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE  # = data_interval_start, the day dt
    assert alert.interval == timedelta(days=1, hours=6, minutes=30)
    assert isinstance(alert.callback, AsyncCallback)  # runs in the triggerer
    assert alert.callback.path == "lakehouse.alerts.notifier.LakehouseNotifier"
    assert alert.callback.kwargs["alert"] == "t1_not_published"
    json.dumps(alert.callback.kwargs)  # stored in the serialized DAG


def test_streaming_supervision_deadline_counts_from_when_the_run_was_queued():
    from airflow.sdk import DeadlineReference

    alert = streaming_down_deadline(minutes=20)
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=20)
    assert alert.callback.kwargs == {"alert": "streaming_job_down", "minutes": 20}


# ---------------------------------------------------------------------------------------------- T+1
def test_a_missed_t1_deadline_says_which_day_by_when_and_the_run_state(paimon, clock, webhook):
    clock.now = datetime(2026, 11, 25, 6, 0, 30, tzinfo=UTC)
    day = datetime(2026, 11, 24, tzinfo=UTC)
    run = dag_run(
        "t1_daily",
        "scheduled__2026-11-24T00:00:00+00:00",
        state="running",
        queued_at=day + timedelta(days=1),
        logical_date=day,
    )
    row = dispatcher(paimon, clock).t1_deadline_missed(deadline_context(run, datetime(2026, 11, 25, 6, tzinfo=UTC)))
    assert row["status"] == "sent" and row["kind"] == "t1_not_published" and row["subject"] == "t1_daily"
    text = webhook.requests[0]["json"]["text"]
    assert "t1-2026-11-24" in text and "not published by 2026-11-25 06:00 UTC" in text
    assert "running" in text and "scheduled__2026-11-24" in text
    assert "RUNBOOK.md#t1-not-published" in text


def test_a_late_day_triggered_by_hand_after_its_deadline_does_not_alert(paimon, clock, webhook):
    """An on-call engineer re-running an old day knows it is late; the alert would be noise."""
    clock.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    run = dag_run(
        "t1_daily",
        "manual__x",
        state="running",
        queued_at=clock() - timedelta(minutes=1),
        logical_date=day,
        run_type="manual",
    )
    row = dispatcher(paimon, clock).t1_deadline_missed(deadline_context(run, datetime(2026, 11, 21, 6, tzinfo=UTC)))
    assert row["status"] == "dismissed" and "by hand" in row["note"]
    assert webhook.requests == []


def test_a_run_created_after_its_deadline_does_not_alert(paimon, clock, webhook):
    """A fresh stack's first run (or the scheduler back after an outage) is created after the deadline
    of its day: the deadline fires at once, and would page for a day nobody expected. Dismissed;
    table_freshness's check_t1_published alerts for a held day that stays unpublished."""
    clock.now = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
    d = dispatcher(paimon, clock)
    day = datetime(2026, 11, 27, tzinfo=UTC)
    run = dag_run("t1_daily", f"scheduled__{day:%F}", state="running", queued_at=clock(), logical_date=day)
    row = d.t1_deadline_missed(deadline_context(run, day + timedelta(days=1, hours=6)))
    assert row["status"] == "dismissed" and "after its deadline" in row["note"]
    assert webhook.requests == []


def test_catching_up_several_days_in_time_alerts_once(paimon, clock, webhook):
    clock.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    d = dispatcher(paimon, clock)
    for n in range(20, 25):
        day = datetime(2026, 11, n, tzinfo=UTC)
        queued = day + timedelta(days=1, minutes=1)  # each created on time, none published by 06:00
        run = dag_run("t1_daily", f"scheduled__{day:%F}", state="running", queued_at=queued, logical_date=day)
        d.t1_deadline_missed(deadline_context(run, day + timedelta(days=1, hours=6)))
    assert len(webhook.requests) == 1
    assert "t1-2026-11-20" in webhook.requests[0]["json"]["text"]


# ---------------------------------------------------------------------------------------- streaming
def record_failures(d: AlertDispatcher, clock, job: str, minutes: int) -> None:
    """streaming_supervision fails for `job` every 2 minutes for `minutes` (its failure callback)."""
    for n in range(0, minutes, 2):
        clock.now = T0 + timedelta(minutes=n)
        exc = StreamingJobUnhealthy(f"{job}: checkpoints stale", job=job)
        d.dispatch(alert_for_failure(failure_context(exc, task_id=f"supervise_{job}", run_id=f"scheduled__{n}")))


def test_a_job_down_longer_than_the_deadline_alerts_with_since_when(paimon, clock, webhook):
    d = dispatcher(paimon, clock)
    record_failures(d, clock, "ods_delivery_cdc", minutes=16)
    clock.now = T0 + timedelta(minutes=15, seconds=5)
    run = dag_run("streaming_supervision", "scheduled__0", state="failed", queued_at=T0)
    (row,) = d.streaming_deadline_missed(deadline_context(run, T0 + timedelta(minutes=15)), minutes=15)
    assert (row["kind"], row["subject"], row["status"]) == ("streaming_job_down", "ods_delivery_cdc", "sent")
    assert row["since"] == T0
    text = webhook.requests[-1]["json"]["text"]
    assert "down for 15 min" in text and "since 2026-11-25 10:00 UTC" in text
    assert "RUNBOOK.md#streaming-job-down" in text


def test_a_job_that_recovered_before_the_deadline_does_not_alert(paimon, clock, webhook):
    d = dispatcher(paimon, clock)
    record_failures(d, clock, "ods_delivery_cdc", minutes=2)  # one failed run, then healthy again
    sent_before = len(webhook.requests)
    clock.now = T0 + timedelta(minutes=15, seconds=5)
    run = dag_run("streaming_supervision", "scheduled__0", state="failed", queued_at=T0)
    (row,) = d.streaming_deadline_missed(deadline_context(run, T0 + timedelta(minutes=15)), minutes=15)
    assert row["status"] == "dismissed" and "recovered" in row["note"]
    assert len(webhook.requests) == sent_before


def test_a_supervision_run_that_never_finishes_alerts_that_nothing_is_supervised(paimon, clock, webhook):
    clock.now = T0 + timedelta(minutes=15, seconds=5)
    run = dag_run("streaming_supervision", "scheduled__0", state="running", queued_at=T0)
    (row,) = dispatcher(paimon, clock).streaming_deadline_missed(
        deadline_context(run, T0 + timedelta(minutes=15)), minutes=15
    )
    assert (row["kind"], row["subject"]) == ("supervision_stalled", "streaming_supervision")
    assert "not finished" in webhook.requests[0]["json"]["text"]


def test_a_failed_run_with_no_record_still_alerts(paimon, clock, webhook):
    clock.now = T0 + timedelta(minutes=15, seconds=5)
    run = dag_run("streaming_supervision", "scheduled__0", state="failed", queued_at=T0)
    (row,) = dispatcher(paimon, clock).streaming_deadline_missed(
        deadline_context(run, T0 + timedelta(minutes=15)), minutes=15
    )
    assert (row["kind"], row["status"]) == ("streaming_job_down", "sent")
    assert row["subject"] == "streaming_supervision"


# ------------------------------------------------------------------------- run as the triggerer runs it
def test_the_triggerer_runs_the_deadline_callback(paimon, monkeypatch):
    """Airflow's own CallbackTrigger: imports the callback path, awaits it with the context."""
    from airflow.triggers.callback import CallbackTrigger

    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", "table")
    day = datetime(2026, 11, 24, tzinfo=UTC)
    run = dag_run(
        "t1_daily", "scheduled__2026-11-24", state="failed", queued_at=day + timedelta(days=1), logical_date=day
    )
    alert = t1_published_deadline(published_by="06:00")
    kwargs = dict(alert.callback.kwargs, paimon_conn_id=PAIMON_CONN_ID)
    kwargs["context"] = deadline_context(run, (day + timedelta(days=1, hours=6)).isoformat())
    trigger = CallbackTrigger(callback_path=alert.callback.path, callback_kwargs=kwargs)

    async def events():
        return [e.payload async for e in trigger.run()]

    payloads = asyncio.run(events())
    assert payloads[-1]["state"] == "success", payloads
    (row,) = read_alerts(paimon)
    assert row["kind"] == "t1_not_published" and "t1-2026-11-24" in row["text"]


def test_the_async_path_sends_supervisor_requests_on_the_triggerers_own_event_loop():
    """In the triggerer, a connection lookup inside the callback is a request to the supervisor that
    TriggerCommsDecoder.send makes with asgiref's async_to_sync on the triggerer's event loop (its
    stream and lock belong to that loop). Run from a bare thread (asyncio.to_thread), async_to_sync
    starts a loop of its own and the responses are read out of order: the live trigger runner died
    with "Response read out of order". The notifier must run its sync body with sync_to_async."""
    from asgiref.sync import async_to_sync

    from lakehouse.alerts.notifier import LakehouseNotifier

    seen = {}

    class Comms:  # TriggerCommsDecoder.send, reduced to what matters here
        async def asend(self):
            seen["loop"] = asyncio.get_running_loop()

        def send(self):
            return async_to_sync(self.asend)()

    class Probe(LakehouseNotifier):
        def notify(self, context):
            Comms().send()

    async def main():
        await Probe().async_notify({})
        return asyncio.get_running_loop()

    assert seen.get("loop") is None
    loop = asyncio.run(main())
    assert seen["loop"] is loop
