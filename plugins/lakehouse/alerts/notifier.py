"""The one notifier: `LakehouseNotifier` (an Airflow `BaseNotifier`) turns a task's final failure or
a missed deadline into an alert, records it in `ops.alerts` and sends it to the destinations the
deployment configures (docs/ALERTS.md).

    @dag(..., default_args={..., "on_failure_callback": LakehouseNotifier()},
         deadline=t1_published_deadline())

- As `on_failure_callback` (sync `notify`, run by the task runner after the last try): a task that
  will be retried calls `on_retry_callback` instead, so only final failures alert (and a context
  whose task instance is `up_for_retry` is ignored all the same).
- As a deadline callback (`AsyncCallback`, run by the triggerer: `await LakehouseNotifier(**kwargs,
  context=...)`): `alert="t1_not_published"` or `alert="streaming_job_down"`; the work runs in a
  thread (hooks, requests and smtplib are blocking).

The notifier never raises: whatever fails (a broken webhook, an unreadable warehouse, a bad
setting) is logged and, where the table can be written, recorded with the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from lakehouse.alerts.history import ALERTS, decide, read_alerts, streak
from lakehouse.alerts.messages import DEADLINE_KINDS, KINDS, Alert, alert_for_failure, render, utc
from lakehouse.alerts.settings import SEVERITIES, AlertSettings, enabled_destinations, load_settings

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

    from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)

PAIMON_CONN_ID = "paimon_default"
T1_DAG = "t1_daily"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(value: Any) -> datetime | None:
    """A timestamp of the deadline context: a datetime, or its ISO text after JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AlertDispatcher:
    """Decides, records and delivers alerts. `paimon` holds ops.alerts (None: nothing is recorded
    and nothing deduplicated); `enabled` the destinations asked for (None: those whose connection
    is defined); `clock` gives now (UTC)."""

    def __init__(
        self,
        *,
        paimon: PaimonHook | None,
        settings: AlertSettings,
        clock: Callable[[], datetime] = _utcnow,
        enabled: tuple[str, ...] | None = None,
        problems: list[str] | None = None,
    ):
        self.paimon = paimon
        self.settings = settings
        self.clock = clock
        self.enabled = enabled
        self.problems = list(problems or [])  # settings that could not be read: recorded with each alert

    # ---------------------------------------------------------------------------------- destinations
    def destinations(self) -> tuple[list, list[str]]:
        """The destinations to use and the problems of those asked for but not usable."""
        from lakehouse.alerts.destinations import SmtpDestination, WebhookDestination, connection_defined

        kinds = {"webhook": WebhookDestination, "smtp": SmtpDestination}
        chosen, problems = [], []
        for name, cls in kinds.items():
            cfg = self.settings.destinations.get(name)
            if self.enabled is None:
                if cfg is not None and connection_defined(cfg.conn_id):
                    chosen.append(cls(cfg.conn_id, cfg.min_severity, self.settings.timeout_seconds))
            elif name in self.enabled:
                if cfg is None:
                    problems.append(f"{name}: asked for but not configured in config/alerts.yaml (destinations.{name})")
                else:  # a missing connection fails at send time, with the variable to set
                    chosen.append(cls(cfg.conn_id, cfg.min_severity, self.settings.timeout_seconds))
        return chosen, problems

    # ---------------------------------------------------------------------------------------- history
    def history(self) -> tuple[list[dict], str | None]:
        if self.paimon is None:
            return [], "ops.alerts: no Paimon connection"
        try:
            return read_alerts(self.paimon), None
        except Exception as exc:  # noqa: BLE001 - deduplication fails open
            log.warning("cannot read ops.alerts (deduplication is off for this alert): %s", exc)
            return [], f"ops.alerts not readable: {type(exc).__name__}: {exc}"

    def _record(self, row: dict) -> str | None:
        if self.paimon is None:
            return "ops.alerts: not recorded (no Paimon connection)"
        try:
            ALERTS.append(self.paimon, [row])
        except Exception as exc:  # noqa: BLE001 - the alert may still have gone out
            log.error("cannot record the alert in ops.alerts: %s", exc)
            return f"ops.alerts: not recorded: {type(exc).__name__}: {exc}"
        return None

    # --------------------------------------------------------------------------------------- dispatch
    def dispatch(self, alert: Alert, *, dismiss: str | None = None) -> dict:
        """Record the alert and send it where it goes, unless it is a duplicate (`suppressed`) or
        `dismiss` says why it is not a problem (`dismissed`). Returns its ops.alerts row; never raises."""
        try:
            return self._dispatch(alert, dismiss)
        except Exception as exc:  # noqa: BLE001 - a callback must not fail the task's finalization
            log.exception("alert %s/%s could not be dispatched", alert.kind, alert.subject)
            return {"kind": alert.kind, "subject": alert.subject, "status": "error", "delivery_error": str(exc)}

    def _dispatch(self, alert: Alert, dismiss: str | None) -> dict:
        now = self.clock()
        problems = list(self.problems)
        history, unreadable = self.history()
        window = timedelta(minutes=self.settings.dedupe_window_minutes)
        decision = decide(history, kind=alert.kind, subject=alert.subject, now=now, window=window, since=alert.since)
        runbook = self.settings.runbook()
        message = render(alert, runbook_url=runbook, since=decision.since, count=decision.occurrences)
        sent_to, failed = [], False
        if dismiss:
            status = "dismissed"
        elif not decision.send:
            status = "suppressed"
        else:
            destinations, unusable = self.destinations()
            problems += unusable
            failed = bool(unusable)
            rank = SEVERITIES.index(alert.severity)
            for destination in destinations:
                if rank < SEVERITIES.index(destination.min_severity):
                    continue
                sent_to.append(destination.name)
                try:
                    destination.send(message)
                except Exception as exc:  # noqa: BLE001 - recorded, the other destinations still get it
                    failed = True
                    problems.append(f"{destination.name}: {exc}")
                    log.error("alert %s/%s not delivered to %s: %s", alert.kind, alert.subject, destination.name, exc)
            status = "failed" if failed else ("sent" if sent_to else "recorded")
        if unreadable and status != "dismissed":
            problems.append(unreadable)
        row = {
            "alert_time": now,
            "kind": alert.kind,
            "severity": alert.severity,
            "subject": alert.subject,
            "status": status,
            "since": decision.since,
            "occurrences": decision.occurrences,
            "title": message.title,
            "text": message.text,
            "runbook": message.runbook,
            "destinations": ",".join(sent_to),
            "delivery_error": "; ".join(problems) or None,
            "note": dismiss,
            "dag_id": alert.dag_id,
            "task_id": alert.task_id,
            "run_id": alert.run_id,
            "map_index": alert.map_index,
            "try_number": alert.try_number,
            "error_class": alert.error_class,
        }
        unrecorded = self._record(row)
        if unrecorded:
            row["delivery_error"] = "; ".join(filter(None, [row["delivery_error"], unrecorded]))
        level = logging.WARNING if status in ("sent", "failed", "recorded") else logging.INFO
        log.log(
            level,
            "alert %s (%s%s):\n%s",
            status,
            row["destinations"] or "ops.alerts",
            f"; {row['delivery_error']}" if row["delivery_error"] else "",
            message.text,
        )
        return row

    # -------------------------------------------------------------------------------------- deadlines
    def t1_deadline_missed(self, context: dict) -> dict:
        """`t1-<dt>` was not published by its deadline (the run of day dt had not succeeded)."""
        run = context.get("dag_run") or {}
        deadline = _ts((context.get("deadline") or {}).get("deadline_time"))
        logical = _ts(run.get("logical_date")) or _ts(run.get("data_interval_start"))
        dt = f"{logical:%Y-%m-%d}" if logical else "?"
        state, run_id, run_type = run.get("state"), run.get("dag_run_id") or run.get("run_id"), run.get("run_type")
        queued = _ts(run.get("queued_at"))
        by = utc(deadline) if deadline else "its deadline"
        hint = {
            "queued": "it has not started (scheduler down, max_active_runs, or the pools full)",
            "running": "it is still running (waiting for the day in ODS, a slow recompute, or a lease held)",
            "failed": "it failed (its failed task sent its own alert)",
        }.get(str(state), "")
        what = f"t1-{dt} was not published by {by}: run {run_id} of {T1_DAG} is {state}" + (f"; {hint}" if hint else "")
        alert = Alert(
            kind="t1_not_published",
            subject=T1_DAG,
            what=what,
            since=deadline,
            dag_id=T1_DAG,
            run_id=run_id,
            details=[f"day {dt}"],
        )
        dismiss = None
        if queued and deadline and queued > deadline:
            # Created after its own deadline: a day re-run by hand, or a scheduled run late to start (a
            # fresh stack's first run, the scheduler back after an outage). Not a missed publication of
            # this run; whether the day is published late is table_freshness's check_t1_published
            # (lakehouse.batch.published), which alerts with the same kind and subject.
            how = "started by hand" if run_type in ("manual", "backfill") else "created"
            dismiss = (
                f"run {run_id} of day {dt} was {how} ({run_type}) after its deadline; "
                "check_t1_published alerts if the day stays unpublished"
            )
        return self.dispatch(alert, dismiss=dismiss)

    def streaming_deadline_missed(
        self, context: dict, *, minutes: int, max_gap_minutes: int | None = None
    ) -> list[dict]:
        """A streaming_supervision run had not succeeded `minutes` after it was queued: the jobs it
        failed on that are still failing, and have been for `minutes`, are down (one alert each)."""
        run = context.get("dag_run") or {}
        dag_id = run.get("dag_id") or "streaming_supervision"
        run_id, state = run.get("dag_run_id") or run.get("run_id"), str(run.get("state"))
        queued = _ts(run.get("queued_at"))
        now = self.clock()
        if state in ("queued", "running"):
            what = (
                f"{dag_id} run {run_id}, queued at {utc(queued) if queued else '?'}, has not finished {minutes} min "
                f"later ({state}): while it hangs no streaming job is restored, upgraded or checked"
            )
            return [
                self.dispatch(Alert("supervision_stalled", dag_id, what, since=queued, dag_id=dag_id, run_id=run_id))
            ]
        history, unreadable = self.history()
        failures = [
            r
            for r in history
            if r["dag_id"] == dag_id and r["kind"] not in DEADLINE_KINDS and r["status"] != "dismissed"
        ]
        tasks = sorted({r["task_id"] for r in failures if r["run_id"] == run_id})
        if not tasks:
            what = (
                f"{dag_id} run {run_id} {state} and ops.alerts holds no failure of it"
                f"{f' ({unreadable})' if unreadable else ''}: read the run's failed tasks"
            )
            return [
                self.dispatch(Alert("streaming_job_down", dag_id, what, since=queued, dag_id=dag_id, run_id=run_id))
            ]
        gap = timedelta(minutes=max_gap_minutes or self.settings.deadlines.streaming_max_gap_minutes)
        rows = []
        for task_id in tasks:
            job = task_id.removeprefix("supervise_")
            mine = sorted((r for r in failures if r["task_id"] == task_id), key=lambda r: r["alert_time"])
            times = streak([r["alert_time"] for r in mine], gap)
            start, newest = times[0], times[-1]
            last_error = mine[-1]["text"].splitlines()[1].removeprefix("What: ") if mine[-1]["text"] else ""
            down = now - start
            what = (
                f"{job} has been down for {int(down.total_seconds() // 60)} min: supervision failed on it "
                f"{len(times)} times in a row, last at {utc(newest)}: {last_error}"
            )
            alert = Alert("streaming_job_down", job, what, since=start, dag_id=dag_id, task_id=task_id, run_id=run_id)
            dismiss = None
            if now - newest > gap:
                dismiss = f"recovered: no failed supervision of {job} since {utc(newest)}"
            elif down < timedelta(minutes=minutes):
                dismiss = f"down for {down} only, less than {minutes} min"
            rows.append(self.dispatch(alert, dismiss=dismiss))
        return rows


class LakehouseNotifier(BaseNotifier):
    """The project's notifier: task failures (on_failure_callback) and deadline alerts (AsyncCallback).

    `alert` is None for task failures, else the deadline's kind (`t1_not_published`,
    `streaming_job_down`, with `minutes`); `paimon_conn_id` is where ops.alerts lives."""

    def __init__(
        self,
        alert: str | None = None,
        *,
        minutes: int | None = None,
        published_by: str | None = None,
        paimon_conn_id: str = PAIMON_CONN_ID,
        context: dict | None = None,
        **_: Any,  # kwargs of newer callers are ignored, not fatal
    ):
        super().__init__(context=context)
        if alert is not None and alert not in ("t1_not_published", "streaming_job_down"):
            raise ValueError(f"unknown deadline alert {alert!r}: t1_not_published or streaming_job_down")
        self.alert = alert
        self.minutes = minutes
        self.published_by = published_by
        self.paimon_conn_id = paimon_conn_id

    def dispatcher(self) -> AlertDispatcher:
        from lakehouse.hooks.paimon import PaimonHook

        problems = []
        try:
            settings = load_settings()
        except Exception as exc:  # noqa: BLE001 - alert with the defaults, and say so
            settings, problems = AlertSettings(), [f"config/alerts.yaml: {exc}"]
        try:
            enabled = enabled_destinations()
        except Exception as exc:  # noqa: BLE001
            enabled, problems = ("table",), [*problems, str(exc)]
        return AlertDispatcher(
            paimon=PaimonHook(self.paimon_conn_id), settings=settings, enabled=enabled, problems=problems
        )

    def notify(self, context) -> None:
        try:
            if self.alert is None:
                alert = alert_for_failure(context)
                if alert is None:
                    self.log.info("the task will be retried: no alert")
                    return
                self.dispatcher().dispatch(alert)
            elif self.alert == "t1_not_published":
                self.dispatcher().t1_deadline_missed(context)
            else:
                d = self.dispatcher()
                d.streaming_deadline_missed(
                    context, minutes=self.minutes or d.settings.deadlines.streaming_down_minutes
                )
        except Exception:  # noqa: BLE001 - never fail the caller (the task runner, the triggerer)
            self.log.exception("the alert could not be dispatched")

    async def async_notify(self, context) -> None:
        # sync_to_async, not asyncio.to_thread: in the triggerer, a connection lookup inside notify()
        # is a supervisor request made with async_to_sync, which must run on the triggerer's own loop
        # (from a bare thread it starts another loop and the trigger runner dies with "Response read
        # out of order").
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify, thread_sensitive=False)(context)


# ----------------------------------------------------------------------------------- the DAGs' deadlines
def t1_published_deadline(published_by: str | None = None) -> DeadlineAlert:
    """`t1-<dt>` published by HH:MM UTC on the next day: the run of day dt (logical date = dt 00:00,
    the start of its data interval) must have succeeded by then (config/alerts.yaml)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from lakehouse.alerts.settings import DeadlineSettings

    published_by = published_by or load_settings().deadlines.t1_published_by
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=DeadlineSettings(t1_published_by=published_by).t1_interval,
        callback=AsyncCallback(LakehouseNotifier, kwargs={"alert": "t1_not_published", "published_by": published_by}),
    )


def streaming_down_deadline(minutes: int | None = None) -> DeadlineAlert:
    """A streaming_supervision run not successful `minutes` after it was queued (config/alerts.yaml)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    minutes = minutes or load_settings().deadlines.streaming_down_minutes
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(LakehouseNotifier, kwargs={"alert": "streaming_job_down", "minutes": minutes}),
    )


__all__ = ["KINDS", "AlertDispatcher", "LakehouseNotifier", "streaming_down_deadline", "t1_published_deadline"]
