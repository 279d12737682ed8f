"""What an alert says: turns a task failure (the exception and where it happened) or a missed
deadline into an `Alert` (kind, severity, subject, what), and an alert into the text, the Slack
payload and the mail that carry it: what happened, which table or job, since when, how often,
where it was seen, and the runbook section (docs/RUNBOOK.md) that says what to do.

The kind comes from the error's class (`CLASS_KINDS`, by name so nothing heavy is imported here)
or, failing that, from its `LakehouseError` kind; the subject from the error's fields
(`StreamingJobUnhealthy.job`, `FreshnessSlaMissed.table`, `SmallFilesGrowing.tables`, ...) or the
task. An error may carry `since` (a datetime) when it knows when the condition began.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CUT_AT = 1500  # characters of an error message in an alert (Slack sections hold 3000)


@dataclass(frozen=True)
class AlertKind:
    name: str
    title: str  # also the heading of its section in docs/RUNBOOK.md
    severity: str

    @property
    def anchor(self) -> str:
        return self.name.replace("_", "-")


KINDS: dict[str, AlertKind] = {
    k.name: k
    for k in (
        AlertKind("streaming_job_unhealthy", "Streaming job unhealthy", "critical"),
        AlertKind("streaming_job_down", "Streaming job down", "critical"),
        AlertKind("supervision_stalled", "Supervision stalled", "critical"),
        AlertKind("streaming_job_busy", "Streaming job busy", "warning"),
        AlertKind("freshness_sla_missed", "Freshness SLA missed", "warning"),
        AlertKind("quality_gate_failed", "Quality gate failed", "warning"),
        AlertKind("t1_verification_failed", "T1 verification failed", "warning"),
        AlertKind("t1_not_published", "T1 not published", "critical"),
        AlertKind("small_files_growing", "Small files growing", "warning"),
        AlertKind("lease_conflict", "Lease conflict", "warning"),
        AlertKind("table_drift", "Table drift", "warning"),
        AlertKind("external_service_failed", "External service failed", "warning"),
        AlertKind("config_error", "Config error", "warning"),
        AlertKind("bad_request", "Bad request", "info"),
        AlertKind("task_failed", "Task failed", "warning"),
    )
}
DEADLINE_KINDS = frozenset({"streaming_job_down", "supervision_stalled", "t1_not_published"})

# Error classes with a kind of their own (by class name: the MRO is searched, nothing imported).
CLASS_KINDS = {
    "StreamingJobUnhealthy": "streaming_job_unhealthy",
    "StreamingJobBusy": "streaming_job_busy",
    "FreshnessSlaMissed": "freshness_sla_missed",
    "QualityGateFailed": "quality_gate_failed",
    "VerificationFailed": "t1_verification_failed",
    "T1NotPublished": "t1_not_published",
    "SmallFilesGrowing": "small_files_growing",
    "LeaseHeld": "lease_conflict",
    "LeaseLost": "lease_conflict",
    "TableDriftError": "table_drift",
}
# Then the error's kind (lakehouse.core.errors); anything else is a failed task.
ERROR_KINDS = {
    "ExternalServiceError": "external_service_failed",
    "ConfigError": "config_error",
    "BadRequest": "bad_request",
}


def runbook_link(kind: str, runbook_url: str) -> str:
    return f"{runbook_url}#{KINDS[kind].anchor}"


@dataclass
class Alert:
    """One alert before delivery; `since` is when the condition began, when the source knows."""

    kind: str
    subject: str
    what: str
    since: datetime | None = None
    details: list[str] = field(default_factory=list)  # more of "which": the Flink job, the day, holders
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    log_url: str | None = None
    error_class: str | None = None

    @property
    def severity(self) -> str:
        return KINDS[self.kind].severity

    @property
    def title(self) -> str:
        return f"[{self.severity.upper()}] {KINDS[self.kind].title}: {self.subject}"


# ------------------------------------------------------------------------------------ task failures
def _state(ti: Any) -> str:
    state = getattr(ti, "state", None)
    return str(getattr(state, "value", state) or "")


def _kind_of(exc: BaseException | str | None) -> str:
    if not isinstance(exc, BaseException):
        return "task_failed"
    names = [cls.__name__ for cls in type(exc).__mro__]
    for name in names:
        if name in CLASS_KINDS:
            return CLASS_KINDS[name]
    for name in names:
        if name in ERROR_KINDS:
            return ERROR_KINDS[name]
    return "task_failed"


def _task_name(ti: Any) -> str:
    name = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        name += f"[{getattr(ti, 'rendered_map_index', None) or map_index}]"
    return name


def _subject_and_details(exc: BaseException | str | None, ti: Any) -> tuple[str, list[str]]:
    details: list[str] = []
    if not isinstance(exc, BaseException):
        return _task_name(ti), details
    job_id = getattr(exc, "job_id", None)
    if job_id:
        details.append(f"Flink job {job_id}")
    for attr, label in (("dt", "day"), ("path", "path")):
        if getattr(exc, attr, None):
            details.append(f"{label} {getattr(exc, attr)}")
    holders = getattr(exc, "holders", None)  # LeaseHeld: table -> (holder, expiry)
    if isinstance(holders, dict) and holders:
        details.append(
            "held by " + ", ".join(f"{t}: {h[0] if isinstance(h, tuple | list) else h}" for t, h in holders.items())
        )
    if getattr(exc, "job", None):
        return str(exc.job), details
    if getattr(exc, "table", None):
        return str(exc.table), details
    tables = getattr(exc, "tables", None)
    if tables:
        return ", ".join(sorted(map(str, tables))), details
    return _task_name(ti), details


def alert_for_failure(context: dict) -> Alert | None:
    """The alert of a task's final failure, from the context Airflow hands on_failure_callback;
    None when the task will be retried (it has not failed yet: no alert)."""
    ti = context.get("ti") or context.get("task_instance")
    if _state(ti) == "up_for_retry":
        return None
    exc = context.get("exception")
    if isinstance(exc, BaseException):
        what = str(exc).strip() or type(exc).__name__
    elif exc:
        what = str(exc)
    else:
        what = "the task failed with no exception (killed, timed out or lost its worker): read its log"
    subject, details = _subject_and_details(exc, ti)
    since = getattr(exc, "since", None)
    return Alert(
        kind=_kind_of(exc),
        subject=subject,
        what=what,
        since=since if isinstance(since, datetime) else None,
        details=details,
        dag_id=getattr(ti, "dag_id", None),
        task_id=getattr(ti, "task_id", None),
        run_id=getattr(ti, "run_id", None) or context.get("run_id"),
        map_index=getattr(ti, "map_index", None),
        try_number=getattr(ti, "try_number", None),
        log_url=_log_url(ti),
        error_class=type(exc).__name__ if isinstance(exc, BaseException) else None,
    )


def _log_url(ti: Any) -> str | None:
    try:
        return getattr(ti, "log_url", None)
    except Exception:  # a property that needs the Airflow config; the alert goes out without it
        return None


# ------------------------------------------------------------------------------------------- render
def utc(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def _cut(text: str, limit: int = CUT_AT) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " … (cut)"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Message:
    """An alert as delivered: a title (mail subject, Slack header) and a plain-text body."""

    alert: Alert
    title: str
    what: str
    which: str
    since: str
    where: str
    runbook: str

    @property
    def text(self) -> str:
        lines = [self.title, f"What: {self.what}", f"Which: {self.which}", f"When: {self.since}"]
        if self.where:
            lines.append(f"Where: {self.where}")
        lines.append(f"Runbook: {self.runbook}")
        return "\n".join(lines)

    def slack(self) -> dict:
        """Slack-compatible incoming-webhook JSON: `text` (the notification and fallback) and blocks."""
        facts = f"*Which:* {_slack_escape(self.which)}\n*When:* {_slack_escape(self.since)}"
        if self.where:
            facts += f"\n*Where:* {_slack_escape(self.where)}"
        return {
            "text": self.text,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(self.what)[:3000]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": facts[:3000]}},
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"<{self.runbook}|Runbook: {KINDS[self.alert.kind].title}>"}
                    ],
                },
            ],
        }


def render(alert: Alert, *, runbook_url: str, since: datetime | None, count: int) -> Message:
    """The alert with since when (`since`, the start of its streak) and how often (`count`
    occurrences since it was last sent)."""
    which = alert.subject + (f" ({', '.join(alert.details)})" if alert.details else "")
    if since is None:
        when = "now (first time)"
    else:
        when = f"since {utc(since)}" + (f", {count} times since the last alert" if count > 1 else " (first time)")
    where = ""
    if alert.dag_id:
        where = f"{alert.dag_id}.{alert.task_id}" if alert.task_id else alert.dag_id
        if alert.map_index is not None and alert.map_index >= 0:
            where += f"[{alert.map_index}]"
        if alert.run_id:
            where += f", run {alert.run_id}"
        if alert.try_number:
            where += f", try {alert.try_number}"
        if alert.log_url:
            where += f": {alert.log_url}"
    return Message(
        alert=alert,
        title=alert.title,
        what=_cut(alert.what),
        which=which,
        since=when,
        where=where,
        runbook=runbook_link(alert.kind, runbook_url),
    )
