"""FlinkHook against a real local HTTP server that imitates the SQL Gateway (REST v2) and the
JobManager REST API. No Flink needed; every request the hook sends is recorded so the tests can
assert on what was (and was not) sent."""
from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from lakehouse.hooks._base import MissingConnectionError
from lakehouse.hooks.flink import (
    FlinkHook,
    FlinkJobError,
    FlinkSqlError,
    FlinkUnavailableError,
    JobStatus,
    StatementResult,
    root_cause,
)

CONN_ID = "flink_test"
SESSION = "sess-1"
JOB_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
ROOT = "org.apache.flink.table.api.ValidationException: Object 'nope' not found"
FLINK_TRACE = "\n".join(
    [
        "org.apache.flink.table.gateway.api.utils.SqlGatewayException: "
        "org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.",
        "\tat org.apache.flink.table.gateway.rest.handler.statement.FetchResultsHandler.handleRequest(FetchResultsHandler.java:91)",
        "\tat org.apache.flink.runtime.rest.handler.AbstractHandler.respondAsLeader(AbstractHandler.java:196)",
        "Caused by: org.apache.flink.table.gateway.service.utils.SqlExecutionException: Failed to execute the operation op-1.",
        "\tat org.apache.flink.table.gateway.service.operation.OperationManager$Operation.processThrowable(OperationManager.java:414)",
        "Caused by: " + ROOT,
        "\tat org.apache.flink.table.planner.operations.SqlNodeToOperationConversion.convert(SqlNodeToOperationConversion.java:250)",
        "\t... 12 more",
    ]
)


# ---------------------------------------------------------------------------------- fake Flink
class FakeFlink:
    """State and behaviour of the fake cluster; tests tweak the attributes before calling the hook."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict | None]] = []  # (method, path incl. query, json body)
        self.ops: dict[str, dict] = {}  # operation handle -> {"statement", "kind", "fetches"}
        # statement (substring, case-insensitive) -> "fail_fetch" | "fail_submit" | "insert" | default rows
        self.behaviour: dict[str, str] = {}
        self.session_status = 200
        self.overview_delay = 0.0
        self.job_states: dict[str, list[str]] = {}  # job id -> states returned by successive GETs
        self.job_stacktrace = "java.lang.RuntimeException: boom"
        self.savepoint_polls_in_progress = 1
        self.savepoint_result: dict = {"location": "file:/tmp/savepoints/savepoint-a1b2c3-0123456789ab"}
        self.savepoint_polls = 0

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]

    def submitted_statements(self) -> list[str]:
        return [b["statement"] for m, p, b in self.requests if m == "POST" and p.endswith("/statements")]

    # each returns (status, json payload)
    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        with self.lock:
            self.requests.append((method, path, body))
        route = urlsplit(path).path

        if method == "POST" and route == "/v2/sessions":
            if self.session_status != 200:
                return self.session_status, {"errors": ["Internal server error.", "Caused by: java.lang.IllegalArgumentException: bad property"]}
            return 200, {"sessionHandle": SESSION}
        if method == "DELETE" and route == f"/v2/sessions/{SESSION}":
            return 200, {"status": "CLOSED"}
        if method == "POST" and route == f"/v2/sessions/{SESSION}/statements":
            statement = body["statement"]
            kind = next((k for s, k in self.behaviour.items() if s.lower() in statement.lower()), "rows")
            if kind == "fail_submit":
                return 500, {"errors": ["Internal server error.", FLINK_TRACE]}
            op = f"op-{len(self.ops) + 1}"
            self.ops[op] = {"statement": statement, "kind": kind, "fetches": 0}
            return 200, {"operationHandle": op}
        m = re.fullmatch(rf"/v2/sessions/{SESSION}/operations/([^/]+)/result/(\d+)", route)
        if method == "GET" and m:
            return self._fetch(self.ops[m.group(1)], m.group(1), int(m.group(2)))

        if method == "GET" and route == "/v2/info":
            return 200, {"productName": "Apache Flink", "version": "1.20.1"}
        if method == "GET" and route == "/overview":
            time.sleep(self.overview_delay)
            return 200, {"flink-version": "1.20.1", "taskmanagers": 2}
        if method == "GET" and route == "/jobs/overview":
            return 200, {
                "jobs": [
                    {"jid": JOB_ID, "name": "ods_delivery_cdc", "state": "RUNNING", "start-time": 1700000000000},
                    {"jid": "old", "name": "ods_delivery_cdc", "state": "CANCELED", "start-time": 1600000000000},
                    {"jid": "other", "name": "dwd_orders", "state": "RUNNING", "start-time": 1700000000001},
                ]
            }
        m = re.fullmatch(r"/jobs/([^/]+)", route)
        if method == "GET" and m:
            states = self.job_states.get(m.group(1))
            if not states:
                return 404, {"errors": [f"org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job ({m.group(1)})"]}
            state = states.pop(0) if len(states) > 1 else states[0]
            return 200, {"jid": m.group(1), "name": "ods_delivery_cdc", "state": state, "start-time": 1700000000000}
        if method == "GET" and route == f"/jobs/{JOB_ID}/exceptions":
            return 200, {
                "root-exception": "java.lang.RuntimeException: old style",
                "exceptionHistory": {"entries": [{"exceptionName": "java.lang.RuntimeException", "stacktrace": self.job_stacktrace}]},
            }
        if method == "GET" and route == f"/jobs/{JOB_ID}/checkpoints":
            return 200, {
                "counts": {"completed": 7, "failed": 1, "in_progress": 0},
                "latest": {
                    "completed": {"id": 42, "external_path": "file:/tmp/chk/42", "latest_ack_timestamp": 1700000001234},
                    "failed": {"id": 41, "failure_message": "Checkpoint expired before completing."},
                },
            }
        if method == "POST" and route == f"/jobs/{JOB_ID}/stop":
            return 202, {"request-id": "trigger-9"}
        if method == "GET" and route == f"/jobs/{JOB_ID}/savepoints/trigger-9":
            self.savepoint_polls += 1
            if self.savepoint_polls <= self.savepoint_polls_in_progress:
                return 200, {"status": {"id": "IN_PROGRESS"}}
            return 200, {"status": {"id": "COMPLETED"}, "operation": self.savepoint_result}
        return 404, {"errors": [f"Not found: {route}"]}

    def _fetch(self, op: dict, handle: str, token: int) -> tuple[int, object]:
        op["fetches"] += 1
        if op["fetches"] == 1:  # the first fetch is always NOT_READY, as for a real async operation
            return 200, {"resultType": "NOT_READY", "isQueryResult": False, "resultKind": "SUCCESS", "results": {}}
        if op["kind"] == "fail_fetch":
            return 500, {"errors": ["Internal server error.", FLINK_TRACE]}
        if op["kind"] == "insert":
            if token == 0:
                return 200, {
                    "resultType": "PAYLOAD",
                    "isQueryResult": False,
                    "jobID": JOB_ID,
                    "resultKind": "SUCCESS_WITH_CONTENT",
                    "results": {
                        "columns": [{"name": "job id", "logicalType": {"type": "VARCHAR"}}],
                        "rowFormat": "JSON",
                        "data": [{"kind": "INSERT", "fields": [JOB_ID]}],
                    },
                    "nextResultUri": f"/v2/sessions/{SESSION}/operations/{handle}/result/1?rowFormat=JSON",
                }
            return 200, {"resultType": "EOS", "isQueryResult": False, "jobID": JOB_ID, "results": {"columns": [], "data": []}}
        # "rows": two pages of a query result, the second one addressed with a /v1/ URI as older
        # gateways do (the hook rewrites it to /v2/; this server serves only /v2/)
        if token == 0:
            return 200, {
                "resultType": "PAYLOAD",
                "isQueryResult": True,
                "resultKind": "SUCCESS_WITH_CONTENT",
                "results": {
                    "columns": [
                        {"name": "city", "logicalType": {"type": "VARCHAR"}},
                        {"name": "n", "logicalType": {"type": "BIGINT"}},
                    ],
                    "rowFormat": "JSON",
                    "data": [{"kind": "INSERT", "fields": ["Berlin", 3]}, {"kind": "INSERT", "fields": ["Paris", 5]}],
                },
                "nextResultUri": f"/v1/sessions/{SESSION}/operations/{handle}/result/1?rowFormat=JSON",
            }
        if token == 1:
            return 200, {
                "resultType": "PAYLOAD",
                "results": {"columns": [], "data": [{"kind": "INSERT", "fields": ["Rome", 1]}]},
                "nextResultUri": f"/v2/sessions/{SESSION}/operations/{handle}/result/2?rowFormat=JSON",
            }
        return 200, {"resultType": "EOS", "results": {"data": []}}


def _make_handler(fake: FakeFlink):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def fake_flink(monkeypatch):
    fake = FakeFlink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"flink://127.0.0.1:{port}/?sql_gateway_port={port}")
    fake.port = port
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook_log(caplog):
    """Airflow's hook logger is structlog and does not reach caplog outside a task, so the hook
    gets a standard logging.Logger (the mixin uses `_log` when it is set)."""
    logger = logging.getLogger("test.lakehouse.flink_hook")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    return logger


def make_hook(logger: logging.Logger | None = None) -> FlinkHook:
    hook = FlinkHook(CONN_ID)
    if logger is not None:
        hook._log = logger
    return hook


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
    [res] = make_hook().execute_sql(["SELECT city, COUNT(*) AS n FROM orders GROUP BY city"], session_config={"parallelism.default": 2})
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


def test_result_timeout(fake_flink):
    # every operation's first fetch is NOT_READY; a zero timeout gives up after that
    with pytest.raises(FlinkSqlError, match=r"no result within 0 s"):
        make_hook().execute_sql(["SELECT 1"], result_timeout=0)
    assert fake_flink.paths("DELETE") == [f"/v2/sessions/{SESSION}"]


# ---------------------------------------------------------------------------------- JobManager
def test_list_jobs_and_active_jobs_named(fake_flink):
    hook = make_hook()
    assert [(j.job_id, j.state) for j in hook.list_jobs()] == [(JOB_ID, "RUNNING"), ("old", "CANCELED"), ("other", "RUNNING")]
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
    with pytest.raises(FlinkJobError, match=r"is RESTARTING instead of checkpointing: java.lang.RuntimeException: boom"):
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
        "\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(ExecutionFailureHandler.java:180)\n"
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
            "stack-trace": "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint Coordinator is suspending.",
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
    assert (s.is_running, s.is_active, s.is_terminal, s.is_recovering, s.is_failing_or_cancelled) == \
        JOB_STATE_PREDICATES[state]
    assert s.is_restarting == (state == "RESTARTING")
    assert s.is_active != s.is_terminal  # every state is one or the other
