"""Flink hook: SQL through the SQL Gateway REST API, jobs through the JobManager REST API.

The connection (default `flink_default`) holds the JobManager REST address as host/port; its
extras may set `sql_gateway_host` and `sql_gateway_port` (default: same host, port 8083) and
`timeout` (seconds per HTTP call, default 30).

Every failure becomes one of three exceptions with a message an operator can act on, all
`ExternalServiceError`s (lakehouse.core.errors): `FlinkUnavailableError` (nothing answers),
`FlinkSqlError` (Flink rejected or failed a statement; carries Flink's own error text) and
`FlinkJobError` (a job or savepoint failed; carries the job id and root cause when known).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from lakehouse.core.errors import ExternalServiceError, LakehouseError
from lakehouse.core.polling import wait_until
from lakehouse.core.resources import FLINK_CONN_ID
from lakehouse.core.secrets import mask_secrets
from lakehouse.hooks._base import get_connection

# Flink's job states, grouped by what the control plane does about them (JobStatus predicates).
TERMINAL_JOB_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})
ACTIVE_JOB_STATES = frozenset(
    {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING", "SUSPENDED"}
)
# On the way to RUNNING (starting, or restarting after a failure) or failing: not processing yet.
RECOVERING_JOB_STATES = frozenset({"INITIALIZING", "CREATED", "RECONCILING", "RESTARTING", "FAILING"})
# Failing, failed or being cancelled: the job will not complete a checkpoint.
FAILING_OR_CANCELLED_JOB_STATES = frozenset({"RESTARTING", "FAILING", "FAILED", "CANCELLING", "CANCELED"})
# Task (vertex) states of a job whose tasks all run; a FINISHED task (a bounded source) counts as run.
_TASK_UP_STATES = frozenset({"RUNNING", "FINISHED"})


class FlinkUnavailableError(ExternalServiceError):
    """The JobManager or the SQL Gateway does not answer."""


class FlinkSqlError(ExternalServiceError):
    """Flink rejected or failed a SQL statement; the message carries Flink's error text."""

    def __init__(self, statement: str, flink_error: str):
        self.statement = statement
        self.flink_error = flink_error
        excerpt = _one_line(statement, 300)  # masks password/secret options like the log line
        # Flink's error may quote options of the statement too (it hides most secrets itself).
        super().__init__(
            f"Flink SQL failed: {_mask_secrets(root_cause(flink_error))}\nStatement: {excerpt}\n"
            f"Flink error:\n{_mask_secrets(compact_error(flink_error))}"
        )


class FlinkJobError(ExternalServiceError):
    """A Flink job, savepoint or stop request failed.

    `job_id` is the job concerned and `root_cause` the most specific line of its exception, when
    known (a failed REST call or TaskManager start has neither)."""

    def __init__(self, message: str, *, job_id: str | None = None, root_cause: str | None = None):
        # Flink's exception may quote a source's options or its connection URL.
        super().__init__(_mask_secrets(message))
        self.job_id = job_id
        self.root_cause = _mask_secrets(root_cause) if root_cause else root_cause


_GATEWAY_NOISE = (
    "SqlGatewayException",
    "Failed to fetchResults",
    "SqlExecutionException: Failed to execute the operation",
    "Internal server error.",
    "<Exception on server side:",
    "End of exception on server side",
)


def compact_error(flink_error: str) -> str:
    """Flink's error without stack frames and the SQL Gateway's wrapper exceptions: what a reader needs."""
    keep = []
    for line in flink_error.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("at ") or (stripped.startswith("...") and stripped.endswith("more")):
            continue
        if any(noise in stripped for noise in _GATEWAY_NOISE):
            continue
        keep.append(line.rstrip())
    return "\n".join(keep) or flink_error


def root_cause(flink_error: str) -> str:
    """The most specific line of a Flink stack trace: the last 'Caused by:' or the first line."""
    lines = [ln.strip() for ln in flink_error.splitlines() if ln.strip()]
    causes = [ln[len("Caused by:") :].strip() for ln in lines if ln.startswith("Caused by:")]
    if causes:
        return causes[-1]
    for ln in lines:
        if not ln.startswith("at ") and ln != "Internal server error.":
            return ln
    return lines[0] if lines else "unknown error"


@dataclass(frozen=True)
class StatementResult:
    """Outcome of one SQL statement: the rows it returned, or the job it submitted."""

    statement: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    job_id: str | None = None


@dataclass(frozen=True)
class FlinkEndpoints:
    rest_url: str
    gateway_url: str
    timeout: float


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    name: str
    state: str
    start_time_ms: int
    state_since_ms: int | None = None  # when the job entered its current state (job details only)
    # Job details only: a RUNNING job may still wait for slots (its tasks SCHEDULED or DEPLOYING).
    all_tasks_running: bool | None = None

    @property
    def is_running(self) -> bool:
        """RUNNING (its tasks may still wait for slots: see all_tasks_running)."""
        return self.state == "RUNNING"

    @property
    def is_active(self) -> bool:
        """Not in a terminal state: the pipeline name is taken (a new submission would run it twice)."""
        return self.state in ACTIVE_JOB_STATES

    @property
    def is_terminal(self) -> bool:
        """FINISHED, CANCELED or FAILED: the job will not run again."""
        return self.state in TERMINAL_JOB_STATES

    @property
    def is_restarting(self) -> bool:
        return self.state == "RESTARTING"

    @property
    def is_recovering(self) -> bool:
        """Starting or restarting (INITIALIZING, CREATED, RECONCILING, RESTARTING) or FAILING: not processing."""
        return self.state in RECOVERING_JOB_STATES

    @property
    def is_failing_or_cancelled(self) -> bool:
        """RESTARTING, FAILING, FAILED, CANCELLING or CANCELED: it will not complete a checkpoint."""
        return self.state in FAILING_OR_CANCELLED_JOB_STATES


@dataclass(frozen=True)
class CheckpointInfo:
    """The latest completed checkpoint of a job and the checkpoint counters."""

    checkpoint_id: int | None
    external_path: str | None
    completed_at_ms: int | None
    completed_count: int
    failed_count: int
    latest_failure: str | None


class FlinkHook(BaseHook):
    """Talks to a Flink session cluster: SQL Gateway for SQL, JobManager REST for jobs."""

    conn_name_attr = "flink_conn_id"
    default_conn_name = FLINK_CONN_ID
    conn_type = "flink"
    hook_name = "Flink (REST API + SQL Gateway)"

    def __init__(self, flink_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flink_conn_id = flink_conn_id

    # ------------------------------------------------------------------ connection
    @cached_property
    def endpoints(self) -> FlinkEndpoints:
        conn = get_connection(self.flink_conn_id, example="flink://127.0.0.1:8081/?sql_gateway_port=8083")
        extra = conn.extra_dejson
        host = conn.host or "127.0.0.1"
        scheme = extra.get("scheme", "http")
        gw_host = extra.get("sql_gateway_host", host)
        gw_port = int(extra.get("sql_gateway_port", 8083))
        return FlinkEndpoints(
            rest_url=f"{scheme}://{host}:{conn.port or 8081}",
            gateway_url=f"{scheme}://{gw_host}:{gw_port}",
            timeout=float(extra.get("timeout", 30)),
        )

    @cached_property
    def _http(self):
        import requests

        return requests.Session()

    def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        import requests

        try:
            resp = self._http.request(method, url, timeout=self.endpoints.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise FlinkUnavailableError(
                f"{what} at {url.split('/v', 1)[0] if '/v' in url else url} is unreachable ({type(exc).__name__}). "
                f"Is the Flink cluster up? Locally: `make up`; check the '{self.flink_conn_id}' connection."
            ) from exc
        except requests.Timeout as exc:
            raise FlinkUnavailableError(
                f"{what} did not answer {method} {url} within {self.endpoints.timeout:.0f} s"
            ) from exc
        if resp.status_code >= 400:
            try:
                errors = resp.json().get("errors", [])
            except ValueError:
                errors = [resp.text]
            text = "\n".join(e for e in errors if e) or f"HTTP {resp.status_code}"
            raise _HttpError(resp.status_code, text)
        if not resp.content:
            return {}
        return resp.json()

    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._request(method, self.endpoints.rest_url + path, what="Flink JobManager REST API", **kwargs)
        except _HttpError as exc:
            raise FlinkJobError(
                f"Flink REST {method} {path} failed (HTTP {exc.status}): {root_cause(exc.text)}"
            ) from None

    def _gateway(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, self.endpoints.gateway_url + path, what="Flink SQL Gateway", **kwargs)

    def test_connection(self) -> tuple[bool, str]:
        try:
            overview = self._rest("GET", "/overview")
            self._gateway("GET", "/v2/info")
        except LakehouseError as exc:  # a missing connection, nothing answering, an HTTP error
            return False, str(exc)
        return True, f"Flink {overview.get('flink-version')}: {overview.get('taskmanagers')} TaskManagers"

    # ------------------------------------------------------------------ SQL Gateway
    def execute_sql(
        self,
        statements: Iterable[str],
        *,
        session_config: Mapping[str, str] | None = None,
        result_timeout: float = 300.0,
    ) -> list[StatementResult]:
        """Run statements in order in one SQL Gateway session; stop at the first failure.

        DDL and queries are waited for until their results are complete; INSERT and statement
        sets return as soon as the job is submitted (its id is in the result).
        """
        properties = {k: str(v) for k, v in (session_config or {}).items()}
        try:
            session = self._gateway("POST", "/v2/sessions", json={"properties": properties})["sessionHandle"]
        except _HttpError as exc:
            raise FlinkSqlError(f"<open session with {properties}>", exc.text) from None
        results = []
        try:
            for statement in statements:
                results.append(self._run_statement(session, statement, result_timeout))
        finally:
            try:
                self._gateway("DELETE", f"/v2/sessions/{session}")
            except ExternalServiceError:  # unreachable, or an HTTP error
                self.log.warning("could not close SQL Gateway session %s", session)
        return results

    def _run_statement(self, session: str, statement: str, result_timeout: float) -> StatementResult:
        self.log.info("Flink SQL> %s", _one_line(statement, 500))
        try:
            op = self._gateway("POST", f"/v2/sessions/{session}/statements", json={"statement": statement})[
                "operationHandle"
            ]
            columns: list[str] = []
            rows: list[list[Any]] = []
            job_id = None
            uri = f"/v2/sessions/{session}/operations/{op}/result/0?rowFormat=JSON"

            def ready_page() -> dict | None:
                nonlocal job_id
                page = self._gateway("GET", uri)
                job_id = page.get("jobID") or job_id
                return None if page.get("resultType") == "NOT_READY" else page

            deadline = time.monotonic() + result_timeout  # for the whole statement, every page included
            while uri:
                page = wait_until(
                    ready_page,
                    timeout=deadline - time.monotonic(),
                    interval=0.2,
                    what=f"the result of {_one_line(statement, 100)}",
                    error=lambda: FlinkSqlError(statement, f"no result within {result_timeout:.0f} s"),
                )
                kind = page.get("resultType")
                results = page.get("results") or {}
                if results.get("columns"):
                    columns = [c["name"] for c in results["columns"]]
                rows.extend(r["fields"] for r in results.get("data", []))
                if kind == "EOS":
                    break
                next_uri = page.get("nextResultUri")
                uri = next_uri.replace("/v1/", "/v2/", 1) if next_uri else None
        except _HttpError as exc:
            self.log.error("Flink rejected the statement:\n%s", _mask_secrets(compact_error(exc.text)))
            self.log.info("Flink's full error, with stack frames:\n%s", _mask_secrets(exc.text))
            raise FlinkSqlError(statement, exc.text) from None
        if job_id:
            self.log.info("submitted Flink job %s", job_id)
        return StatementResult(statement=statement, columns=columns, rows=rows, job_id=job_id)

    # ------------------------------------------------------------------ JobManager REST
    def list_jobs(self) -> list[JobStatus]:
        jobs = self._rest("GET", "/jobs/overview").get("jobs", [])
        return [JobStatus(j["jid"], j["name"], j["state"], j.get("start-time", 0)) for j in jobs]

    def active_jobs_named(self, name: str) -> list[JobStatus]:
        """Jobs with this pipeline name that are not in a terminal state."""
        return [j for j in self.list_jobs() if j.name == name and j.is_active]

    def job_status(self, job_id: str) -> JobStatus:
        j = self._rest("GET", f"/jobs/{job_id}")
        since = (j.get("timestamps") or {}).get(j["state"])
        vertices = j.get("vertices") or []
        running = all(v.get("status") in _TASK_UP_STATES for v in vertices) if vertices else None
        return JobStatus(j["jid"], j["name"], j["state"], j.get("start-time", 0), since, running)

    def job_exception(self, job_id: str) -> str | None:
        """The root exception of the job's latest failure, if any."""
        data = self._rest("GET", f"/jobs/{job_id}/exceptions?maxExceptions=1")
        entries = (data.get("exceptionHistory") or {}).get("entries") or []
        if entries:
            return entries[0].get("stacktrace") or entries[0].get("exceptionName")
        return data.get("root-exception")

    def checkpoints(self, job_id: str) -> CheckpointInfo:
        data = self._rest("GET", f"/jobs/{job_id}/checkpoints")
        latest = data.get("latest") or {}
        completed = latest.get("completed") or {}
        failed = latest.get("failed") or {}
        counts = data.get("counts") or {}
        return CheckpointInfo(
            checkpoint_id=completed.get("id"),
            external_path=completed.get("external_path"),
            completed_at_ms=completed.get("latest_ack_timestamp"),
            completed_count=counts.get("completed", 0),
            failed_count=counts.get("failed", 0),
            latest_failure=failed.get("failure_message"),
        )

    def wait_for_job_state(
        self, job_id: str, states: Iterable[str], *, timeout: float = 120.0, poll: float = 1.0
    ) -> JobStatus:
        """Wait until the job reaches one of `states`; a job that fails or restarts instead raises with its
        exception."""
        wanted = set(states)
        last: list[JobStatus] = []

        def reached() -> JobStatus | None:
            status = self.job_status(job_id)
            last[:] = [status]
            if status.state in wanted:
                return status
            if status.is_terminal or status.is_restarting:  # failed instead (or restarting, unless that was wanted)
                cause = self.job_exception(job_id) or "no exception recorded"
                raise FlinkJobError(
                    f"Flink job {status.name} ({job_id}) is {status.state}: {root_cause(cause)}\n{cause}",
                    job_id=job_id,
                    root_cause=root_cause(cause),
                )
            return None

        return wait_until(
            reached,
            timeout=timeout,
            interval=poll,
            what=f"Flink job {job_id} to be {' or '.join(sorted(wanted))}",
            error=lambda: FlinkJobError(
                f"Flink job {last[0].name} ({job_id}) still {last[0].state} after {timeout:.0f} s", job_id=job_id
            ),
        )

    def wait_for_checkpoint(self, job_id: str, *, after_id: int = 0, timeout: float = 120.0) -> CheckpointInfo:
        """Wait for a completed checkpoint newer than `after_id` (Paimon commits on checkpoints).

        A job that restarts or fails meanwhile raises at once with its exception, rather than
        at the timeout."""
        last: list[CheckpointInfo] = []

        def completed() -> CheckpointInfo | None:
            info = self.checkpoints(job_id)
            last[:] = [info]
            if info.checkpoint_id is not None and info.checkpoint_id > after_id:
                return info
            status = self.job_status(job_id)
            if status.is_failing_or_cancelled:
                cause = self.job_exception(job_id) or "no exception recorded"
                raise FlinkJobError(
                    f"Flink job {status.name} ({job_id}) is {status.state} instead of checkpointing: "
                    f"{root_cause(cause)}\n{cause}",
                    job_id=job_id,
                    root_cause=root_cause(cause),
                )
            return None

        return wait_until(
            completed,
            timeout=timeout,
            interval=0.5,
            what=f"a checkpoint of job {job_id} after #{after_id}",
            error=lambda: FlinkJobError(
                f"job {job_id}: no checkpoint after #{after_id} within {timeout:.0f} s"
                + (f"; latest failure: {last[0].latest_failure}" if last[0].latest_failure else ""),
                job_id=job_id,
            ),
        )

    def stop_with_savepoint(self, job_id: str, *, target_dir: str | None = None, timeout: float = 300.0) -> str:
        """Stop the job gracefully, taking a savepoint; returns the savepoint path."""
        body: dict[str, Any] = {"drain": False}
        if target_dir:
            body["targetDirectory"] = target_dir
        trigger = self._rest("POST", f"/jobs/{job_id}/stop", json=body)["request-id"]
        return self._await_savepoint(job_id, trigger, timeout)

    def trigger_savepoint(self, job_id: str, *, target_dir: str | None = None, timeout: float = 300.0) -> str:
        """Take a savepoint and keep the job running; returns the savepoint path."""
        body: dict[str, Any] = {"cancel-job": False}
        if target_dir:
            body["target-directory"] = target_dir
        trigger = self._rest("POST", f"/jobs/{job_id}/savepoints", json=body)["request-id"]
        return self._await_savepoint(job_id, trigger, timeout)

    def _await_savepoint(self, job_id: str, trigger: str, timeout: float) -> str:
        def location() -> str | None:
            data = self._rest("GET", f"/jobs/{job_id}/savepoints/{trigger}")
            if (data.get("status") or {}).get("id") != "COMPLETED":
                return None
            op = data.get("operation") or {}
            if op.get("location"):
                self.log.info("savepoint of job %s: %s", job_id, op["location"])
                return op["location"]
            raise FlinkJobError(
                f"savepoint of job {job_id} failed: {(op.get('failure-cause') or {}).get('stack-trace', op)}",
                job_id=job_id,
            )

        return wait_until(
            location,
            timeout=timeout,
            interval=0.5,
            what=f"the savepoint of job {job_id}",
            error=lambda: FlinkJobError(
                f"savepoint of job {job_id} did not complete within {timeout:.0f} s", job_id=job_id
            ),
        )

    def cluster_config(self) -> dict[str, str]:
        """The JobManager's effective configuration (flat keys)."""
        return {e["key"]: e["value"] for e in self._rest("GET", "/jobmanager/config")}

    def taskmanager_count(self) -> int:
        return len(self._rest("GET", "/taskmanagers").get("taskmanagers", []))

    def start_taskmanager(self) -> bool:
        """Start a TaskManager with the connection's `taskmanager_start_command`, if it has one.

        Only a standalone cluster needs this (on Kubernetes the operator replaces lost pods);
        returns False when the connection defines no command.
        """
        import shlex
        import subprocess

        command = get_connection(self.flink_conn_id, example="").extra_dejson.get("taskmanager_start_command")
        if not command:
            return False
        self.log.warning("no TaskManager registered: running %s", command)
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise FlinkJobError(f"{command} failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
        # Wait for it to register, so that the next check does not start another one.
        wait_until(
            lambda: self.taskmanager_count() > 0,
            timeout=90,
            interval=1,
            what="a TaskManager to register",
            error=lambda: FlinkJobError(f"{command} ran but no TaskManager registered within 90 s"),
        )
        return True

    def cancel_job(self, job_id: str) -> None:
        """Cancel without a savepoint (retained checkpoints stay on disk)."""
        self._rest("PATCH", f"/jobs/{job_id}?mode=cancel")


class _HttpError(ExternalServiceError):
    """An HTTP error status from Flink; the hook turns it into one of the errors above before it leaves."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


# What the hook logs or raises has its secrets masked: the values of password, secret, token and
# access-key options (a doubled quote read correctly) and the secrets lakehouse.core.flink_sql
# registered when it rendered the connections into SQL (lakehouse.core.secrets).
_mask_secrets = mask_secrets


def _one_line(text: str, limit: int) -> str:
    """One log line for a statement, with password, secret and token options masked."""
    flat = _mask_secrets(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[:limit] + " ..."
