"""table_freshness / check_sla: each table's lag behind what feeds it, against fakes of the Paimon and
MySQL hooks, with the project's real TableSpecs and registry; DelayStats.

- ODS mirrors of a MariaDB table: the source's MAX(change_column) against ODS's newest applied
  change; behind, the lag is now - the oldest source change ODS lacks.
- DWD/DWS: the writing job's Paimon consumer on each input it streams against the input's snapshots.
- Tables fed by a generator (ods.ods_user_events): the age of the newest event time.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakehouse.core.errors import BadRequest
from lakehouse.core.registry import registry
from lakehouse.dev.probe import DelayStats
from lakehouse.hooks.paimon import SnapshotInfo
from lakehouse.quality.freshness import FreshnessSlaMissed, check_sla, table_freshness

NOW_DT = datetime(2025, 6, 15, 0, 10, 0, tzinfo=UTC)
NOW = NOW_DT.timestamp()
TODAY, YESTERDAY = "2025-06-15", "2025-06-14"


def naive(seconds_ago: float) -> datetime:
    """A TIMESTAMP / DATETIME value as pypaimon and pymysql return it: naive, in UTC."""
    return (NOW_DT - timedelta(seconds=seconds_ago)).replace(tzinfo=None)


def spec(name):
    return registry().table(name)


# ---------------------------------------------------------------------------- fakes
class FakePaimon:
    """The PaimonHook methods freshness uses, over in-memory tables.

    `data[table]` maps a partition value (None: unpartitioned) to a column's values;
    `snapshots[table]` lists (snapshot id, seconds before NOW it was committed, commit kind, records),
    expired ones simply absent; `consumers[table]` maps a consumer id to the next snapshot it reads."""

    def __init__(self, *, data=None, snapshots=None, consumers=None, tz=None):
        self.data = data or {}
        self.existing = set(self.data) | set(snapshots or {})
        self.snapshots = {
            table: {sid: self._info(sid, age, kind, records) for sid, age, kind, records in snaps}
            for table, snaps in (snapshots or {}).items()
        }
        self.consumer_positions = consumers or {}
        self.tz = tz
        self.reads: list[tuple] = []
        self.snapshot_reads: list[tuple] = []

    def table_exists(self, table):
        return table in self.existing

    @staticmethod
    def _info(sid, age, kind, records):
        return SnapshotInfo(
            snapshot_id=sid,
            commit_time=NOW_DT - timedelta(seconds=age),
            commit_kind=kind,
            total_record_count=None,
            watermark=None,
            delta_record_count=records,
            changelog_record_count=records if kind == "APPEND" else 0,
        )

    def latest_snapshot(self, identifier):
        snaps = self.snapshots.get(identifier, {})
        return snaps[max(snaps)] if snaps else None

    def get_snapshot(self, identifier, snapshot_id):
        self.snapshot_reads.append((identifier, snapshot_id))
        return self.snapshots.get(identifier, {}).get(snapshot_id)

    def snapshot_ids(self, identifier):
        return sorted(self.snapshots.get(identifier, {}))

    def consumers(self, identifier):
        return dict(self.consumer_positions.get(identifier, {}))

    def read_arrow(self, identifier, *, partition=None, columns=None):
        self.reads.append((identifier, partition, tuple(columns) if columns else None))
        key = next(iter(partition.values())) if partition else None
        values = self.data.get(identifier, {}).get(key, [])
        return pa.table({columns[0]: pa.array(values, type=pa.timestamp("ms", tz=self.tz))})


_QUERY = re.compile(r"^SELECT (MAX|MIN)\(`([a-z_]+)`\) FROM `([a-z_]+)`(?: WHERE (.+))?$")
_CONDITION = re.compile(r"^`([a-z_]+)` (>=|<|>) %s$")
_OPS = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}


class FakeMySql:
    """get_first over in-memory source rows (`rows[table]`: dicts of column -> naive UTC datetime).

    Answers only what freshness may ask: SELECT MAX|MIN(`col`) FROM `table` [WHERE `col` op %s AND ...],
    every value a bound parameter; anything else fails the test."""

    def __init__(self, rows):
        self.rows = rows
        self.queries: list[tuple[str, tuple]] = []

    def get_first(self, sql, parameters=None):
        params = tuple(parameters or ())
        self.queries.append((sql, params))
        m = _QUERY.match(sql)
        assert m, f"unexpected SQL: {sql}"
        func, column, table, where = m.groups()
        conditions = [_CONDITION.match(c) for c in where.split(" AND ")] if where else []
        assert all(conditions) and len(conditions) == len(params), f"unexpected WHERE: {where} {params}"
        rows = [
            r
            for r in self.rows[table]
            if all(_OPS[c.group(2)](r[c.group(1)], p) for c, p in zip(conditions, params, strict=True))
        ]
        values = [r[column] for r in rows]
        return ((max if func == "MAX" else min)(values) if values else None,)


@pytest.fixture
def host_in_new_york():
    """A host whose local time zone is not UTC: naive timestamps must still be read as UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def one_snapshot(table, age=4):
    return {table: [(17, age, "APPEND", 10)]}


# ---------------------------------------------------------------------------- the specs used here
def test_specs_used_are_what_the_tests_assume():
    reg = registry()
    orders, users, shops = (spec(n) for n in ("ods.ods_orders", "ods.ods_users", "ods.ods_shops"))
    assert (orders.partition, orders.source, orders.source_change_column, orders.source_day_column) == (
        "dt",
        "orders",
        "updated_at",
        "created_at",
    )
    assert (orders.freshness_sla_s, users.freshness_sla_s) == (120, 120)
    assert (users.partition, users.source, users.source_change_column) == (None, "users", "updated_at")
    assert shops.freshness_sla_s is None and shops.source == "shops"
    events = spec("ods.ods_user_events")
    assert (events.source, events.partition, events.freshness_column, events.freshness_sla_s) == (
        None,
        "dt",
        "event_time",
        120,
    )
    assert [j.streamed for j in reg.writers("ods.ods_user_events")] == [()]  # a generator
    assert [j.streamed for j in reg.writers("dws.dws_shop_hourly")] == [("dwd.dwd_order_fact",)]
    assert [j.streamed for j in reg.writers("dwd.dwd_order_fact")] == [("ods.ods_orders", "ods.ods_order_subsidies")]
    assert spec("dws.dws_shop_hourly").freshness_sla_s == 300
    assert spec("dwd.dwd_order_fact").freshness_sla_s == 180


# ---------------------------------------------------------------------------- ODS: lag behind the source
def users_source(*ages):
    return FakeMySql({"users": [{"updated_at": naive(a)} for a in ages]})


def test_quiet_source_with_an_old_last_change_is_fresh():
    """The soak's false alarm: users last changed 646 s ago, ODS holds that change: caught up."""
    paimon = FakePaimon(
        data={"ods.ods_users": {None: [naive(9000), naive(646)]}}, snapshots=one_snapshot("ods.ods_users", 640)
    )
    mysql = users_source(9000, 646)

    f = check_sla(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW)

    assert (f.table, f.measure, f.lag_s, f.behind_since) == ("ods.ods_users", "source", 0.0, None)
    assert f.describe() == (
        "ods.ods_users: lag 0 s: caught up with users (newest change 2025-06-14 23:59:14 UTC, applied); "
        "snapshot 17 committed 640 s ago"
    )
    # No value in the SQL, identifiers quoted; one query, since ODS holds the newest change.
    assert mysql.queries == [("SELECT MAX(`updated_at`) FROM `users`", ())]
    assert paimon.reads == [("ods.ods_users", None, ("updated_at",))]


def test_stuck_pipeline_is_stale_within_one_check_and_its_lag_grows_with_the_clock():
    # ODS applied the change of 700 s ago; the source has two more since (600 s and 30 s ago).
    paimon = FakePaimon(
        data={"ods.ods_users": {None: [naive(900), naive(700)]}}, snapshots=one_snapshot("ods.ods_users", 700)
    )
    mysql = users_source(900, 700, 600, 30)

    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW)

    message = str(exc.value)
    assert exc.value.table == "ods.ods_users"
    assert message.startswith(
        "ods.ods_users is stale: 600 s behind its source users (the oldest change it lacks is from "
        "2025-06-15 00:00:00 UTC), SLA 120 s. "
    ), message
    assert "newest applied 2025-06-14 23:58:20 UTC, source newest 2025-06-15 00:09:30 UTC" in message
    assert "ods_delivery_cdc" in message and "streaming_supervision" in message
    assert mysql.queries == [
        ("SELECT MAX(`updated_at`) FROM `users`", ()),
        ("SELECT MIN(`updated_at`) FROM `users` WHERE `updated_at` > %s", (naive(700),)),
    ]
    # The lag is wall-clock time since the oldest missing change: a minute later it is a minute more.
    later = table_freshness(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW + 60)
    assert later.lag_s == pytest.approx(660)
    assert later.behind_since == NOW_DT - timedelta(seconds=600)


def test_one_change_missing_is_stale_as_soon_as_it_is_older_than_the_sla():
    paimon = FakePaimon(data={"ods.ods_users": {None: [naive(5000)]}}, snapshots=one_snapshot("ods.ods_users", 5000))
    mysql = users_source(5000, 119)
    assert check_sla(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW).lag_s == pytest.approx(119)
    with pytest.raises(FreshnessSlaMissed, match=r"^ods\.ods_users is stale: 121 s behind its source users"):
        check_sla(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW + 2)


def test_ods_ahead_of_the_source_is_caught_up():
    """The source's newest row was deleted (ODS may not have applied the delete yet): nothing newer to apply."""
    paimon = FakePaimon(
        data={"ods.ods_users": {None: [naive(300), naive(10)]}}, snapshots=one_snapshot("ods.ods_users")
    )
    assert table_freshness(paimon, spec("ods.ods_users"), mysql=users_source(300), now=NOW).lag_s == 0


def test_empty_ods_behind_a_source_with_rows_is_stale_from_the_oldest_row():
    """No snapshot yet (the CDC job never committed) while the source has rows: behind since the oldest."""
    paimon = FakePaimon()
    mysql = users_source(400, 200)
    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec("ods.ods_users"), mysql=mysql, now=NOW)
    assert str(exc.value).startswith("ods.ods_users is stale: 400 s behind its source users")
    assert "ods.ods_users: " in str(exc.value) and "no snapshot yet" in str(exc.value)
    assert paimon.reads == []  # nothing to read without a snapshot
    assert mysql.queries[-1] == ("SELECT MIN(`updated_at`) FROM `users`", ())


def test_empty_source_is_nothing_to_apply():
    f = check_sla(FakePaimon(), spec("ods.ods_users"), mysql=FakeMySql({"users": []}), now=NOW)
    assert (f.lag_s, f.snapshot_id) == (0, None)
    assert f.describe() == "ods.ods_users: lag 0 s: users has no rows to apply; no snapshot yet"


def test_partitioned_ods_compares_the_same_rows_on_both_sides(host_in_new_york):
    """ods_orders: the source rows whose created_at is yesterday or today (UTC) against ODS's dt partitions
    of those days; today's partition is read first and suffices when it holds the source's newest change."""
    rows = [
        {"created_at": naive(86400 * 3), "updated_at": naive(5)},  # an old order updated just now: outside
        {"created_at": naive(700), "updated_at": naive(650)},  # yesterday's order (23:58:20), updated
        {"created_at": naive(300), "updated_at": naive(40)},  # today's
    ]
    paimon = FakePaimon(
        data={"ods.ods_orders": {TODAY: [naive(300), naive(40)], YESTERDAY: [naive(650)]}},
        snapshots=one_snapshot("ods.ods_orders", 3),
    )
    mysql = FakeMySql({"orders": rows})

    f = check_sla(paimon, spec("ods.ods_orders"), mysql=mysql, now=NOW)

    assert f.lag_s == 0
    window = (datetime(2025, 6, 14), datetime(2025, 6, 16))  # naive UTC bounds: [yesterday, tomorrow)
    assert mysql.queries == [
        ("SELECT MAX(`updated_at`) FROM `orders` WHERE `created_at` >= %s AND `created_at` < %s", window)
    ]
    assert paimon.reads == [("ods.ods_orders", {"dt": TODAY}, ("updated_at",))]


def test_partitioned_ods_reads_yesterday_when_today_lacks_the_newest_change():
    rows = [{"created_at": naive(700), "updated_at": naive(20)}, {"created_at": naive(300), "updated_at": naive(300)}]
    # ODS applied yesterday's order's creation (700 s ago) but not its update 20 s ago.
    paimon = FakePaimon(
        data={"ods.ods_orders": {TODAY: [naive(300)], YESTERDAY: [naive(700)]}},
        snapshots=one_snapshot("ods.ods_orders"),
    )
    mysql = FakeMySql({"orders": rows})

    f = table_freshness(paimon, spec("ods.ods_orders"), mysql=mysql, now=NOW)

    assert f.lag_s == pytest.approx(20)
    assert [r[1] for r in paimon.reads] == [{"dt": TODAY}, {"dt": YESTERDAY}]
    window = (datetime(2025, 6, 14), datetime(2025, 6, 16))
    assert mysql.queries[1] == (
        "SELECT MIN(`updated_at`) FROM `orders` WHERE `created_at` >= %s AND `created_at` < %s AND `updated_at` > %s",
        (*window, naive(300)),
    )


def test_timezone_aware_ods_values_are_not_shifted():
    paimon = FakePaimon(
        data={"ods.ods_users": {None: [NOW_DT - timedelta(seconds=45)]}},
        snapshots=one_snapshot("ods.ods_users"),
        tz="UTC",
    )
    assert table_freshness(paimon, spec("ods.ods_users"), mysql=users_source(45), now=NOW).lag_s == 0
    assert table_freshness(paimon, spec("ods.ods_users"), mysql=users_source(45, 44), now=NOW).lag_s == pytest.approx(
        44
    )


def test_ods_source_lag_needs_the_mysql_hook():
    with pytest.raises(BadRequest, match="ods.ods_users mirrors users: pass mysql="):
        table_freshness(FakePaimon(), spec("ods.ods_users"), now=NOW)


def test_ods_table_without_sla_is_measured_and_never_raises():
    f = check_sla(
        FakePaimon(), spec("ods.ods_shops"), mysql=FakeMySql({"shops": [{"updated_at": naive(86400)}]}), now=NOW
    )
    assert f.lag_s == pytest.approx(86400)


# ---------------------------------------------------------------------------- DWD/DWS: lag behind their inputs
DWD, DWS = "dwd.dwd_order_fact", "dws.dws_shop_hourly"


def test_dws_caught_up_with_its_input_is_fresh_even_without_new_orders():
    # The last order arrived an hour ago; the job has consumed DWD up to its latest snapshot (next: 43).
    paimon = FakePaimon(
        snapshots={DWD: [(41, 3700, "APPEND", 5), (42, 3600, "APPEND", 5)], DWS: [(9, 3590, "COMPACT", 0)]},
        consumers={DWD: {"dws_shop_hourly": 43, "dws_city_daily": 40}},
    )

    f = check_sla(paimon, spec(DWS), now=NOW)

    assert (f.measure, f.lag_s, f.behind_since) == ("inputs", 0, None)
    assert f.describe() == (
        "dws.dws_shop_hourly: lag 0 s: dws_shop_hourly has consumed dwd.dwd_order_fact up to its latest "
        "snapshot 42; snapshot 9 committed 3590 s ago"
    )


def test_dws_behind_its_input_is_stale_with_the_lag():
    # Stopped job: its consumer is still at 40; DWD committed 40 (310 s ago), 41 and 42 since.
    paimon = FakePaimon(
        snapshots={DWD: [(39, 400, "APPEND", 5), (40, 310, "APPEND", 5), (41, 100, "APPEND", 5), (42, 5, "APPEND", 5)]},
        consumers={DWD: {"dws_shop_hourly": 40}},
    )

    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec(DWS), now=NOW)

    message = str(exc.value)
    assert exc.value.table == DWS
    assert message.startswith(
        "dws.dws_shop_hourly is stale: 310 s behind its input dwd.dwd_order_fact (the oldest snapshot it has "
        "not consumed is 40, committed 2025-06-15 00:04:50 UTC), SLA 300 s. "
    ), message
    assert "dws_shop_hourly has not consumed dwd.dwd_order_fact snapshots 40..42" in message
    assert "no snapshot yet" in message
    assert "streaming job dws_shop_hourly" in message and "streaming_supervision" in message
    assert check_sla(paimon, spec(DWS), now=NOW - 20).lag_s == pytest.approx(290)  # earlier: within the SLA


def test_consumer_ids_carry_the_pipeline_prefix(monkeypatch):
    paimon = FakePaimon(
        snapshots={DWD: [(42, 30, "APPEND", 5)]},
        consumers={DWD: {"dws_shop_hourly": 43, "it_dws_shop_hourly": 42}},
    )
    assert table_freshness(paimon, spec(DWS), prefix="it_", now=NOW).lag_s == pytest.approx(30)
    monkeypatch.setenv("LAKEHOUSE_PIPELINE_PREFIX", "it_")
    assert table_freshness(paimon, spec(DWS), now=NOW).lag_s == pytest.approx(30)
    assert table_freshness(paimon, spec(DWS), prefix="", now=NOW).lag_s == 0


def test_snapshots_without_new_data_for_the_reader_are_not_lag():
    """A stopped reader misses nothing while its input only compacts (no changelog) or is overwritten
    by a T+1 recomputation (streaming reads skip overwrites); the first APPEND after them counts."""
    paimon = FakePaimon(
        snapshots={DWD: [(40, 900, "APPEND", 5), (41, 800, "COMPACT", 0), (42, 700, "OVERWRITE", 50)]},
        consumers={DWD: {"dws_shop_hourly": 41}},
    )
    assert table_freshness(paimon, spec(DWS), now=NOW).lag_s == 0
    paimon.snapshots[DWD][43] = FakePaimon._info(43, 200, "APPEND", 3)
    assert table_freshness(paimon, spec(DWS), now=NOW).lag_s == pytest.approx(200)
    # A compaction that produces changelog (changelog-producer lookup) is data for a streaming reader.
    paimon.snapshots[DWD][41] = replace(paimon.snapshots[DWD][41], changelog_record_count=7)
    assert table_freshness(paimon, spec(DWS), now=NOW).lag_s == pytest.approx(800)


def test_expired_snapshots_before_the_first_one_kept_are_skipped():
    paimon = FakePaimon(
        snapshots={DWD: [(50, 500, "APPEND", 5), (51, 10, "APPEND", 5)]}, consumers={DWD: {"dws_shop_hourly": 45}}
    )
    assert table_freshness(paimon, spec(DWS), now=NOW).lag_s == pytest.approx(500)
    assert paimon.snapshot_reads == [(DWD, 50)]  # from the oldest kept snapshot, not 45..49


def test_dwd_lag_is_the_largest_over_the_inputs_it_streams_and_ignores_lookups():
    paimon = FakePaimon(
        snapshots={
            "ods.ods_orders": [(7, 30, "APPEND", 5)],
            "ods.ods_order_subsidies": [(3, 250, "APPEND", 1), (4, 20, "APPEND", 1)],
            "ods.ods_users": [(99, 1, "APPEND", 1)],  # looked up, not streamed: no consumer, not lag
        },
        consumers={"ods.ods_orders": {"dwd_order_fact": 7}, "ods.ods_order_subsidies": {"dwd_order_fact": 3}},
    )
    with pytest.raises(
        FreshnessSlaMissed, match=r"^dwd\.dwd_order_fact is stale: 250 s behind its input ods\.ods_order_subsidies"
    ):
        check_sla(paimon, spec(DWD), now=NOW)


def test_input_without_snapshots_is_nothing_to_consume():
    paimon = FakePaimon()
    f = check_sla(paimon, spec(DWS), now=NOW)
    assert f.lag_s == 0
    assert (
        f.describe() == "dws.dws_shop_hourly: lag 0 s: dwd.dwd_order_fact has no snapshot to consume; no snapshot yet"
    )


def test_a_writer_that_never_recorded_its_position_is_reported():
    paimon = FakePaimon(snapshots={DWD: [(3, 20, "APPEND", 5)]}, consumers={DWD: {"dws_city_daily": 4}})
    f = table_freshness(paimon, spec(DWS), now=NOW)
    assert f.lag_s is None
    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec(DWS), now=NOW)
    message = str(exc.value)
    assert message.startswith("dws.dws_shop_hourly: freshness unknown: dws_shop_hourly has recorded no read position")
    assert "Paimon consumer 'dws_shop_hourly'" in message and "consumer.expiration-time" in message


# ---------------------------------------------------------------------------- generator-fed: newest event age
EVENTS = "ods.ods_user_events"


def test_generator_table_is_as_fresh_as_its_newest_event(host_in_new_york):  # 20:10 on the 14th in New York
    paimon = FakePaimon(
        data={EVENTS: {TODAY: [naive(600), None, naive(30), naive(90)]}}, snapshots=one_snapshot(EVENTS)
    )

    f = check_sla(paimon, spec(EVENTS), now=NOW)

    assert (f.measure, f.lag_s) == ("newest_event", pytest.approx(30))
    assert paimon.reads == [(EVENTS, {"dt": TODAY}, ("event_time",))]  # today had data: yesterday not read
    assert f.describe() == (
        "ods.ods_user_events: lag 30 s: newest event 2025-06-15 00:09:30 UTC; snapshot 17 committed 4 s ago"
    )


def test_generator_table_with_an_old_newest_event_is_stale():
    paimon = FakePaimon(data={EVENTS: {TODAY: [naive(300), naive(400)]}}, snapshots=one_snapshot(EVENTS, 2))
    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec(EVENTS), now=NOW)
    assert str(exc.value).startswith(
        "ods.ods_user_events is stale: its newest event is 300 s old, SLA 120 s. "
        "ods.ods_user_events: lag 300 s: newest event 2025-06-15 00:05:00 UTC; snapshot 17 committed 2 s ago. "
    )
    assert "streaming job ods_user_events" in str(exc.value)


def test_generator_table_falls_back_to_yesterday_then_to_the_snapshot_age():
    paimon = FakePaimon(
        data={EVENTS: {TODAY: [None], YESTERDAY: [naive(700), naive(650)]}}, snapshots=one_snapshot(EVENTS, 3)
    )
    assert table_freshness(paimon, spec(EVENTS), now=NOW).lag_s == pytest.approx(650)
    assert [r[1] for r in paimon.reads] == [{"dt": TODAY}, {"dt": YESTERDAY}]

    old = FakePaimon(data={EVENTS: {"2025-06-13": [naive(86400)]}}, snapshots=one_snapshot(EVENTS, 500))
    with pytest.raises(FreshnessSlaMissed, match="its latest snapshot is 500 s old, SLA 120 s"):
        check_sla(old, spec(EVENTS), now=NOW)
    assert [r[1] for r in old.reads] == [{"dt": TODAY}, {"dt": YESTERDAY}]  # no older partition is scanned


def test_generator_table_partitions_follow_the_utc_date_of_now():
    paimon = FakePaimon(snapshots=one_snapshot(EVENTS))
    now = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()  # leap year
    table_freshness(paimon, spec(EVENTS), now=now)
    assert [r[1] for r in paimon.reads] == [{"dt": "2024-03-01"}, {"dt": "2024-02-29"}]


def test_generator_table_without_snapshot_has_no_data_yet():
    paimon = FakePaimon(data={EVENTS: {TODAY: [naive(1)]}})
    with pytest.raises(FreshnessSlaMissed, match=r"^ods\.ods_user_events has no data yet \(SLA 120 s\)"):
        check_sla(paimon, spec(EVENTS), now=NOW)
    assert paimon.reads == []


# ---------------------------------------------------------------------------- the registry and the DAG
def test_every_mirror_holds_its_source_change_column():
    """ODS's newest applied change is read from the mirror's column of the same name, and its partition
    follows the source's day column: both must be in the mirror's DDL."""
    from lakehouse.core.paths import SQL_DIR

    for table in registry().mirrored_tables():
        ddl = (SQL_DIR / table.ddl).read_text()
        assert re.search(rf"^\s+{table.source_change_column}\s+TIMESTAMP\(3\)", ddl, re.M), table.name
        if table.partition:
            assert re.search(rf"^\s+{table.source_day_column}\s+TIMESTAMP\(3\)", ddl, re.M), table.name


def test_dag_task_measures_with_the_source_connection_and_reports_the_lag(monkeypatch):
    import importlib.util
    import warnings
    from collections import defaultdict
    from pathlib import Path
    from types import SimpleNamespace

    from lakehouse.core import resources

    paimon = FakePaimon(data={"ods.ods_users": {None: [naive(646)]}}, snapshots=one_snapshot("ods.ods_users", 640))
    mysql = users_source(646)
    monkeypatch.setattr(resources, "resources", lambda: SimpleNamespace(paimon=paimon, mysql_source=mysql))
    path = Path(__file__).resolve().parents[3] / "dags" / "table_freshness.py"
    module_spec = importlib.util.spec_from_file_location("dag_table_freshness", path)
    module = importlib.util.module_from_spec(module_spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module_spec.loader.exec_module(module)
        dag = module.table_freshness()
    outlets = defaultdict(SimpleNamespace)

    extra = dag.get_task("check_ods__ods_users").python_callable(outlet_events=outlets)

    # Checked now, years after the fake's newest change: caught up is lag 0 however old the change.
    assert {k: extra[k] for k in ("lag_s", "measure", "snapshot_id")} == {
        "lag_s": 0.0,
        "measure": "source",
        "snapshot_id": 17,
    }
    assert extra["snapshot_age_s"] > 640
    assert mysql.queries == [("SELECT MAX(`updated_at`) FROM `users`", ())]


# ---------------------------------------------------------------------------- DelayStats
def test_delay_stats_nearest_rank_percentiles():
    samples = [float(x) for x in range(1, 11)]
    random.Random(7).shuffle(samples)
    stats = DelayStats(samples)
    assert [stats.percentile(p) for p in (0, 10, 25, 50, 90, 95, 100)] == [1.0, 1.0, 3.0, 5.0, 9.0, 10.0, 10.0]
    assert samples != sorted(samples)  # percentile sorts a copy, leaving the samples as recorded

    hundred = DelayStats([float(x) for x in range(100, 0, -1)])
    assert (hundred.percentile(50), hundred.percentile(95), hundred.percentile(99)) == (50.0, 95.0, 99.0)
    assert hundred.percentile(99.5) == 100.0


def test_delay_stats_single_and_empty():
    assert DelayStats([2.5]).percentile(1) == 2.5
    assert DelayStats([2.5]).percentile(99) == 2.5
    assert DelayStats().percentile(50) is None
    assert DelayStats().summary() == "no samples"


def test_delay_stats_summary():
    stats = DelayStats([0.5, 1.5, 1.0, 4.0])
    assert stats.summary() == "n=4 p50=1.0s p95=4.0s p99=4.0s max=4.0s mean=1.8s"
