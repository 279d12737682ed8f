"""DWD/DWS metrics computed directly from the OLTP database: the truth the lakehouse must equal.

These queries restate the models' business rules (sql/models/) in MySQL, independently of Flink
and Paimon, so a test that compares the two catches a wrong model, a lost change or a double count.
"""

from __future__ import annotations

import math
from decimal import Decimal

from lakehouse.core.registry import registry
from lakehouse.dev.reconcile import KeyedDiff, diff_keyed
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook

# The DWS tables of order metrics restated here; their grain is their primary key in the registry.
DWS_GRAINS = ("dws.dws_shop_hourly", "dws.dws_shop_daily", "dws.dws_city_hourly", "dws.dws_city_daily")
# How each DWS key column is computed from an order in MySQL (fixed text, not user input).
KEY_EXPRESSIONS = {"shop_id": "o.shop_id", "city": "o.city", "order_hour": "HOUR(o.created_at)"}
METRICS = ("gmv", "order_count", "subsidy_total", "cancelled_orders", "delivered_orders", "avg_delivery_minutes")


def valid_orders() -> str:
    """The models' rule for a valid order, in MySQL: a positive amount and one of the statuses of
    config/tables.yaml (upper snake case, checked on load; quoted all the same)."""
    statuses = registry().table("ods.ods_orders").statuses
    return "o.amount > 0 AND o.status IN (" + ", ".join("'" + s.replace("'", "''") + "'" for s in statuses) + ")"


def key_columns(table: str) -> tuple[str, ...]:
    """The grain of a DWS table: its primary key (config/tables.yaml)."""
    return registry().table(table).primary_key


def dws_truth_sql(table: str) -> str:
    keys = ", ".join(KEY_EXPRESSIONS[c] for c in key_columns(table))
    return f"""
        SELECT DATE_FORMAT(o.created_at, '%Y-%m-%d') AS dt, {keys},
               SUM(CASE WHEN o.status <> 'CANCELLED' THEN o.amount ELSE 0 END),
               COUNT(*),
               SUM(CASE WHEN o.status <> 'CANCELLED' THEN COALESCE(s.total, 0) ELSE 0 END),
               SUM(o.status = 'CANCELLED'),
               SUM(o.status = 'DELIVERED'),
               SUM(TIMESTAMPDIFF(SECOND, o.created_at, o.delivered_at)),
               COUNT(o.delivered_at)
        FROM orders o
        LEFT JOIN (SELECT order_id, SUM(amount) AS total FROM order_subsidies GROUP BY order_id) s
               ON s.order_id = o.order_id
        WHERE {valid_orders()}
        GROUP BY 1, {keys}
    """


class MetricDiff(KeyedDiff):
    """A DWS table against the same metrics computed from MySQL, group by group."""

    labels = ("truth", "lake", "groups")

    @property
    def truth_groups(self) -> int:
        return self.expected_count

    @property
    def lake_groups(self) -> int:
        return self.actual_count


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return Decimal(str(a)) == Decimal(str(b))


def compare_dws(table: str, *, mysql: MySqlHook, paimon: PaimonHook) -> MetricDiff:
    """Compare a DWS table with the same metrics computed from MySQL, group by group."""
    key_cols = key_columns(table)
    truth = {}
    for row in mysql.get_records(dws_truth_sql(table)):
        key = (row[0], *row[1 : 1 + len(key_cols)])
        *values, delivery_seconds, delivered_count = row[1 + len(key_cols) :]
        # The average in Python, not in MySQL, whose DECIMAL division keeps only 4 more digits.
        avg = float(delivery_seconds) / 60 / delivered_count if delivered_count else None
        truth[key] = (*values, avg)
    arrow = paimon.read_arrow(table)
    cols = {c: arrow.column(c).to_pylist() for c in ("dt", *key_cols, *METRICS)}
    lake = {}
    for i in range(arrow.num_rows):
        lake[(cols["dt"][i], *(cols[k][i] for k in key_cols))] = tuple(cols[m][i] for m in METRICS)
    return diff_keyed(MetricDiff(table, len(truth), len(lake)), truth, lake, _same)
