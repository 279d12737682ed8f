"""A fake Flink for the hook tests: a real local HTTP server imitating the SQL Gateway (REST v2)
and the JobManager REST API; every request is recorded. (`tests.support.flink.FakeFlinkCluster` is
the other layer: the FlinkHook methods the control plane calls, without HTTP.)"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from lakehouse.hooks.flink import FlinkHook

CONN_ID = "flink_test"  # the connection the fixtures point at the fake server

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


class Raw(str):
    """A response body sent as is (not JSON-encoded): garbage from a proxy, a truncated answer."""


def streaming_jobs() -> list[dict]:
    """What /jobs/overview lists by default: two streaming jobs (one twice, cancelled once)."""
    return [
        {"jid": JOB_ID, "name": "ods_delivery_cdc", "state": "RUNNING", "start-time": 1700000000000},
        {"jid": "old", "name": "ods_delivery_cdc", "state": "CANCELED", "start-time": 1600000000000},
        {"jid": "other", "name": "dwd_orders", "state": "RUNNING", "start-time": 1700000000001},
    ]


class FakeFlinkRest:
    """State and behaviour of the fake cluster; tests tweak the attributes before calling the hook.

    Batch statements (behaviour "batch_running", "batch_restarting", "batch_fail") submit a job
    named after the session's `pipeline.name`, listed in /jobs/overview from then on; with
    `table.dml-sync` the gateway keeps answering NOT_READY while the job runs (as Flink does)."""

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
        self.session_properties: dict = {}
        self.jobs: list[dict] = streaming_jobs()  # /jobs/overview
        self.parallelism: dict[str, int] = {JOB_ID: 4, "other": 2}  # job id -> max vertex parallelism
        self.slots_total = 16
        self.slots_available: list[int] = [16]  # successive GET /overview; the last one repeats
        self.exceptions: dict[str, str] = {}  # job id -> root stack trace (JOB_ID: job_stacktrace)
        self.cancelled: list[str] = []  # job ids of PATCH /jobs/<id>?mode=cancel
        self.garbage: dict[str, tuple[int, object]] = {}  # route -> (status, payload) served instead
        self.batch_job_id = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
        self.batch_job_name: str | None = None  # a name the job gives itself (else the pipeline.name)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]

    def submitted_statements(self) -> list[str]:
        return [b["statement"] for m, p, b in self.requests if m == "POST" and p.endswith("/statements")]

    # each returns (status, json payload)
    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        with self.lock:
            self.requests.append((method, path, body))
        route = urlsplit(path).path
        if route in self.garbage:
            return self.garbage[route]
        if route.startswith("/v2/"):
            return self._gateway(method, route, body)
        return self._jobmanager(method, route)

    def _gateway(self, method: str, route: str, body: dict | None) -> tuple[int, object]:
        if method == "POST" and route == "/v2/sessions":
            if self.session_status != 200:
                return self.session_status, {
                    "errors": ["Internal server error.", "Caused by: java.lang.IllegalArgumentException: bad property"]
                }
            self.session_properties = dict((body or {}).get("properties") or {})
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
            if kind.startswith("batch_"):
                state = {"batch_running": "RUNNING", "batch_restarting": "RESTARTING", "batch_fail": "FAILED"}[kind]
                name = self.batch_job_name or self.session_properties.get("pipeline.name", "insert-into_default")
                self.jobs.append({"jid": self.batch_job_id, "name": name, "state": state, "start-time": 1800000000000})
                self.job_states[self.batch_job_id] = [state]
                self.parallelism[self.batch_job_id] = int(self.session_properties.get("parallelism.default", 1))
            return 200, {"operationHandle": op}
        m = re.fullmatch(rf"/v2/sessions/{SESSION}/operations/([^/]+)/result/(\d+)", route)
        if method == "GET" and m:
            return self._fetch(self.ops[m.group(1)], m.group(1), int(m.group(2)))
        if method == "GET" and route == "/v2/info":
            return 200, {"productName": "Apache Flink", "version": "1.20.1"}
        return 404, {"errors": [f"Not found: {route}"]}

    def _jobmanager(self, method: str, route: str) -> tuple[int, object]:
        if method == "GET" and route == "/overview":
            time.sleep(self.overview_delay)
            free = self.slots_available.pop(0) if len(self.slots_available) > 1 else self.slots_available[0]
            return 200, {
                "flink-version": "1.20.1",
                "taskmanagers": 2,
                "slots-total": self.slots_total,
                "slots-available": free,
            }
        if method == "GET" and route == "/jobs/overview":
            return 200, {"jobs": self.jobs}
        m = re.fullmatch(r"/jobs/([^/]+)", route)
        if method == "PATCH" and m:
            job_id = m.group(1)
            if not any(j["jid"] == job_id for j in self.jobs):
                return 404, {"errors": [f"Job {job_id} not found"]}
            self.cancelled.append(job_id)
            for j in self.jobs:
                if j["jid"] == job_id:
                    j["state"] = "CANCELED"
            self.job_states[job_id] = ["CANCELED"]
            return 202, {}
        if method == "GET" and m:
            listed = [j["state"] for j in self.jobs if j["jid"] == m.group(1)]
            states = self.job_states.get(m.group(1)) or listed
            if not states:
                return 404, {
                    "errors": [
                        f"org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job ({m.group(1)})"
                    ]
                }
            state = states.pop(0) if len(states) > 1 else states[0]
            name = next((j["name"] for j in self.jobs if j["jid"] == m.group(1)), "ods_delivery_cdc")
            parallelism = self.parallelism.get(m.group(1), 1)
            return 200, {
                "jid": m.group(1),
                "name": name,
                "state": state,
                "start-time": 1700000000000,
                "vertices": [
                    {"id": "v1", "name": "Source", "parallelism": 1, "status": "RUNNING"},
                    {"id": "v2", "name": "Writer", "parallelism": parallelism, "status": "RUNNING"},
                ],
            }
        m = re.fullmatch(r"/jobs/([^/]+)/exceptions", route)
        if method == "GET" and m and (m.group(1) == JOB_ID or m.group(1) in self.exceptions):
            trace = self.exceptions.get(m.group(1), self.job_stacktrace)
            return 200, {
                "root-exception": "java.lang.RuntimeException: old style",
                "exceptionHistory": {"entries": [{"exceptionName": "java.lang.RuntimeException", "stacktrace": trace}]},
            }
        if method == "GET" and m:
            return 200, {"root-exception": None, "exceptionHistory": {"entries": []}}
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
        if op["kind"] in ("batch_running", "batch_restarting"):  # dml-sync: no result while the job runs
            return 200, {"resultType": "NOT_READY", "isQueryResult": False, "resultKind": "SUCCESS", "results": {}}
        if op["kind"] == "batch_fail":
            return 500, {
                "errors": [
                    "Internal server error.",
                    "org.apache.flink.table.api.TableException: Failed to wait job finish\n"
                    "Caused by: org.apache.flink.runtime.client.JobExecutionException: Job execution failed.",
                ]
            }
        if op["kind"] == "endless":  # a result that keeps coming (ends after 3 s so a hook bug cannot hang)
            if time.monotonic() - op.setdefault("started", time.monotonic()) > 3:
                return 200, {"resultType": "EOS", "results": {"data": []}}
            return 200, {
                "resultType": "PAYLOAD",
                "results": {"columns": [{"name": "x"}], "data": [{"kind": "INSERT", "fields": [token]}]},
                "nextResultUri": f"/v2/sessions/{SESSION}/operations/{handle}/result/{token + 1}?rowFormat=JSON",
            }
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
            return 200, {
                "resultType": "EOS",
                "isQueryResult": False,
                "jobID": JOB_ID,
                "results": {"columns": [], "data": []},
            }
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


def _make_handler(fake: FakeFlinkRest):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = fake.handle(self.command, self.path, body)
            data = payload.encode() if isinstance(payload, Raw) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    return Handler


@contextmanager
def serving(fake: FakeFlinkRest):
    """Serve `fake` on a free local port (fake.port) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def make_hook(logger: logging.Logger | None = None) -> FlinkHook:
    hook = FlinkHook(CONN_ID)
    if logger is not None:
        hook._log = logger
    return hook
