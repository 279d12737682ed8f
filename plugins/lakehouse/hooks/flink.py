"""Flink hook: SQL through the SQL Gateway REST API, jobs through the JobManager REST API.

The connection (default `flink_default`) holds the JobManager REST address as host/port; its
extras may set `sql_gateway_host` and `sql_gateway_port` (default: same host, port 8083) and
`timeout` (seconds per HTTP call, default 30).

Every failure becomes one of four exceptions with a message an operator can act on, all
`ExternalServiceError`s (lakehouse.core.errors): `FlinkUnavailableError` (nothing answers, or
what answers is not a Flink answer the hook can read), `FlinkSqlError` (Flink rejected or failed a
statement; carries Flink's own error text), `FlinkJobError` (a job or savepoint failed; carries
the job id and root cause when known) and `FlinkSlotsUnavailable` (a batch statement found too
few free task slots; names the jobs holding them). Every response is parsed in one place
(`FlinkHook._request`): a body that is not JSON or not shaped as expected raises
`FlinkUnavailableError` naming the endpoint and showing the start of the body.

Batch statements (a session with `execution.runtime-mode: batch`) never outlive their caller:
see `FlinkHook.execute_sql`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
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
# The restart strategy of batch sessions (recompute, maintenance procedures): a failing batch job
# fails after two restarts 10 s apart, with its exception, instead of restarting for ever.
BATCH_RESTARTS = {
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "2",
    "restart-strategy.fixed-delay.delay": "10 s",
}
# Task (vertex) states of a job whose tasks all run; a FINISHED task (a bounded source) counts as run.
_TASK_UP_STATES = frozenset({"RUNNING", "FINISHED"})


class FlinkUnavailableError(ExternalServiceError):
    """The JobManager or the SQL Gateway does not answer."""


class FlinkSlotsUnavailable(ExternalServiceError):
    """A batch statement needs more free task slots than the cluster had, for as long as it waited.

    `needed`, `free` and `total` are slot counts; `holders` lists the active jobs as
    (name, job id, state, slots: the job's largest vertex parallelism, None when unknown)."""

    def __init__(self, message: str, *, needed: int, free: int, total: int, holders: list[tuple]):
        super().__init__(message)
        self.needed = needed
        self.free = free
        self.total = total
        self.holders = list(holders)


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
    # Job details only: the largest parallelism of its vertices, i.e. the slots it holds (one slot
    # sharing group, Flink's default).
    parallelism: int | None = None

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

    def _request(self, method: str, url: str, *, what: str, parse: Callable[[Any], Any] | None = None, **kwargs: Any):
        """One HTTP call (with the connection's timeout) and its answer, read by `parse`.

        The one place where Flink's answers are decoded: a body that is not JSON, or that `parse`
        cannot read (a missing key, a wrong type), raises FlinkUnavailableError naming the
        endpoint and showing the start of the body; an HTTP error status raises _HttpError with
        Flink's error text (the callers turn it into FlinkJobError or FlinkSqlError)."""
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
            raise _HttpError(resp.status_code, _error_text(resp))
        try:
            data = resp.json() if resp.content else {}
            return parse(data) if parse is not None else data
        except LakehouseError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:  # JSONDecodeError is a ValueError
            problem = f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyError) else f"no {exc} in it"
            raise FlinkUnavailableError(
                f"unexpected answer from the {what} to {method} {url} (HTTP {resp.status_code}; {problem}): "
                f"{_snippet(resp.text) or '<empty body>'}. Is the '{self.flink_conn_id}' connection pointing at "
                "Flink, and is the Flink version the one in docs/VERSIONS.md?"
            ) from exc

    def _rest(self, method: str, path: str, parse: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        try:
            return self._request(
                method, self.endpoints.rest_url + path, what="Flink JobManager REST API", parse=parse, **kwargs
            )
        except _HttpError as exc:
            raise FlinkJobError(
                f"Flink REST {method} {path} failed (HTTP {exc.status}): {root_cause(exc.text)}"
            ) from None

    def _gateway(self, method: str, path: str, parse: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        return self._request(method, self.endpoints.gateway_url + path, what="Flink SQL Gateway", parse=parse, **kwargs)

    def test_connection(self) -> tuple[bool, str]:
        try:
            overview = self._rest("GET", "/overview", parse=_obj)
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
        slot_timeout: float = 300.0,
        slot_poll: float = 5.0,
        job_names: Iterable[str] = (),
    ) -> list[StatementResult]:
        """Run statements in order in one SQL Gateway session; stop at the first failure.

        DDL and queries are waited for until their results are complete; INSERT and statement
        sets return as soon as the job is submitted (its id is in the result), unless the session
        sets `table.dml-sync`. Each statement gets `result_timeout` seconds for all its result
        pages; past it the hook raises FlinkSqlError.

        In a batch session (`execution.runtime-mode: batch`) a statement's job never outlives the call:

        - before anything is submitted, the hook waits up to `slot_timeout` s (polling every
          `slot_poll` s) for as many free task slots as the session's parallelism, then raises
          FlinkSlotsUnavailable naming the jobs that hold them;
        - the session's `pipeline.name` gets a unique suffix (`lakehouse-batch-<id>` without one),
          which is how the hook finds the statement's job while Flink has not reported its id
          (with `table.dml-sync` the id comes with the result, at the end). `job_names` adds the
          names of jobs that a statement names itself (a Paimon procedure), counted as the
          statement's when they start after it was submitted;
        - when the deadline passes, or the call is interrupted by any exception (the task was
          killed), the statement's jobs still running are cancelled; a timeout's error names them
          with their latest exception, a failed statement's error the root exception of its job.
        """
        properties = {k: str(v) for k, v in (session_config or {}).items()}
        batch: frozenset[str] | None = None
        if properties.get("execution.runtime-mode", "").strip().lower() == "batch":
            token = uuid.uuid4().hex[:12]
            given = properties.get("pipeline.name")
            properties["pipeline.name"] = f"{given} [{token}]" if given else f"lakehouse-batch-{token}"
            batch = frozenset({properties["pipeline.name"], *job_names})
            self.wait_for_slots(_needed_slots(properties), timeout=slot_timeout, poll=slot_poll)
        try:
            session = self._gateway(
                "POST", "/v2/sessions", json={"properties": properties}, parse=lambda d: _str(_obj(d)["sessionHandle"])
            )
        except _HttpError as exc:
            raise FlinkSqlError(f"<open session with {properties}>", exc.text) from None
        results = []
        try:
            for statement in statements:
                results.append(self._run_statement(session, statement, result_timeout, batch))
        finally:
            try:
                self._gateway("DELETE", f"/v2/sessions/{session}")
            except ExternalServiceError:  # unreachable, or an HTTP error
                self.log.warning("could not close SQL Gateway session %s", session)
        return results

    def _run_statement(
        self, session: str, statement: str, result_timeout: float, batch: frozenset[str] | None
    ) -> StatementResult:
        self.log.info("Flink SQL> %s", _one_line(statement, 500))
        # Jobs there before the statement: in a batch session, a job named in `batch` that is not one
        # of these is this statement's.
        before = {j.job_id for j in self.list_jobs()} if batch is not None else set()
        job_id = None
        deadline = time.monotonic() + result_timeout  # for the whole statement, every page included
        try:
            op = self._gateway(
                "POST",
                f"/v2/sessions/{session}/statements",
                json={"statement": statement},
                parse=lambda d: _str(_obj(d)["operationHandle"]),
            )
            columns: list[str] = []
            rows: list[list[Any]] = []
            uri = f"/v2/sessions/{session}/operations/{op}/result/0?rowFormat=JSON"

            def ready_page() -> _Page | None:
                nonlocal job_id
                page = self._gateway("GET", uri, parse=_parse_page)
                job_id = page.job_id or job_id
                return None if page.kind == "NOT_READY" else page

            while uri:
                page = wait_until(
                    ready_page,
                    timeout=deadline - time.monotonic(),
                    interval=0.2,
                    what=f"the result of {_one_line(statement, 100)}",
                    error=_StatementTimeout,
                )
                if page.columns:
                    columns = page.columns
                rows.extend(page.rows)
                if page.kind == "EOS":
                    break
                if time.monotonic() >= deadline:  # a result that keeps coming stops at the deadline too
                    raise _StatementTimeout()
                uri = page.next_uri.replace("/v1/", "/v2/", 1) if page.next_uri else None
        except _StatementTimeout:
            text = f"no result within {result_timeout:.0f} s"
            if batch is not None:
                text += ": " + (
                    self._abandon_or_say_why(job_id, batch, before)
                    or "no Flink job of this statement was found (nothing to cancel)"
                )
            raise FlinkSqlError(statement, text) from None
        except _HttpError as exc:
            self.log.error("Flink rejected the statement:\n%s", _mask_secrets(compact_error(exc.text)))
            self.log.info("Flink's full error, with stack frames:\n%s", _mask_secrets(exc.text))
            text = exc.text
            jobs = self._abandon_or_say_why(job_id, batch, before) if batch is not None else ""
            if jobs:  # a failed job's root exception (a DDL that failed has no job)
                text += "\n" + jobs
            raise FlinkSqlError(statement, text) from None
        except BaseException:  # interrupted (the task was killed), or Flink answered garbage
            if batch is not None:
                try:
                    self._abandon(job_id, batch, before)
                except Exception:  # the original exception matters more; _abandon logged what it could
                    self.log.exception("could not cancel the Flink job of the interrupted statement")
            raise
        if job_id:
            self.log.info("submitted Flink job %s", job_id)
        return StatementResult(statement=statement, columns=columns, rows=rows, job_id=job_id)

    def _abandon_or_say_why(self, job_id: str | None, names: frozenset[str], before: set[str]) -> str:
        """_abandon, or why it could not look (the statement's own error is what the caller raises)."""
        try:
            return self._abandon(job_id, names, before)
        except ExternalServiceError as exc:
            self.log.warning("could not look for the statement's Flink job to cancel: %s", exc)
            return f"could not look for its Flink job to cancel it ({_one_line(str(exc), 300)})"

    def _abandon(self, job_id: str | None, names: frozenset[str], before: set[str]) -> str:
        """Cancel the jobs of a batch statement given up on; describe them with their latest exception.

        The statement's jobs: the one Flink reported (`job_id`), and those named in `names` that
        were not there before the statement (`before`). "" when there is none."""
        jobs = [j for j in self.list_jobs() if j.job_id == job_id or (j.job_id not in before and j.name in names)]
        described = []
        for job in jobs:
            trace = self.job_exception(job.job_id)
            if trace:
                self.log.info("latest exception of Flink job %s (%s):\n%s", job.name, job.job_id, trace)
            cause = f": {root_cause(trace)}" if trace else ""
            if job.is_terminal:
                described.append(f"Flink job {job.name} ({job.job_id}) is {job.state}{cause}")
                continue
            self.log.warning(
                "cancelling Flink job %s (%s, %s): its statement was given up", job.name, job.job_id, job.state
            )
            self.cancel_job(job.job_id)
            described.append(
                f"cancelled Flink job {job.name} ({job.job_id}, was {job.state})"
                + (f", whose latest exception is: {root_cause(trace)}" if trace else "")
            )
        return "; ".join(described)

    # ------------------------------------------------------------------ task slots
    def cluster_slots(self) -> tuple[int, int]:
        """(free, total) task slots of the cluster."""
        return self._rest("GET", "/overview", parse=lambda d: (int(_obj(d)["slots-available"]), int(d["slots-total"])))

    def slot_holders(self) -> list[tuple[str, str, str, int | None]]:
        """The active jobs as (name, job id, state, slots held: largest vertex parallelism or None)."""
        holders = []
        for job in self.list_jobs():
            if job.is_terminal:
                continue
            try:
                slots = self.job_status(job.job_id).parallelism
            except FlinkJobError:  # it ended meanwhile
                continue
            holders.append((job.name, job.job_id, job.state, slots))
        return holders

    def wait_for_slots(self, needed: int, *, timeout: float = 300.0, poll: float = 5.0) -> None:
        """Wait until `needed` task slots are free; past `timeout` s raise FlinkSlotsUnavailable
        naming the jobs that hold the slots and what to do."""
        seen: list[tuple[int, int]] = []

        def enough() -> bool:
            free, total = self.cluster_slots()
            if free < needed and not seen:
                self.log.warning(
                    "waiting for %d free task slots (%d of %d free), at most %.0f s", needed, free, total, timeout
                )
            seen[:] = [(free, total)]
            return free >= needed

        def no_slots() -> FlinkSlotsUnavailable:
            free, total = seen[-1]
            holders = self.slot_holders()
            held = ", ".join(
                f"{name} ({jid}, {state}, parallelism {slots if slots is not None else 'unknown'})"
                for name, jid, state, slots in holders
            )
            return FlinkSlotsUnavailable(
                f"only {free} of {total} Flink task slots free after waiting {timeout:.0f} s; this batch "
                f"statement needs {needed} (its parallelism). The slots are held by: {held or 'no job'}. "
                "Stop or scale down a job (streaming_operations), add TaskManager slots (more TaskManagers "
                "or a larger taskmanager.numberOfTaskSlots), or retry later.",
                needed=needed,
                free=free,
                total=total,
                holders=holders,
            )

        wait_until(enough, timeout=timeout, interval=poll, what=f"{needed} free task slots", error=no_slots)

    # ------------------------------------------------------------------ JobManager REST
    def list_jobs(self) -> list[JobStatus]:
        def parse(data: Any) -> list[JobStatus]:
            jobs = _list(_obj(data).get("jobs", []))
            return [
                JobStatus(_str(j["jid"]), _str(j["name"]), _str(j["state"]), int(j.get("start-time") or 0))
                for j in map(_obj, jobs)
            ]

        return self._rest("GET", "/jobs/overview", parse=parse)

    def active_jobs_named(self, name: str) -> list[JobStatus]:
        """Jobs with this pipeline name that are not in a terminal state."""
        return [j for j in self.list_jobs() if j.name == name and j.is_active]

    def job_status(self, job_id: str) -> JobStatus:
        def parse(data: Any) -> JobStatus:
            j = _obj(data)
            state = _str(j["state"])
            since = _obj(j.get("timestamps") or {}).get(state)
            vertices = [_obj(v) for v in _list(j.get("vertices") or [])]
            running = all(v.get("status") in _TASK_UP_STATES for v in vertices) if vertices else None
            parallelism = max((int(v.get("parallelism") or 0) for v in vertices), default=None)
            return JobStatus(
                _str(j["jid"]), _str(j["name"]), state, int(j.get("start-time") or 0), since, running, parallelism
            )

        return self._rest("GET", f"/jobs/{job_id}", parse=parse)

    def job_exception(self, job_id: str) -> str | None:
        """The root exception of the job's latest failure, if any."""

        def parse(data: Any) -> str | None:
            data = _obj(data)
            entries = _list(_obj(data.get("exceptionHistory") or {}).get("entries") or [])
            if entries:
                entry = _obj(entries[0])
                return entry.get("stacktrace") or entry.get("exceptionName")
            return data.get("root-exception")

        return self._rest("GET", f"/jobs/{job_id}/exceptions?maxExceptions=1", parse=parse)

    def checkpoints(self, job_id: str) -> CheckpointInfo:
        return self._rest("GET", f"/jobs/{job_id}/checkpoints", parse=_parse_checkpoints)

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
        trigger = self._rest("POST", f"/jobs/{job_id}/stop", json=body, parse=_request_id)
        return self._await_savepoint(job_id, trigger, timeout)

    def trigger_savepoint(self, job_id: str, *, target_dir: str | None = None, timeout: float = 300.0) -> str:
        """Take a savepoint and keep the job running; returns the savepoint path."""
        body: dict[str, Any] = {"cancel-job": False}
        if target_dir:
            body["target-directory"] = target_dir
        trigger = self._rest("POST", f"/jobs/{job_id}/savepoints", json=body, parse=_request_id)
        return self._await_savepoint(job_id, trigger, timeout)

    def _await_savepoint(self, job_id: str, trigger: str, timeout: float) -> str:
        def parse(data: Any) -> tuple[bool, str | None, Any]:
            """(completed, location, failure) of the savepoint operation."""
            data = _obj(data)
            if _obj(data.get("status") or {}).get("id") != "COMPLETED":
                return False, None, None
            op = _obj(data.get("operation") or {})
            return True, _optional_str(op.get("location")), _obj(op.get("failure-cause") or {}).get("stack-trace", op)

        def location() -> str | None:
            completed, path, failure = self._rest("GET", f"/jobs/{job_id}/savepoints/{trigger}", parse=parse)
            if not completed:
                return None
            if path:
                self.log.info("savepoint of job %s: %s", job_id, path)
                return path
            raise FlinkJobError(f"savepoint of job {job_id} failed: {failure}", job_id=job_id)

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
        return self._rest(
            "GET", "/jobmanager/config", parse=lambda d: {_str(e["key"]): e["value"] for e in map(_obj, _list(d))}
        )

    def taskmanager_count(self) -> int:
        return self._rest("GET", "/taskmanagers", parse=lambda d: len(_list(_obj(d).get("taskmanagers", []))))

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


class _StatementTimeout(ExternalServiceError):
    """A statement's deadline passed; the hook turns it into FlinkSqlError before it leaves."""


@dataclass(frozen=True)
class _Page:
    """One page of a statement's result from the SQL Gateway."""

    kind: str  # NOT_READY, PAYLOAD or EOS
    job_id: str | None
    columns: list[str] | None
    rows: list[list[Any]]
    next_uri: str | None


# Readers of Flink's answers, for FlinkHook._request: a missing key or a wrong type raises, and
# _request turns that into FlinkUnavailableError naming the endpoint.
def _obj(data: Any) -> dict:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _list(data: Any) -> list:
    if not isinstance(data, list):
        raise TypeError(f"expected a JSON array, got {type(data).__name__}")
    return data


def _str(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError(f"expected a string, got {type(data).__name__}")
    return data


def _optional_str(data: Any) -> str | None:
    return None if data is None else _str(data)


def _parse_page(data: Any) -> _Page:
    page = _obj(data)
    results = _obj(page.get("results") or {})
    columns = results.get("columns")
    return _Page(
        kind=_str(page["resultType"]),
        job_id=_optional_str(page.get("jobID")),
        columns=[_str(_obj(c)["name"]) for c in _list(columns)] if columns else None,
        rows=[_list(_obj(r)["fields"]) for r in _list(results.get("data") or [])],
        next_uri=_optional_str(page.get("nextResultUri")),
    )


def _parse_checkpoints(data: Any) -> CheckpointInfo:
    data = _obj(data)
    latest = _obj(data.get("latest") or {})
    completed = _obj(latest.get("completed") or {})
    failed = _obj(latest.get("failed") or {})
    counts = _obj(data.get("counts") or {})
    return CheckpointInfo(
        checkpoint_id=completed.get("id"),
        external_path=completed.get("external_path"),
        completed_at_ms=completed.get("latest_ack_timestamp"),
        completed_count=int(counts.get("completed", 0)),
        failed_count=int(counts.get("failed", 0)),
        latest_failure=failed.get("failure_message"),
    )


def _request_id(data: Any) -> str:
    return _str(_obj(data)["request-id"])


def _needed_slots(properties: Mapping[str, str]) -> int:
    """Task slots a batch session's statement needs: its parallelism (1 unless the session sets one)."""
    values = []
    for key in ("parallelism.default", "table.exec.resource.default-parallelism"):
        try:
            values.append(int(properties.get(key, "")))
        except ValueError:
            continue
    return max([v for v in values if v > 0], default=1)


def _snippet(text: str, limit: int = 300) -> str:
    """The start of a response body on one line, password/secret options masked."""
    return _one_line(text or "", limit)


def _error_text(resp: Any) -> str:
    """Flink's error text of an HTTP error answer: its `errors` list, or the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        return "\n".join(str(e) for e in errors if e) or f"HTTP {resp.status_code}"
    return _snippet(resp.text) or f"HTTP {resp.status_code}"


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
