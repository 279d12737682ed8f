"""`make demo` deploys through the scheduler: `demo deploy` logs in to the REST API, waits for the DAG to be
parsed, unpauses it, triggers a run and follows it; a failure names the failed task, its error and its
log file. The report ends with the UI address and login; pypaimon's INFO lines and the short-secret
warning are silenced. The API is faked with httpx.MockTransport; time is a fake clock."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from lakehouse.dev import demo
from lakehouse.dev.demo import AirflowUi, DeployFailed, trigger_and_wait

UI = AirflowUi("http://airflow.test", "admin", "secret")
RUN = "manual__2026-11-29T18:00:00+00:00"
TASKS = ["create_tables", "deploy_ods_delivery_cdc"]


class FakeAirflow:
    """The REST endpoints `trigger_and_wait` uses; `states` is consumed one poll at a time."""

    def __init__(self, *, states, run_states, paused=True, parsed_after=0, import_error=None, login_ok=True):
        self.states, self.run_states = list(states), list(run_states)
        self.paused, self.parsed_after, self.import_error, self.login_ok = paused, parsed_after, import_error, login_ok
        self.calls: list[tuple[str, str, dict | None]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append((request.method, path, body))
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "tok"}) if self.login_ok else httpx.Response(401)
        assert request.headers["Authorization"] == "Bearer tok"
        if path == "/api/v2/dags/streaming_deploy" and request.method == "GET":
            if self.parsed_after > 0:
                self.parsed_after -= 1
                return httpx.Response(404, json={"detail": "not found"})
            return httpx.Response(200, json={"dag_id": "streaming_deploy", "is_paused": self.paused})
        if path == "/api/v2/importErrors":
            errors = [{"filename": "/repo/dags/streaming_deploy.py", "stack_trace": self.import_error}]
            return httpx.Response(200, json={"import_errors": errors if self.import_error else []})
        if path == "/api/v2/dags/streaming_deploy" and request.method == "PATCH":
            self.paused = body["is_paused"]
            return httpx.Response(200, json={"is_paused": self.paused})
        if path == "/api/v2/dags/streaming_deploy/dagRuns" and request.method == "POST":
            return httpx.Response(200, json={"dag_run_id": RUN})
        if path.endswith("/taskInstances"):
            states = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            tis = [
                {
                    "dag_id": "streaming_deploy",
                    "dag_run_id": RUN,
                    "task_id": t,
                    "map_index": -1,
                    "try_number": n,
                    "state": s,
                }
                for t, (s, n) in zip(TASKS, states, strict=True)
            ]
            return httpx.Response(200, json={"task_instances": tis})
        if path == f"/api/v2/dags/streaming_deploy/dagRuns/{RUN}":
            state = self.run_states.pop(0) if len(self.run_states) > 1 else self.run_states[0]
            return httpx.Response(200, json={"state": state})
        raise AssertionError(f"unexpected {request.method} {path}")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def follow(fake: FakeAirflow, tmp_path, **kw):
    lines: list[str] = []
    clock = Clock()
    with httpx.Client(transport=httpx.MockTransport(fake.handler)) as client:
        run_id = trigger_and_wait(
            client, UI, airflow_home=tmp_path, out=lines.append, clock=clock, sleep=clock.sleep, **kw
        )
    return run_id, lines


def test_a_successful_run_is_triggered_followed_task_by_task_and_the_paused_dag_unpaused(tmp_path):
    fake = FakeAirflow(
        states=[[("running", 1), (None, 0)], [("success", 1), ("running", 1)], [("success", 1), ("success", 1)]],
        run_states=["running", "running", "success"],
        parsed_after=2,
    )
    run_id, lines = follow(fake, tmp_path)
    assert run_id == RUN
    assert ("PATCH", "/api/v2/dags/streaming_deploy", {"is_paused": False}) in fake.calls
    post = [c for c in fake.calls if c[0] == "POST" and c[1].endswith("/dagRuns")]
    assert len(post) == 1 and post[0][2]["logical_date"] is None
    progress = [line for line in lines if line.startswith("demo:   ")]
    assert [line.split()[1] for line in progress] == ["create_tables", "deploy_ods_delivery_cdc"]  # each once
    assert "(1/2 tasks done)" in progress[0] and "(2/2 tasks done)" in progress[1]
    assert lines[-1] == f"demo: streaming_deploy run {RUN} succeeded"


def test_an_unpaused_dag_is_left_as_it_is(tmp_path):
    fake = FakeAirflow(states=[[("success", 1), ("success", 1)]], run_states=["success"], paused=False)
    follow(fake, tmp_path)
    assert not [c for c in fake.calls if c[0] == "PATCH"]


def test_a_failed_run_names_the_failed_task_its_error_and_log_file(tmp_path):
    log = tmp_path / "logs" / "dag_id=streaming_deploy" / f"run_id={RUN}" / "task_id=create_tables" / "attempt=3.log"
    log.parent.mkdir(parents=True)
    records = [
        {"level": "info", "event": "Filling up the DagBag"},
        {
            "level": "error",
            "event": "Task failed with exception",
            "error_detail": [{"exc_type": "FlinkUnavailableError", "exc_value": "SQL Gateway unreachable"}],
        },
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    fake = FakeAirflow(states=[[("failed", 3), ("upstream_failed", 0)]], run_states=["failed"])
    with pytest.raises(DeployFailed) as exc:
        follow(fake, tmp_path)
    text = str(exc.value)
    assert f"streaming_deploy run {RUN}: failed" in text
    assert "create_tables: failed (attempt 3): FlinkUnavailableError: SQL Gateway unreachable" in text
    assert f"log: {log}" in text
    assert "not run (an upstream task failed): deploy_ods_delivery_cdc" in text
    assert f"{UI.url}/dags/streaming_deploy/runs/{RUN}" in text


def test_a_run_that_does_not_end_in_time_fails_naming_what_still_runs(tmp_path):
    fake = FakeAirflow(states=[[("success", 1), ("running", 1)]], run_states=["running"])
    with pytest.raises(DeployFailed) as exc:
        follow(fake, tmp_path, run_timeout=30, interval=5)
    text = str(exc.value)
    assert "still running after 30 s" in text
    assert "deploy_ods_delivery_cdc: running" in text and "task_id=deploy_ods_delivery_cdc/attempt=1.log" in text


def test_a_dag_that_does_not_import_fails_with_its_error(tmp_path):
    fake = FakeAirflow(states=[[]], run_states=["queued"], parsed_after=99, import_error="SyntaxError: bad")
    with pytest.raises(DeployFailed, match="streaming_deploy does not import:\nSyntaxError: bad"):
        follow(fake, tmp_path)
    assert not [c for c in fake.calls if c[0] == "POST" and c[1].endswith("/dagRuns")]


def test_a_dag_never_parsed_fails_pointing_at_the_dag_processor_log(tmp_path):
    fake = FakeAirflow(states=[[]], run_states=["queued"], parsed_after=99)
    with pytest.raises(DeployFailed, match="dag-processor"):
        follow(fake, tmp_path, parse_timeout=10)


def test_a_refused_login_names_the_settings(tmp_path):
    fake = FakeAirflow(states=[[]], run_states=["queued"], login_ok=False)
    with pytest.raises(DeployFailed, match="AIRFLOW_ADMIN_USER/AIRFLOW_ADMIN_PASSWORD"):
        follow(fake, tmp_path)


def test_the_ui_address_and_login_come_from_the_environment():
    ui = AirflowUi.from_env(
        {"AIRFLOW_API_SERVER_PORT": "8099", "AIRFLOW_ADMIN_USER": "oncall", "AIRFLOW_ADMIN_PASSWORD": "pw123"}
    )
    assert ui == AirflowUi("http://127.0.0.1:8099", "oncall", "pw123")
    assert "Airflow UI: http://127.0.0.1:8099   login: oncall / pw123" in demo.ui_lines(ui)


def test_quiet_logging_silences_pypaimon_info_and_the_short_secret_warning():
    demo.quiet_logging()
    assert not logging.getLogger("pypaimon.write.file_store_commit").isEnabledFor(logging.INFO)
    assert logging.getLogger("pypaimon.read").isEnabledFor(logging.WARNING)
    masker = logging.getLogger("airflow._shared.secrets_masker.secrets_masker")
    assert not masker.isEnabledFor(logging.WARNING)
