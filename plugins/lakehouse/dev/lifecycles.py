"""Whether every order in MariaDB went through a valid lifecycle: MariaDB's own rows, no lakehouse involved.

For the orders in an id range (default: all), from `orders` and `order_status_events`:

  - the statuses of an order's events, in event_id order (the order they were inserted, which for one
    order is the order they were committed and written to the binlog), are a prefix of
    CREATED > ACCEPTED > PICKED_UP > DELIVERED or CREATED > CANCELLED;
  - the event times of an order rise strictly in that order;
  - the order row agrees with its events: its status is the last event's, created_at, accepted_at,
    picked_up_at, delivered_at and cancelled_at are the times of the events of those statuses (NULL
    without one), rider_id the rider of its ACCEPTED event;
  - no order lacks events, no event or subsidy lacks its order.

    python -m lakehouse.dev.lifecycles [--conn-id mysql_source]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakehouse.dev.loadmix import LIFECYCLES

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook

SEPARATOR = ">"
VALID_PATHS = frozenset(SEPARATOR.join(path[:n]) for path in LIFECYCLES for n in range(1, len(path) + 1))


@dataclass
class LifecycleReport:
    orders: int = 0
    events: int = 0
    paths: dict[str, int] = field(default_factory=dict)  # status path -> orders that took it
    invalid_paths: dict[str, int] = field(default_factory=dict)
    times_not_rising: int = 0  # events whose time is not after the order's previous event
    rows_disagreeing: int = 0  # orders whose row does not match their events
    orders_without_events: int = 0
    events_without_order: int = 0
    subsidies_without_order: int = 0
    examples: list[int] = field(default_factory=list)  # some order ids that failed a check

    @property
    def valid(self) -> bool:
        return not (
            self.invalid_paths
            or self.times_not_rising
            or self.rows_disagreeing
            or self.orders_without_events
            or self.events_without_order
            or self.subsidies_without_order
        )

    def summary(self) -> str:
        paths = ", ".join(f"{p}: {n}" for p, n in sorted(self.paths.items(), key=lambda kv: -kv[1]))
        if self.valid:
            return f"{self.orders} orders, {self.events} events: every lifecycle valid ({paths})"
        return (
            f"{self.orders} orders, {self.events} events: INVALID: paths {self.invalid_paths or 'ok'}, "
            f"{self.times_not_rising} event times not rising, {self.rows_disagreeing} order rows disagreeing with "
            f"their events, {self.orders_without_events} orders without events, {self.events_without_order} events "
            f"and {self.subsidies_without_order} subsidies without their order; e.g. orders {self.examples[:10]}"
        )


def _range(column: str, first: int | None, last: int | None) -> tuple[str, tuple]:
    """A bound condition on an order-id column (`column` is one of the fixed names below)."""
    return f"{column} BETWEEN %s AND %s", (first if first is not None else 0, last if last is not None else 2**62)


def check_lifecycles(
    mysql: MySqlHook, *, first_order_id: int | None = None, last_order_id: int | None = None
) -> LifecycleReport:
    """Check the orders with ids in [first_order_id, last_order_id] (default: all); returns a LifecycleReport."""
    report = LifecycleReport()
    o_range, params = _range("o.order_id", first_order_id, last_order_id)
    e_range, _ = _range("e.order_id", first_order_id, last_order_id)
    s_range, _ = _range("s.order_id", first_order_id, last_order_id)
    report.orders = mysql.get_first(f"SELECT COUNT(*) FROM orders o WHERE {o_range}", params)[0]
    report.events = mysql.get_first(f"SELECT COUNT(*) FROM order_status_events e WHERE {e_range}", params)[0]

    histories = f"""
        SELECT e.order_id, GROUP_CONCAT(e.status ORDER BY e.event_id SEPARATOR '{SEPARATOR}') AS path,
               MAX(CASE WHEN e.status = 'CREATED' THEN e.event_time END) AS created,
               MAX(CASE WHEN e.status = 'ACCEPTED' THEN e.event_time END) AS accepted,
               MAX(CASE WHEN e.status = 'PICKED_UP' THEN e.event_time END) AS picked_up,
               MAX(CASE WHEN e.status = 'DELIVERED' THEN e.event_time END) AS delivered,
               MAX(CASE WHEN e.status = 'CANCELLED' THEN e.event_time END) AS cancelled,
               MAX(CASE WHEN e.status = 'ACCEPTED' THEN e.rider_id END) AS rider
        FROM order_status_events e WHERE {e_range} GROUP BY e.order_id"""
    for path, n in mysql.get_records(f"SELECT path, COUNT(*) FROM ({histories}) h GROUP BY path", params):
        report.paths[path] = n
        if path not in VALID_PATHS:
            report.invalid_paths[path] = n
    if report.invalid_paths:
        bad = ", ".join(["%s"] * len(report.invalid_paths))
        rows = mysql.get_records(
            f"SELECT order_id FROM ({histories}) h WHERE path IN ({bad}) LIMIT 10", (*params, *report.invalid_paths)
        )
        report.examples += [r[0] for r in rows]

    not_rising = f"""
        SELECT order_id FROM (
            SELECT e.order_id, e.event_time,
                   LAG(e.event_time) OVER (PARTITION BY e.order_id ORDER BY e.event_id) AS previous
            FROM order_status_events e WHERE {e_range}) t
        WHERE t.event_time <= t.previous"""
    report.times_not_rising = mysql.get_first(f"SELECT COUNT(*) FROM ({not_rising}) x", params)[0]
    if report.times_not_rising:
        report.examples += [r[0] for r in mysql.get_records(f"{not_rising} LIMIT 10", params)]

    disagreeing = f"""
        SELECT o.order_id FROM orders o JOIN ({histories}) h ON h.order_id = o.order_id
        WHERE {o_range} AND NOT (
            o.status <=> SUBSTRING_INDEX(h.path, '{SEPARATOR}', -1) AND o.created_at <=> h.created
            AND o.accepted_at <=> h.accepted AND o.picked_up_at <=> h.picked_up
            AND o.delivered_at <=> h.delivered AND o.cancelled_at <=> h.cancelled AND o.rider_id <=> h.rider)"""
    both = (*params, *params)
    report.rows_disagreeing = mysql.get_first(f"SELECT COUNT(*) FROM ({disagreeing}) x", both)[0]
    if report.rows_disagreeing:
        report.examples += [r[0] for r in mysql.get_records(f"{disagreeing} LIMIT 10", both)]

    report.orders_without_events = mysql.get_first(
        "SELECT COUNT(*) FROM orders o WHERE "
        + o_range
        + " AND NOT EXISTS (SELECT 1 FROM order_status_events e WHERE e.order_id = o.order_id)",
        params,
    )[0]
    report.events_without_order = mysql.get_first(
        "SELECT COUNT(*) FROM order_status_events e WHERE "
        + e_range
        + " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = e.order_id)",
        params,
    )[0]
    report.subsidies_without_order = mysql.get_first(
        "SELECT COUNT(*) FROM order_subsidies s WHERE "
        + s_range
        + " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id)",
        params,
    )[0]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conn-id", default="mysql_source", help="Airflow connection of the OLTP database")
    parser.add_argument("--first-order-id", type=int, default=None)
    parser.add_argument("--last-order-id", type=int, default=None)
    args = parser.parse_args(argv)
    from lakehouse.hooks.mysql import MySqlHook

    report = check_lifecycles(
        MySqlHook(args.conn_id), first_order_id=args.first_order_id, last_order_id=args.last_order_id
    )
    print(f"lifecycles: {report.summary()}")
    return 0 if report.valid else 1


if __name__ == "__main__":
    raise SystemExit(main())
