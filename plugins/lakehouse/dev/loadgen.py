"""Load generator for the delivery OLTP database: orders that move through their lifecycle, at a steady rate.

At `rate` new orders per second it inserts the orders (status CREATED) with one status event each and a
subsidy on ~60 % of them, moves earlier orders on (ACCEPTED with a rider, PICKED_UP, DELIVERED, or
CANCELLED), claws back some subsidies (deletes) and changes a few riders' status and users' phones: the
per-order mix of lakehouse.dev.loadmix, the same at every rate. created_at is the wall-clock time of the
insert, so `visible_time - created_at` in the lakehouse is the end-to-end delay.

Writers: up to SINGLE_WRITER_RATE orders/s one writer works in the calling thread (what the tests use:
`clock` may be any callable); above it, one worker process per WRITER_RATE orders/s (at most MAX_WRITERS),
each with its own connection and its own keys (loadmix.Partition), so their ids never collide and each
order's changes are committed by one connection in lifecycle order (the binlog is the truth downstream).
Every tick (0.1 s) a writer commits one transaction with batched statements: multi-row INSERTs, one UPDATE
per status (a join with the riders assigned for ACCEPTED), one DELETE. Worker processes keep `clock` as its
offset from the wall clock at the start (a backdated clock stays backdated). They are started with
multiprocessing's spawn (no fork of a caller that runs threads), which imports the caller's main script
again: a script that runs the generator at these rates needs the `if __name__ == "__main__":` guard, and
starts faster if it imports Airflow (the hooks) only inside its functions.

The rate controller is the schedule itself: each writer creates the orders owed by the current tick, so a
slow tick is made up by the next, up to MAX_TICKS_PER_TRANSACTION ticks (1 s) of orders in one
transaction; the orders of older ticks are dropped and counted (`orders_dropped`), so an overloaded
database makes the achieved rate fall, never the changes per order (the lifecycles keep to the clock).
Progress lines (`report_every_s`) and the final line give the achieved against the requested rate, how
far the writers fell behind, what was dropped, and the changes per order.

    python -m lakehouse.dev.loadgen --rate 200 --duration 60
    python -m lakehouse.dev.loadgen --rate 10000 --duration 30 --report-every 5
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import queue
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from pymysql.converters import escape_item

from lakehouse.core.errors import BadRequest, ExternalServiceError
from lakehouse.dev.loadmix import (
    OPEN_STATUSES,
    STATUS_TIME_COLUMN,
    TICK_SECONDS,
    Batch,
    Dimensions,
    Mix,
    Partition,
    Planner,
    Schedule,
)

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook

log = logging.getLogger(__name__)

MAX_RATE = 20000.0
SINGLE_WRITER_RATE = 2000.0  # up to this many orders/s: one writer, in the calling thread
WRITER_RATE = 2500.0  # above it: one worker process per this many orders/s ...
MAX_WRITERS = 4  # ... and no more than this
MAX_TICKS_PER_TRANSACTION = 10  # a writer behind creates the orders of at most this many ticks at once
RESUME_LIMIT = 100_000  # orders left open by earlier runs that move on (the oldest first)
RESUME_WINDOW = timedelta(hours=2)  # ... whose last change is at most this far from the run's clock
CHUNK = 1000  # rows per UPDATE or DELETE statement
INSERT_CHUNK = 5000  # rows per INSERT statement
PROGRESS_SECONDS = 1.0  # how often a writer reports its counts
STARTUP_TIMEOUT = 120.0  # seconds for worker processes to connect and load their open orders

# Dimension updates: table -> (key column, updated column); fixed names, not user input.
DIMENSION_UPDATES = {"riders": ("rider_id", "status"), "users": ("user_id", "phone")}


class LoadWriterFailed(ExternalServiceError):
    """A worker process of the load generator failed (most often MySQL refused or dropped its connection);
    the other writers were stopped."""

    def __init__(self, message: str, *, writer: int, error: str) -> None:
        super().__init__(message)
        self.writer, self.error = writer, error


@dataclass
class LoadStats:
    """What a run wrote, and how fast. `status_updates` counts every status change written, those of
    orders left open by an earlier run too (`resumed_status_updates`); the mix per order leaves those out."""

    requested_rate: float = 0.0
    writers: int = 1
    orders_created: int = 0
    status_updates: int = 0
    resumed_status_updates: int = 0
    resumed_orders: int = 0
    subsidies_created: int = 0
    subsidies_deleted: int = 0
    dimension_updates: int = 0
    missed_changes: int = 0  # status updates and clawbacks that found no row (someone else deleted it)
    orders_dropped: int = 0  # owed, but a writer was more than MAX_TICKS_PER_TRANSACTION ticks behind
    transactions: int = 0
    elapsed_s: float = 0.0
    max_lag_s: float = 0.0  # how far behind its schedule a writer was at worst
    cpu_s: float = 0.0  # CPU time of the writers (their threads or processes)
    first_order_id: int | None = None
    last_order_id: int | None = None

    @property
    def achieved_rate(self) -> float:
        return self.orders_created / self.elapsed_s if self.elapsed_s else 0.0

    def mix(self) -> dict[str, float]:
        """Changes per order created by this run."""
        n = self.orders_created or 1
        return {
            "status_changes": (self.status_updates - self.resumed_status_updates) / n,
            "subsidies": self.subsidies_created / n,
            "subsidy_deletes": self.subsidies_deleted / n,
            "dimension_updates": self.dimension_updates / n,
        }

    def merged(self, other: LoadStats) -> LoadStats:
        """The counts of two writers together (times: the longest; ids: the widest range)."""
        out = LoadStats(requested_rate=self.requested_rate, writers=self.writers)
        for f in fields(LoadStats):
            if f.name in ("requested_rate", "writers"):
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("elapsed_s", "max_lag_s"):
                value = max(a, b)
            elif f.name == "first_order_id":
                value = min(x for x in (a, b) if x is not None) if a is not None or b is not None else None
            elif f.name == "last_order_id":
                value = max(x for x in (a, b) if x is not None) if a is not None or b is not None else None
            else:
                value = a + b
            setattr(out, f.name, value)
        return out

    def summary(self) -> str:
        m = self.mix()
        resumed = f" (+{self.resumed_status_updates} of earlier orders)" if self.resumed_status_updates else ""
        missed = f", {self.missed_changes} MISSED changes" if self.missed_changes else ""
        dropped = (
            f", {self.orders_dropped} orders dropped (writers more than 1 s behind)" if self.orders_dropped else ""
        )
        return (
            f"{self.orders_created} orders in {self.elapsed_s:.1f} s: {self.achieved_rate:.0f}/s of "
            f"{self.requested_rate:.0f}/s requested, {self.writers} writer(s), lag at worst {self.max_lag_s:.2f} s, "
            f"{self.transactions} transactions, writer CPU {self.cpu_s:.1f} s{dropped}{missed}; per order: "
            f"{m['status_changes']:.2f} status changes{resumed}, {m['subsidies']:.3f} subsidies, "
            f"{m['subsidy_deletes']:.3f} subsidy deletes, {m['dimension_updates']:.3f} dimension updates"
        )


def _chunks(rows: Sequence, size: int = CHUNK):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


# The statements are rendered here, not bound by pymysql's executemany: at 10,000 orders/s its per-value
# escaping was most of the generator's CPU. Safe by construction all the same: every number goes in through
# a `:d` format (an int, or the formatting fails) and every string or time through pymysql's own escaping,
# once per distinct value.
def quoted(value: str | datetime) -> str:
    """A string or datetime as a MySQL literal, escaped and quoted by pymysql."""
    return escape_item(value, "utf8mb4")


_LITERALS: dict[str, str] = {}


def _constant(value: str) -> str:
    """`quoted` of the generator's few recurring strings (cities, payers, statuses), escaped once."""
    literal = _LITERALS.get(value)
    if literal is None:
        literal = _LITERALS[value] = quoted(value)
    return literal


def _ints(values: Sequence[int]) -> str:
    return ",".join([f"{v:d}" for v in values])


def _int(value: int) -> str:
    return f"{value:d}"


def _keyed(pairs: Sequence[tuple], key: str, value: str, render: Callable[[Any], str]) -> str:
    """A derived table of (key, value) rows: SELECT k AS key, v AS value UNION ALL SELECT k, v ..."""
    rows = [f"SELECT {k:d}, {render(v)}" for k, v in pairs]
    rows[0] = f"SELECT {pairs[0][0]:d} AS {key}, {render(pairs[0][1])} AS {value}"
    return " UNION ALL ".join(rows)


def _amount(cents: int) -> str:
    return f"{cents // 100:d}.{cents % 100:02d}"


class Statement(NamedTuple):
    sql: str
    must_change: int | None = None  # rows an UPDATE of orders or a DELETE must change; fewer are missed
    deletes_subsidies: bool = False


def statements(batch: Batch) -> list[Statement]:
    """One writer's transaction, in the order it runs: orders, subsidies, status changes (one UPDATE per
    status and time: a join with the assigned riders for ACCEPTED), status events, clawbacks (DELETE),
    rider and user updates."""
    out: list[Statement] = []
    ts = quoted(batch.ts)
    for chunk in _chunks(batch.orders, INSERT_CHUNK):
        values = ",".join(
            f"({o:d},{u:d},{s:d},{_constant(c)},'CREATED',{_amount(cents)},{ts})" for o, u, s, c, cents in chunk
        )
        out.append(
            Statement(
                "INSERT INTO orders (order_id, user_id, shop_id, city, status, amount, created_at) VALUES " + values
            )
        )
    for chunk in _chunks(batch.subsidies, INSERT_CHUNK):
        values = ",".join(f"({o:d},{_constant(p)},{_amount(c)},{ts})" for o, p, c in chunk)
        out.append(Statement("INSERT INTO order_subsidies (order_id, payer, amount, created_at) VALUES " + values))
    events: list[str] = [f"({order[0]:d},'CREATED',NULL,{ts})" for order in batch.orders]
    for (status, at), rows in batch.advances.items():
        column = STATUS_TIME_COLUMN[status]  # fixed mapping, not user input
        status_sql, at_sql = _constant(status), quoted(at)
        for chunk in _chunks(rows):
            if status == "ACCEPTED":
                sql = (
                    f"UPDATE orders o JOIN ({_keyed(chunk, 'order_id', 'rider_id', _int)}) a"
                    f" ON o.order_id = a.order_id SET o.status = {status_sql}, o.{column} = {at_sql},"
                    " o.rider_id = a.rider_id"
                )
                events.extend(f"({o:d},{status_sql},{r:d},{at_sql})" for o, r in chunk)
            else:
                sql = f"UPDATE orders SET status = {status_sql}, {column} = {at_sql} WHERE order_id IN ({_ints(chunk)})"
                events.extend(f"({o:d},{status_sql},NULL,{at_sql})" for o in chunk)
            out.append(Statement(sql, len(chunk)))
    for chunk in _chunks(events, INSERT_CHUNK):
        values = ",".join(chunk)
        out.append(
            Statement("INSERT INTO order_status_events (order_id, status, rider_id, event_time) VALUES " + values)
        )
    for chunk in _chunks(batch.clawbacks):
        out.append(Statement(f"DELETE FROM order_subsidies WHERE order_id IN ({_ints(chunk)})", len(chunk), True))
    for table, updates in (("riders", batch.riders), ("users", batch.users)):
        key, column = DIMENSION_UPDATES[table]  # fixed names, not user input
        for pairs in _rounds(updates):
            for chunk in _chunks(pairs):
                sql = (
                    f"UPDATE {table} t JOIN ({_keyed(chunk, key, 'v', quoted)}) u ON t.{key} = u.{key}"
                    f" SET t.{column} = u.v"
                )
                out.append(Statement(sql))
    return out


def _rounds(updates: Sequence[tuple]) -> list[list[tuple]]:
    """Updates split so that no key occurs twice in one statement (a join would apply only one of them),
    the same key's updates in their order: the first update of each key, then the second, ..."""
    rounds: list[list[tuple]] = []
    seen: dict[int, int] = {}
    for key, value in updates:
        n = seen[key] = seen.get(key, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((key, value))
    return rounds


def write_batch(cur, batch: Batch) -> tuple[int, int]:
    """Run one batch's statements in the current transaction; returns (subsidies deleted, status changes
    and clawbacks that found no row)."""
    deleted = missed = 0
    for statement in statements(batch):
        cur.execute(statement.sql)
        if statement.must_change is not None:
            missed += max(0, statement.must_change - cur.rowcount)
        if statement.deletes_subsidies:
            deleted += cur.rowcount
    return deleted, missed


def read_reference(cur) -> tuple[Dimensions, int]:
    """The dimensions' largest ids and the first free order id."""
    cur.execute(
        "SELECT (SELECT COALESCE(MAX(user_id), 0) FROM users), (SELECT COALESCE(MAX(shop_id), 0) FROM shops),"
        " (SELECT COALESCE(MAX(rider_id), 0) FROM riders), (SELECT COALESCE(MAX(order_id), 0) FROM orders)"
    )
    max_user, max_shop, max_rider, max_order = cur.fetchone()
    if not (max_user and max_shop and max_rider):
        raise BadRequest("users, shops and riders must be seeded first (lakehouse.dev.oltp.seed_dimensions)")
    return Dimensions(max_user, max_shop, max_rider), max_order + 1


def read_open_orders(cur, partition: Partition, limit: int, *, now: datetime | None = None) -> list[tuple]:
    """Orders of this writer's keys left open by an earlier run: (order_id, status, time of the last change).

    With `now` (the run's clock), only orders whose last change lies within RESUME_WINDOW of it: an
    order of another day moved on at this run's time (today's orders by a back-dated run, a past
    day's by today's run) would be delivered after more than the 10 hours a delivery may take, or
    before it was created (the quality suites reject both, and rightly)."""
    statuses = ", ".join(["%s"] * len(OPEN_STATUSES))
    last = "GREATEST(created_at, COALESCE(accepted_at, created_at), COALESCE(picked_up_at, created_at))"
    window, params = "", ()
    if now is not None:
        window = f" AND {last} BETWEEN %s AND %s"
        params = (_naive_utc(now) - RESUME_WINDOW, _naive_utc(now) + RESUME_WINDOW)
    cur.execute(
        f"SELECT order_id, status, {last} FROM orders"
        f" WHERE status IN ({statuses}) AND MOD(order_id, %s) = %s{window} ORDER BY order_id LIMIT %s",
        (*OPEN_STATUSES, partition.count, partition.index, *params, limit),
    )
    return list(cur.fetchall())


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def prepare_session(cur) -> None:
    """UTC, and READ COMMITTED: a DELETE through the subsidies' order index takes no gap locks that would
    make another writer's INSERT wait."""
    cur.execute("SET time_zone = '+00:00'")
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")


@dataclass(frozen=True)
class WriterSpec:
    """What one writer needs to plan its share (picklable: sent to worker processes)."""

    partition: Partition
    schedule: Schedule
    dims: Dimensions
    mix: Mix
    seed: int
    duration_s: float | None
    requested_rate: float


class Writer:
    """One connection writing its partition's share of the schedule, one transaction per tick."""

    def __init__(
        self,
        spec: WriterSpec,
        conn,
        *,
        clock: Callable[[], datetime],
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.spec, self.conn, self.clock, self.timer, self.sleep = spec, conn, clock, timer, sleep
        rng = random.Random(f"{spec.seed}/{spec.partition.index}/{spec.partition.count}")
        self.planner = Planner(mix=spec.mix, schedule=spec.schedule, partition=spec.partition, dims=spec.dims, rng=rng)
        self.stats = LoadStats(requested_rate=spec.requested_rate, writers=spec.partition.count)

    def prepare(self) -> None:
        """Session settings, and this writer's orders left open by earlier runs."""
        with self.conn.cursor() as cur:
            prepare_session(cur)
            rows = read_open_orders(
                cur, self.spec.partition, RESUME_LIMIT // self.spec.partition.count, now=self.clock()
            )
        self.conn.commit()
        self.stats.resumed_orders = self.planner.resume(rows)

    def run(
        self,
        start: float,
        *,
        report: Callable[[LoadStats], object] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> LoadStats:
        """Write until the duration has passed (by `start`, a `timer` reading), every order of a
        `max_orders` run exists, or `stop()` says so."""
        stats, planner, duration = self.stats, self.planner, self.spec.duration_s
        cpu0 = time.thread_time()
        wait = start - self.timer()
        if wait > 0:
            self.sleep(wait)
        next_report = start + PROGRESS_SECONDS
        while True:
            now = self.timer()
            elapsed = now - start
            if (duration is not None and elapsed >= duration) or planner.done() or stop():
                break
            # The ticks that have begun (the next one at least: the sleep below ends at its start); the
            # orders of those more than MAX_TICKS_PER_TRANSACTION back are dropped.
            tick = max(planner.next_tick, int(elapsed / TICK_SECONDS + 1e-6))
            stats.max_lag_s = max(stats.max_lag_s, elapsed - planner.next_tick * TICK_SECONDS)
            self._write(planner.plan(tick, self.clock(), create_from=tick - MAX_TICKS_PER_TRANSACTION + 1))
            if report is not None and now >= next_report:
                stats.elapsed_s, stats.cpu_s = self.timer() - start, time.thread_time() - cpu0
                report(stats)
                next_report = now + PROGRESS_SECONDS
            pause = start + planner.next_tick * TICK_SECONDS - self.timer()
            if pause > 0:
                self.sleep(pause)
        stats.elapsed_s = self.timer() - start
        stats.cpu_s = time.thread_time() - cpu0
        return stats

    def _write(self, batch: Batch) -> None:
        try:
            with self.conn.cursor() as cur:
                deleted, missed = write_batch(cur, batch)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        s = self.stats
        s.transactions += 1
        s.orders_created += len(batch.orders)
        s.subsidies_created += len(batch.subsidies)
        s.status_updates += batch.status_changes
        s.resumed_status_updates += batch.resumed_advances
        s.subsidies_deleted += deleted
        s.missed_changes += missed
        s.dimension_updates += batch.dimension_updates
        s.orders_dropped += batch.dropped_orders
        if batch.orders:
            first, last = batch.orders[0][0], batch.orders[-1][0]
            s.first_order_id = first if s.first_order_id is None else min(s.first_order_id, first)
            s.last_order_id = last if s.last_order_id is None else max(s.last_order_id, last)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _writer_process(spec: WriterSpec, connect: dict, clock_offset, messages, go, abort, start) -> None:
    """A worker process: connect, load its open orders, say ready, wait for the common start, write."""
    import pymysql

    k = spec.partition.index
    try:
        conn = pymysql.connect(**connect)
        try:
            writer = Writer(spec, conn, clock=lambda: _utcnow() + clock_offset)
            writer.prepare()
            messages.put(("ready", k, writer.stats))
            while not go.wait(0.5):
                if abort.is_set():
                    return
            # A copy: the queue pickles in a background thread while the writer goes on counting.
            report = lambda s: messages.put(("progress", k, replace(s)))  # noqa: E731
            stats = writer.run(start.value, report=report, stop=abort.is_set)
            messages.put(("done", k, stats))
        finally:
            conn.close()
    except BaseException as exc:
        messages.put(("error", k, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"))


class Progress:
    """The writers' latest counts together; logs a line every `every_s` seconds (None: never)."""

    def __init__(self, requested_rate: float, writers: int, every_s: float | None) -> None:
        self.latest: dict[int, LoadStats] = {}
        self.requested_rate, self.writers, self.every_s = requested_rate, writers, every_s
        self.next_line = every_s
        self.coordinator_cpu_s = 0.0  # CPU of the thread that started and followed the worker processes

    def total(self) -> LoadStats:
        out = LoadStats(requested_rate=self.requested_rate, writers=self.writers)
        for stats in self.latest.values():
            out = out.merged(stats)
        return out

    def update(self, writer: int, stats: LoadStats) -> None:
        self.latest[writer] = stats
        if self.every_s is None:
            return
        total = self.total()
        if total.elapsed_s >= self.next_line:
            log.info("loadgen: %5.1f s: %s", total.elapsed_s, total.summary())
            self.next_line = total.elapsed_s + self.every_s


@dataclass
class LoadGenerator:
    """Orders at `rate` per second into the database of `mysql` (the delivery schema, dimensions seeded);
    `run` returns what was written (`LoadStats`), also kept in `stats` (of a run that failed too)."""

    mysql: MySqlHook
    rate: float = 100.0
    seed: int = 42
    cancel_ratio: float = 0.05
    step_seconds: tuple[float, float] = (1.0, 6.0)
    clock: Callable[[], datetime] = field(default=_utcnow)
    # None: one writer up to SINGLE_WRITER_RATE orders/s, else one worker process per WRITER_RATE.
    workers: int | None = None
    report_every_s: float | None = None  # log the achieved rate and the mix this often
    # The in-process writer's time source and sleep (tests run it on a simulated clock).
    timer: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], object] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.rate <= MAX_RATE):
            raise BadRequest(f"rate must be in (0, {MAX_RATE:.0f}] orders/s, got {self.rate}")
        if self.workers is not None and not (1 <= self.workers <= 16):
            raise BadRequest(f"workers must be between 1 and 16, got {self.workers}")
        self.mix = Mix(cancel_ratio=self.cancel_ratio, step_seconds=tuple(self.step_seconds))
        self.stats = LoadStats(requested_rate=self.rate, writers=self.writer_count())

    def writer_count(self) -> int:
        if self.workers is not None:
            return self.workers
        if self.rate <= SINGLE_WRITER_RATE:
            return 1
        return min(MAX_WRITERS, max(2, math.ceil(self.rate / WRITER_RATE)))

    def run(self, *, duration_s: float | None = None, max_orders: int | None = None) -> LoadStats:
        """Generate load until `duration_s` passes or `max_orders` orders exist; returns the counts."""
        if duration_s is None and max_orders is None:
            raise BadRequest("give duration_s or max_orders")
        if duration_s is not None and duration_s <= 0:
            raise BadRequest(f"duration must be positive, got {duration_s}")
        if max_orders is not None and max_orders <= 0:
            raise BadRequest(f"max_orders must be positive, got {max_orders}")
        n = self.writer_count()
        conn = self.mysql.get_conn()
        try:
            with conn.cursor() as cur:
                prepare_session(cur)
                dims, first_id = read_reference(cur)
            conn.commit()
            specs = [
                WriterSpec(
                    partition=Partition(k, n),
                    schedule=Schedule(self.rate, first_id, max_orders),
                    dims=dims,
                    mix=self.mix,
                    seed=self.seed,
                    duration_s=duration_s,
                    requested_rate=self.rate,
                )
                for k in range(n)
            ]
            progress = Progress(self.rate, n, self.report_every_s)
            if n == 1:
                writer = Writer(specs[0], conn, clock=self.clock, timer=self.timer, sleep=self.sleep)
                self.stats = writer.stats  # live: a caller sees the counts of a run that failed midway
                writer.prepare()
                writer.run(self.timer(), report=lambda s: progress.update(0, s))
                return self.stats
        finally:
            conn.close()
        try:
            self._run_processes(specs, progress)
        finally:
            self.stats = progress.total()  # a caller sees the counts of a run that failed midway
            self.stats.cpu_s += progress.coordinator_cpu_s
        return self.stats

    def _connect_args(self) -> dict[str, Any]:
        """pymysql.connect arguments of the hook's connection (worker processes do not load Airflow)."""
        params = self.mysql.connection_params()
        return {
            "host": params["host"],
            "port": params["port"],
            "user": params["user"],
            "password": params["password"],
            "database": params["database"],
            "autocommit": False,
            "charset": "utf8mb4",
            **self.mysql.timeouts(params["extra"]),
        }

    def _run_processes(self, specs: list[WriterSpec], progress: Progress) -> None:
        """Start a worker process per writer, wait until all are ready, start them together, follow their
        progress until all are done; raises LoadWriterFailed (after stopping the others) if one fails."""
        ctx = multiprocessing.get_context("spawn")  # no fork of a parent that may run threads
        messages, go, abort, start = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Value("d", 0.0)
        offset = _naive_utc(self.clock()) - _utcnow()
        connect = self._connect_args()
        procs = [
            ctx.Process(
                target=_writer_process,
                args=(spec, connect, offset, messages, go, abort, start),
                name=f"loadgen-writer-{spec.partition.index}",
                daemon=True,
            )
            for spec in specs
        ]
        cpu0 = time.thread_time()
        for p in procs:
            p.start()
        ready: set[int] = set()
        finals: dict[int, LoadStats] = {}
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while len(ready) < len(procs):
                kind, k, payload = self._next_message(messages, procs, finals, deadline)
                if kind == "ready":
                    ready.add(k)
                    progress.latest[k] = payload
            start.value = time.monotonic() + 0.05
            go.set()
            while len(finals) < len(procs):
                kind, k, payload = self._next_message(messages, procs, finals, None)
                if kind == "progress":
                    progress.update(k, payload)
                elif kind == "done":
                    finals[k] = payload
                    progress.latest[k] = payload
        finally:
            abort.set()
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
            progress.coordinator_cpu_s = time.thread_time() - cpu0

    @staticmethod
    def _next_message(messages, procs, finals: dict, deadline: float | None) -> tuple:
        while True:
            try:
                kind, k, payload = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [p for i, p in enumerate(procs) if not p.is_alive() and i not in finals]
                if dead:
                    raise LoadWriterFailed(
                        f"load generator worker process {dead[0].name} exited (code {dead[0].exitcode}) without "
                        "reporting: see its output above; the other writers were stopped",
                        writer=procs.index(dead[0]),
                        error=f"exit code {dead[0].exitcode}",
                    ) from None
                if deadline is not None and time.monotonic() > deadline:
                    raise LoadWriterFailed(
                        f"load generator worker processes did not start within {STARTUP_TIMEOUT:.0f} s: is MySQL "
                        "overloaded? try fewer --workers",
                        writer=-1,
                        error="startup timeout",
                    ) from None
                continue
            if kind == "error":
                raise LoadWriterFailed(
                    f"load generator writer {k} failed; the other writers were stopped. Its error: {payload}"
                    "Check that MySQL is up (`make status`) and accepts this many connections.",
                    writer=k,
                    error=payload,
                )
            return kind, k, payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="new orders per second (default 100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=None, help="writers (default: by rate)")
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds between progress lines (default 5)")
    parser.add_argument("--conn-id", default="mysql_source", help="Airflow connection of the OLTP database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lakehouse.hooks.mysql import MySqlHook

    generator = LoadGenerator(
        MySqlHook(args.conn_id),
        rate=args.rate,
        seed=args.seed,
        workers=args.workers,
        report_every_s=args.report_every,
    )
    stats = generator.run(duration_s=args.duration)
    print(f"loadgen: {stats.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
