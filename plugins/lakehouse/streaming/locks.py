"""One actor per streaming job: the per-job lock that `streaming_deploy`, `streaming_supervision` and
`streaming_operations` take around every action on a job.

`max_active_runs` is per DAG, so without it the three DAGs could act on one Flink job at once: a
deploy and a supervision run would both see `dwd_order_fact` not running and both submit it, and
every DWS job would count its `input` changelog twice. So each task takes the lock of every job
it acts on (a reset takes those of its whole cascade) and holds it until the action is done:

    with JobLocks(resources().ops).hold("dwd_order_fact"):
        Supervisor(...).supervise("dwd_order_fact")

The locks are MySQL named locks (`GET_LOCK` / `RELEASE_LOCK`) on the control plane's ops database
(connection `lakehouse_ops`, the MariaDB of the partition leases), on one connection held open for
the action. A named lock belongs to the server session: when the worker dies, its connection drops
and the server releases the lock with it. There is no stale lock to clean up and no TTL to tune
(the partition leases need one: they are rows). The name is `lakehouse.streaming_job.<pipeline>`,
the pipeline name with its `LAKEHOUSE_PIPELINE_PREFIX`, so the integration tests' `it_` jobs do not
contend with the demo's. Named locks are server-wide: two deployments on one MySQL server with the
same pipeline names share them (they would share a Flink cluster's job names as well).

Waiting is the server's: `GET_LOCK(name, timeout)` blocks until the lock is free, at most
`LAKEHOUSE_JOB_LOCK_TIMEOUT` seconds (default 120) for all the locks of a task together. Then the
task fails with `StreamingJobBusy`, naming the job and who holds it: `IS_USED_LOCK` gives the
holder's connection id, and each holder writes itself (DAG, run, task, host, pid) into the small
table `streaming_job_locks`, keyed by lock name and read only together with that connection id, so
a row left behind by a dead worker is never blamed. Several locks are always taken in one order
(sorted by name), so two resets of overlapping cascades cannot wait on each other crosswise.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from lakehouse.core.errors import ConfigError, ExternalServiceError, GateFailed
from lakehouse.core.registry import Registry, registry
from lakehouse.core.registry import pipeline_prefix as pipeline_prefix_from_env

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook

log = logging.getLogger(__name__)

LOCK_TIMEOUT_ENV = "LAKEHOUSE_JOB_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 120.0
LOCK_PREFIX = "lakehouse.streaming_job."
MAX_LOCK_NAME = 64  # MySQL refuses longer lock names

LOCKS_DDL = """
CREATE TABLE IF NOT EXISTS streaming_job_locks (
  lock_name     VARCHAR(64)     NOT NULL,
  connection_id BIGINT UNSIGNED NOT NULL,
  holder        VARCHAR(512)    NOT NULL,
  acquired_at   DATETIME(3)     NOT NULL,
  PRIMARY KEY (lock_name)
) ENGINE=InnoDB
"""


class StreamingJobBusy(GateFailed):
    """Another actor (a deploy, supervision or operations task) held the job's lock for longer than
    the wait. `job` is the pipeline name; `holder` who holds it as it recorded itself (None if not
    recorded), `connection_id` its MySQL connection (None if it let go just then), `timeout` the wait
    in seconds. Retryable: the lock is free once that action ends."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, job: str, holder: str | None, connection_id: int | None, timeout: float):
        super().__init__(message)
        self.job = job
        self.holder = holder
        self.connection_id = connection_id
        self.timeout = timeout


def lock_name(pipeline: str) -> str:
    """The named lock of a pipeline: `lakehouse.streaming_job.<pipeline>`, shortened with a hash of
    the whole name when it would exceed MySQL's 64 characters."""
    name = LOCK_PREFIX + pipeline
    if len(name) <= MAX_LOCK_NAME:
        return name
    digest = hashlib.sha256(pipeline.encode()).hexdigest()[:12]
    return name[: MAX_LOCK_NAME - len(digest) - 1] + "~" + digest


def lock_timeout() -> float:
    """Seconds to wait for the locks of a task (env LAKEHOUSE_JOB_LOCK_TIMEOUT, default 120)."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{LOCK_TIMEOUT_ENV}={raw!r} must be a number of seconds >= 0 (how long a streaming task waits "
            f"for another task acting on the same job; default {DEFAULT_LOCK_TIMEOUT_S:.0f})"
        )
    return value


def current_holder() -> str:
    """Who takes a lock, for the message another actor gets: the Airflow task (DAG, run, task, try)
    when called inside one, and always the host and process."""
    where = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # not inside a running task (a test, the CLI): host and process say enough
        return where
    return f"{ti.dag_id} run {ti.run_id} task {ti.task_id} try {ti.try_number} on {where}"


def jobs_acted_on(job: str, action: str, reg: Registry | None = None) -> list[str]:
    """The jobs an on-call operation acts on: the job, and for `restart_without_state` every job of
    its reset cascade (`Registry.reset_cascade`, which `Supervisor.reset` stops and starts)."""
    if action != "restart_without_state":
        return [job]
    return [job, *(spec.name for spec, _ in (reg or registry()).reset_cascade(job))]


class JobLocks:
    """Per-job locks on the ops database. `hold(*jobs)` is a context manager; each `hold` uses its
    own connection, opened through `ops.get_conn()` and closed (releasing everything) at the end."""

    def __init__(
        self,
        ops: MySqlHook,
        *,
        pipeline_prefix: str | None = None,
        timeout: float | None = None,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ops = ops
        self.prefix = pipeline_prefix if pipeline_prefix is not None else pipeline_prefix_from_env()
        self.timeout = timeout if timeout is not None else lock_timeout()
        self.holder = holder if holder is not None else current_holder()
        self.clock = clock

    @contextmanager
    def hold(self, *jobs: str) -> Iterator[list[str]]:
        """Take the locks of `jobs` (sorted by name, each once), yield their pipeline names, release
        them in reverse order. Raises StreamingJobBusy if one stays held by another actor longer
        than `timeout` seconds in all; the locks taken until then are released."""
        if not jobs:
            raise ValueError("JobLocks.hold needs at least one job name")
        pipelines = sorted({self.prefix + job for job in jobs}, key=lock_name)
        conn = self.ops.get_conn()
        held: list[str] = []
        try:
            self._execute(conn, LOCKS_DDL)
            deadline = self.clock() + self.timeout
            for pipeline in pipelines:
                self._acquire(conn, pipeline, max(0.0, deadline - self.clock()))
                held.append(pipeline)
            log.info("holding the streaming job locks of %s as %s", ", ".join(pipelines), self.holder)
            yield pipelines
        finally:
            self._release(conn, held)

    # ------------------------------------------------------------------ protocol
    @staticmethod
    def _execute(conn: Any, sql: str, parameters: tuple | None = None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql, parameters)
            rows = list(cur.fetchall())
        conn.commit()  # the ops hook's connections are transactional; named locks are not
        return rows

    def _acquire(self, conn: Any, pipeline: str, wait: float) -> None:
        name = lock_name(pipeline)
        seconds = math.ceil(wait)  # whole seconds: what every MySQL and MariaDB version accepts
        (got,) = self._execute(conn, "SELECT GET_LOCK(%s, %s)", (name, seconds))[0]
        if got is None:
            raise ExternalServiceError(
                f"MySQL answered GET_LOCK({name!r}) for streaming job {pipeline} with an error (NULL: the server "
                "ran out of memory or the connection's thread was killed); nothing was done to the job. "
                "Check the lakehouse_ops database server; the task's retry tries again."
            )
        if got == 1:
            self._execute(
                conn,
                "REPLACE INTO streaming_job_locks (lock_name, connection_id, holder, acquired_at)"
                " VALUES (%s, CONNECTION_ID(), %s, UTC_TIMESTAMP(3))",
                (name, self.holder[:512]),
            )
            return
        raise self._busy(conn, pipeline, name)

    def _busy(self, conn: Any, pipeline: str, name: str) -> StreamingJobBusy:
        (connection_id,) = self._execute(conn, "SELECT IS_USED_LOCK(%s)", (name,))[0]
        holder = since = None
        if connection_id is not None:
            rows = self._execute(
                conn,
                "SELECT holder, acquired_at FROM streaming_job_locks WHERE lock_name = %s AND connection_id = %s",
                (name, connection_id),
            )
            if rows:
                holder, since = rows[0]
                if hasattr(since, "strftime"):  # pymysql gives DATETIME(3) as a datetime
                    since = f"{since:%Y-%m-%d %H:%M:%S}"
        if connection_id is None:
            who = "another actor held its lock until just now"
        elif holder is None:
            who = f"MySQL connection {connection_id} holds its lock (holder not recorded)"
        else:
            who = f"{holder} holds its lock, since {since} UTC (MySQL connection {connection_id})"
        kill = f", or run `KILL {connection_id}` on the ops database" if connection_id is not None else ""
        return StreamingJobBusy(
            f"streaming job {pipeline} is busy: {who}; this task waited {self.timeout:.0f} s for it "
            f"(lock {name!r}). Only one of streaming_deploy, streaming_supervision and streaming_operations acts "
            "on a job at a time, and nothing was done to the job. Wait for that action to finish and retry (the "
            f"task's retry does), or let tasks wait longer with {LOCK_TIMEOUT_ENV} (seconds). A stuck holder: end "
            f"its task{kill}; the lock goes with its connection.",
            job=pipeline,
            holder=holder,
            connection_id=connection_id,
            timeout=self.timeout,
        )

    def _release(self, conn: Any, held: list[str]) -> None:
        """Release in reverse order, then close the connection (which would release them anyway:
        an error here is logged, never raised over the action's own outcome)."""
        try:
            for pipeline in reversed(held):
                name = lock_name(pipeline)
                self._execute(
                    conn,
                    "DELETE FROM streaming_job_locks WHERE lock_name = %s AND connection_id = CONNECTION_ID()",
                    (name,),
                )
                (released,) = self._execute(conn, "SELECT RELEASE_LOCK(%s)", (name,))[0]
                if released != 1:
                    log.warning(
                        "the lock of streaming job %s was no longer held by this task when it ended (its connection to "
                        "the ops database dropped?): another actor may have acted on the job meanwhile",
                        pipeline,
                    )
        except Exception:
            log.warning(
                "releasing the streaming job locks of %s failed; closing the connection frees them", held, exc_info=True
            )
        finally:
            try:
                conn.close()
            except Exception:
                log.warning("closing the lock connection failed", exc_info=True)
