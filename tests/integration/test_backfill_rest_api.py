"""The on-call backfill through a running Airflow: api-server, scheduler and dag-processor.

The test triggers `t1_backfill` over the REST API, as the UI's trigger form does, and checks the
outcome from the API too (run state, the report's XCom, the task log). The services run from
scripts/airflow_services.sh in their own Airflow home (a temp dir, SQLite) on free ports, with auth
on, and their connections point at this session's throw-away warehouse and MySQL database (it_env),
so neither the user's Airflow nor the demo warehouse is touched.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from lakehouse.registry import registry
from lakehouse.streaming import create_tables

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "airflow_services.sh"
DAG_ID = "t1_backfill"
TABLE = "dws.dws_city_daily"
TODAY = datetime.now(timezone.utc).date()
YESTERDAY, TWO_DAYS_AGO = (TODAY - timedelta(days=1)).isoformat(), (TODAY - timedelta(days=2)).isoformat()
RUN_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Airflow:
    """A REST API client with a token from POST /auth/token, plus the services' logs for failure messages."""

    def __init__(self, url: str, env: dict, log_dir: Path):
        self.url, self.env, self.log_dir = url, env, log_dir
        self.http = httpx.Client(base_url=url, timeout=30)

    def login(self, user: str, password: str) -> None:
        r = self.http.post("/auth/token", json={"username": user, "password": password})
        assert r.status_code == 201, f"POST /auth/token: {r.status_code} {r.text}"
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def run_path(self, run_id: str) -> str:
        return f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"

    def trigger(self, conf: dict) -> httpx.Response:
        # logical_date is a required field of the body in Airflow 3; null means "no logical date".
        return self.http.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(self.run_path(run_id))
            assert r.status_code == 200, r.text
            run = r.json()
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {run['state']} after {timeout} s\n{self.diagnostics(run_id)}")
            time.sleep(2)

    def task_instances(self, run_id: str) -> dict[str, dict]:
        r = self.get(self.run_path(run_id) + "/taskInstances")
        assert r.status_code == 200, r.text
        return {(ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti
                for ti in r.json()["task_instances"]}

    def task_log(self, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        r = self.get(f"{self.run_path(run_id)}/taskInstances/{task_id}/logs/{try_number}",
                     params={"full_content": "true", "map_index": map_index}, headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text
        content = r.json()["content"]
        if isinstance(content, str):
            return content
        # Structured log lines, rendered as the UI shows them: the event, then any exception
        # (error_detail holds the exception's type and message, which the event does not repeat).
        lines = []
        for entry in content:
            if not isinstance(entry, dict):
                lines.append(str(entry))
                continue
            lines.append(str(entry.get("event", "")))
            for exc in entry.get("error_detail") or []:
                lines.append(f"{exc.get('exc_type')}: {exc.get('exc_value')}")
        return "\n".join(lines)

    def diagnostics(self, run_id: str) -> str:
        """Task states, the logs of tasks that did not succeed, and the scheduler's log tail."""
        out = []
        try:
            for name, ti in self.task_instances(run_id).items():
                out.append(f"{name}: {ti['state']} (try {ti['try_number']})")
                if ti["state"] not in ("success", None) and ti["try_number"]:
                    out.append(self.task_log(run_id, ti["task_id"], ti["try_number"], ti["map_index"])[-3000:])
        except Exception as exc:  # diagnostics must not hide the real failure
            out.append(f"(task instances unavailable: {exc})")
        return "\n".join(out) + "\n" + self.service_logs()

    def service_logs(self, lines: int = 40) -> str:
        out = []
        for name in ("api-server", "scheduler", "dag-processor"):
            path = self.log_dir / f"airflow-{name}.log"
            if path.exists():
                out.append(f"--- {path} (last {lines} lines)\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def _services(command: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def airflow_api(it_env, tmp_path_factory):
    env = it_env
    # A dry run reads the tables with pypaimon: they must exist in this session's warehouse.
    create_tables(list(registry().tables.values()), flink=env.flink, paimon=env.paimon)

    home = tmp_path_factory.mktemp("airflow-services")
    port = _free_port()
    password = secrets.token_urlsafe(12)
    log_dir = home / "service-logs"
    svc_env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_API_SERVER_PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW_SERVICES_LOG_DIR": str(log_dir),
        "AIRFLOW_ADMIN_USER": "oncall",
        "AIRFLOW_ADMIN_PASSWORD": password,
        # The DAG's tasks read and lease through the default connections: this session's throw-aways.
        "AIRFLOW_CONN_PAIMON_DEFAULT": os.environ["AIRFLOW_CONN_IT_PAIMON"],
        "AIRFLOW_CONN_MYSQL_SOURCE": os.environ["AIRFLOW_CONN_IT_MYSQL"],
        "AIRFLOW_CONN_LAKEHOUSE_OPS": os.environ["AIRFLOW_CONN_IT_MYSQL"],
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "plugins"), os.environ.get("PYTHONPATH")) if p),
    }
    api = Airflow(f"http://127.0.0.1:{port}", svc_env, log_dir)
    status = _services("status", svc_env)
    started = status.returncode != 0  # a fresh home: nothing runs there yet, so this fixture starts them
    try:
        if started:
            out = _services("start", svc_env)
            assert out.returncode == 0, f"airflow_services.sh start failed:\n{out.stdout}\n{out.stderr}\n{api.service_logs()}"

        # Auth is on: nothing without a token, a wrong password is refused.
        assert api.get(f"/api/v2/dags/{DAG_ID}").status_code == 401
        assert api.http.post("/auth/token", json={"username": "oncall", "password": "wrong"}).status_code == 401
        api.login("oncall", password)

        deadline = time.monotonic() + 120
        while (r := api.get(f"/api/v2/dags/{DAG_ID}")).status_code != 200:
            assert r.status_code == 404, r.text
            errors = api.get("/api/v2/importErrors").json()["import_errors"]
            assert not [e for e in errors if DAG_ID in e["filename"]], errors
            assert time.monotonic() < deadline, f"{DAG_ID} was not parsed within 120 s\n{api.service_logs()}"
            time.sleep(2)
        r = api.http.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        assert r.status_code == 200 and r.json()["is_paused"] is False, r.text
        yield api
    finally:
        api.http.close()
        if started:
            out = _services("stop", svc_env)
            assert out.returncode == 0, out.stdout + out.stderr


def test_dry_run_triggered_over_rest_api_reports_the_partition(airflow_api, it_env):
    api = airflow_api
    conf = {"tables": [TABLE], "start_date": YESTERDAY, "end_date": YESTERDAY, "dry_run": True, "parallel_days": 1}
    r = api.trigger(conf)
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["conf"] == conf and created["logical_date"] is None and created["run_type"] == "manual"
    run_id = created["dag_run_id"]

    run = api.wait_run(run_id)
    assert run["state"] == "success", api.diagnostics(run_id)
    states = {name: ti["state"] for name, ti in api.task_instances(run_id).items()}
    assert states == {"validate_request": "success", "lanes_of": "success", "backfill_lane[0]": "success",
                      "report": "success"}, states

    r = api.get(f"{api.run_path(run_id)}/taskInstances/report/xcomEntries/return_value")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    rows = json.loads(value) if isinstance(value, str) else value
    assert [(row["table"], row["dt"], row["dry_run"]) for row in rows] == [(TABLE, YESTERDAY, True)], rows
    # A dry run reports what is there and writes nothing: no overwrite snapshot, none in the table.
    assert rows[0]["after"] is None and rows[0]["overwrite_snapshot_id"] is None, rows
    assert it_env.paimon.latest_snapshot(TABLE) is None
    report_log = api.task_log(run_id, "report", api.task_instances(run_id)["report"]["try_number"])
    assert f"{YESTERDAY} {TABLE}" in report_log and "(dry run)" in report_log, report_log[-3000:]


def test_bad_request_fails_in_validate_request_with_what_to_fix(airflow_api):
    api = airflow_api
    conf = {"tables": [TABLE], "start_date": YESTERDAY, "end_date": TWO_DAYS_AGO, "dry_run": True, "parallel_days": 1}
    r = api.trigger(conf)
    assert r.status_code == 200, r.text  # both are valid dates: the form accepts it, the DAG refuses it
    run_id = r.json()["dag_run_id"]

    run = api.wait_run(run_id)
    assert run["state"] == "failed", api.diagnostics(run_id)
    tis = api.task_instances(run_id)
    validate = tis["validate_request"]
    assert validate["state"] == "failed", {n: t["state"] for n, t in tis.items()}
    assert validate["try_number"] == 1  # retries=0: a bad request is not retried
    assert all(t["state"] in ("upstream_failed", None) for n, t in tis.items() if n != "validate_request"), \
        {n: t["state"] for n, t in tis.items()}
    log = api.task_log(run_id, "validate_request", validate["try_number"])
    assert "Nothing was written. Fix the backfill request" in log, log[-3000:]
    assert f"end_date {TWO_DAYS_AGO} is before start_date {YESTERDAY}" in log, log[-3000:]


@pytest.mark.parametrize("conf, message", [
    ({"tables": ["dws.no_such_table"], "start_date": YESTERDAY, "end_date": YESTERDAY},
     ["Invalid input for param tables", "'dws.no_such_table' is not one of"]),
    ({"tables": [TABLE], "start_date": "2026-02-30", "end_date": YESTERDAY},
     ["Invalid input for param start_date", "'2026-02-30' is not a 'date'"]),
])
def test_form_errors_are_refused_at_trigger_time(airflow_api, conf, message):
    api = airflow_api
    runs_before = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"]
    r = api.trigger(conf)
    # Airflow validates the conf against the DAG's Params before creating the run: 400, no run.
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert all(m in detail for m in message), detail
    assert api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"] == runs_before


def test_trigger_body_needs_logical_date(airflow_api):
    # The body must carry logical_date (null is fine): without it the API answers 422 naming the field.
    r = airflow_api.http.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"conf": {}})
    assert r.status_code == 422 and "logical_date" in r.text, r.text
