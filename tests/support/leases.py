"""A lease store for LeaseManager tests: the MySqlHook surface it uses (`cursor`, `get_first`,
`run_script`) over an in-memory SQLite database, so the lease SQL (who deletes, renews, releases
which rows) really runs.

Each `with store.cursor()` block is one transaction, serialised with the other threads' (the
renewal thread's too), committed on success and rolled back on error, as MySqlHook does.
`events` records ("sql", first word of the statement, thread name) for each statement, in order,
and tests append their own events to the same list to check what happened before what.
`fail(prefix, *errors)` makes the next statements starting with `prefix` raise those errors in turn
(before they run), e.g. pymysql's OperationalError(1213, "Deadlock found ...").
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import deque
from contextlib import contextmanager
from datetime import datetime

import pymysql

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$")


def deadlock() -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")


def lock_wait_timeout() -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction")


class _Cursor:
    def __init__(self, store: SqliteLeaseStore) -> None:
        self.store = store
        self._cur = store.db.cursor()
        self.rowcount = -1

    def execute(self, sql: str, parameters=None) -> None:
        store = self.store
        store.events.append(("sql", sql.split()[0].upper(), threading.current_thread().name))
        for prefix, errors in store._failures.items():
            if sql.lstrip().upper().startswith(prefix) and errors:
                raise errors.popleft()
        if sql.startswith("SET "):
            return
        params = tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in (parameters or ()))
        try:
            self._cur.execute(sql.replace("%s", "?").replace("ENGINE=InnoDB", ""), params)
        except sqlite3.IntegrityError as exc:
            raise pymysql.err.IntegrityError(1062, f"Duplicate entry: {exc}") from None
        self.rowcount = self._cur.rowcount

    def fetchall(self):
        return tuple(
            tuple(datetime.fromisoformat(v) if isinstance(v, str) and _DATETIME.match(v) else v for v in row)
            for row in self._cur.fetchall()
        )


class SqliteLeaseStore:
    def __init__(self, events: list | None = None) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.events: list = events if events is not None else []
        self._lock = threading.RLock()
        self._failures: dict[str, deque] = {}

    def fail(self, prefix: str, *errors: Exception) -> None:
        self._failures.setdefault(prefix.upper(), deque()).extend(errors)

    @contextmanager
    def cursor(self):
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield _Cursor(self)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def get_first(self, sql: str, parameters=None):
        with self.cursor() as cur:
            cur.execute(sql, parameters)
            rows = cur.fetchall()
        return rows[0] if rows else None

    def run_script(self, statements) -> None:
        with self.cursor() as cur:
            for statement in statements:
                cur.execute(statement)

    def rows(self) -> list[tuple]:
        """(table, dt, holder, expires_at) of every lease, sorted."""
        with self.cursor() as cur:
            cur.execute("SELECT table_name, dt, holder, expires_at FROM partition_leases ORDER BY table_name, dt")
            return list(cur.fetchall())
