"""Leases on (table, partition), so two writers never overwrite the same partition at once.

A backfill and the daily run, or two backfills, take the lease of every (table, dt) they are
about to overwrite; whoever holds it blocks the others until it releases it or the lease
expires (a crashed worker cannot block forever). The leases live in a small MySQL table
(connection `lakehouse_ops`), because acquiring one must be atomic: a primary-key insert is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from lakehouse.core.errors import GateFailed
from lakehouse.core.polling import wait_until
from lakehouse.hooks.mysql import MySqlHook

LEASES_DDL = """
CREATE TABLE IF NOT EXISTS partition_leases (
  table_name  VARCHAR(128) NOT NULL,
  dt          DATE         NOT NULL,
  holder      VARCHAR(255) NOT NULL,
  acquired_at DATETIME(3)  NOT NULL,
  expires_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (table_name, dt)
) ENGINE=InnoDB
"""


class LeaseHeld(GateFailed):
    """Another run holds a lease this run needs. `dt` is the day and `holders` maps each held table
    to (holder, expiry). Retryable: the lease is released when that run ends or expires."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, dt: str, holders: dict[str, tuple[str, datetime]]):
        super().__init__(message)
        self.dt = dt
        self.holders = dict(holders)


@dataclass(frozen=True)
class Lease:
    table: str
    dt: str
    holder: str
    expires_at: datetime


class LeaseManager:
    def __init__(self, mysql: MySqlHook, *, ttl: timedelta = timedelta(hours=2)):
        self.mysql = mysql
        self.ttl = ttl
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            self.mysql.run_script([LEASES_DDL])
            self._ready = True

    def acquire(self, tables: Iterable[str], dt: str, holder: str) -> list[Lease]:
        """Take every lease or none; raises LeaseHeld naming the current holder."""
        import pymysql

        self._ensure()
        now = datetime.now(UTC).replace(tzinfo=None)
        expires = now + self.ttl
        keys = sorted(set(tables))
        try:
            with self.mysql.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                for table in keys:
                    # An expired lease is free; one held by this holder is renewed.
                    cur.execute(
                        "DELETE FROM partition_leases"
                        " WHERE table_name = %s AND dt = %s AND (expires_at < %s OR holder = %s)",
                        (table, dt, now, holder),
                    )
                    cur.execute(
                        "INSERT INTO partition_leases (table_name, dt, holder, acquired_at, expires_at)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        (table, dt, holder, now, expires),
                    )
        except pymysql.err.IntegrityError:
            current = self.holders(keys, dt)
            raise LeaseHeld(
                f"partition dt={dt} is being overwritten by another run: "
                + "; ".join(f"{t} held by {h} until {e:%Y-%m-%d %H:%M:%S} UTC" for t, (h, e) in current.items())
                + ". Wait for it to finish, or retry later.",
                dt=dt,
                holders=current,
            ) from None
        return [Lease(t, dt, holder, expires) for t in keys]

    def acquire_waiting(
        self, tables: Iterable[str], dt: str, holder: str, *, timeout: float, poll: float = 10
    ) -> list[Lease]:
        """acquire(), retrying every `poll` seconds while someone else holds a lease, up to `timeout`
        seconds; then raises the last LeaseHeld (naming the holders)."""
        tables = list(tables)
        held: list[LeaseHeld] = []

        def acquired() -> list[Lease] | None:
            try:
                return self.acquire(tables, dt, holder)
            except LeaseHeld as exc:
                held[:] = [exc]
                return None

        return wait_until(
            acquired, timeout=timeout, interval=poll, what=f"the leases of dt={dt} for {holder}", error=lambda: held[0]
        )

    def release(self, holder: str, dt: str | None = None) -> int:
        self._ensure()
        with self.mysql.cursor() as cur:
            if dt is None:
                cur.execute("DELETE FROM partition_leases WHERE holder = %s", (holder,))
            else:
                cur.execute("DELETE FROM partition_leases WHERE holder = %s AND dt = %s", (holder, dt))
            return cur.rowcount

    def holders(self, tables: Iterable[str], dt: str) -> dict[str, tuple[str, datetime]]:
        self._ensure()
        out = {}
        for table in tables:
            row = self.mysql.get_first(
                "SELECT holder, expires_at FROM partition_leases WHERE table_name = %s AND dt = %s", (table, dt)
            )
            if row:
                out[table] = (row[0], row[1])
        return out
