"""One actor per streaming job: the MySQL named-lock protocol of `lakehouse.streaming.locks` (with a
fake lock server behind fake pymysql connections), and the three DAGs that take the lock around
every action on a job (their task callables run with the lock and the Supervisor replaced)."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from lakehouse.core.errors import ConfigError, ExternalServiceError, GateFailed
from lakehouse.core.registry import registry
from lakehouse.streaming import locks as locks_module
from lakehouse.streaming.locks import (
    DEFAULT_LOCK_TIMEOUT_S,
    LOCK_TIMEOUT_ENV,
    JobLocks,
    StreamingJobBusy,
    current_holder,
    jobs_acted_on,
    lock_name,
    lock_timeout,
)
from lakehouse.streaming.supervision import SupervisionResult
from tests.support.pymysql import FakeConn

DAGS_DIR = Path(__file__).resolve().parents[3] / "dags"


# ---------------------------------------------------------------------------- a fake lock server
class LockServer:
    """MySQL named locks as the server keeps them: per session (connection), released by
    RELEASE_LOCK or when the connection closes; plus the companion table of holders."""

    def __init__(self, *, on_get_lock=None) -> None:
        self.locks: dict[str, int] = {}  # lock name -> connection id
        self.rows: dict[str, tuple[int, str, str]] = {}  # companion table: name -> (conn id, holder, since)
        self.ids = itertools.count(41)
        self.connections: list[LockConn] = []
        self.on_get_lock = on_get_lock  # called with (name, timeout) before answering
        self.get_lock_answer = None  # force GET_LOCK's answer (None: decide by the locks)

    def connect(self) -> LockConn:
        conn = LockConn(self, next(self.ids))
        self.connections.append(conn)
        return conn

    def answer(self, conn_id: int, sql: str, p) -> list[tuple]:
        sql = " ".join(sql.split())
        if sql.startswith("CREATE TABLE"):
            return []
        if sql.startswith("SELECT GET_LOCK("):
            name, timeout = p
            if self.on_get_lock:
                self.on_get_lock(name, timeout)
            if self.get_lock_answer is not None:
                return [(None if self.get_lock_answer == "NULL" else self.get_lock_answer,)]
            if self.locks.get(name, conn_id) != conn_id:
                return [(0,)]
            self.locks[name] = conn_id
            return [(1,)]
        if sql.startswith("SELECT RELEASE_LOCK("):
            (name,) = p
            if name not in self.locks:
                return [(None,)]
            if self.locks[name] != conn_id:
                return [(0,)]
            del self.locks[name]
            return [(1,)]
        if sql.startswith("SELECT IS_USED_LOCK("):
            return [(self.locks.get(p[0]),)]
        if sql.startswith("REPLACE INTO streaming_job_locks"):
            name, holder = p
            assert "CONNECTION_ID()" in sql
            self.rows[name] = (conn_id, holder, datetime(2026, 5, 1, 10, 0, 0, 123000))  # what pymysql returns
            return []
        if sql.startswith("DELETE FROM streaming_job_locks"):
            assert "connection_id = CONNECTION_ID()" in sql
            if self.rows.get(p[0], (None,))[0] == conn_id:
                del self.rows[p[0]]
            return []
        if sql.startswith("SELECT holder, acquired_at FROM streaming_job_locks"):
            name, holder_id = p
            row = self.rows.get(name)
            return [(row[1], row[2])] if row and row[0] == holder_id else []
        raise AssertionError(f"unexpected statement {sql!r}")


class LockConn(FakeConn):
    def __init__(self, server: LockServer, conn_id: int) -> None:
        super().__init__(rows_for=lambda sql, p: server.answer(conn_id, sql, p))
        self.server, self.id, self.closed = server, conn_id, False

    def close(self) -> None:
        super().close()
        self.closed = True
        for name in [n for n, holder in self.server.locks.items() if holder == self.id]:
            del self.server.locks[name]  # the server frees a session's locks when it ends


class FakeOps:
    """What JobLocks needs of the ops MySqlHook: get_conn(), one new connection per call."""

    def __init__(self, server: LockServer) -> None:
        self.server = server

    def get_conn(self) -> LockConn:
        return self.server.connect()


def get_locks(conn: FakeConn) -> list[tuple]:
    return [e[2] for e in conn.events if isinstance(e, tuple) and "GET_LOCK(" in e[1]]


def released(conn: FakeConn) -> list[str]:
    return [e[2][0] for e in conn.events if isinstance(e, tuple) and "RELEASE_LOCK(" in e[1]]


@pytest.fixture
def server() -> LockServer:
    return LockServer()


def job_locks(server, **kwargs) -> JobLocks:
    kwargs.setdefault("pipeline_prefix", "")
    kwargs.setdefault("timeout", 120)
    kwargs.setdefault("holder", "streaming_supervision run scheduled__1 task supervise_dwd_order_fact")
    return JobLocks(FakeOps(server), **kwargs)


# ---------------------------------------------------------------------------- names and settings
def test_lock_name_carries_the_pipeline_name():
    assert lock_name("dwd_order_fact") == "lakehouse.streaming_job.dwd_order_fact"
    assert lock_name("it_dwd_order_fact") == "lakehouse.streaming_job.it_dwd_order_fact"


def test_long_lock_names_are_shortened_stably_and_distinctly():
    """MySQL refuses lock names over 64 characters."""
    a, b = "p" * 60 + "_dws_shop_hourly", "p" * 60 + "_dws_shop_daily"
    assert len(lock_name(a)) <= 64 and len(lock_name(b)) <= 64
    assert lock_name(a) == lock_name(a) != lock_name(b)
    assert lock_name(a).startswith("lakehouse.streaming_job.ppp")


def test_locks_use_the_pipeline_prefix(server, monkeypatch):
    """The integration tests' it_ jobs do not contend with the demo's jobs of the same name."""
    monkeypatch.setenv("LAKEHOUSE_PIPELINE_PREFIX", "it_")
    with JobLocks(FakeOps(server), timeout=5, holder="test").hold("dwd_order_fact") as names:
        assert names == ["it_dwd_order_fact"]
        assert server.locks == {"lakehouse.streaming_job.it_dwd_order_fact": 41}


def test_lock_timeout_default_and_env(monkeypatch):
    monkeypatch.delenv(LOCK_TIMEOUT_ENV, raising=False)
    assert lock_timeout() == DEFAULT_LOCK_TIMEOUT_S == 120
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "30")
    assert lock_timeout() == 30
    assert JobLocks(FakeOps(LockServer()), holder="x").timeout == 30


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_bad_lock_timeout_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, value)
    with pytest.raises(ConfigError) as exc:
        lock_timeout()
    assert LOCK_TIMEOUT_ENV in str(exc.value) and repr(value) in str(exc.value)
    assert "seconds" in str(exc.value)


def test_current_holder_outside_a_task_names_host_and_process():
    import os
    import socket

    assert current_holder() == f"{socket.gethostname()} pid {os.getpid()}"


def test_jobs_acted_on_by_an_operation():
    reg = registry()
    assert jobs_acted_on("dwd_order_fact", "stop_with_savepoint") == ["dwd_order_fact"]
    assert jobs_acted_on("dwd_order_fact", "start_from_savepoint") == ["dwd_order_fact"]
    cascade = [c.name for c, _ in reg.reset_cascade("ods_delivery_cdc")]
    assert cascade, "ods_delivery_cdc has a reset cascade"
    assert jobs_acted_on("ods_delivery_cdc", "restart_without_state") == ["ods_delivery_cdc", *cascade]


# ---------------------------------------------------------------------------- the protocol
def test_hold_takes_the_lock_on_one_connection_and_releases_it(server):
    with job_locks(server).hold("dwd_order_fact") as names:
        assert names == ["dwd_order_fact"]
        assert server.locks == {"lakehouse.streaming_job.dwd_order_fact": 41}
        assert server.rows["lakehouse.streaming_job.dwd_order_fact"][:2] == (
            41,
            "streaming_supervision run scheduled__1 task supervise_dwd_order_fact",
        )
        (conn,) = server.connections
        assert not conn.closed  # held open for the whole action: the lock lives as long as the session
    assert server.locks == {} and server.rows == {}
    assert get_locks(conn) == [("lakehouse.streaming_job.dwd_order_fact", 120)]
    assert released(conn) == ["lakehouse.streaming_job.dwd_order_fact"]
    assert conn.closed and conn.events[-1] == "close"


def test_a_second_actor_waits_then_fails_naming_the_holder(server):
    with job_locks(server).hold("dwd_order_fact"):
        with pytest.raises(StreamingJobBusy) as exc:
            with job_locks(server, timeout=7, holder="streaming_deploy run manual__2 task deploy_dwd").hold(
                "dwd_order_fact"
            ):
                pytest.fail("the body must not run without the lock")
    err = exc.value
    assert isinstance(err, GateFailed) and err.retryable
    assert (err.job, err.connection_id, err.timeout) == ("dwd_order_fact", 41, 7)
    assert err.holder == "streaming_supervision run scheduled__1 task supervise_dwd_order_fact"
    message = str(err)
    assert "dwd_order_fact is busy" in message
    assert "streaming_supervision run scheduled__1 task supervise_dwd_order_fact" in message
    assert "since 2026-05-01 10:00:00 UTC" in message and "MySQL connection 41" in message
    assert "waited 7 s" in message
    assert "`KILL 41` on the ops database" in message  # how to free a stuck holder's lock
    assert "streaming_deploy, streaming_supervision and streaming_operations" in message
    assert LOCK_TIMEOUT_ENV in message  # how to wait longer
    waiter = server.connections[1]
    assert get_locks(waiter) == [("lakehouse.streaming_job.dwd_order_fact", 7)]  # the server-side wait
    assert waiter.closed and released(waiter) == []  # nothing to release; its connection is closed


def test_the_lock_is_free_again_once_released(server):
    with job_locks(server).hold("dwd_order_fact"):
        pass
    with job_locks(server, holder="other").hold("dwd_order_fact"):
        assert server.rows["lakehouse.streaming_job.dwd_order_fact"][1] == "other"


def test_a_killed_holder_leaves_no_stale_lock(server):
    """The worker died: its connection dropped, and the server released the lock with it. Its
    companion row is left behind but belongs to a dead connection, so it is never blamed."""
    conn = server.connect()
    server.answer(conn.id, "SELECT GET_LOCK(%s, %s)", ("lakehouse.streaming_job.dwd_order_fact", 120))
    server.answer(
        conn.id,
        "REPLACE INTO streaming_job_locks ... CONNECTION_ID()",
        (
            "lakehouse.streaming_job.dwd_order_fact",
            "dead worker",
        ),
    )
    conn.close()  # killed: no RELEASE_LOCK
    with job_locks(server, holder="new").hold("dwd_order_fact"):
        assert server.rows["lakehouse.streaming_job.dwd_order_fact"][1] == "new"


def test_busy_holder_unknown_when_not_recorded(server):
    """Held by a connection without a companion row (say a person's GET_LOCK in a SQL shell)."""
    other = server.connect()
    server.answer(other.id, "SELECT GET_LOCK(%s, %s)", ("lakehouse.streaming_job.dwd_order_fact", 1))
    server.rows["lakehouse.streaming_job.dwd_order_fact"] = (7, "a stale row of connection 7", "2026-01-01")
    with pytest.raises(StreamingJobBusy) as exc:
        with job_locks(server, timeout=3).hold("dwd_order_fact"):
            pass
    assert exc.value.holder is None and exc.value.connection_id == other.id
    assert f"MySQL connection {other.id} holds its lock (holder not recorded)" in str(exc.value)
    assert "stale row" not in str(exc.value)


def test_busy_holder_gone_by_the_time_it_is_asked(server):
    """GET_LOCK timed out, but the holder let go before IS_USED_LOCK asked: still busy, no holder."""
    server.get_lock_answer = 0
    with pytest.raises(StreamingJobBusy) as exc:
        with job_locks(server, timeout=3).hold("dwd_order_fact"):
            pass
    assert exc.value.holder is None and exc.value.connection_id is None
    assert "another actor held its lock until just now" in str(exc.value)
    assert "KILL" not in str(exc.value)


def test_a_body_that_fails_still_releases_and_its_error_propagates(server):
    with pytest.raises(RuntimeError, match="flink said no"):
        with job_locks(server).hold("dwd_order_fact"):
            raise RuntimeError("flink said no")
    assert server.locks == {} and server.rows == {}
    assert server.connections[0].closed


def test_cascade_locks_are_taken_in_one_fixed_order_and_released_in_reverse(server):
    """Two resets of overlapping cascades never wait on each other crosswise (no deadlock):
    every actor takes the locks sorted by name, whatever order it lists the jobs in."""
    jobs = ["dws_shop_hourly", "ods_delivery_cdc", "dwd_order_fact", "dws_city_daily", "dwd_order_fact"]
    with job_locks(server).hold(*jobs) as names:
        assert names == sorted(set(jobs))
        assert len(server.locks) == 4
    (conn,) = server.connections
    order = [name for name, _ in get_locks(conn)]
    assert order == [lock_name(j) for j in sorted(set(jobs))]
    assert released(conn) == list(reversed(order))


def test_the_wait_is_bounded_across_the_whole_cascade(server):
    """`timeout` bounds the wait for all the locks together, not for each."""
    now = [1000.0]
    server.on_get_lock = lambda name, timeout: now.__setitem__(0, now[0] + 50)
    with job_locks(server, timeout=120, clock=lambda: now[0]).hold("a_job", "b_job", "c_job", "d_job"):
        pass
    assert [t for _, t in get_locks(server.connections[0])] == [120, 70, 20, 0]


def test_busy_midway_through_a_cascade_releases_what_it_took(server):
    holder = server.connect()
    server.answer(holder.id, "SELECT GET_LOCK(%s, %s)", (lock_name("dws_city_daily"), 1))
    with pytest.raises(StreamingJobBusy) as exc:
        with job_locks(server).hold("ods_delivery_cdc", "dwd_order_fact", "dws_city_daily"):
            pass
    assert exc.value.job == "dws_city_daily"
    conn = server.connections[1]
    assert released(conn) == [lock_name("dwd_order_fact")]
    assert conn.closed and server.locks == {lock_name("dws_city_daily"): holder.id}


def test_get_lock_error_is_an_external_service_error(server):
    """GET_LOCK answers NULL on an error (out of memory, the thread killed): not a busy job."""
    server.get_lock_answer = "NULL"
    with pytest.raises(ExternalServiceError) as exc:
        with job_locks(server).hold("dwd_order_fact"):
            pass
    assert not isinstance(exc.value, StreamingJobBusy)
    assert "GET_LOCK" in str(exc.value) and "dwd_order_fact" in str(exc.value)
    assert server.connections[0].closed


def test_no_jobs_is_a_programming_error(server):
    with pytest.raises(ValueError):
        with job_locks(server).hold():
            pass


def test_a_lock_lost_during_the_action_is_logged(server, caplog):
    """The connection dropped mid-action (network, wait_timeout): the lock was gone; say so."""
    with job_locks(server).hold("dwd_order_fact"):
        server.locks.clear()
    assert "was no longer held" in caplog.text and "dwd_order_fact" in caplog.text


# ---------------------------------------------------------------------------- the DAGs take it
class RecordingLocks:
    """Stands in for JobLocks: records what is held while the DAG's task acts."""

    held: list[str] = []
    taken: list[list[str]] = []
    busy: set[str] = set()

    def __init__(self, ops, **kwargs) -> None:
        assert ops == "ops-hook", "the lock lives on the control plane's ops database (resources().ops)"

    def hold(self, *jobs):
        import contextlib

        @contextlib.contextmanager
        def held():
            for job in jobs:
                if job in RecordingLocks.busy:
                    raise StreamingJobBusy("busy", job=job, holder="someone", connection_id=1, timeout=1)
            RecordingLocks.taken.append(sorted(jobs))
            RecordingLocks.held = sorted(jobs)
            try:
                yield sorted(jobs)
            finally:
                RecordingLocks.held = []

        return held()


class RecordingSupervisor:
    """Stands in for Supervisor: every action asserts its job's lock is held."""

    calls: list[tuple] = []

    def __init__(self, **kwargs) -> None:
        self.reg = registry()

    def _act(self, action, job_name, jobs=None):
        for job in jobs or [job_name]:
            assert job in RecordingLocks.held, f"{action} {job} without its lock (held: {RecordingLocks.held})"
        RecordingSupervisor.calls.append((action, job_name))
        return SupervisionResult(job_name, action.upper(), "job-1")

    def supervise(self, job_name, **kwargs):
        return self._act("supervise", job_name)

    def stop(self, job_name, **kwargs):
        return self._act("stop", job_name)

    def start(self, job_name, *, savepoint_path):
        return self._act("start", job_name)

    def reset(self, job_name):
        jobs = [job_name, *(c.name for c, _ in self.reg.reset_cascade(job_name))]
        return [self._act("reset", job_name, jobs)]


@pytest.fixture
def dag_tasks(monkeypatch):
    """The three DAGs, parsed, with resources(), JobLocks and Supervisor replaced by recorders."""
    from airflow.dag_processing.dagbag import DagBag

    import lakehouse.core.resources as resources_module
    import lakehouse.streaming.supervision as supervision_module

    monkeypatch.delenv("LAKEHOUSE_DEPLOYMENT_TARGET", raising=False)
    monkeypatch.setattr(
        resources_module, "resources", lambda **_: SimpleNamespace(flink="f", paimon="p", cdc="c", ops="ops-hook")
    )
    monkeypatch.setattr(locks_module, "JobLocks", RecordingLocks)
    monkeypatch.setattr(supervision_module, "Supervisor", RecordingSupervisor)
    RecordingLocks.held, RecordingLocks.taken, RecordingLocks.busy = [], [], set()
    RecordingSupervisor.calls = []
    dags = {}
    for name in ("streaming_deploy", "streaming_operations", "streaming_supervision"):
        bag = DagBag(dag_folder=str(DAGS_DIR / f"{name}.py"), include_examples=False)
        assert bag.import_errors == {}, bag.import_errors
        dags[name] = bag.dags[name]
    return lambda dag_id, task_id: dags[dag_id].get_task(task_id).python_callable


@pytest.mark.parametrize("dag_id,prefix", [("streaming_supervision", "supervise_"), ("streaming_deploy", "deploy_")])
def test_supervise_and_deploy_take_the_jobs_lock(dag_tasks, dag_id, prefix):
    for job in registry().jobs:
        result = dag_tasks(dag_id, prefix + job)()
        assert result["job_name"] == job and result["action"] == "SUPERVISE"
    assert RecordingSupervisor.calls == [("supervise", job) for job in registry().jobs]
    assert RecordingLocks.taken == [[job] for job in registry().jobs]


@pytest.mark.parametrize("dag_id,prefix", [("streaming_supervision", "supervise_"), ("streaming_deploy", "deploy_")])
def test_a_busy_job_fails_only_its_own_task(dag_tasks, dag_id, prefix):
    RecordingLocks.busy = {"dwd_order_fact"}
    with pytest.raises(StreamingJobBusy):
        dag_tasks(dag_id, prefix + "dwd_order_fact")()
    assert RecordingSupervisor.calls == []  # nothing was done to the busy job
    dag_tasks(dag_id, prefix + "dws_shop_hourly")()  # the others carry on
    assert RecordingSupervisor.calls == [("supervise", "dws_shop_hourly")]


@pytest.mark.parametrize(
    "action,job",
    [
        ("stop_with_savepoint", "dwd_order_fact"),
        ("start_from_savepoint", "dwd_order_fact"),
        ("restart_without_state", "dwd_order_fact"),
        ("restart_without_state", "ods_delivery_cdc"),
    ],
)
def test_operations_take_the_lock_of_every_job_they_touch(dag_tasks, action, job):
    request = {"job": job, "action": action, "savepoint_path": None, "also_reset": []}
    results = dag_tasks("streaming_operations", "run_operation")(request)
    assert [r["job_name"] for r in results] == [job]
    assert RecordingLocks.taken == [sorted(jobs_acted_on(job, action))]
    if action == "restart_without_state":
        assert len(RecordingLocks.taken[0]) > 1  # the cascade's jobs too, even if the request lists none


def test_a_busy_cascade_job_stops_the_operation_before_anything_is_touched(dag_tasks):
    RecordingLocks.busy = {"dws_city_daily"}
    request = {"job": "ods_delivery_cdc", "action": "restart_without_state", "savepoint_path": None, "also_reset": []}
    with pytest.raises(StreamingJobBusy):
        dag_tasks("streaming_operations", "run_operation")(request)
    assert RecordingSupervisor.calls == []
