"""Load generator for the delivery OLTP database: orders that move through their lifecycle.

Per second, at `rate` new orders:
  - inserts the orders (status CREATED), one status event each, and a subsidy on ~60 % of them
    (platform and/or shop);
  - advances earlier orders: ACCEPTED (a rider is assigned), PICKED_UP, DELIVERED, or CANCELLED
    (~5 %), each an UPDATE of the order plus an INSERT of a status event;
  - deletes ~2 % of fresh subsidies (a clawback) and updates a few riders' status and users'
    phones, so the binlog carries inserts, updates and deletes on every table.
Each tick is one transaction. created_at is the wall-clock time of the insert, so
`visible_time - created_at` in the lakehouse is the end-to-end delay.

    python -m lakehouse.dev.loadgen --rate 200 --duration 60
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from lakehouse.core.errors import BadRequest
from lakehouse.dev.oltp import CITIES, SUBSIDY_PAYERS
from lakehouse.hooks.mysql import MySqlHook

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
NEXT_STATUS = {"CREATED": "ACCEPTED", "ACCEPTED": "PICKED_UP", "PICKED_UP": "DELIVERED"}
STATUS_TIME_COLUMN = {
    "ACCEPTED": "accepted_at",
    "PICKED_UP": "picked_up_at",
    "DELIVERED": "delivered_at",
    "CANCELLED": "cancelled_at",
}


@dataclass
class LoadStats:
    orders_created: int = 0
    status_updates: int = 0
    subsidies_created: int = 0
    subsidies_deleted: int = 0
    dimension_updates: int = 0
    transactions: int = 0
    elapsed_s: float = 0.0
    first_order_id: int | None = None
    last_order_id: int | None = None

    @property
    def achieved_rate(self) -> float:
        return self.orders_created / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class _OpenOrder:
    order_id: int
    status: str
    due: float  # monotonic time at which it advances


@dataclass
class LoadGenerator:
    mysql: MySqlHook
    rate: float = 100.0
    seed: int = 42
    cancel_ratio: float = 0.05
    # Seconds an order spends in each status before it advances; short so that a few minutes of
    # load produce complete lifecycles.
    step_seconds: tuple[float, float] = (1.0, 6.0)
    clock: callable = field(default=lambda: datetime.now(UTC).replace(tzinfo=None))

    def __post_init__(self) -> None:
        if not (0 < self.rate <= 20000):
            raise BadRequest(f"rate must be in (0, 20000] orders/s, got {self.rate}")
        if not (0 <= self.cancel_ratio < 1):
            raise BadRequest(f"cancel_ratio must be in [0, 1), got {self.cancel_ratio}")
        self.rng = random.Random(self.seed)
        self.open_orders: deque[_OpenOrder] = deque()
        self.fresh_subsidies: deque[int] = deque(maxlen=10000)
        self.stats = LoadStats()

    def _reference_data(self, cur) -> None:
        cur.execute(
            "SELECT (SELECT COALESCE(MAX(user_id), 0) FROM users), (SELECT COALESCE(MAX(shop_id), 0) FROM shops),"
            " (SELECT COALESCE(MAX(rider_id), 0) FROM riders)"
        )
        self.max_user, self.max_shop, self.max_rider = cur.fetchone()
        if not (self.max_user and self.max_shop and self.max_rider):
            raise BadRequest("users, shops and riders must be seeded first (lakehouse.dev.oltp.seed_dimensions)")
        cur.execute("SELECT COALESCE(MAX(order_id), 0) FROM orders")
        self.next_order_id = cur.fetchone()[0] + 1
        # Orders left open by an earlier run keep moving.
        cur.execute(
            "SELECT order_id, status FROM orders WHERE status IN ('CREATED', 'ACCEPTED', 'PICKED_UP')"
            " ORDER BY order_id LIMIT 100000"
        )
        now = time.monotonic()
        for order_id, status in cur.fetchall():
            self.open_orders.append(_OpenOrder(order_id, status, now + self.rng.uniform(*self.step_seconds)))

    def run(self, *, duration_s: float | None = None, max_orders: int | None = None) -> LoadStats:
        """Generate load until `duration_s` passes or `max_orders` orders exist; returns the counts."""
        if duration_s is None and max_orders is None:
            raise BadRequest("give duration_s or max_orders")
        if duration_s is not None and duration_s <= 0:
            raise BadRequest(f"duration must be positive, got {duration_s}")
        conn = self.mysql.get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                self._reference_data(cur)
            conn.commit()
            start = time.monotonic()
            next_tick = start
            while True:
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                if max_orders is not None and self.stats.orders_created >= max_orders:
                    break
                # Orders owed since the start: a slow tick is made up by the next ones.
                n_new = int(self.rate * (now - start + TICK_SECONDS)) - self.stats.orders_created
                if max_orders is not None:
                    n_new = min(n_new, max_orders - self.stats.orders_created)
                with conn.cursor() as cur:
                    self._tick(cur, n_new, now)
                conn.commit()
                self.stats.transactions += 1
                next_tick += TICK_SECONDS
                sleep = next_tick - time.monotonic()
                if sleep > 0:
                    time.sleep(sleep)
                else:
                    next_tick = time.monotonic()  # behind schedule: do not try to catch up in a burst
            self.stats.elapsed_s = time.monotonic() - start
        finally:
            conn.close()
        return self.stats

    def _tick(self, cur, n_new: int, now: float) -> None:
        ts = self.clock()
        if n_new:
            self._create_orders(cur, n_new, ts, now)
        self._advance_orders(cur, ts, now)
        if self.fresh_subsidies and self.rng.random() < 0.02 * max(1, n_new):
            subsidy_id = self.fresh_subsidies.popleft()
            cur.execute("DELETE FROM order_subsidies WHERE subsidy_id = %s", (subsidy_id,))
            self.stats.subsidies_deleted += cur.rowcount
        if self.rng.random() < 0.2:
            cur.execute(
                "UPDATE riders SET status = %s WHERE rider_id = %s",
                (self.rng.choice(("ONLINE", "BUSY", "OFFLINE")), self.rng.randint(1, self.max_rider)),
            )
            cur.execute(
                "UPDATE users SET phone = %s WHERE user_id = %s",
                (f"139{self.rng.randint(0, 99999999):08d}", self.rng.randint(1, self.max_user)),
            )
            self.stats.dimension_updates += 2

    def _create_orders(self, cur, n: int, ts: datetime, now: float) -> None:
        orders, events, subsidies = [], [], []
        for _ in range(n):
            order_id = self.next_order_id
            self.next_order_id += 1
            amount = Decimal(self.rng.randint(1500, 20000)) / 100
            orders.append(
                (
                    order_id,
                    self.rng.randint(1, self.max_user),
                    self.rng.randint(1, self.max_shop),
                    self.rng.choice(CITIES),
                    "CREATED",
                    amount,
                    ts,
                )
            )
            events.append((order_id, "CREATED", None, ts))
            if self.rng.random() < 0.6:
                payer = self.rng.choice(SUBSIDY_PAYERS)
                subsidies.append((order_id, payer, min(amount, Decimal(self.rng.randint(100, 800)) / 100), ts))
            self.open_orders.append(_OpenOrder(order_id, "CREATED", now + self.rng.uniform(*self.step_seconds)))
        cur.executemany(
            "INSERT INTO orders (order_id, user_id, shop_id, city, status, amount, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            orders,
        )
        cur.executemany(
            "INSERT INTO order_status_events (order_id, status, rider_id, event_time) VALUES (%s, %s, %s, %s)", events
        )
        if subsidies:
            cur.executemany(
                "INSERT INTO order_subsidies (order_id, payer, amount, created_at) VALUES (%s, %s, %s, %s)", subsidies
            )
            first = cur.lastrowid  # InnoDB gives consecutive ids to one multi-row insert
            self.fresh_subsidies.extend(range(first, first + len(subsidies)))
            self.stats.subsidies_created += len(subsidies)
        self.stats.orders_created += n
        self.stats.first_order_id = self.stats.first_order_id or orders[0][0]
        self.stats.last_order_id = orders[-1][0]

    def _advance_orders(self, cur, ts: datetime, now: float) -> None:
        events = []
        updates: dict[str, list[tuple]] = {}
        budget = max(50, int(self.rate * 3 * TICK_SECONDS * 2))
        while self.open_orders and self.open_orders[0].due <= now and budget > 0:
            order = self.open_orders.popleft()
            budget -= 1
            if order.status == "CREATED" and self.rng.random() < self.cancel_ratio:
                new_status = "CANCELLED"
            else:
                new_status = NEXT_STATUS[order.status]
            rider = self.rng.randint(1, self.max_rider) if new_status == "ACCEPTED" else None
            updates.setdefault(new_status, []).append(
                (ts, rider, order.order_id) if new_status == "ACCEPTED" else (ts, order.order_id)
            )
            events.append((order.order_id, new_status, rider, ts))
            if new_status in NEXT_STATUS:
                self.open_orders.append(
                    _OpenOrder(order.order_id, new_status, now + self.rng.uniform(*self.step_seconds))
                )
        for status, rows in updates.items():
            column = STATUS_TIME_COLUMN[status]  # fixed mapping, not user input
            if status == "ACCEPTED":
                cur.executemany(
                    f"UPDATE orders SET status = 'ACCEPTED', {column} = %s, rider_id = %s WHERE order_id = %s", rows
                )
            else:
                cur.executemany(
                    f"UPDATE orders SET status = %s, {column} = %s WHERE order_id = %s", [(status, *r) for r in rows]
                )
        if events:
            cur.executemany(
                "INSERT INTO order_status_events (order_id, status, rider_id, event_time) VALUES (%s, %s, %s, %s)",
                events,
            )
        self.stats.status_updates += len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="new orders per second (default 100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--conn-id", default="mysql_source", help="Airflow connection of the OLTP database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stats = LoadGenerator(MySqlHook(args.conn_id), rate=args.rate, seed=args.seed).run(duration_s=args.duration)
    print(
        f"loadgen: {stats.orders_created} orders in {stats.elapsed_s:.1f} s ({stats.achieved_rate:.0f}/s), "
        f"{stats.status_updates} status changes, {stats.subsidies_created} subsidies "
        f"(-{stats.subsidies_deleted} deleted), {stats.dimension_updates} dimension updates, "
        f"{stats.transactions} transactions"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
