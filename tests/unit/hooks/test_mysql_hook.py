"""MySqlHook: connection lookup, a real pymysql connect to a closed port, and the transaction
semantics of cursor() (checked with a recording stand-in for the pymysql connection)."""

from __future__ import annotations

import socket

import pytest

from lakehouse.hooks._base import MissingConnectionError
from lakehouse.hooks.mysql import MySqlHook, MySqlUnavailableError
from tests.support.pymysql import FakeConn

CONN_ID = "mysql_test"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_MYSQL_NOPE", raising=False)
    with pytest.raises(MissingConnectionError) as exc:
        MySqlHook("mysql_nope").get_conn()
    assert "Airflow connection 'mysql_nope' is not defined" in str(exc.value)
    assert "AIRFLOW_CONN_MYSQL_NOPE='mysql://" in str(exc.value)


def test_connection_params(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", "mysql://app:s3cr%40t@db.internal:3307/delivery?ssl=false")
    params = MySqlHook(CONN_ID).connection_params()
    assert params == {
        "host": "db.internal",
        "port": 3307,
        "user": "app",
        "password": "s3cr@t",
        "database": "delivery",
        "extra": {"ssl": "false"},
    }


def test_connection_params_defaults(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", "mysql://")
    params = MySqlHook(CONN_ID).connection_params()
    assert (params["host"], params["port"], params["password"], params["database"]) == ("127.0.0.1", 3306, "", None)


def test_closed_port_raises_unavailable(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", f"mysql://app:pw-Secret-9@127.0.0.1:{port}/delivery")
    with pytest.raises(MySqlUnavailableError) as exc:
        MySqlHook(CONN_ID).get_conn()
    msg = str(exc.value)
    assert f"cannot connect to MySQL at 127.0.0.1:{port} as 'app'" in msg
    assert f"(connection '{CONN_ID}')" in msg
    assert "`make up`" in msg
    assert "pw-Secret-9" not in msg
    import pymysql

    assert isinstance(exc.value.__cause__, pymysql.err.OperationalError)


def test_query_helpers_on_closed_port_raise_unavailable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", f"mysql://app:app@127.0.0.1:{_closed_port()}/delivery")
    with pytest.raises(MySqlUnavailableError):
        MySqlHook(CONN_ID).get_records("SELECT 1")


# ---------------------------------------------------------------------------------- transactions
@pytest.fixture
def fake_conn(monkeypatch):
    conn = FakeConn(fail_on="fail")
    monkeypatch.setattr(MySqlHook, "get_conn", lambda self: conn)
    return conn


def test_get_records_commits_and_closes(fake_conn):
    hook = MySqlHook(CONN_ID)
    assert hook.get_records("SELECT id, name FROM t WHERE x = %s", (5,)) == [(1, "a"), (2, "b")]
    assert fake_conn.events == [
        ("execute", "SELECT id, name FROM t WHERE x = %s", (5,)),
        "cursor.close",
        "commit",
        "close",
    ]


def test_get_first(fake_conn):
    hook = MySqlHook(CONN_ID)
    assert hook.get_first("SELECT id, name FROM t WHERE x = %s", (5,)) == (1, "a")
    assert hook.get_first("SELECT id, name FROM t WHERE x = %s", (0,)) is None


def test_run_script_rolls_back_on_error(fake_conn):
    with pytest.raises(RuntimeError, match="boom"):
        MySqlHook(CONN_ID).run_script(["INSERT INTO t VALUES (1)", "fail here", "INSERT INTO t VALUES (2)"])
    assert fake_conn.events == [
        ("execute", "INSERT INTO t VALUES (1)", None),
        ("execute", "fail here", None),
        "cursor.close",
        "rollback",
        "close",
    ]


# ---------------------------------------------------------------------------------- timeouts
@pytest.fixture
def connect_kwargs(monkeypatch):
    """What the hook passes to pymysql.connect (which is not called for real)."""
    import pymysql

    seen: dict = {}
    monkeypatch.setattr(pymysql, "connect", lambda **kwargs: seen.update(kwargs) or FakeConn())
    return seen


def test_connections_have_connect_read_and_write_timeouts(monkeypatch, connect_kwargs):
    """pymysql waits for ever on a server that stops answering unless read/write timeouts are set."""
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", "mysql://app:app@db:3306/delivery")
    MySqlHook(CONN_ID).get_conn()
    assert (connect_kwargs["connect_timeout"], connect_kwargs["read_timeout"], connect_kwargs["write_timeout"]) == (
        10,
        300,
        300,
    )


def test_timeouts_from_the_connection_extra(monkeypatch, connect_kwargs):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MYSQL_TEST", "mysql://app:app@db:3306/delivery?connect_timeout=3&read_timeout=60&write_timeout=30"
    )
    MySqlHook(CONN_ID).get_conn()
    assert (connect_kwargs["connect_timeout"], connect_kwargs["read_timeout"], connect_kwargs["write_timeout"]) == (
        3,
        60,
        30,
    )


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_bad_timeout_in_the_extra_is_a_config_error(monkeypatch, connect_kwargs, value):
    from lakehouse.core.errors import ConfigError

    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", f"mysql://app:app@db:3306/delivery?read_timeout={value}")
    with pytest.raises(ConfigError, match=rf"read_timeout.*{CONN_ID}.*positive number of seconds"):
        MySqlHook(CONN_ID).get_conn()
    assert connect_kwargs == {}
