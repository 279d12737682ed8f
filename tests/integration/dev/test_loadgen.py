"""The load generator against MariaDB itself (this module's own database, `isolated_env`; no Flink job
reads it): worker processes with their own keys, a later run that takes over the orders left open by
earlier ones (split among a different number of writers, with a clock an hour behind), and afterwards,
in MariaDB, every order's status history is a valid lifecycle and the rows equal what the runs reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lakehouse.dev.lifecycles import check_lifecycles
from lakehouse.dev.loadgen import LoadGenerator


def test_writers_leave_valid_lifecycles_and_exactly_what_they_report(isolated_env):
    mysql = isolated_env.mysql
    runs = [
        LoadGenerator(mysql, rate=3000, seed=1, workers=3).run(duration_s=8),
        # An hour behind: the open orders' next changes must still come after their last ones.
        LoadGenerator(
            mysql, rate=200, seed=2, clock=lambda: datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
        ).run(duration_s=5),
        LoadGenerator(mysql, rate=2500, seed=3, workers=2).run(duration_s=6),
    ]
    first = runs[0]
    assert first.writers == 3 and first.orders_created > 0.8 * 3000 * 8
    assert runs[1].resumed_orders > 0 and runs[1].resumed_status_updates > 0
    assert runs[2].writers == 2 and runs[2].resumed_status_updates > 0
    assert all(r.missed_changes == 0 for r in runs)
    m = first.mix()
    assert 0.55 < m["subsidies"] < 0.65 and 0.02 < m["dimension_updates"] < 0.06 and m["status_changes"] > 0.5

    report = check_lifecycles(mysql)
    assert report.valid, report.summary()
    assert set(report.paths) >= {"CREATED>ACCEPTED>PICKED_UP>DELIVERED", "CREATED>CANCELLED"}

    orders, distinct, low, high = mysql.get_first(
        "SELECT COUNT(*), COUNT(DISTINCT order_id), MIN(order_id), MAX(order_id) FROM orders"
    )
    assert orders == distinct == sum(r.orders_created for r in runs)
    assert (low, high) == (runs[0].first_order_id, max(r.last_order_id for r in runs))
    assert report.events == orders + sum(r.status_updates for r in runs)
    subsidies = mysql.get_first("SELECT COUNT(*) FROM order_subsidies")[0]
    assert subsidies == sum(r.subsidies_created - r.subsidies_deleted for r in runs)
    assert sum(r.subsidies_deleted for r in runs) > 0
    # Each run's orders were created by the clock it was given.
    backdated = mysql.get_first(
        "SELECT MAX(created_at) FROM orders WHERE order_id BETWEEN %s AND %s",
        (runs[1].first_order_id, runs[1].last_order_id),
    )[0]
    assert backdated < datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=50)


def test_a_run_of_another_day_leaves_the_open_orders_of_today_alone(isolated_env):
    """A back-dated run (loading a past day) moved today's open orders on at its own time: 24,687
    orders delivered the day before they were created, which the streaming quality checks rejected.
    The other way round, today's run delivered a past day's open orders after more than 10 hours."""
    mysql = isolated_env.mysql
    today = LoadGenerator(mysql, rate=300, seed=11).run(duration_s=3)
    assert today.orders_created > 0
    yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    start = datetime.now(UTC).replace(tzinfo=None)
    past = LoadGenerator(
        mysql, rate=300, seed=12, clock=lambda: yesterday + (datetime.now(UTC).replace(tzinfo=None) - start)
    )
    stats = past.run(duration_s=3)
    assert stats.resumed_orders == 0
    late = mysql.get_first(
        "SELECT COUNT(*) FROM orders WHERE delivered_at < created_at OR picked_up_at < created_at"
        " OR TIMESTAMPDIFF(MINUTE, created_at, delivered_at) > 600"
    )[0]
    assert late == 0
    assert check_lifecycles(mysql).valid
