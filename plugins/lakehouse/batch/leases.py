"""Leases on (table, partition), so two writers never overwrite the same partition at once.

A backfill and the daily run, or two backfills, take the lease of every (table, dt) they are
about to overwrite; whoever holds it blocks the others until it releases it or the lease
expires (a crashed worker cannot block forever). The leases live in a small MySQL table
(connection `lakehouse_ops`), because acquiring one must be atomic: a primary-key insert is.

Work that overwrites runs inside `LeaseManager.held(tables, dt, holder)`:

    with leases.held(tables, dt, holder, wait_s=600) as lease:
        for table in tables:
            lease.check()          # raises LeaseLost if another run took the lease over
            recompute(table)       # a Flink batch statement: returns or raises once the job stopped

It takes the leases, renews them from a background thread every TTL/3 while the work runs (only
rows this holder still has), and releases them when the block ends, in the caller's thread after
the work returned or raised (FlinkHook cancels a batch statement's job when the call fails, times
out or is interrupted): never while a job it guards may still be writing. A lease that expired
unrenewed (a worker stalled past the TTL) and was taken over by another run is lost: `lease.lost`
says so, `lease.check()` raises LeaseLost, and so does the end of the block, so the work fails
before it commits or publishes anything more.

A holder names one writer: the DAG, the run and, for mapped tasks, the map index
(`lease_holder`). A release frees only that holder's rows of the given day and tables. MySQL
deadlocks (1213) and lock wait timeouts (1205) in taking, renewing and releasing are retried a few
times after a short pause; a duplicate key (someone holds the lease) is LeaseHeld, never retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, TypeVar

from lakehouse.core.errors import GateFailed
from lakehouse.core.polling import wait_until
from lakehouse.hooks.mysql import MySqlHook

log = logging.getLogger(__name__)
T = TypeVar("T")

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

# MySQL errors after which the same transaction, run again, can succeed: InnoDB rolled it back.
RETRIED_MYSQL_ERRORS = {1205: "lock wait timeout", 1213: "deadlock"}


def lease_holder(dag_id: str, run_id: str, map_index: int | None = None) -> str:
    """The holder of a task's leases: its DAG and run, and its map index when the task is mapped
    (mapped tasks of one run never share a holder)."""
    holder = f"{dag_id}/{run_id}"
    return holder if map_index is None or map_index < 0 else f"{holder}/{map_index}"


class LeaseHeld(GateFailed):
    """Another run holds a lease this run needs. `dt` is the day and `holders` maps each held table
    to (holder, expiry). Retryable: the lease is released when that run ends or expires."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, dt: str, holders: dict[str, tuple[str, datetime]]):
        super().__init__(message)
        self.dt = dt
        self.holders = dict(holders)


class LeaseLost(GateFailed):
    """A lease this run held expired unrenewed and another run took it over, so both may overwrite
    the partition: the work stops before it commits or publishes anything more. `dt`, `holder`
    (this run), `tables` (the leases lost) and `taken_by` (table -> (holder, expiry) now).
    Retryable: once the other run is done, the recomputation can run again (it is idempotent)."""

    retryable: ClassVar[bool] = True

    def __init__(self, *, dt: str, holder: str, tables: list[str], taken_by: dict[str, tuple[str, datetime]]):
        who = "; ".join(
            f"{t} dt={dt} held by {holder} "
            + (f"was taken over by {taken_by[t][0]}" if t in taken_by else "was taken over (and released since)")
            for t in tables
        )
        super().__init__(
            f"lease lost: {who}, after it expired unrenewed (the worker stalled, or the lease database was "
            "unreachable, for longer than the lease TTL). Nothing more was committed under it. Retry the task "
            "once the other run is done; check the worker and the lakehouse_ops database if it happens again."
        )
        self.dt = dt
        self.holder = holder
        self.tables = list(tables)
        self.taken_by = dict(taken_by)


@dataclass(frozen=True)
class Lease:
    table: str
    dt: str
    holder: str
    expires_at: datetime


class LeaseGuard:
    """What `LeaseManager.held` yields: the leases taken, renewed while the block runs.

    `lost` / `lost_tables`: leases another run took over (seen by a renewal); `check()` raises
    LeaseLost then. `renewals` counts the successful renewals."""

    def __init__(self, manager: LeaseManager, tables: list[str], dt: str, holder: str, leases: list[Lease]):
        self.manager = manager
        self.tables = tables
        self.dt = dt
        self.holder = holder
        self.leases = leases
        self.lost_tables: list[str] = []
        self.renewals = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return bool(self.lost_tables)

    def renew(self) -> None:
        """Extend the leases this holder still has by the TTL; note the ones it no longer has."""
        gone = self.manager.renew(self.tables, self.dt, self.holder)
        with self._lock:
            self.renewals += 1
            if gone and not self.lost_tables:
                self.lost_tables = list(gone)
                log.error("leases of dt=%s for %s lost: %s", self.dt, self.holder, ", ".join(gone))

    def check(self) -> None:
        """Raise LeaseLost if a lease was lost: call before committing anything more under it."""
        with self._lock:
            lost = list(self.lost_tables)
        if lost:
            current = self.manager.holders(lost, self.dt)
            raise LeaseLost(dt=self.dt, holder=self.holder, tables=lost, taken_by=current)

    def _renew_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - logged; the next renewal tries again within the TTL
                log.warning(
                    "could not renew the leases of dt=%s for %s (trying again in %.0f s): %s",
                    self.dt,
                    self.holder,
                    every,
                    exc,
                )
            if self.lost:
                return

    def _start(self, every: float) -> None:
        self._thread = threading.Thread(
            target=self._renew_loop, args=(every,), name=f"lease-renewal {self.holder} {self.dt}", daemon=True
        )
        self._thread.start()

    def _halt(self, join_timeout: float = 60) -> None:
        """Stop renewing. A renewal still running after `join_timeout` cannot bring a released lease
        back: it only extends rows its holder still has."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)
            if self._thread.is_alive():
                log.warning(
                    "the lease renewal of dt=%s for %s did not stop within %.0f s", self.dt, self.holder, join_timeout
                )


class LeaseManager:
    """Leases in the `partition_leases` table of `mysql`.

    `ttl`: how long a lease lasts unrenewed; `renew_every`: seconds between renewals while held
    (default TTL/3). `now` (naive UTC), `sleep`, `attempts` and `backoff_s` (the retries of
    deadlocks and lock wait timeouts) are injectable for tests."""

    def __init__(
        self,
        mysql: MySqlHook,
        *,
        ttl: timedelta = timedelta(minutes=15),
        renew_every: float | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        attempts: int = 4,
        backoff_s: float = 0.2,
    ):
        self.mysql = mysql
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl.total_seconds() / 3
        self._now = now or (lambda: datetime.now(UTC).replace(tzinfo=None))
        self._sleep = sleep
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            self.mysql.run_script([LEASES_DDL])
            self._ready = True

    def _retrying(self, what: str, transaction: Callable[[], T]) -> T:
        """Run `transaction` (one MySqlHook.cursor() block), again after a deadlock or a lock wait
        timeout (MySQL rolled it back), up to `attempts` times, pausing a little longer each time."""
        import pymysql

        for attempt in range(1, self.attempts + 1):
            try:
                return transaction()
            except (pymysql.err.OperationalError, pymysql.err.InternalError) as exc:
                code = exc.args[0] if exc.args else None
                if code not in RETRIED_MYSQL_ERRORS or attempt == self.attempts:
                    raise
                pause = self.backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "%s: MySQL %s (%s), attempt %d of %d; again in %.1f s",
                    what,
                    RETRIED_MYSQL_ERRORS[code],
                    code,
                    attempt,
                    self.attempts,
                    pause,
                )
                self._sleep(pause)
        raise AssertionError("unreachable")

    def acquire(self, tables: Iterable[str], dt: str, holder: str) -> list[Lease]:
        """Take every lease or none; raises LeaseHeld naming the current holder."""
        import pymysql

        self._ensure()
        now = self._now()
        expires = now + self.ttl
        keys = sorted(set(tables))

        def take() -> None:
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

        try:
            self._retrying(f"taking the leases of dt={dt} for {holder}", take)
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

    def renew(self, tables: Iterable[str], dt: str, holder: str) -> list[str]:
        """Extend the holder's leases of `tables` on `dt` to now + TTL, only rows the holder still
        has; returns the tables whose lease it no longer has (taken over after expiry), sorted."""
        self._ensure()
        keys = sorted(set(tables))
        expires = self._now() + self.ttl

        def extend() -> list[str]:
            with self.mysql.cursor() as cur:
                for table in keys:
                    cur.execute(
                        "UPDATE partition_leases SET expires_at = %s WHERE table_name = %s AND dt = %s AND holder = %s",
                        (expires, table, dt, holder),
                    )
                cur.execute("SELECT table_name FROM partition_leases WHERE dt = %s AND holder = %s", (dt, holder))
                mine = {row[0] for row in cur.fetchall()}
            return [t for t in keys if t not in mine]

        return self._retrying(f"renewing the leases of dt={dt} for {holder}", extend)

    def release(self, holder: str, dt: str | None = None, *, tables: Iterable[str] | None = None) -> int:
        """Delete the holder's leases: all of them, those of day `dt`, or those of `tables` on `dt`.
        Never another holder's row. Returns how many were released."""
        self._ensure()
        where, params = ["holder = %s"], [holder]
        if dt is not None:
            where.append("dt = %s")
            params.append(dt)
        if tables is not None:
            keys = sorted(set(tables))
            if not keys:
                return 0
            where.append(f"table_name IN ({', '.join(['%s'] * len(keys))})")
            params += keys

        def delete() -> int:
            with self.mysql.cursor() as cur:
                cur.execute("DELETE FROM partition_leases WHERE " + " AND ".join(where), tuple(params))
                return cur.rowcount

        return self._retrying(f"releasing the leases of {holder}", delete)

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

    @contextmanager
    def held(
        self, tables: Iterable[str], dt: str, holder: str, *, wait_s: float = 0, poll: float = 10
    ) -> Iterator[LeaseGuard]:
        """Hold the leases of `tables` on `dt` while the block runs (see the module docstring).

        Waits up to `wait_s` seconds for leases another run holds (then LeaseHeld). Renews every
        `renew_every` seconds from a background thread; at the end stops renewing, looks once more
        whether the leases are still this holder's (if the block succeeded), releases them in this
        thread, and raises LeaseLost if one was lost. An error of the block itself is never hidden:
        a release failing after it is logged instead."""
        keys = sorted(set(tables))
        if wait_s > 0:
            taken = self.acquire_waiting(keys, dt, holder, timeout=wait_s, poll=poll)
        else:
            taken = self.acquire(keys, dt, holder)
        guard = LeaseGuard(self, keys, dt, holder, taken)
        guard._start(self.renew_every)
        try:
            yield guard
        except BaseException:
            guard._halt()
            try:
                self.release(holder, dt, tables=keys)
            except Exception:  # noqa: BLE001 - the block's own error is the one to report
                log.exception("could not release the leases of dt=%s for %s (they expire unrenewed)", dt, holder)
            raise
        guard._halt()
        try:
            if not guard.lost:
                guard.renew()  # the renewals may not have run since a takeover
        finally:
            self.release(holder, dt, tables=keys)
        guard.check()
