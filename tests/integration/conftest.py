"""Integration fixtures: the real local stack (MariaDB, Flink session cluster, SQL Gateway).

Each test session works in its own MySQL database (it_<pid>) and its own Paimon warehouse
(a temp dir), and runs its Flink jobs under its own names, so a running `make demo` is not
disturbed. In CI (CI=true) a missing stack fails the tests; elsewhere they are skipped. The
session's own Airflow services (`airflow_api`), on that database and warehouse, start once for
every test that drives them (REST API and browser tests).
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from lakehouse.dev import oltp

# MySQL binlog client ids of this session's CDC jobs: distinct per session (MariaDB drops a client when
# another connects with its server id), and away from the demo's (5400+).
SERVER_ID_BASE = 10000 + (os.getpid() % 5000) * 20
STACK_HINT = "start it with `make up` (or run `make test`, which does)"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def stack():
    needed = {
        "MariaDB": int(os.environ.get("MYSQL_PORT", 3306)),
        "Flink REST": int(os.environ.get("FLINK_REST_PORT", 8081)),
        "SQL Gateway": int(os.environ.get("SQL_GATEWAY_PORT", 8083)),
    }
    down = [f"{name} (port {port})" for name, port in needed.items() if not _port_open(port)]
    if down:
        message = f"local stack is down: {', '.join(down)}; {STACK_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class ItEnv:
    """Hooks on one throw-away MySQL database and Paimon warehouse, and the Flink jobs to cancel."""

    def __init__(self, conn_prefix: str, db: str, warehouse):
        from lakehouse.hooks.flink import FlinkHook
        from lakehouse.hooks.mysql import MySqlHook
        from lakehouse.hooks.paimon import PaimonHook

        self.db, self.warehouse = db, warehouse
        self.mysql = MySqlHook(f"{conn_prefix}_mysql")
        self.cdc = MySqlHook(f"{conn_prefix}_mysql_cdc")
        self.paimon = PaimonHook(f"{conn_prefix}_paimon")
        self.flink = FlinkHook()
        self.job_names: list[str] = []


def _open_env(conn_prefix: str, warehouse, server_id_base: int) -> ItEnv:
    """Create database it_<pid>_<rand>, seed dimensions, and point Airflow connections at it.

    Distinct `conn_prefix` and `server_id_base` let two environments run CDC jobs side by side
    (MySQL refuses two binlog clients with one server id).
    """
    port = int(os.environ.get("MYSQL_PORT", 3306))
    db = f"it_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    user, pw = os.environ.get("MYSQL_APP_USER", "app"), os.environ.get("MYSQL_APP_PASSWORD", "app")
    cdc_user, cdc_pw = os.environ.get("MYSQL_CDC_USER", "flink_cdc"), os.environ.get("MYSQL_CDC_PASSWORD", "flink_cdc")
    conn_var = f"AIRFLOW_CONN_{conn_prefix.upper()}"
    os.environ[f"{conn_var}_MYSQL"] = f"mysql://{user}:{pw}@127.0.0.1:{port}/{db}"
    os.environ[f"{conn_var}_MYSQL_CDC"] = (
        f"mysql://{cdc_user}:{cdc_pw}@127.0.0.1:{port}/{db}?server_id_base={server_id_base}"
    )
    os.environ[f"{conn_var}_PAIMON"] = f"paimon://?warehouse={warehouse}"
    os.environ.setdefault(
        "AIRFLOW_CONN_FLINK_DEFAULT",
        f"flink://127.0.0.1:{os.environ.get('FLINK_REST_PORT', 8081)}"
        f"/?sql_gateway_port={os.environ.get('SQL_GATEWAY_PORT', 8083)}",
    )

    # The database does not exist yet: create it through a connection without a default schema.
    conn = oltp.admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
    conn.close()
    env = ItEnv(conn_prefix, db, warehouse)
    oltp.create_schema(env.mysql)
    oltp.seed_dimensions(env.mysql, users=300, shops=50, riders=60)
    return env


def _close_env(env: ItEnv) -> None:
    for name in env.job_names:
        for job in env.flink.active_jobs_named(name):
            env.flink.cancel_job(job.job_id)
    conn = oltp.admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{env.db}`")
    conn.close()


@pytest.fixture(scope="session")
def it_env(stack, tmp_path_factory):
    """The session's shared source database and warehouse (connections it_mysql, it_mysql_cdc, it_paimon)."""
    env = _open_env("it", tmp_path_factory.mktemp("warehouse"), server_id_base=SERVER_ID_BASE)
    yield env
    _close_env(env)


@pytest.fixture(scope="module")
def isolated_env(stack, tmp_path_factory):
    """A module's own source database and warehouse, for tests that need a job started from nothing
    while the session's shared pipelines keep running (connections itx_mysql, itx_mysql_cdc, itx_paimon)."""
    env = _open_env("itx", tmp_path_factory.mktemp("isolated_warehouse"), server_id_base=SERVER_ID_BASE + 10)
    yield env
    _close_env(env)


@pytest.fixture(scope="session")
def airflow_api(it_env, tmp_path_factory):
    """The session's own running Airflow (tests/integration/airflow_services.py): started once, for the
    REST API tests and the browser tests alike, on the session's it_env; a logged-in REST client."""
    from tests.integration.airflow_services import running_airflow

    with running_airflow(it_env, tmp_path_factory.mktemp("airflow-services")) as api:
        yield api
