"""A stand-in for a pymysql connection and its cursors, shared by the MySQL and StarRocks hook tests.

Everything the hook does lands in `events`: ("execute", sql, parameters) for each statement (a
failing one too, before it raises), then "cursor.close", "commit", "rollback", "close"."""

from __future__ import annotations

from collections.abc import Callable


def default_rows(sql: str, parameters) -> list[tuple]:
    """Two rows for a SELECT (none when bound to 0), nothing for anything else."""
    return [(1, "a"), (2, "b")] if sql.startswith("SELECT") and parameters != (0,) else []


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self._rows: list[tuple] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.conn.events.append("cursor.close")

    def execute(self, sql, parameters=None) -> None:
        self.conn.events.append(("execute", sql, parameters))
        if self.conn.fail_on and self.conn.fail_on in sql:
            raise self.conn.error()
        self._rows = self.conn.rows_for(sql, parameters)

    def fetchall(self):
        return tuple(self._rows)


class FakeConn:
    """`rows_for(sql, parameters)` answers queries; a statement containing `fail_on` raises `error()`."""

    def __init__(
        self,
        *,
        rows_for: Callable = default_rows,
        fail_on: str | None = None,
        error: Callable[[], Exception] = lambda: RuntimeError("boom"),
    ) -> None:
        self.events: list = []
        self.rows_for = rows_for
        self.fail_on = fail_on
        self.error = error

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def commit(self) -> None:
        self.events.append("commit")

    def rollback(self) -> None:
        self.events.append("rollback")

    def close(self) -> None:
        self.events.append("close")

    def executed(self) -> list[str]:
        return [event[1] for event in self.events if isinstance(event, tuple)]
