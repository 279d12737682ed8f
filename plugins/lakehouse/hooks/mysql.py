"""MySQL hook on pymysql, for the OLTP source (MariaDB locally) and any server on the MySQL protocol.

The connection (default `mysql_source`) is a plain MySQL URI. Values are always bound as
parameters; identifiers never come from user input. Every connection has a connect, read and
write timeout (seconds; the connection extras `connect_timeout`, `read_timeout`, `write_timeout`,
default 10, 300 and 300): a server that stops answering fails the call (pymysql's
OperationalError) instead of hanging the task. StarRocks speaks the same protocol:
`lakehouse.hooks.starrocks.StarRocksHook` is this hook with other defaults (class attributes below).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseHook

from lakehouse.core.errors import ConfigError, ExternalServiceError
from lakehouse.core.resources import MYSQL_SOURCE_CONN_ID
from lakehouse.hooks._base import get_connection


class MySqlUnavailableError(ExternalServiceError):
    """The MySQL server does not accept connections."""


class MySqlHook(BaseHook):
    """pymysql connections built from an Airflow connection."""

    conn_name_attr = "mysql_conn_id"
    default_conn_name = MYSQL_SOURCE_CONN_ID
    conn_type = "mysql"
    hook_name = "MySQL / MariaDB (pymysql)"

    # What a subclass for another server on the MySQL protocol changes.
    server_name = "MySQL"
    default_port = 3306
    conn_example = "mysql://app:app@127.0.0.1:3306/delivery"
    unavailable_error: type[MySqlUnavailableError] = MySqlUnavailableError
    unavailable_hint = "Locally: `make up`."
    # False for servers without multi-statement transactions: autocommit, no COMMIT/ROLLBACK sent.
    transactional = True
    # Seconds, unless the connection's extras say otherwise (pymysql has no read timeout by default).
    default_timeouts = {"connect_timeout": 10, "read_timeout": 300, "write_timeout": 300}

    def __init__(self, mysql_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mysql_conn_id = mysql_conn_id

    def connection_params(self) -> dict[str, Any]:
        conn = get_connection(self.mysql_conn_id, example=self.conn_example)
        return {
            "host": conn.host or "127.0.0.1",
            "port": int(conn.port or self.default_port),
            "user": conn.login,
            "password": conn.password or "",
            "database": conn.schema or None,
            "extra": conn.extra_dejson,
        }

    def timeouts(self, extra: dict) -> dict[str, float]:
        """connect/read/write timeouts in seconds: the connection's extras, else `default_timeouts`."""
        timeouts = {}
        for key, default in self.default_timeouts.items():
            raw = extra.get(key, default)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = -1.0
            if value <= 0:
                raise ConfigError(
                    f"{key}={raw!r} in the extras of connection '{self.mysql_conn_id}' must be a positive number "
                    f"of seconds (default {default})"
                )
            timeouts[key] = int(value) if value.is_integer() else value
        return timeouts

    def get_conn(self):
        import pymysql

        params = self.connection_params()
        timeouts = self.timeouts(params["extra"])
        try:
            return pymysql.connect(
                host=params["host"],
                port=params["port"],
                user=params["user"],
                password=params["password"],
                database=params["database"],
                autocommit=not self.transactional,
                charset="utf8mb4",
                **timeouts,
            )
        except pymysql.err.OperationalError as exc:
            raise self.unavailable_error(
                f"cannot connect to {self.server_name} at {params['host']}:{params['port']} as {params['user']!r} "
                f"(connection '{self.mysql_conn_id}'): {exc.args[-1] if exc.args else exc}. {self.unavailable_hint}"
            ) from exc

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor in a transaction that commits on success and rolls back on error
        (on a non-transactional server each statement stands on its own)."""
        conn = self.get_conn()
        try:
            with conn.cursor() as cur:
                yield cur
            if self.transactional:
                conn.commit()
        except BaseException:
            if self.transactional:
                conn.rollback()
            raise
        finally:
            conn.close()

    def get_records(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple]:
        with self.cursor() as cur:
            cur.execute(sql, parameters)
            return list(cur.fetchall())

    def get_first(self, sql: str, parameters: Sequence[Any] | None = None) -> tuple | None:
        rows = self.get_records(sql, parameters)
        return rows[0] if rows else None

    def run_script(self, statements: Sequence[str]) -> None:
        """Run statements in order on one connection, in one transaction where the server has
        them (DDL in MySQL commits implicitly); the first failure stops the rest."""
        with self.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
