"""FlinkHook against a real local HTTP server that imitates the SQL Gateway (REST v2) and the
JobManager REST API. No Flink needed; every request the hook sends is recorded so the tests can
assert on what was (and was not) sent."""

from __future__ import annotations

import logging
import re
import signal
import socket
import time

import pytest

from lakehouse.batch.recompute import BATCH_SESSION
from lakehouse.hooks._base import MissingConnectionError
from lakehouse.hooks.flink import (
    FlinkHook,
    FlinkJobError,
    FlinkSlotsUnavailable,
    FlinkSqlError,
    FlinkUnavailableError,
    JobStatus,
    StatementResult,
    root_cause,
)
from lakehouse.maintenance.operations import PROCEDURE_SESSION
from tests.support.flink_rest import CONN_ID, FLINK_TRACE, JOB_ID, ROOT, SESSION, Raw, make_hook


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- connection
def test_endpoints_from_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_TEST", "flink://10.0.0.5:18081/?sql_gateway_port=18083&timeout=7")
    ep = FlinkHook(CONN_ID).endpoints
    assert ep.rest_url == "http://10.0.0.5:18081"
    assert ep.gateway_url == "http://10.0.0.5:18083"
    assert ep.timeout == 7.0


def test_missing_connection_names_env_var(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    with pytest.raises(MissingConnectionError) as exc:
        FlinkHook("nope").endpoints
    assert "AIRFLOW_CONN_NOPE=" in str(exc.value)
    assert "'nope'" in str(exc.value)


def test_unreachable_gateway(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_TEST", f"flink://127.0.0.1:{port}/?sql_gateway_port={port}&timeout=5")
    with pytest.raises(FlinkUnavailableError) as exc:
        make_hook().execute_sql(["SELECT 1"])
    msg = str(exc.value)
    assert f"Flink SQL Gateway at http://127.0.0.1:{port} is unreachable" in msg
    assert "`make up`" in msg
    assert f"'{CONN_ID}' connection" in msg


def test_unreachable_jobmanager(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_TEST", f"flink://127.0.0.1:{port}/?sql_gateway_port={port}")
    with pytest.raises(FlinkUnavailableError) as exc:
        make_hook().list_jobs()
    msg = str(exc.value)
    assert f"Flink JobManager REST API at http://127.0.0.1:{port}/jobs/overview is unreachable" in msg
    assert "`make up`" in msg and CONN_ID in msg


def test_slow_server_times_out(fake_flink, monkeypatch):
    port = fake_flink.port
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_TEST", f"flink://127.0.0.1:{port}/?sql_gateway_port={port}&timeout=0.2")
    fake_flink.overview_delay = 1.0
    with pytest.raises(FlinkUnavailableError, match=r"did not answer GET http://127\.0\.0\.1:\d+/overview within 0 s"):
        make_hook()._rest("GET", "/overview")


def test_test_connection(fake_flink, monkeypatch):
    assert make_hook().test_connection() == (True, "Flink 1.20.1: 2 TaskManagers")
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_TEST", f"flink://127.0.0.1:{_closed_port()}/")
    ok, msg = make_hook().test_connection()
    assert ok is False and "unreachable" in msg


# ---------------------------------------------------------------------------------- SQL Gateway
def test_query_returns_rows_across_pages(fake_flink):
    [res] = make_hook().execute_sql(
        ["SELECT city, COUNT(*) AS n FROM orders GROUP BY city"], session_config={"parallelism.default": 2}
    )
    assert res == StatementResult(
        statement="SELECT city, COUNT(*) AS n FROM orders GROUP BY city",
        columns=["city", "n"],
        rows=[["Berlin", 3], ["Paris", 5], ["Rome", 1]],
        job_id=None,
    )
    # session opened with the config as strings, NOT_READY polled again, /v1/ next URI rewritten
    assert fake_flink.requests[0] == ("POST", "/v2/sessions", {"properties": {"parallelism.default": "2"}})
    fetches = [p for p in fake_flink.paths("GET") if "/result/" in p]
    assert fetches == [
        f"/v2/sessions/{SESSION}/operations/op-1/result/0?rowFormat=JSON",
        f"/v2/sessions/{SESSION}/operations/op-1/result/0?rowFormat=JSON",
        f"/v2/sessions/{SESSION}/operations/op-1/result/1?rowFormat=JSON",
        f"/v2/sessions/{SESSION}/operations/op-1/result/2?rowFormat=JSON",
    ]
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


def test_insert_returns_job_id(fake_flink, hook_log, caplog):
    fake_flink.behaviour = {"INSERT INTO": "insert"}
    results = make_hook(hook_log).execute_sql(["CREATE TABLE t (x INT)", "INSERT INTO t SELECT 1"])
    assert [r.job_id for r in results] == [None, JOB_ID]
    assert results[1].rows == [[JOB_ID]]
    assert f"submitted Flink job {JOB_ID}" in caplog.text


def test_failed_statement_raises_with_root_cause_and_logs_flink_error(fake_flink, hook_log, caplog):
    fake_flink.behaviour = {"nope": "fail_fetch"}
    statement = "INSERT INTO ods.orders SELECT * FROM nope"
    with pytest.raises(FlinkSqlError) as exc:
        make_hook(hook_log).execute_sql([statement])
    err = exc.value
    assert str(err).startswith(f"Flink SQL failed: {ROOT}\nStatement: {statement}\n")
    assert err.statement == statement
    assert err.flink_error == "Internal server error.\n" + FLINK_TRACE
    # the error line carries Flink's exceptions without stack frames; the full text follows at INFO
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert ROOT in errors[0].getMessage() and "\tat " not in errors[0].getMessage()
    full = [r for r in caplog.records if r.levelno == logging.INFO and FLINK_TRACE in r.getMessage()]
    assert len(full) == 1
    assert "FetchResultsHandler.java:91" in caplog.text
    assert "FetchResultsHandler.java:91" not in str(err)  # the exception stays readable


def test_rejected_submit_raises_flink_sql_error(fake_flink, hook_log, caplog):
    fake_flink.behaviour = {"DROP": "fail_submit"}
    with pytest.raises(FlinkSqlError, match=re.escape(ROOT)):
        make_hook(hook_log).execute_sql(["DROP TABLE nope"])
    assert ROOT in caplog.text


def test_stops_at_first_failure_and_closes_session(fake_flink):
    fake_flink.behaviour = {"bad": "fail_fetch"}
    statements = ["CREATE TABLE a (x INT)", "SELECT * FROM bad", "INSERT INTO a SELECT 1", "SELECT 2"]
    with pytest.raises(FlinkSqlError) as exc:
        make_hook().execute_sql(statements)
    assert exc.value.statement == "SELECT * FROM bad"
    assert fake_flink.submitted_statements() == statements[:2]
    # the session is closed even though a statement failed, and nothing is sent after that
    assert fake_flink.requests[-1][:2] == ("DELETE", f"/v2/sessions/{SESSION}")
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


def test_session_open_failure(fake_flink):
    fake_flink.session_status = 500
    with pytest.raises(FlinkSqlError, match="java.lang.IllegalArgumentException: bad property") as exc:
        make_hook().execute_sql(["SELECT 1"], session_config={"x": "y"})
    assert "open session" in exc.value.statement
    assert fake_flink.submitted_statements() == []


def test_password_masked_in_log_and_error(fake_flink, hook_log, caplog):
    fake_flink.behaviour = {"mysql-cdc": "fail_fetch"}
    statement = (
        "CREATE TEMPORARY TABLE src (id BIGINT) WITH (\n  'connector' = 'mysql-cdc',\n"
        "  'username' = 'cdc',\n  'password' = 'hunter2',\n  's3.secret-key' = 'sk''42')"
    )
    with pytest.raises(FlinkSqlError) as exc:
        make_hook(hook_log).execute_sql([statement])
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Flink SQL> ")]
    assert logged == [
        "Flink SQL> CREATE TEMPORARY TABLE src (id BIGINT) WITH ( 'connector' = 'mysql-cdc', "
        "'username' = 'cdc', 'password' = '****', 's3.secret-key' = '****')"
    ]
    assert "hunter2" not in caplog.text and "sk''42" not in caplog.text
    # the exception message is logged by Airflow too: it must not carry the secret either
    assert "'password' = '****'" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    # the statement was sent unmasked
    assert "'password' = 'hunter2'" in fake_flink.submitted_statements()[0]


@pytest.fixture
def cdc_secret():
    """The CDC password as lakehouse.core.flink_sql renders it: registered as a known secret."""
    from lakehouse.core.secrets import forget_secrets

    forget_secrets()
    yield "p'ss-w0rd"
    forget_secrets()


def _cdc_statement(password: str) -> str:
    from lakehouse.core.flink_sql import sql_context
    from lakehouse.core.sql_files import load_statements

    class Cdc:
        mysql_conn_id = "mysql_cdc"

        def connection_params(self):
            return {
                "host": "mysql",
                "port": 3306,
                "database": "delivery",
                "user": "flink_cdc",
                "password": password,
                "extra": {},
            }

    class Paimon:
        warehouse_uri = "file:///tmp/wh"
        flink_catalog_options = {}

    return load_statements("ods/ods_delivery_cdc.sql", sql_context(paimon=Paimon(), cdc=Cdc()))[0]


def test_a_password_with_a_quote_never_reaches_logs_or_errors(fake_flink, hook_log, caplog, monkeypatch, cdc_secret):
    """Flink echoes the options unescaped ('password'='p'ss-w0rd') and in a connection URL."""
    from tests.support import flink_rest

    statement = _cdc_statement(cdc_secret)
    assert "'password' = 'p''ss-w0rd'" in statement
    echo = (
        "Caused by: org.apache.flink.table.api.ValidationException: Unable to create a source for reading table "
        "'default_catalog.default_database.cdc_orders'.\n\nTable options are:\n\n'connector'='mysql-cdc'\n"
        f"'password'='{cdc_secret}'\n's3.access-key'='AKIAEXAMPLE'\n'username'='flink_cdc'\n"
        f"Caused by: java.sql.SQLException: cannot connect to mysql://flink_cdc:{cdc_secret}@mysql:3306/delivery"
    )
    monkeypatch.setattr(flink_rest, "FLINK_TRACE", echo)
    fake_flink.behaviour = {"mysql-cdc": "fail_fetch"}
    with pytest.raises(FlinkSqlError) as exc:
        make_hook(hook_log).execute_sql([statement])
    assert fake_flink.submitted_statements() == [statement]  # Flink gets the real password
    for text in (caplog.text, str(exc.value)):
        assert "ss-w0rd" not in text and "AKIAEXAMPLE" not in text
    assert "'password'='****'" in caplog.text and "'password'='****'" in str(exc.value)
    assert "mysql://flink_cdc:****@mysql" in str(exc.value)


def test_a_secret_in_the_session_properties_is_masked(fake_flink, hook_log, caplog):
    fake_flink.session_status = 500
    with pytest.raises(FlinkSqlError) as exc:
        make_hook(hook_log).execute_sql(["SELECT 1"], session_config={"s3.secret-key": "sk-123456"})
    assert "sk-123456" not in str(exc.value) and "sk-123456" not in caplog.text
    assert "'s3.secret-key': '****'" in str(exc.value)


def test_a_registered_secret_is_masked_in_job_errors(fake_flink, cdc_secret):
    _cdc_statement(cdc_secret)  # rendering registers the password
    fake_flink.job_states = {JOB_ID: ["FAILED"]}
    fake_flink.job_stacktrace = f"java.sql.SQLException: Access denied (password {cdc_secret!r} rejected)"
    with pytest.raises(FlinkJobError) as exc:
        make_hook().wait_for_job_state(JOB_ID, ["RUNNING"], timeout=5, poll=0.01)
    assert "ss-w0rd" not in str(exc.value) and "ss-w0rd" not in (exc.value.root_cause or "")
    assert "Access denied (password" in str(exc.value)


@pytest.mark.parametrize(
    "text, masked",
    [
        ("'password' = 'a''b''c'", "'password' = '****'"),
        ("'password' = '', 'x' = 'y'", "'password' = '****', 'x' = 'y'"),
        ("'password'='p'ss-w0rd'\n'type'='paimon'", "'password'='****'\n'type'='paimon'"),
        ('{"password": "a\\"b", "user": "u"}', '{"password": "****", "user": "u"}'),
        ("jdbc:mysql://h/d?user=u&password=abc&ssl=1", "jdbc:mysql://h/d?user=u&password=****&ssl=1"),
        ("'s3.access-key' = 'AK', 's3.session-token' = 'T'", "'s3.access-key' = '****', 's3.session-token' = '****'"),
        ("(using password: YES)", "(using password: YES)"),
    ],
)
def test_masking_by_option_name(text, masked):
    from lakehouse.core.secrets import mask_secrets

    assert mask_secrets(text) == masked


def test_result_timeout(fake_flink):
    # every operation's first fetch is NOT_READY; a zero timeout gives up after that
    with pytest.raises(FlinkSqlError, match=r"no result within 0 s"):
        make_hook().execute_sql(["SELECT 1"], result_timeout=0)
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


def test_result_deadline_holds_on_result_pages_too(fake_flink):
    """A result that keeps coming (PAYLOAD pages, never NOT_READY) still stops at the deadline."""
    fake_flink.behaviour = {"endless": "endless"}
    started = time.monotonic()
    with pytest.raises(FlinkSqlError, match=r"no result within 0 s"):
        make_hook().execute_sql(["SELECT * FROM endless"], result_timeout=0.3)
    assert time.monotonic() - started < 2  # the fake ends the result after 3 s
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


# ---------------------------------------------------------------------------------- batch statements
BATCH = {"execution.runtime-mode": "batch", "table.dml-sync": "true", "parallelism.default": "2"}
OVERWRITE = "INSERT OVERWRITE lakehouse.dwd.t PARTITION (dt = '2026-11-20') SELECT * FROM s"
BATCH_JOB = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
CLASSLOADER = "java.lang.IllegalStateException: Trying to access closed classloader. Please check ..."


def test_batch_statement_waits_for_free_slots_then_runs(fake_flink, hook_log, caplog):
    fake_flink.slots_available = [0, 1, 2]
    fake_flink.behaviour = {"INSERT": "insert"}
    [res] = make_hook(hook_log).execute_sql([OVERWRITE], session_config=BATCH, slot_timeout=10, slot_poll=0.01)
    assert res.job_id == JOB_ID
    assert fake_flink.paths("GET").count("/overview") == 3  # submitted once 2 slots were free
    assert "waiting for 2 free task slots" in caplog.text


def test_batch_statement_fails_when_slots_stay_taken(fake_flink):
    """16 of 16 slots held by streaming jobs: nothing is submitted, the error names who holds them."""
    fake_flink.slots_available = [0]
    fake_flink.behaviour = {"INSERT": "insert"}
    with pytest.raises(FlinkSlotsUnavailable) as exc:
        make_hook().execute_sql([OVERWRITE], session_config=BATCH, slot_timeout=0.2, slot_poll=0.05)
    msg = str(exc.value)
    assert "0 of 16 Flink task slots free" in msg and "needs 2" in msg
    assert f"ods_delivery_cdc ({JOB_ID}, RUNNING, parallelism 4)" in msg
    assert "dwd_orders (other, RUNNING, parallelism 2)" in msg
    assert "old" not in msg.split("held by", 1)[1].split(".")[0]  # a cancelled job holds nothing
    assert "add TaskManager slots" in msg and "retry" in msg
    assert (exc.value.needed, exc.value.free, exc.value.total) == (2, 0, 16)
    assert [h[0] for h in exc.value.holders] == ["ods_delivery_cdc", "dwd_orders"]
    assert fake_flink.submitted_statements() == []
    assert not any(p.startswith("/v2/sessions") for p in fake_flink.paths())


def test_streaming_statements_do_not_check_slots(fake_flink):
    fake_flink.slots_available = [0]
    fake_flink.behaviour = {"INSERT": "insert"}
    make_hook().execute_sql(["INSERT INTO t SELECT 1"], session_config={"execution.runtime-mode": "streaming"})
    assert "/overview" not in fake_flink.paths("GET")


def test_batch_deadline_cancels_the_job_and_reports_its_exception(fake_flink, hook_log, caplog):
    """The job restarts on a failure until the deadline: the hook cancels it (not only stops reading)
    and its error carries the job's root exception, not only the timeout."""
    fake_flink.behaviour = {"INSERT": "batch_restarting"}
    fake_flink.exceptions[BATCH_JOB] = f"{CLASSLOADER}\n\tat org.apache.flink.util.X.y(X.java:1)"
    with pytest.raises(FlinkSqlError) as exc:
        make_hook(hook_log).execute_sql([OVERWRITE], session_config=BATCH, result_timeout=0.5)
    msg = str(exc.value)
    assert "no result within 0 s" in msg
    assert "cancelled Flink job lakehouse-batch-" in msg and f"({BATCH_JOB}, was RESTARTING)" in msg
    assert CLASSLOADER in msg
    assert fake_flink.cancelled == [BATCH_JOB]  # the streaming jobs were left alone
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]
    assert "cancelling Flink job" in caplog.text


def test_deadline_cancels_a_self_named_job_started_after_the_statement(fake_flink):
    """A procedure that names its job itself (Paimon's OrphanFilesClean): the job named in job_names
    that started after the CALL is cancelled; one of that name that ran before it is not ours."""
    fake_flink.jobs.append({"jid": "sibling", "name": "OrphanFilesClean", "state": "RUNNING", "start-time": 1})
    fake_flink.behaviour = {"CALL": "batch_running"}
    fake_flink.batch_job_name = "OrphanFilesClean"
    with pytest.raises(FlinkSqlError, match=rf"cancelled Flink job OrphanFilesClean \({BATCH_JOB}, was RUNNING\)"):
        make_hook().execute_sql(
            ["CALL lakehouse.sys.remove_orphan_files(`table` => 'ods.t')"],
            session_config=BATCH,
            result_timeout=0.3,
            job_names=["OrphanFilesClean"],
        )
    assert fake_flink.cancelled == [BATCH_JOB]


def test_deadline_without_a_job_to_cancel_says_so(fake_flink):
    fake_flink.behaviour = {"CALL": "batch_running"}
    fake_flink.batch_job_name = "OrphanFilesClean"  # not asked for in job_names: not provably ours
    with pytest.raises(FlinkSqlError, match=r"no result within 0 s: no Flink job of this statement was found"):
        make_hook().execute_sql(["CALL sys.remove_orphan_files()"], session_config=BATCH, result_timeout=0.3)
    assert fake_flink.cancelled == []


def test_batch_session_gets_a_unique_pipeline_name(fake_flink):
    fake_flink.behaviour = {"INSERT": "insert"}
    make_hook().execute_sql([OVERWRITE], session_config=BATCH)
    first = fake_flink.session_properties["pipeline.name"]
    make_hook().execute_sql([OVERWRITE], session_config={**BATCH, "pipeline.name": "t1 dwd.t 2026-11-20"})
    second = fake_flink.session_properties["pipeline.name"]
    assert re.fullmatch(r"lakehouse-batch-[0-9a-f]{12}", first)
    assert re.fullmatch(r"t1 dwd\.t 2026-11-20 \[[0-9a-f]{12}\]", second)


class _Killed(BaseException):
    """What a task process raises when Airflow kills the task (SIGTERM)."""


def test_interrupted_batch_statement_cancels_its_job(fake_flink):
    """The task is killed while the batch job runs: the job does not outlive it."""
    fake_flink.behaviour = {"INSERT": "batch_running"}

    def kill(signum, frame):
        raise _Killed()

    previous = signal.signal(signal.SIGALRM, kill)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(_Killed):
            make_hook().execute_sql([OVERWRITE], session_config=BATCH, result_timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fake_flink.cancelled == [BATCH_JOB]
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


def test_failed_batch_job_error_carries_its_root_exception(fake_flink):
    fake_flink.behaviour = {"INSERT": "batch_fail"}
    fake_flink.exceptions[BATCH_JOB] = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed by FixedDelayRestartBackoffTimeStrategy\n"
        f"Caused by: {CLASSLOADER}"
    )
    with pytest.raises(FlinkSqlError) as exc:
        make_hook().execute_sql([OVERWRITE], session_config=BATCH)
    assert "Flink job lakehouse-batch-" in str(exc.value) and f"({BATCH_JOB}) is FAILED: {CLASSLOADER}" in str(
        exc.value
    )
    assert fake_flink.cancelled == []  # failed already: nothing to cancel


@pytest.mark.parametrize("session", [BATCH_SESSION, PROCEDURE_SESSION], ids=["recompute", "procedures"])
def test_batch_sessions_bound_restarts(session):
    """A failing batch job fails after a few attempts instead of restarting forever."""
    assert session["execution.runtime-mode"] == "batch"
    assert session["restart-strategy.type"] == "fixed-delay"
    assert 1 <= int(session["restart-strategy.fixed-delay.attempts"]) <= 3
    assert session["restart-strategy.fixed-delay.delay"].endswith(" s")


# ---------------------------------------------------------------------------------- garbage answers
HTML = Raw("<html><body><h1>502 Bad Gateway</h1></body></html>")


@pytest.mark.parametrize(
    ("call", "route", "answer"),
    [
        (lambda h: h.list_jobs(), "/jobs/overview", (200, HTML)),
        (lambda h: h.list_jobs(), "/jobs/overview", (200, {"jobs": [{"name": "no id"}]})),
        (lambda h: h.list_jobs(), "/jobs/overview", (200, ["not", "an", "object"])),
        (lambda h: h.job_status(JOB_ID), f"/jobs/{JOB_ID}", (200, {"jid": JOB_ID})),
        (lambda h: h.job_exception(JOB_ID), f"/jobs/{JOB_ID}/exceptions", (200, Raw('{"root-exc'))),
        (lambda h: h.checkpoints(JOB_ID), f"/jobs/{JOB_ID}/checkpoints", (200, {"counts": "seven"})),
        (lambda h: h.cluster_config(), "/jobmanager/config", (200, {"key": "value"})),
        (lambda h: h.taskmanager_count(), "/taskmanagers", (200, {"taskmanagers": 3})),
        (lambda h: h.stop_with_savepoint(JOB_ID, timeout=1), f"/jobs/{JOB_ID}/stop", (202, {})),
        (
            lambda h: h.stop_with_savepoint(JOB_ID, timeout=1),
            f"/jobs/{JOB_ID}/savepoints/trigger-9",
            (200, {"status": "COMPLETED"}),
        ),
        (lambda h: h.execute_sql(["SELECT 1"]), "/v2/sessions", (200, HTML)),
        (lambda h: h.execute_sql(["SELECT 1"]), "/v2/sessions", (200, [])),
        (lambda h: h.execute_sql(["SELECT 1"]), f"/v2/sessions/{SESSION}/statements", (200, {"handle": "x"})),
        (
            lambda h: h.execute_sql(["SELECT 1"]),
            f"/v2/sessions/{SESSION}/operations/op-1/result/0",
            (200, {"resultType": "PAYLOAD", "results": {"data": [{"no": "fields"}]}}),
        ),
        (
            lambda h: h.execute_sql(["SELECT 1"]),
            f"/v2/sessions/{SESSION}/operations/op-1/result/0",
            (200, {"resultType": "EOS", "results": {"columns": [{"type": "INT"}], "data": []}}),
        ),
    ],
    ids=[
        "html",
        "job-without-id",
        "list",
        "job-without-state",
        "truncated",
        "counts-not-an-object",
        "config-not-a-list",
        "taskmanagers-not-a-list",
        "no-request-id",
        "savepoint-status-not-an-object",
        "session-html",
        "session-list",
        "no-operation-handle",
        "row-without-fields",
        "column-without-name",
    ],
)
def test_garbage_from_flink_raises_the_hooks_error(fake_flink, call, route, answer):
    """Whatever Flink (or a proxy in front of it) answers, the hook raises its documented error,
    naming the endpoint and showing the start of the body."""
    fake_flink.garbage[route] = answer
    with pytest.raises(FlinkUnavailableError) as exc:
        call(make_hook())
    msg = str(exc.value)
    assert route in msg
    assert "unexpected answer" in msg
    body = answer[1] if isinstance(answer[1], Raw) else None
    if body:
        assert body[:20] in msg


def test_error_status_with_garbage_body(fake_flink):
    fake_flink.garbage[f"/jobs/{JOB_ID}"] = (502, Raw("<html>502 Bad Gateway</html>"))
    with pytest.raises(FlinkJobError, match=r"HTTP 502\): <html>502 Bad Gateway</html>"):
        make_hook().job_status(JOB_ID)
    fake_flink.garbage[f"/jobs/{JOB_ID}"] = (500, ["not", "an", "object"])
    with pytest.raises(FlinkJobError, match=r"HTTP 500"):
        make_hook().job_status(JOB_ID)


# ---------------------------------------------------------------------------------- JobManager
def test_list_jobs_and_active_jobs_named(fake_flink):
    hook = make_hook()
    assert [(j.job_id, j.state) for j in hook.list_jobs()] == [
        (JOB_ID, "RUNNING"),
        ("old", "CANCELED"),
        ("other", "RUNNING"),
    ]
    assert [j.job_id for j in hook.active_jobs_named("ods_delivery_cdc")] == [JOB_ID]
    assert hook.active_jobs_named("missing") == []


def test_unknown_job_raises_flink_job_error(fake_flink):
    with pytest.raises(FlinkJobError) as exc:
        make_hook().job_status("deadbeef")
    assert str(exc.value) == (
        "Flink REST GET /jobs/deadbeef failed (HTTP 404): "
        "org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (deadbeef)"
    )
    assert (exc.value.job_id, exc.value.root_cause) == (None, None)  # a failed REST call names no job


def test_checkpoints(fake_flink):
    fake_flink.job_states[JOB_ID] = ["RUNNING"]
    info = make_hook().checkpoints(JOB_ID)
    assert (info.checkpoint_id, info.external_path, info.completed_at_ms) == (42, "file:/tmp/chk/42", 1700000001234)
    assert (info.completed_count, info.failed_count) == (7, 1)
    assert info.latest_failure == "Checkpoint expired before completing."
    assert make_hook().wait_for_checkpoint(JOB_ID, after_id=41, timeout=1).checkpoint_id == 42
    with pytest.raises(FlinkJobError, match=r"no checkpoint after #42 within 0 s; latest failure: Checkpoint expired"):
        make_hook().wait_for_checkpoint(JOB_ID, after_id=42, timeout=0)


def test_wait_for_checkpoint_fails_fast_when_the_job_restarts(fake_flink):
    """A job stuck in RESTARTING raises at once with its exception, not at the timeout."""
    fake_flink.job_states[JOB_ID] = ["RESTARTING"]
    started = time.monotonic()
    with pytest.raises(
        FlinkJobError, match=r"is RESTARTING instead of checkpointing: java.lang.RuntimeException: boom"
    ):
        make_hook().wait_for_checkpoint(JOB_ID, after_id=42, timeout=60)
    assert time.monotonic() - started < 5


def test_wait_for_job_state_reaches_running(fake_flink):
    fake_flink.job_states[JOB_ID] = ["INITIALIZING", "CREATED", "RUNNING"]
    status = make_hook().wait_for_job_state(JOB_ID, {"RUNNING"}, timeout=5, poll=0.01)
    assert status.state == "RUNNING"
    assert fake_flink.paths("GET").count(f"/jobs/{JOB_ID}") == 3


def test_wait_for_job_state_failed_job_raises_with_exception(fake_flink):
    fake_flink.job_states[JOB_ID] = ["CREATED", "FAILED"]
    fake_flink.job_stacktrace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n"
        "\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure("
        "ExecutionFailureHandler.java:180)\n"
        "Caused by: com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure\n"
        "\tat com.mysql.cj.jdbc.exceptions.SQLError.createCommunicationsException(SQLError.java:174)"
    )
    with pytest.raises(FlinkJobError) as exc:
        make_hook().wait_for_job_state(JOB_ID, {"RUNNING"}, timeout=5, poll=0.01)
    msg = str(exc.value)
    assert msg.startswith(
        f"Flink job ods_delivery_cdc ({JOB_ID}) is FAILED: "
        "com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure\n"
    )
    assert fake_flink.job_stacktrace in msg
    assert f"/jobs/{JOB_ID}/exceptions?maxExceptions=1" in fake_flink.paths("GET")
    assert exc.value.job_id == JOB_ID
    assert exc.value.root_cause == "com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure"


def test_wait_for_job_state_times_out(fake_flink):
    fake_flink.job_states[JOB_ID] = ["CREATED"]
    with pytest.raises(FlinkJobError, match=rf"\({JOB_ID}\) still CREATED after 0 s"):
        make_hook().wait_for_job_state(JOB_ID, {"RUNNING"}, timeout=0.05, poll=0.01)


def test_stop_with_savepoint_returns_location(fake_flink, hook_log, caplog):
    location = make_hook(hook_log).stop_with_savepoint(JOB_ID, target_dir="file:///tmp/savepoints", timeout=10)
    assert location == "file:/tmp/savepoints/savepoint-a1b2c3-0123456789ab"
    stop = [(p, b) for m, p, b in fake_flink.requests if m == "POST"]
    assert stop == [(f"/jobs/{JOB_ID}/stop", {"drain": False, "targetDirectory": "file:///tmp/savepoints"})]
    assert fake_flink.savepoint_polls == 2  # polled through IN_PROGRESS until COMPLETED
    assert location in caplog.text


def test_failed_savepoint_raises(fake_flink):
    fake_flink.savepoint_polls_in_progress = 0
    fake_flink.savepoint_result = {
        "failure-cause": {
            "class": "java.util.concurrent.CompletionException",
            "stack-trace": "org.apache.flink.runtime.checkpoint.CheckpointException: "
            "Checkpoint Coordinator is suspending.",
        }
    }
    with pytest.raises(FlinkJobError) as exc:
        make_hook().stop_with_savepoint(JOB_ID, timeout=10)
    assert str(exc.value) == (
        f"savepoint of job {JOB_ID} failed: "
        "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint Coordinator is suspending."
    )


def test_stop_unknown_job_raises(fake_flink):
    with pytest.raises(FlinkJobError, match=r"Flink REST POST /jobs/nojob/stop failed \(HTTP 404\)"):
        make_hook().stop_with_savepoint("nojob", timeout=1)


# ---------------------------------------------------------------------------------- root_cause
def test_root_cause_picks_last_caused_by():
    assert root_cause(FLINK_TRACE) == ROOT
    assert root_cause("Internal server error.\n" + FLINK_TRACE) == ROOT


def test_root_cause_without_caused_by():
    text = "Internal server error.\n\tat org.Foo.bar(Foo.java:1)\norg.apache.flink.table.api.TableException: boom\n"
    assert root_cause(text) == "org.apache.flink.table.api.TableException: boom"
    assert root_cause("  \n") == "unknown error"
    assert root_cause("Internal server error.") == "Internal server error."


# Every job state Flink 1.20 reports, with what the control plane makes of it:
# (running, active, terminal, recovering, failing_or_cancelled).
JOB_STATE_PREDICATES = {
    "INITIALIZING": (False, True, False, True, False),
    "CREATED": (False, True, False, True, False),
    "RUNNING": (True, True, False, False, False),
    "RECONCILING": (False, True, False, True, False),
    "RESTARTING": (False, True, False, True, True),
    "FAILING": (False, True, False, True, True),
    "CANCELLING": (False, True, False, False, True),
    "SUSPENDED": (False, True, False, False, False),
    "FAILED": (False, False, True, False, True),
    "CANCELED": (False, False, True, False, True),
    "FINISHED": (False, False, True, False, False),
}


@pytest.mark.parametrize("state", sorted(JOB_STATE_PREDICATES))
def test_job_status_predicates(state):
    s = JobStatus(JOB_ID, "job", state, 0)
    assert (
        s.is_running,
        s.is_active,
        s.is_terminal,
        s.is_recovering,
        s.is_failing_or_cancelled,
    ) == JOB_STATE_PREDICATES[state]
    assert s.is_restarting == (state == "RESTARTING")
    assert s.is_active != s.is_terminal  # every state is one or the other
