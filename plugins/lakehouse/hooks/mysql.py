"""MySQL hook on pymysql, for the OLTP source (MariaDB locally) and later StarRocks' MySQL protocol.

The connection (default `mysql_source`) is a plain MySQL URI. Values are always bound as
parameters; identifiers never come from user input.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

from lakehouse.hooks._base import get_connection


class MySqlUnavailableError(AirflowException):
    """The MySQL server does not accept connections."""


class MySqlHook(BaseHook):
    """pymysql connections built from an Airflow connection."""

    conn_name_attr = "mysql_conn_id"
    default_conn_name = "mysql_source"
    conn_type = "mysql"
    hook_name = "MySQL / MariaDB (pymysql)"

    def __init__(self, mysql_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mysql_conn_id = mysql_conn_id

    def connection_params(self) -> dict[str, Any]:
        conn = get_connection(self.mysql_conn_id, example="mysql://app:app@127.0.0.1:3306/delivery")
        return {
            "host": conn.host or "127.0.0.1",
            "port": int(conn.port or 3306),
            "user": conn.login,
            "password": conn.password or "",
            "database": conn.schema or None,
            "extra": conn.extra_dejson,
        }

    def get_conn(self):
        import pymysql

        params = self.connection_params()
        try:
            return pymysql.connect(
                host=params["host"],
                port=params["port"],
                user=params["user"],
                password=params["password"],
                database=params["database"],
                autocommit=False,
                charset="utf8mb4",
                connect_timeout=10,
            )
        except pymysql.err.OperationalError as exc:
            raise MySqlUnavailableError(
                f"cannot connect to MySQL at {params['host']}:{params['port']} as {params['user']!r} "
                f"(connection '{self.mysql_conn_id}'): {exc.args[-1] if exc.args else exc}. Locally: `make up`."
            ) from exc

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor in a transaction that commits on success and rolls back on error."""
        conn = self.get_conn()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
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
        """Run statements in one transaction (DDL in MySQL commits implicitly)."""
        with self.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
