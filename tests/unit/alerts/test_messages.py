"""What an alert says: what happened, to which table or job, since when, and the runbook section
that tells on-call what to do (one section per alert kind in docs/RUNBOOK.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse.alerts.messages import KINDS, alert_for_failure, render, runbook_link
from lakehouse.batch.leases import LeaseHeld
from lakehouse.core.errors import BadRequest, ConfigError, ExternalServiceError, GateFailed
from lakehouse.maintenance.metrics import SmallFilesGrowing
from lakehouse.quality.audit import QualityGateFailed
from lakehouse.quality.freshness import FreshnessSlaMissed
from lakehouse.streaming.supervision import StreamingJobUnhealthy
from tests.unit.alerts.conftest import failure_context

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = "https://git.example.com/lakehouse/blob/main/docs/RUNBOOK.md"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_kind_has_its_runbook_section():
    headings = {
        _slug(line.lstrip("#"))
        for line in (ROOT / "docs" / "RUNBOOK.md").read_text().splitlines()
        if line.startswith("## ")
    }
    missing = [k for k in KINDS if runbook_link(k, RUNBOOK).split("#", 1)[1] not in headings]
    assert not missing, f"docs/RUNBOOK.md has no section for {missing}"


def test_streaming_job_unhealthy_says_which_job_since_when_and_links_the_runbook():
    exc = StreamingJobUnhealthy(
        "ods_delivery_cdc: no completed checkpoint for 412 s (interval 60 s)", job="ods_delivery_cdc", job_id="ab12"
    )
    alert = alert_for_failure(failure_context(exc))
    assert (alert.kind, alert.subject, alert.severity) == ("streaming_job_unhealthy", "ods_delivery_cdc", "critical")
    since = datetime(2026, 11, 25, 9, 40, tzinfo=UTC)
    msg = render(alert, runbook_url=RUNBOOK, since=since, count=11)
    assert "ods_delivery_cdc" in msg.title and "Streaming job unhealthy" in msg.title
    assert "no completed checkpoint for 412 s" in msg.text  # what
    assert "Flink job ab12" in msg.text  # which
    assert "since 2026-11-25 09:40 UTC" in msg.text and "11 times" in msg.text  # since when, how often
    assert f"{RUNBOOK}#streaming-job-unhealthy" in msg.text  # what to do
    assert "streaming_supervision.supervise_ods_delivery_cdc" in msg.text  # where it was seen
    assert "try 2" in msg.text and "http://127.0.0.1:8080/dags/streaming_supervision" in msg.text


def test_the_slack_payload_has_text_and_blocks_with_the_runbook_link():
    exc = FreshnessSlaMissed("dwd.dwd_order_fact: 900 s behind its inputs, SLA 300 s", table="dwd.dwd_order_fact")
    alert = alert_for_failure(failure_context(exc, dag_id="table_freshness", task_id="check_dwd__dwd_order_fact"))
    payload = render(alert, runbook_url=RUNBOOK, since=None, count=1).slack()
    assert set(payload) == {"text", "blocks"}
    assert "dwd.dwd_order_fact" in payload["text"]  # the notification preview
    assert payload["blocks"][0]["type"] == "header"
    joined = str(payload["blocks"])
    assert "900 s behind its inputs" in joined and f"<{RUNBOOK}#freshness-sla-missed|" in joined
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in payload["blocks"])  # Slack's limit


@pytest.mark.parametrize(
    ("exc", "kind", "subject", "severity"),
    [
        (FreshnessSlaMissed("stale", table="ods.ods_orders"), "freshness_sla_missed", "ods.ods_orders", "warning"),
        (
            SmallFilesGrowing("small files grew", tables=["dws.a", "dwd.b"]),
            "small_files_growing",
            "dwd.b, dws.a",
            "warning",
        ),
        (QualityGateFailed("2 critical expectations failed"), "quality_gate_failed", "t1_daily.audit", "warning"),
        (
            LeaseHeld(
                "held by x", dt="2026-11-24", holders={"dws.a": ("t1_backfill/r1", datetime(2026, 11, 25, tzinfo=UTC))}
            ),
            "lease_conflict",
            "t1_daily.audit",
            "warning",
        ),
        (ExternalServiceError("Flink does not answer"), "external_service_failed", "t1_daily.audit", "warning"),
        (ConfigError("tables.yaml: bad key"), "config_error", "t1_daily.audit", "warning"),
        (BadRequest("end_date before start_date"), "bad_request", "t1_daily.audit", "info"),
        (GateFailed("some other gate"), "task_failed", "t1_daily.audit", "warning"),
        (RuntimeError("boom"), "task_failed", "t1_daily.audit", "warning"),
    ],
)
def test_each_error_becomes_its_kind_with_the_table_or_job_it_names(exc, kind, subject, severity):
    alert = alert_for_failure(failure_context(exc, dag_id="t1_daily", task_id="audit"))
    assert (alert.kind, alert.subject, alert.severity) == (kind, subject, severity)
    assert str(exc) in alert.what
    assert type(exc).__name__ == alert.error_class


def test_a_mapped_task_is_named_with_its_map_index():
    ctx = failure_context(RuntimeError("x"), dag_id="table_maintenance", task_id="maintain", map_index=3)
    assert alert_for_failure(ctx).subject == "table_maintenance.maintain[3]"
    ctx["ti"].rendered_map_index = "dws.dws_shop_daily"
    assert alert_for_failure(ctx).subject == "table_maintenance.maintain[dws.dws_shop_daily]"


def test_a_task_killed_without_an_exception_still_says_what_happened():
    alert = alert_for_failure(failure_context(None))
    assert alert.kind == "task_failed"
    assert "no exception" in alert.what and "log" in alert.what


def test_a_task_that_will_be_retried_gives_no_alert():
    assert alert_for_failure(failure_context(RuntimeError("flaky"), state="up_for_retry")) is None


def test_a_long_message_is_cut_not_lost():
    exc = QualityGateFailed("x" * 10_000)
    msg = render(alert_for_failure(failure_context(exc)), runbook_url=RUNBOOK, since=None, count=1)
    assert len(msg.text) < 4000 and "(cut)" in msg.text
    assert f"{RUNBOOK}#quality-gate-failed" in msg.text  # the link survives the cut


def test_the_error_classes_the_mapping_names_exist():
    import lakehouse.batch.leases as leases
    import lakehouse.batch.published as published
    import lakehouse.batch.t1 as t1
    import lakehouse.maintenance.metrics as metrics
    import lakehouse.quality.audit as audit
    import lakehouse.quality.freshness as freshness
    import lakehouse.streaming.deploy as deploy
    import lakehouse.streaming.locks as locks
    import lakehouse.streaming.supervision as supervision
    from lakehouse.alerts.messages import CLASS_KINDS

    modules = [leases, published, t1, metrics, audit, freshness, deploy, locks, supervision]
    defined = {name for m in modules for name in dir(m)}
    assert set(CLASS_KINDS) <= defined, set(CLASS_KINDS) - defined
    assert set(CLASS_KINDS.values()) <= set(KINDS)


def test_a_day_not_published_alerts_as_the_deadline_does():
    """check_t1_published and t1_daily's deadline share kind and subject: one alert per window."""
    from lakehouse.batch.published import T1NotPublished

    exc = T1NotPublished(
        "T+1 not published: ...",
        missing={"2026-11-28": ["dwd.dwd_order_fact"]},
        since=datetime(2026, 11, 29, 6, tzinfo=UTC),
    )
    alert = alert_for_failure(failure_context(exc, task_id="check_t1_published", dag_id="table_freshness"))
    assert (alert.kind, alert.subject, alert.severity) == ("t1_not_published", "t1_daily", "critical")
    assert alert.since == datetime(2026, 11, 29, 6, tzinfo=UTC)
