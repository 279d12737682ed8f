"""Integration fixtures: the real local stack (MariaDB, Flink session cluster, SQL Gateway).

Each test session works in its own MySQL database (it_<pid>) and its own Paimon warehouse
(a temp dir), and runs its Flink jobs under its own names, so a running `make demo` is not
disturbed. In CI (CI=true) a missing stack fails the tests; elsewhere they are skipped.
"""
from __future__ import annotations

import os
import socket
import uuid

import pytest

from lakehouse import oltp

STACK_HINT = "start it with `make up` (or run `make test`, which does)"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def stack():
    needed = {"MariaDB": int(os.environ.get("MYSQL_PORT", 3306)),
              "Flink REST": int(os.environ.get("FLINK_REST_PORT", 8081)),
              "SQL Gateway": int(os.environ.get("SQL_GATEWAY_PORT", 8083))}
    down = [f"{name} (port {port})" for name, port in needed.items() if not _port_open(port)]
    if down:
        message = f"local stack is down: {', '.join(down)}; {STACK_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def it_env(stack, tmp_path_factory):
    """Connections for a throw-away source database and warehouse; yields the hooks."""
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook

    port = int(os.environ.get("MYSQL_PORT", 3306))
    db = f"it_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    warehouse = tmp_path_factory.mktemp("warehouse")
    user, pw = os.environ.get("MYSQL_APP_USER", "app"), os.environ.get("MYSQL_APP_PASSWORD", "app")
    cdc_user, cdc_pw = os.environ.get("MYSQL_CDC_USER", "flink_cdc"), os.environ.get("MYSQL_CDC_PASSWORD", "flink_cdc")
    os.environ["AIRFLOW_CONN_IT_MYSQL"] = f"mysql://{user}:{pw}@127.0.0.1:{port}/{db}"
    os.environ["AIRFLOW_CONN_IT_MYSQL_CDC"] = f"mysql://{cdc_user}:{cdc_pw}@127.0.0.1:{port}/{db}?server_id_base=5600"
    os.environ["AIRFLOW_CONN_IT_PAIMON"] = f"paimon://?warehouse={warehouse}"
    os.environ.setdefault("AIRFLOW_CONN_FLINK_DEFAULT",
                          f"flink://127.0.0.1:{os.environ.get('FLINK_REST_PORT', 8081)}/?sql_gateway_port={os.environ.get('SQL_GATEWAY_PORT', 8083)}")

    admin = MySqlHook("it_mysql")
    # The database does not exist yet: create it through a connection without a default schema.
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
    conn.close()
    oltp.create_schema(admin)
    oltp.seed_dimensions(admin, users=300, shops=50, riders=60)

    env = type("ItEnv", (), {})()
    env.db, env.warehouse = db, warehouse
    env.mysql, env.cdc, env.paimon, env.flink = admin, MySqlHook("it_mysql_cdc"), PaimonHook("it_paimon"), FlinkHook()
    env.job_names = []
    yield env

    for name in env.job_names:
        for job in env.flink.active_jobs_named(name):
            env.flink.cancel_job(job.job_id)
    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    conn.close()
