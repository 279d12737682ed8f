"""A running Airflow for the integration tests: api-server, scheduler, dag-processor and triggerer.

The services run from scripts/airflow_services.sh in their own Airflow home (a temp dir, its own
SQLite database) on free ports, with auth on and their own admin password, and their connections
point at the session's throw-away warehouse and MySQL database (it_env), so neither the user's
Airflow nor the demo warehouse is touched. Their Flink pipelines are the session's PREFIX-named ones
(LAKEHOUSE_PIPELINE_PREFIX). The fixture `airflow_api` (tests/integration/conftest.py) starts them
once per session for every test that drives them: over the REST API
(batch/test_backfill_rest_api.py) and in a browser (ui/test_airflow_ui.py).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from lakehouse.core.registry import registry
from lakehouse.streaming.deploy import create_tables
from tests.integration.helpers import PREFIX

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "airflow_services.sh"
DAG_ID = "t1_backfill"
DAILY_DAG_ID = "t1_daily"
RUN_TIMEOUT_S = 300
ADMIN_USER = "oncall"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Airflow:
    """A REST API client with a token from POST /auth/token, plus the services' logs for failure messages.

    `user` and `password` are the admin's login (for the UI's sign-in form too)."""

    def __init__(self, url: str, env: dict, log_dir: Path, user: str = ADMIN_USER, password: str = ""):
        self.url, self.env, self.log_dir = url, env, log_dir
        self.user, self.password = user, password
        self.http = httpx.Client(base_url=url, timeout=30)

    def login(self, user: str, password: str) -> None:
        r = self.http.post("/auth/token", json={"username": user, "password": password})
        assert r.status_code == 201, f"POST /auth/token: {r.status_code} {r.text}"
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def run_path(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"

    def trigger(self, conf: dict) -> httpx.Response:
        # logical_date is a required field of the body in Airflow 3; null means "no logical date".
        return self.http.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S, dag_id: str = DAG_ID) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(self.run_path(run_id, dag_id))
            assert r.status_code == 200, r.text
            run = r.json()
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {run['state']} after {timeout} s\n{self.diagnostics(run_id, dag_id)}")
            time.sleep(2)

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, dict]:
        r = self.get(self.run_path(run_id, dag_id) + "/taskInstances")
        assert r.status_code == 200, r.text
        return {
            (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti
            for ti in r.json()["task_instances"]
        }

    def task_log(self, run_id: str, task_id: str, try_number: int, map_index: int = -1, dag_id: str = DAG_ID) -> str:
        r = self.get(
            f"{self.run_path(run_id, dag_id)}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
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

    def diagnostics(self, run_id: str, dag_id: str = DAG_ID) -> str:
        """Task states, the logs of tasks that did not succeed, and the scheduler's log tail."""
        out = []
        try:
            for name, ti in self.task_instances(run_id, dag_id).items():
                out.append(f"{name}: {ti['state']} (try {ti['try_number']})")
                if ti["state"] not in ("success", None) and ti["try_number"]:
                    out.append(self.task_log(run_id, ti["task_id"], ti["try_number"], ti["map_index"], dag_id)[-3000:])
        except Exception as exc:  # diagnostics must not hide the real failure
            out.append(f"(task instances unavailable: {exc})")
        return "\n".join(out) + "\n" + self.service_logs()

    def service_logs(self, lines: int = 40) -> str:
        out = []
        for name in ("api-server", "scheduler", "dag-processor"):
            path = self.log_dir / f"airflow-{name}.log"
            if path.exists():
                out.append(
                    f"--- {path} (last {lines} lines)\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)


def _services(command: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@contextmanager
def running_airflow(env, home: Path) -> Iterator[Airflow]:
    """The four services in Airflow home `home` for the session's it_env, logged in as ADMIN_USER, with
    t1_backfill and t1_daily parsed and unpaused; stopped on exit."""
    # A dry run reads the tables with pypaimon: they must exist in this session's warehouse.
    create_tables(list(registry().tables.values()), flink=env.flink, paimon=env.paimon)

    port = free_port()
    password = secrets.token_urlsafe(12)
    log_dir = home / "service-logs"
    svc_env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        # Its own database (not the session's throw-away one, where `airflow dags test` runs, nor the
        # stack's Postgres that scripts/env.sh names).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_API_SERVER_PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_SERVICES_LOG_DIR": str(log_dir),
        "AIRFLOW_ADMIN_USER": ADMIN_USER,
        "AIRFLOW_ADMIN_PASSWORD": password,
        # The DAG's tasks read and lease through the default connections: this session's throw-aways.
        "AIRFLOW_CONN_PAIMON_DEFAULT": os.environ["AIRFLOW_CONN_IT_PAIMON"],
        "AIRFLOW_CONN_MYSQL_SOURCE": os.environ["AIRFLOW_CONN_IT_MYSQL"],
        "AIRFLOW_CONN_LAKEHOUSE_OPS": os.environ["AIRFLOW_CONN_IT_MYSQL"],
        # ... and their Flink pipelines are this session's (t1_daily's wait_for_day needs the running
        # CDC job <PREFIX>ods_delivery_cdc, which the tests deploy).
        "LAKEHOUSE_PIPELINE_PREFIX": PREFIX,
        # t1_daily has catchup from its start_date: unpaused, the scheduler would run every day since
        # then and publish their tags in this session's warehouse. Only the runs the tests create
        # (manual triggers, backfills) run here.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "plugins"), os.environ.get("PYTHONPATH")) if p),
    }
    # airflow_services.sh sources scripts/env.sh again, and env.sh appends "}}" to an
    # AIRFLOW_CONN_FLINK_DEFAULT that is already set (the `}` of its JSON default closes the ${...:-...}
    # early): the tasks would find no valid flink_default. Left unset, env.sh defines it from
    # FLINK_REST_PORT and SQL_GATEWAY_PORT, which must then name the cluster this session uses.
    svc_env.pop("AIRFLOW_CONN_FLINK_DEFAULT", None)
    flink_rest = f"http://127.0.0.1:{os.environ.get('FLINK_REST_PORT', 8081)}"
    assert env.flink.endpoints.rest_url == flink_rest, (env.flink.endpoints.rest_url, flink_rest)
    api = Airflow(f"http://127.0.0.1:{port}", svc_env, log_dir, ADMIN_USER, password)
    status = _services("status", svc_env)
    started = status.returncode != 0  # a fresh home: nothing runs there yet, so this starts them
    try:
        if started:
            out = _services("start", svc_env)
            assert out.returncode == 0, (
                f"airflow_services.sh start failed:\n{out.stdout}\n{out.stderr}\n{api.service_logs()}"
            )

        # The pools the DAGs' tasks take slots of (a task in a pool that does not exist is never scheduled).
        pools = subprocess.run(
            [
                sys.executable,
                "-m",
                "lakehouse.core.pools",
                "--apply",
                "--flink-slots",
                str(env.flink.cluster_slots()[1]),
            ],
            env=svc_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert pools.returncode == 0, pools.stdout + pools.stderr

        # Auth is on: nothing without a token, a wrong password is refused.
        assert api.get(f"/api/v2/dags/{DAG_ID}").status_code == 401
        assert api.http.post("/auth/token", json={"username": ADMIN_USER, "password": "wrong"}).status_code == 401
        api.login(ADMIN_USER, password)

        deadline = time.monotonic() + 120
        for dag_id in (DAG_ID, DAILY_DAG_ID):
            while (r := api.get(f"/api/v2/dags/{dag_id}")).status_code != 200:
                assert r.status_code == 404, r.text
                errors = api.get("/api/v2/importErrors").json()["import_errors"]
                assert not [e for e in errors if dag_id in e["filename"]], errors
                assert time.monotonic() < deadline, f"{dag_id} was not parsed within 120 s\n{api.service_logs()}"
                time.sleep(2)
            # Backfill runs, like all runs, only run while their DAG is unpaused.
            r = api.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            assert r.status_code == 200 and r.json()["is_paused"] is False, r.text
        yield api
    finally:
        api.http.close()
        if started:
            out = _services("stop", svc_env)
            assert out.returncode == 0, out.stdout + out.stderr
