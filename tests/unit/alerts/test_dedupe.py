"""Never cry wolf: one alert per (kind, subject) per window, with how often and since when."""

from __future__ import annotations

from lakehouse.alerts.history import read_alerts
from lakehouse.alerts.messages import alert_for_failure
from lakehouse.alerts.notifier import AlertDispatcher
from lakehouse.alerts.settings import AlertSettings
from lakehouse.quality.freshness import FreshnessSlaMissed
from lakehouse.streaming.supervision import StreamingJobUnhealthy
from tests.unit.alerts.conftest import WEBHOOK_CONN_ID, failure_context


def dispatcher(paimon, clock, window: int = 60) -> AlertDispatcher:
    settings = AlertSettings(dedupe_window_minutes=window, destinations={"webhook": {"conn_id": WEBHOOK_CONN_ID}})
    return AlertDispatcher(paimon=paimon, settings=settings, clock=clock)


def unhealthy(job: str = "ods_delivery_cdc", n: int = 0) -> dict:
    exc = StreamingJobUnhealthy(f"{job}: checkpoints stale", job=job)
    return failure_context(exc, task_id=f"supervise_{job}", run_id=f"scheduled__{n}")


def test_supervision_failing_every_two_minutes_alerts_once_an_hour_with_a_count(paimon, clock, webhook):
    d = dispatcher(paimon, clock)
    start = clock()
    statuses = []
    for n in range(90):  # three hours, a failed supervision run every 2 minutes
        statuses.append(d.dispatch(alert_for_failure(unhealthy(n=n)))["status"])
        clock.advance(minutes=2)
    assert statuses.count("sent") == 3  # at 0, 60 and 120 minutes
    assert [i for i, s in enumerate(statuses) if s == "sent"] == [0, 30, 60]
    assert len(webhook.requests) == 3
    second = webhook.requests[1]["json"]["text"]
    assert "since 2026-11-25 10:00 UTC" in second and "30 times" in second
    sent = [r for r in read_alerts(paimon) if r["status"] == "sent"]
    assert [r["occurrences"] for r in sent] == [1, 30, 30]
    assert {r["since"] for r in sent} == {start}  # the same streak all along
    assert len(read_alerts(paimon)) == 90  # every occurrence is kept, the suppressed ones too


def test_other_jobs_and_other_kinds_are_not_suppressed(paimon, clock, webhook):
    d = dispatcher(paimon, clock)
    assert d.dispatch(alert_for_failure(unhealthy("ods_delivery_cdc")))["status"] == "sent"
    assert d.dispatch(alert_for_failure(unhealthy("dwd_order_fact")))["status"] == "sent"
    stale = failure_context(FreshnessSlaMissed("stale", table="ods.ods_orders"), task_id="check_ods__ods_orders")
    assert d.dispatch(alert_for_failure(stale))["status"] == "sent"
    assert d.dispatch(alert_for_failure(unhealthy("ods_delivery_cdc")))["status"] == "suppressed"
    assert len(webhook.requests) == 3


def test_a_problem_that_comes_back_after_a_quiet_window_starts_a_new_streak(paimon, clock, webhook):
    d = dispatcher(paimon, clock)
    d.dispatch(alert_for_failure(unhealthy()))
    clock.advance(hours=5)
    row = d.dispatch(alert_for_failure(unhealthy()))
    assert row["status"] == "sent" and row["occurrences"] == 1 and row["since"] == clock()


def test_a_window_of_zero_sends_every_alert(paimon, clock, webhook):
    d = dispatcher(paimon, clock, window=0)
    for _ in range(3):
        d.dispatch(alert_for_failure(unhealthy()))
        clock.advance(minutes=2)
    assert len(webhook.requests) == 3


def test_when_the_history_cannot_be_read_the_alert_goes_out(clock, webhook, monkeypatch):
    """Deduplication fails open: better twice than never."""
    d = AlertDispatcher(
        paimon=None,  # no warehouse at all
        settings=AlertSettings(destinations={"webhook": {"conn_id": WEBHOOK_CONN_ID}}),
        clock=clock,
    )
    for _ in range(2):
        row = d.dispatch(alert_for_failure(unhealthy()))
        assert row["status"] == "sent"
    assert len(webhook.requests) == 2
    assert "ops.alerts" in row["delivery_error"]  # the record could not be written: said, not raised
