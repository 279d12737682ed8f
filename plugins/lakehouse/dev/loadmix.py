"""What the load generator writes, planned without a database: the per-order mix and each order's lifecycle.

Every new order draws its own dice, whatever the rate:

  - a subsidy with probability `subsidy_ratio` (platform or shop);
  - its status moves on after `step_seconds` in each status: CREATED -> ACCEPTED (a rider is assigned)
    -> PICKED_UP -> DELIVERED, or CREATED -> CANCELLED with probability `cancel_ratio`;
  - when it leaves CREATED, its subsidy (if any) is clawed back (deleted) with probability `clawback_ratio`;
  - with probabilities `rider_update_ratio` and `user_update_ratio` a rider's status and a user's phone
    change in the same transaction as its insert.

So the changes per order (the mix) depend on how long a run lasts (an order created 2 s before the end has
not been delivered yet), never on how many orders per second it creates.

The work is split among `workers` writers by key: writer k of n owns every order whose id is k modulo n
(new ones and those left open by an earlier run) and the riders and users whose ids are k modulo n. Each
order's changes are therefore written by one connection, one transaction after another, in lifecycle order,
and no two writers ever lock the same row. Time runs in ticks of `TICK_SECONDS`: tick j creates the orders
owed by then, `floor(rate * (j + 1) * TICK_SECONDS)` in all, numbered from the first free order id, and each
writer takes the ids it owns; every writer computes the same schedule, so no coordinator hands out ids.
A writer that is behind writes the ticks it missed in one transaction, up to a second of them; the orders
of older ticks are dropped (counted), so that the lifecycles keep to the clock however overloaded the
database is, and the changes per order stay those of the mix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lakehouse.core.errors import BadRequest
from lakehouse.dev.oltp import CITIES, SUBSIDY_PAYERS

TICK_SECONDS = 0.1
RIDER_STATUSES = ("ONLINE", "BUSY", "OFFLINE")
NEXT_STATUS = {"CREATED": "ACCEPTED", "ACCEPTED": "PICKED_UP", "PICKED_UP": "DELIVERED"}
OPEN_STATUSES = tuple(NEXT_STATUS)
# The order's column holding the time it reached each status after CREATED (fixed, not user input).
STATUS_TIME_COLUMN = {
    "ACCEPTED": "accepted_at",
    "PICKED_UP": "picked_up_at",
    "DELIVERED": "delivered_at",
    "CANCELLED": "cancelled_at",
}
# The paths an order's status history may take, as a prefix of one of these (lifecycles.py checks them).
LIFECYCLES = (("CREATED", "ACCEPTED", "PICKED_UP", "DELIVERED"), ("CREATED", "CANCELLED"))
ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Mix:
    """The per-order probabilities and the time an order spends in each status."""

    subsidy_ratio: float = 0.6
    cancel_ratio: float = 0.05
    clawback_ratio: float = 1 / 30  # of subsidised orders: 0.02 subsidy deletes per order
    rider_update_ratio: float = 0.02
    user_update_ratio: float = 0.02
    # Seconds in each status before the next; short, so a few minutes of load complete lifecycles.
    step_seconds: tuple[float, float] = (1.0, 6.0)

    def __post_init__(self) -> None:
        for name in ("subsidy_ratio", "clawback_ratio", "rider_update_ratio", "user_update_ratio"):
            if not (0 <= getattr(self, name) <= 1):
                raise BadRequest(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not (0 <= self.cancel_ratio < 1):
            raise BadRequest(f"cancel_ratio must be in [0, 1), got {self.cancel_ratio}")
        low, high = self.step_seconds
        if not (0 < low <= high):
            raise BadRequest(f"step_seconds must be (low, high) with 0 < low <= high, got {self.step_seconds}")

    def steps_in_ticks(self, rng: random.Random) -> int:
        """Ticks until an order's next status change (at least one)."""
        low, high = self.step_seconds
        return max(1, math.ceil((low + (high - low) * rng.random()) / TICK_SECONDS - 1e-9))


@dataclass(frozen=True)
class Schedule:
    """How many orders exist after each tick: the same for every writer, so each can take its own ids."""

    rate: float
    first_order_id: int
    max_orders: int | None = None

    def owed(self, tick: int) -> int:
        """Orders created in ticks 0..tick together."""
        if tick < 0:
            return 0
        n = int(self.rate * (tick + 1) * TICK_SECONDS + 1e-9)
        return n if self.max_orders is None else min(n, self.max_orders)

    def complete(self, tick: int) -> bool:
        """Whether every order the run is to create has been created by the end of `tick`."""
        return self.max_orders is not None and self.owed(tick) >= self.max_orders


@dataclass(frozen=True)
class Partition:
    """Writer `index` of `count`: owns the keys equal to `index` modulo `count`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.index < self.count):
            raise BadRequest(f"writer {self.index} of {self.count}: the index must be in [0, {self.count})")

    def owns(self, key: int) -> bool:
        return key % self.count == self.index

    def new_ids(self, schedule: Schedule, first_tick: int, last_tick: int) -> range:
        """The ids of the orders created in ticks first_tick..last_tick that this writer owns."""
        lo = schedule.first_order_id + schedule.owed(first_tick - 1)
        hi = schedule.first_order_id + schedule.owed(last_tick)
        start = lo + (self.index - lo) % self.count
        return range(start, hi, self.count)

    def key_count(self, max_key: int) -> int:
        """How many of the keys 1..max_key this writer owns."""
        first = self.index or self.count
        return 0 if first > max_key else (max_key - first) // self.count + 1

    def key(self, ordinal: int) -> int:
        """The `ordinal`-th key (from 0) this writer owns among 1, 2, ..."""
        return (self.index or self.count) + ordinal * self.count


@dataclass
class Batch:
    """The rows of one transaction of one writer. Every new order gets a CREATED event at `ts`;
    every status change an event at its own time (`ts`, or later when the order's last change was)."""

    ts: datetime
    orders: list[tuple] = field(default_factory=list)  # (order_id, user_id, shop_id, city, amount in cents)
    subsidies: list[tuple] = field(default_factory=list)  # (order_id, payer, amount in cents)
    # Status changes by (new status, time): order ids, or (order id, rider id) pairs for ACCEPTED.
    advances: dict[tuple[str, datetime], list] = field(default_factory=dict)
    clawbacks: list[int] = field(default_factory=list)  # order ids whose subsidies are deleted
    riders: list[tuple[int, str]] = field(default_factory=list)  # (rider_id, status), in order
    users: list[tuple[int, str]] = field(default_factory=list)  # (user_id, phone), in order
    resumed_advances: int = 0  # of the status changes, those of orders created before this run
    dropped_orders: int = 0  # owed by ticks the writer was too far behind to create them in

    @property
    def status_changes(self) -> int:
        return sum(len(v) for v in self.advances.values())

    @property
    def dimension_updates(self) -> int:
        return len(self.riders) + len(self.users)

    def events(self) -> list[tuple]:
        """The status events the batch writes: (order_id, status, rider_id, event_time)."""
        out = [(order[0], "CREATED", None, self.ts) for order in self.orders]
        for (status, ts), rows in self.advances.items():
            for row in rows:
                out.append((row[0], status, row[1], ts) if status == "ACCEPTED" else (row, status, None, ts))
        return out


@dataclass(frozen=True)
class Dimensions:
    """The largest user, shop and rider ids: new orders reference ids 1..max."""

    max_user: int
    max_shop: int
    max_rider: int


def truncate_ms(ts: datetime) -> datetime:
    """`ts` at the DATETIME(3) precision the schema stores, so per-order times compare as stored."""
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


class Planner:
    """One writer's orders: which to create, which status changes are due, and their rows, tick by tick.

    Open orders wait on a timing wheel keyed by the tick they are due in; an entry is
    (order_id, status, time of its last change, has a subsidy of this run, created by this run)."""

    def __init__(
        self,
        *,
        mix: Mix,
        schedule: Schedule,
        partition: Partition,
        dims: Dimensions,
        rng: random.Random,
    ) -> None:
        self.mix, self.schedule, self.partition, self.dims, self.rng = mix, schedule, partition, dims, rng
        self.wheel: dict[int, list[tuple]] = {}
        self.next_tick = 0  # the first tick not planned yet
        self.open_orders = 0
        self._riders = partition.key_count(dims.max_rider)
        self._users = partition.key_count(dims.max_user)

    def resume(self, rows: Iterable[tuple[int, str, datetime]]) -> int:
        """Orders left open by an earlier run (order_id, status, time of the last change) move on too."""
        n = 0
        for order_id, status, last in rows:
            if status in NEXT_STATUS and self.partition.owns(order_id):
                self._wait(self.next_tick, (order_id, status, last, False, False))
                n += 1
        return n

    def _wait(self, tick: int, entry: tuple) -> None:
        due = tick + self.mix.steps_in_ticks(self.rng)
        self.wheel.setdefault(due, []).append(entry)
        self.open_orders += 1

    def done(self) -> bool:
        """Whether this writer has created every order of a run bounded by `max_orders`."""
        return self.schedule.complete(self.next_tick - 1)

    def plan(self, last_tick: int, ts: datetime, *, create_from: int | None = None) -> Batch:
        """The rows of ticks next_tick..last_tick together (more than one when the writer fell behind).

        The orders of the ticks before `create_from` are not created (a writer too far behind drops
        them; `Batch.dropped_orders` counts them); the status changes due in those ticks are written."""
        ts = truncate_ms(ts)
        batch = Batch(ts)
        first = self.next_tick if create_from is None else max(self.next_tick, create_from)
        batch.dropped_orders = len(self.partition.new_ids(self.schedule, self.next_tick, first - 1))
        self._create(batch, self.partition.new_ids(self.schedule, first, last_tick), last_tick)
        for tick in range(self.next_tick, last_tick + 1):
            for entry in self.wheel.pop(tick, ()):
                self.open_orders -= 1
                self._advance(batch, entry, last_tick)
        self.next_tick = last_tick + 1
        return batch

    def _create(self, batch: Batch, ids: range, tick: int) -> None:
        mix, dims, ts = self.mix, self.dims, batch.ts
        random_ = self.rng.random
        for order_id in ids:
            cents = 1500 + int(random_() * 18501)
            batch.orders.append(
                (
                    order_id,
                    1 + int(random_() * dims.max_user),
                    1 + int(random_() * dims.max_shop),
                    CITIES[int(random_() * len(CITIES))],
                    cents,
                )
            )
            subsidised = random_() < mix.subsidy_ratio
            if subsidised:
                payer = SUBSIDY_PAYERS[int(random_() * len(SUBSIDY_PAYERS))]
                batch.subsidies.append((order_id, payer, min(cents, 100 + int(random_() * 701))))
            self._wait(tick, (order_id, "CREATED", ts, subsidised, True))
            if random_() < mix.rider_update_ratio and self._riders:
                rider = self.partition.key(int(random_() * self._riders))
                batch.riders.append((rider, RIDER_STATUSES[int(random_() * len(RIDER_STATUSES))]))
            if random_() < mix.user_update_ratio and self._users:
                user = self.partition.key(int(random_() * self._users))
                batch.users.append((user, f"139{int(random_() * 100_000_000):08d}"))

    def _advance(self, batch: Batch, entry: tuple, tick: int) -> None:
        order_id, status, last, subsidised, ours = entry
        rng = self.rng
        if status == "CREATED" and rng.random() < self.mix.cancel_ratio:
            new_status = "CANCELLED"
        else:
            new_status = NEXT_STATUS[status]
        # Times move forward per order even if the clock does not (a backdated clock restarted).
        ts = batch.ts if batch.ts > last else last + ONE_MS
        rider = 1 + int(rng.random() * self.dims.max_rider) if new_status == "ACCEPTED" else None
        batch.advances.setdefault((new_status, ts), []).append(order_id if rider is None else (order_id, rider))
        if not ours:
            batch.resumed_advances += 1
        if status == "CREATED" and subsidised and rng.random() < self.mix.clawback_ratio:
            batch.clawbacks.append(order_id)
        if new_status in NEXT_STATUS:
            self._wait(tick, (order_id, new_status, ts, False, ours))
