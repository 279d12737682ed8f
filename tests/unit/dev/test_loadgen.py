"""The load generator on a fake connection and a simulated clock: its statements, its transactions, its rate
control, and a mix per order that does not depend on the rate."""

from __future__ import annotations

import logging
import re
import socket
from collections import Counter
from datetime import datetime, timedelta

import pytest

from lakehouse.core.errors import BadRequest
from lakehouse.dev.loadgen import (
    LoadGenerator,
    LoadStats,
    LoadWriterFailed,
    Writer,
    WriterSpec,
    statements,
    write_batch,
)
from lakehouse.dev.loadmix import Batch, Dimensions, Mix, Partition, Schedule
from tests.support.pymysql import FakeConn, FakeCursor

BASE = datetime(2026, 11, 20, 10, 0)
REFERENCE = (2000, 300, 400, 0)  # max user, shop, rider and order ids


def in_list_length(sql: str) -> int:
    return sql[sql.index(" IN (") + 5 : sql.rindex(")")].count(",") + 1


def rows_of(sql: str) -> tuple[str, int]:
    """What a generator statement writes and how many rows: read back from the SQL text itself."""
    if sql.startswith("INSERT INTO "):
        return sql.split()[2], sql.count("),(") + 1
    if sql.startswith("UPDATE orders o JOIN") or sql.startswith(("UPDATE riders", "UPDATE users")):
        return sql.split()[1] + "_update", sql.count(" UNION ALL ") + 1
    if sql.startswith("UPDATE orders SET"):
        return "orders_update", in_list_length(sql)
    if sql.startswith("DELETE FROM order_subsidies"):
        return "order_subsidies_delete", in_list_length(sql)
    return "other", 0


class Cursor(FakeCursor):
    """Answers the generator's reads; UPDATEs and DELETEs find every row they name (or `conn.missing` fewer)."""

    rowcount = 0

    def execute(self, sql, parameters=None) -> None:
        super().execute(sql, parameters)
        kind, n = rows_of(sql)
        self.rowcount = n - self.conn.missing if kind in ("orders_update", "order_subsidies_delete") else n
        if self.conn.on_execute:
            self.conn.on_execute(sql)

    def fetchone(self):
        return self._rows[0] if self._rows else None


class Conn(FakeConn):
    def __init__(self, *, reference=REFERENCE, open_orders=(), missing=0, on_execute=None) -> None:
        def rows_for(sql, parameters):
            if "MAX(user_id)" in sql:
                return [reference]
            if sql.startswith("SELECT order_id, status"):
                return list(open_orders)
            return []

        super().__init__(rows_for=rows_for)
        self.missing, self.on_execute = missing, on_execute

    def cursor(self) -> Cursor:
        return Cursor(self)

    def written(self) -> Counter:
        counts = Counter()
        for sql in self.executed():
            kind, n = rows_of(sql)
            counts[kind] += n
        return counts


class Hook:
    """The MySqlHook methods the generator calls."""

    def __init__(self, conn=None, port: int = 3306) -> None:
        self.conn, self.port = conn or Conn(), port

    def get_conn(self):
        return self.conn

    def connection_params(self) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": "app", "password": "app", "database": "x", "extra": {}}

    def timeouts(self, extra: dict) -> dict:
        return {"connect_timeout": 2, "read_timeout": 5, "write_timeout": 5}


class SimulatedTime:
    """A monotonic timer and a sleep that only moves it; the wall clock follows."""

    def __init__(self) -> None:
        self.t = 1000.0

    def timer(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> datetime:
        return BASE + timedelta(seconds=self.t - 1000.0)


def generator(hook, rate, **kwargs) -> LoadGenerator:
    sim = SimulatedTime()
    return LoadGenerator(hook, rate=rate, timer=sim.timer, sleep=sim.sleep, clock=sim.clock, workers=1, **kwargs)


def mix_from_sql(conn: Conn) -> dict[str, float]:
    w = conn.written()
    n = w["orders"]
    return {
        "status_changes": w["orders_update"] / n,
        "subsidies": w["order_subsidies"] / n,
        "subsidy_deletes": w["order_subsidies_delete"] / n,
        "dimension_updates": (w["riders_update"] + w["users_update"]) / n,
    }


TOLERANCE = {"status_changes": 0.08, "subsidies": 0.04, "subsidy_deletes": 0.008, "dimension_updates": 0.012}


def assert_same_mix(a: dict, b: dict) -> None:
    for key, tol in TOLERANCE.items():
        assert abs(a[key] - b[key]) <= tol, (key, a, b)


def test_the_mix_per_order_does_not_depend_on_the_rate():
    """The old generator wrote 1.5 status changes per order at 1,000/s and 0.15 at 3,000/s."""
    mixes = {}
    for rate in (200, 4000):
        conn = Conn()
        stats = generator(Hook(conn), rate, seed=5).run(duration_s=20)
        assert stats.orders_created == rate * 20 and stats.missed_changes == 0
        assert stats.transactions == 200  # one per tick
        # What the statements write is what the stats say.
        assert_same_mix(stats.mix(), mix_from_sql(conn))
        assert mix_from_sql(conn)["status_changes"] == pytest.approx(stats.mix()["status_changes"])
        w = conn.written()
        assert w["order_status_events"] == w["orders"] + w["orders_update"]
        mixes[rate] = stats.mix()
    assert_same_mix(mixes[200], mixes[4000])
    m = mixes[4000]
    assert m["subsidies"] == pytest.approx(0.6, abs=0.02)
    assert m["dimension_updates"] == pytest.approx(0.04, abs=0.006)
    assert 1.5 < m["status_changes"] < 2.3  # 20 s: most orders but the last few seconds' are delivered
    assert 0.008 < m["subsidy_deletes"] < 0.03


def test_writers_split_the_work_and_write_the_same_mix():
    """Three writers (as the worker processes run them, here one after the other on the same timeline)
    create every order once, each only its own ids, with the mix of one writer."""
    rate, n = 4000.0, 3
    schedule = Schedule(rate, first_order_id=1)
    total = LoadStats(requested_rate=rate, writers=n)
    ids = []
    for k in range(n):
        sim = SimulatedTime()
        spec = WriterSpec(Partition(k, n), schedule, Dimensions(2000, 300, 400), Mix(), 5, 20.0, rate)
        conn = Conn()
        writer = Writer(spec, conn, clock=sim.clock, timer=sim.timer, sleep=sim.sleep)
        writer.prepare()
        total = total.merged(writer.run(sim.timer()))
        for sql in conn.executed():
            if sql.startswith("INSERT INTO orders "):
                mine = [int(row.split(",")[0].lstrip("(")) for row in sql.split(" VALUES ")[1].split("),(")]
                assert all(i % n == k for i in mine)
                ids += mine
            if sql.startswith(("UPDATE riders", "UPDATE users")):
                assert all(int(key) % n == k for key in re.findall(r"SELECT (\d+)", sql))
    assert sorted(ids) == list(range(1, int(rate * 20) + 1))
    single = generator(Hook(), rate, seed=5).run(duration_s=20)
    assert_same_mix(total.mix(), single.mix())


def test_a_slow_transaction_is_made_up_by_the_next_ones():
    sim = SimulatedTime()
    slowed = []

    def slow_once(sql):
        if sql.startswith("INSERT INTO orders ") and not slowed:
            slowed.append(sql)
            sim.t += 0.55  # the database stalls for half a second

    gen = LoadGenerator(
        Hook(Conn(on_execute=slow_once)), rate=1000, workers=1, timer=sim.timer, sleep=sim.sleep, clock=sim.clock
    )
    stats = gen.run(duration_s=3)
    assert stats.orders_created == 3000  # nothing owed is lost
    assert stats.max_lag_s == pytest.approx(0.45, abs=0.01)  # tick 1 was due at 0.1 s, written at 0.55 s
    assert stats.transactions == 30 - 4  # ticks 1-5 in one transaction
    assert stats.achieved_rate == pytest.approx(1000, rel=0.01)


def test_a_writer_far_behind_drops_the_orders_of_older_ticks_but_not_the_status_changes():
    """After a 3 s stall, one transaction creates the last second's orders (the two seconds before are
    dropped and counted) and writes every status change due meanwhile: the lifecycles keep to the clock."""
    sim = SimulatedTime()
    sizes = []

    def stall(sql):
        if sql.startswith("INSERT INTO orders "):
            sizes.append(sql.count("),(") + 1)
            if len(sizes) == 1:
                sim.t += 3.0

    conn = Conn(on_execute=stall)
    gen = LoadGenerator(Hook(conn), rate=1000, workers=1, timer=sim.timer, sleep=sim.sleep, clock=sim.clock)
    stats = gen.run(duration_s=5)
    assert sizes[:3] == [100, 1000, 100]  # tick 0; ticks 21-30 (1-20 dropped); tick 31
    assert stats.orders_dropped == 2000 and stats.orders_created == 3000
    assert "2000 orders dropped" in stats.summary()
    # Tick 0's orders are due 1-6 s later: the catch-up transaction at 3 s moves about 40 % of them on.
    executed = conn.executed()
    inserts = [i for i, sql in enumerate(executed) if sql.startswith("INSERT INTO orders ")]
    catch_up = executed[inserts[1] : inserts[2]]
    assert 25 < sum(rows_of(sql)[1] for sql in catch_up if rows_of(sql)[0] == "orders_update") < 60


def test_one_transaction_per_tick_and_timestamps_from_the_clock():
    conn = Conn()
    generator(Hook(conn), 100).run(duration_s=1)
    assert conn.events.count("commit") == 1 + 1 + 10  # reference data, open orders, ten ticks
    inserts = [s for s in conn.executed() if s.startswith("INSERT INTO orders ")]
    assert len(inserts) == 10 and "'2026-11-20 10:00:00'" in inserts[0]
    assert "'2026-11-20 10:00:00.900000'" in inserts[-1]
    assert conn.executed()[:2] == ["SET time_zone = '+00:00'", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"]


def test_max_orders_creates_exactly_that_many():
    stats = generator(Hook(), 1000).run(max_orders=250)
    assert stats.orders_created == 250 and (stats.first_order_id, stats.last_order_id) == (1, 250)


def test_orders_left_open_by_an_earlier_run_are_moved_on_and_counted_apart():
    conn = Conn(open_orders=[(7, "PICKED_UP", BASE), (8, "CREATED", BASE)], reference=(2000, 300, 400, 8))
    stats = generator(Hook(conn), 50).run(duration_s=8)
    assert stats.resumed_orders == 2 and stats.resumed_status_updates >= 2
    assert stats.first_order_id == 9
    delivered = [s for s in conn.executed() if s.startswith("UPDATE orders SET status = 'DELIVERED'")]
    assert any("7" in s.split(" IN (")[1].rstrip(")").split(",") for s in delivered)
    m = stats.mix()
    assert m["status_changes"] == pytest.approx((stats.status_updates - stats.resumed_status_updates) / 400)


def test_changes_that_find_no_row_are_counted_as_missed():
    stats = generator(Hook(Conn(missing=1)), 200).run(duration_s=8)
    assert stats.missed_changes > 0 and "MISSED" in stats.summary()


def test_statements_are_batched_and_every_value_is_a_number_or_escaped():
    ts = datetime(2026, 11, 20, 10, 0, 0, 123000)
    later = ts + timedelta(seconds=1)
    batch = Batch(ts)
    batch.orders = [(11, 5, 6, "wuhan", 12345), (12, 7, 8, "beijing", 1500)]
    batch.subsidies = [(11, "SHOP", 305)]
    batch.advances = {("ACCEPTED", ts): [(3, 9), (4, 10)], ("DELIVERED", later): [1, 2]}
    batch.clawbacks = [3]
    batch.riders = [(2, "BUSY")]
    batch.users = [(4, "139'0")]
    t, t2 = "'2026-11-20 10:00:00.123000'", "'2026-11-20 10:00:01.123000'"
    assert [s.sql for s in statements(batch)] == [
        "INSERT INTO orders (order_id, user_id, shop_id, city, status, amount, created_at) VALUES "
        f"(11,5,6,'wuhan','CREATED',123.45,{t}),(12,7,8,'beijing','CREATED',15.00,{t})",
        f"INSERT INTO order_subsidies (order_id, payer, amount, created_at) VALUES (11,'SHOP',3.05,{t})",
        "UPDATE orders o JOIN (SELECT 3 AS order_id, 9 AS rider_id UNION ALL SELECT 4, 10) a"
        f" ON o.order_id = a.order_id SET o.status = 'ACCEPTED', o.accepted_at = {t}, o.rider_id = a.rider_id",
        f"UPDATE orders SET status = 'DELIVERED', delivered_at = {t2} WHERE order_id IN (1,2)",
        "INSERT INTO order_status_events (order_id, status, rider_id, event_time) VALUES "
        f"(11,'CREATED',NULL,{t}),(12,'CREATED',NULL,{t}),(3,'ACCEPTED',9,{t}),(4,'ACCEPTED',10,{t}),"
        f"(1,'DELIVERED',NULL,{t2}),(2,'DELIVERED',NULL,{t2})",
        "DELETE FROM order_subsidies WHERE order_id IN (3)",
        "UPDATE riders t JOIN (SELECT 2 AS rider_id, 'BUSY' AS v) u ON t.rider_id = u.rider_id SET t.status = u.v",
        "UPDATE users t JOIN (SELECT 4 AS user_id, '139\\'0' AS v) u ON t.user_id = u.user_id SET t.phone = u.v",
    ]
    assert [s.must_change for s in statements(batch)] == [None, None, 2, 2, None, 1, None, None]
    bad = Batch(ts)
    bad.advances = {("PICKED_UP", ts): ["1) OR (1=1"]}
    with pytest.raises(ValueError):  # an id that is not an int cannot be rendered
        statements(bad)


def test_large_batches_are_split_into_chunks():
    batch = Batch(BASE)
    batch.advances = {("PICKED_UP", BASE): list(range(1, 2501))}
    sqls = [s.sql for s in statements(batch)]
    updates = [s for s in sqls if s.startswith("UPDATE")]
    assert [in_list_length(s) for s in updates] == [1000, 1000, 500]
    conn = Conn()
    with conn.cursor() as cur:
        assert write_batch(cur, batch) == (0, 0)


def test_progress_lines_give_achieved_against_requested_and_the_mix(caplog):
    with caplog.at_level(logging.INFO, logger="lakehouse.dev.loadgen"):
        generator(Hook(), 200, report_every_s=2).run(duration_s=6)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) >= 2
    assert all("/s of 200/s requested" in line and "status changes" in line for line in lines)


def test_wrong_requests_are_refused_before_anything_is_written():
    with pytest.raises(BadRequest):
        LoadGenerator(Hook(), rate=0)
    with pytest.raises(BadRequest):
        LoadGenerator(Hook(), rate=50000)
    with pytest.raises(BadRequest):
        LoadGenerator(Hook(), rate=100, workers=0)
    with pytest.raises(BadRequest):
        LoadGenerator(Hook(), rate=100).run()
    with pytest.raises(BadRequest):
        LoadGenerator(Hook(), rate=100).run(duration_s=-1)
    conn = Conn(reference=(0, 0, 0, 0))
    with pytest.raises(BadRequest, match="seed_dimensions"):
        generator(Hook(conn), 100).run(duration_s=1)
    assert not any(s.startswith("INSERT") for s in conn.executed())


@pytest.mark.parametrize(
    ("rate", "writers"), [(50, 1), (2000, 1), (2001, 2), (5000, 2), (7500, 3), (10000, 4), (20000, 4)]
)
def test_writers_by_rate(rate, writers):
    assert LoadGenerator(Hook(), rate=rate).writer_count() == writers


def test_a_writer_process_that_fails_stops_the_run_with_its_error():
    """Worker processes that cannot connect: the run fails naming the writer and the error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    gen = LoadGenerator(Hook(port=port), rate=3000, workers=2)
    with pytest.raises(LoadWriterFailed) as failed:
        gen.run(duration_s=5)
    assert failed.value.writer in (0, 1) and "OperationalError" in failed.value.error
    assert "make status" in str(failed.value)


def test_every_dimension_update_is_written_even_of_one_key_twice_in_a_batch():
    """A join with a key twice would change the row once: the second update goes into a second statement,
    so the dimension updates per order do not shrink as batches grow with the rate."""
    batch = Batch(BASE)
    batch.riders = [(2, "BUSY"), (4, "ONLINE"), (2, "OFFLINE"), (2, "ONLINE")]
    sqls = [s.sql for s in statements(batch)]
    assert sqls == [
        "UPDATE riders t JOIN (SELECT 2 AS rider_id, 'BUSY' AS v UNION ALL SELECT 4, 'ONLINE') u"
        " ON t.rider_id = u.rider_id SET t.status = u.v",
        "UPDATE riders t JOIN (SELECT 2 AS rider_id, 'OFFLINE' AS v) u ON t.rider_id = u.rider_id SET t.status = u.v",
        "UPDATE riders t JOIN (SELECT 2 AS rider_id, 'ONLINE' AS v) u ON t.rider_id = u.rider_id SET t.status = u.v",
    ]
    assert batch.dimension_updates == 4
