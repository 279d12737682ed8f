"""Delivery: every alert lands in ops.alerts; the configured destinations (a Slack-compatible
webhook, SMTP) get it by severity; a broken destination is logged and recorded, never raised."""

from __future__ import annotations

import json
from email import message_from_string
from pathlib import Path

import pytest

from lakehouse.alerts.history import read_alerts
from lakehouse.alerts.messages import alert_for_failure
from lakehouse.alerts.notifier import AlertDispatcher, LakehouseNotifier
from lakehouse.alerts.settings import AlertSettings
from lakehouse.core.errors import BadRequest
from lakehouse.quality.freshness import FreshnessSlaMissed
from lakehouse.streaming.supervision import StreamingJobUnhealthy
from tests.unit.alerts.conftest import PAIMON_CONN_ID, SMTP_CONN_ID, WEBHOOK_CONN_ID, failure_context

RUNBOOK = "https://git.example.com/lakehouse/blob/main/docs/RUNBOOK.md"


def settings(**destinations) -> AlertSettings:
    return AlertSettings(runbook_url=RUNBOOK, destinations=destinations)


def unhealthy(job: str = "ods_delivery_cdc") -> dict:
    return failure_context(StreamingJobUnhealthy(f"{job}: checkpoints stale for 400 s", job=job, job_id="f00"))


def test_without_destinations_the_alert_is_recorded_in_ops_alerts(paimon, clock):
    d = AlertDispatcher(paimon=paimon, settings=settings(), clock=clock)
    row = d.dispatch(alert_for_failure(unhealthy()))
    assert row["status"] == "recorded"
    (stored,) = read_alerts(paimon)
    assert stored["kind"] == "streaming_job_unhealthy" and stored["subject"] == "ods_delivery_cdc"
    assert stored["severity"] == "critical" and stored["occurrences"] == 1
    assert stored["alert_time"] == clock() and stored["since"] == clock()
    assert f"{RUNBOOK}#streaming-job-unhealthy" == stored["runbook"]
    assert "checkpoints stale for 400 s" in stored["text"]
    assert (stored["dag_id"], stored["task_id"], stored["try_number"]) == (
        "streaming_supervision",
        "supervise_ods_delivery_cdc",
        2,
    )


def test_the_webhook_gets_slack_json(paimon, clock, webhook):
    d = AlertDispatcher(paimon=paimon, settings=settings(webhook={"conn_id": WEBHOOK_CONN_ID}), clock=clock)
    row = d.dispatch(alert_for_failure(unhealthy()))
    assert row["status"] == "sent" and row["destinations"] == "webhook"
    (request,) = webhook.requests
    assert request["path"] == "/services/T0/B0/secret"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert "ods_delivery_cdc" in body["text"] and body["blocks"][0]["type"] == "header"
    assert read_alerts(paimon)[0]["status"] == "sent"


def test_a_webhook_built_from_host_port_and_path(paimon, clock, webhook, monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": webhook.port, "schema": "hooks/abc"}),
    )
    d = AlertDispatcher(paimon=paimon, settings=settings(webhook={"conn_id": WEBHOOK_CONN_ID}), clock=clock)
    assert d.dispatch(alert_for_failure(unhealthy()))["status"] == "sent"
    assert webhook.requests[0]["path"] == "/hooks/abc"


def test_a_broken_webhook_is_recorded_with_its_error_and_raises_nothing(paimon, clock, webhook):
    webhook.status = 500
    d = AlertDispatcher(paimon=paimon, settings=settings(webhook={"conn_id": WEBHOOK_CONN_ID}), clock=clock)
    row = d.dispatch(alert_for_failure(unhealthy()))
    assert row["status"] == "failed"
    (stored,) = read_alerts(paimon)
    assert stored["status"] == "failed"
    assert "webhook" in stored["delivery_error"] and "500" in stored["delivery_error"]
    assert "invalid_token" in stored["delivery_error"]  # what the endpoint said
    assert "secret" not in stored["delivery_error"]  # the webhook's URL is a credential


def test_an_unreachable_webhook_is_recorded(paimon, clock, monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}",
        json.dumps({"conn_type": "http", "extra": {"url": "http://127.0.0.1:9/x"}}),
    )
    s = settings(webhook={"conn_id": WEBHOOK_CONN_ID})
    row = AlertDispatcher(paimon=paimon, settings=s.model_copy(update={"timeout_seconds": 2.0}), clock=clock).dispatch(
        alert_for_failure(unhealthy())
    )
    assert row["status"] == "failed" and "webhook" in row["delivery_error"]


def test_smtp_gets_a_mail_with_what_which_and_the_runbook(paimon, clock, smtp):
    d = AlertDispatcher(
        paimon=paimon, settings=settings(smtp={"conn_id": SMTP_CONN_ID, "min_severity": "critical"}), clock=clock
    )
    assert d.dispatch(alert_for_failure(unhealthy()))["status"] == "sent"
    (mail,) = smtp.messages
    assert mail["from"] == "lakehouse@example.com"
    assert mail["to"] == ["oncall@example.com", "data@example.com"]
    assert smtp.logins == ["alerts"]
    parsed = message_from_string(mail["data"])
    assert "[CRITICAL]" in parsed["Subject"] and "ods_delivery_cdc" in parsed["Subject"]
    body = parsed.get_payload(decode=True).decode()
    assert "checkpoints stale" in body and f"{RUNBOOK}#streaming-job-unhealthy" in body


def test_destinations_get_only_the_severities_they_ask_for(paimon, clock, webhook, smtp):
    d = AlertDispatcher(
        paimon=paimon,
        settings=settings(
            webhook={"conn_id": WEBHOOK_CONN_ID, "min_severity": "warning"},
            smtp={"conn_id": SMTP_CONN_ID, "min_severity": "critical"},
        ),
        clock=clock,
    )
    warning = failure_context(FreshnessSlaMissed("stale", table="ods.ods_orders"), task_id="check_ods__ods_orders")
    assert d.dispatch(alert_for_failure(warning))["destinations"] == "webhook"
    info = failure_context(BadRequest("end_date before start_date"), dag_id="t1_backfill", task_id="validate_request")
    assert d.dispatch(alert_for_failure(info))["status"] == "recorded"
    assert len(webhook.requests) == 1 and smtp.messages == []


def test_a_destination_whose_connection_is_missing_is_a_recorded_delivery_error(paimon, clock):
    d = AlertDispatcher(
        paimon=paimon,
        settings=settings(webhook={"conn_id": "alerts_webhook_nowhere"}),
        clock=clock,
        enabled=("table", "webhook"),  # asked for explicitly (LAKEHOUSE_ALERT_DESTINATIONS)
    )
    row = d.dispatch(alert_for_failure(unhealthy()))
    assert row["status"] == "failed" and "AIRFLOW_CONN_ALERTS_WEBHOOK_NOWHERE" in row["delivery_error"]


def test_a_destination_not_asked_for_and_not_defined_is_left_out(paimon, clock):
    d = AlertDispatcher(paimon=paimon, settings=settings(webhook={"conn_id": "alerts_webhook_nowhere"}), clock=clock)
    assert d.dispatch(alert_for_failure(unhealthy()))["status"] == "recorded"


# --------------------------------------------------------------------- the notifier as Airflow calls it
def test_the_notifier_records_a_final_failure(paimon, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", "table")
    notifier = LakehouseNotifier(paimon_conn_id=PAIMON_CONN_ID)
    notifier(unhealthy())  # BaseNotifier.__call__, as the task runner runs on_failure_callback
    (row,) = read_alerts(paimon)
    assert row["kind"] == "streaming_job_unhealthy"


def test_the_notifier_is_silent_for_a_task_that_will_be_retried(paimon, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", "table")
    ctx = unhealthy()
    ctx["ti"].state = "up_for_retry"
    LakehouseNotifier(paimon_conn_id=PAIMON_CONN_ID)(ctx)
    assert read_alerts(paimon) == []


def test_the_notifier_never_raises(monkeypatch, webhook, caplog):
    """Nothing works: no Paimon connection, a webhook that answers 500. The callback logs and returns."""
    webhook.status = 500
    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", "webhook")
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "extra": {"url": webhook.url}}))
    notifier = LakehouseNotifier(paimon_conn_id="paimon_that_does_not_exist")
    notifier(unhealthy())  # no exception
    assert len(webhook.requests) == 1  # the alert still went out where it could


def test_a_bad_alert_setting_still_records_the_alert(paimon, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", "table,pager")
    LakehouseNotifier(paimon_conn_id=PAIMON_CONN_ID)(unhealthy())
    (row,) = read_alerts(paimon)
    assert "LAKEHOUSE_ALERT_DESTINATIONS" in row["delivery_error"] and "pager" in row["delivery_error"]


@pytest.mark.parametrize("value", ["", "table", "table,webhook", " webhook , smtp "])
def test_the_destinations_setting(monkeypatch, value):
    from lakehouse.alerts.settings import enabled_destinations

    monkeypatch.setenv("LAKEHOUSE_ALERT_DESTINATIONS", value)
    assert set(enabled_destinations()) == {"table"} | {v.strip() for v in value.split(",") if v.strip()}


def test_the_alerts_can_be_read_from_the_command_line(paimon, clock, capsys):
    from lakehouse.alerts.history import main

    assert main(["--conn-id", PAIMON_CONN_ID]) == 0
    assert "no alerts" in capsys.readouterr().out
    d = AlertDispatcher(paimon=paimon, settings=settings(), clock=clock)
    d.dispatch(alert_for_failure(unhealthy()))
    clock.advance(minutes=2)
    d.dispatch(alert_for_failure(unhealthy()))
    assert main(["--conn-id", PAIMON_CONN_ID, "--text"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2026-11-25 10:00:00 recorded   critical streaming_job_unhealthy ods_delivery_cdc x1")
    assert any(
        line.startswith("2026-11-25 10:02:00 suppressed") and "x1 since 2026-11-25 10:00" in line for line in out
    )
    assert any("Runbook: " in line for line in out)


def test_locally_alerts_go_to_the_table_only(tmp_path):
    """scripts/env.sh: a local stack records alerts in ops.alerts and sends nothing anywhere."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if k != "LAKEHOUSE_ALERT_DESTINATIONS"}
    out = subprocess.run(
        [
            "bash",
            "-c",
            f"export LAKEHOUSE_HOME={tmp_path}; source {root}/scripts/env.sh; echo $LAKEHOUSE_ALERT_DESTINATIONS",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == "table"
