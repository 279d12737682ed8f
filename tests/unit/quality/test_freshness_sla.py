"""table_freshness / check_sla against a fake PaimonHook, with the project's real TableSpecs; DelayStats."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakehouse.core.registry import registry
from lakehouse.dev.probe import DelayStats
from lakehouse.hooks.paimon import SnapshotInfo
from lakehouse.quality.freshness import FreshnessSlaMissed, TableFreshness, check_sla, table_freshness

NOW_DT = datetime(2025, 6, 15, 0, 10, 0, tzinfo=UTC)
NOW = NOW_DT.timestamp()
TODAY, YESTERDAY = "2025-06-15", "2025-06-14"


def naive(seconds_ago: float) -> datetime:
    """A Paimon TIMESTAMP value as pypaimon returns it: naive, in UTC."""
    return (NOW_DT - timedelta(seconds=seconds_ago)).replace(tzinfo=None)


class FakePaimon:
    """latest_snapshot / read_arrow of one table; `data` maps a partition value (None: unpartitioned) to values."""

    def __init__(self, *, snapshot_age_s: float | None, data: dict | None = None, tz: str | None = None):
        self.snapshot = (
            None
            if snapshot_age_s is None
            else SnapshotInfo(
                snapshot_id=17,
                commit_time=NOW_DT - timedelta(seconds=snapshot_age_s),
                commit_kind="APPEND",
                total_record_count=100,
                watermark=None,
            )
        )
        self.data = data or {}
        self.tz = tz
        self.snapshot_calls: list[str] = []
        self.reads: list[tuple] = []

    def latest_snapshot(self, identifier):
        self.snapshot_calls.append(identifier)
        return self.snapshot

    def read_arrow(self, identifier, *, partition=None, columns=None):
        self.reads.append((identifier, partition, tuple(columns) if columns else None))
        key = next(iter(partition.values())) if partition else None
        return pa.table({columns[0]: pa.array(self.data.get(key, []), type=pa.timestamp("ms", tz=self.tz))})


def spec(name):
    return registry().table(name)


@pytest.fixture
def host_in_new_york():
    """A host whose local time zone is not UTC: naive Paimon timestamps must still be read as UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


# ---------------------------------------------------------------------------- the specs used here
def test_specs_used_are_what_the_tests_assume():
    orders, users, shop_hourly, shops = (
        spec(n) for n in ("ods.ods_orders", "ods.ods_users", "dws.dws_shop_hourly", "ods.ods_shops")
    )
    assert (orders.partition, orders.freshness_column, orders.freshness_sla_s) == ("dt", "updated_at", 120)
    assert (users.partition, users.freshness_column, users.freshness_sla_s) == (None, "updated_at", 120)
    assert (shop_hourly.freshness_column, shop_hourly.freshness_sla_s) == (None, 300)
    assert shops.freshness_sla_s is None


# ---------------------------------------------------------------------------- check_sla
def test_fresh_partitioned_table_passes(host_in_new_york):  # 20:10 on the 14th in New York
    paimon = FakePaimon(snapshot_age_s=4, data={TODAY: [naive(600), None, naive(30), naive(90)]})

    f = check_sla(paimon, spec("ods.ods_orders"), now=NOW)

    assert f == TableFreshness(
        "ods.ods_orders", 17, pytest.approx(4), NOW_DT - timedelta(seconds=30), pytest.approx(30)
    )
    assert f.newest_event.tzinfo is not None
    assert paimon.reads == [("ods.ods_orders", {"dt": TODAY}, ("updated_at",))]  # today had data: yesterday not read
    assert f.describe() == (
        "ods.ods_orders: snapshot 17 committed 4 s ago; newest event 2025-06-15 00:09:30 UTC (30 s ago)"
    )


def test_event_age_over_sla_raises_with_age_sla_and_table():
    # The snapshot is recent (say a compaction), but the newest event is 5 minutes old.
    paimon = FakePaimon(snapshot_age_s=2, data={TODAY: [naive(300), naive(400)]})

    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(paimon, spec("ods.ods_orders"), now=NOW)
    message = str(exc.value)
    assert message.startswith("ods.ods_orders is stale: newest event is 300 s old, SLA 120 s. ")
    assert "ods.ods_orders: snapshot 17 committed 2 s ago; newest event 2025-06-15 00:05:00 UTC (300 s ago)" in message
    assert "streaming_supervision" in message
    assert exc.value.table == "ods.ods_orders"


def test_event_age_just_within_sla_passes():
    paimon = FakePaimon(snapshot_age_s=2, data={None: [naive(119)]})
    assert check_sla(paimon, spec("ods.ods_users"), now=NOW).event_age_s == pytest.approx(119)
    with pytest.raises(FreshnessSlaMissed, match="newest event is 121 s old, SLA 120 s"):
        check_sla(FakePaimon(snapshot_age_s=2, data={None: [naive(121)]}), spec("ods.ods_users"), now=NOW)


def test_unpartitioned_table_reads_the_whole_table():
    paimon = FakePaimon(snapshot_age_s=2, data={None: [naive(50), naive(10)]})
    f = table_freshness(paimon, spec("ods.ods_users"), now=NOW)
    assert paimon.reads == [("ods.ods_users", None, ("updated_at",))]
    assert f.event_age_s == pytest.approx(10)


def test_naive_values_are_utc_whatever_the_host_time_zone(host_in_new_york):
    assert time.localtime(NOW).tm_gmtoff != 0
    paimon = FakePaimon(snapshot_age_s=2, data={TODAY: [naive(30)]})
    f = check_sla(paimon, spec("ods.ods_orders"), now=NOW)
    assert f.event_age_s == pytest.approx(30)
    assert f.newest_event == NOW_DT - timedelta(seconds=30)


def test_timezone_aware_values_are_not_shifted():
    paimon = FakePaimon(snapshot_age_s=2, data={None: [NOW_DT - timedelta(seconds=45)]}, tz="UTC")
    assert table_freshness(paimon, spec("ods.ods_users"), now=NOW).event_age_s == pytest.approx(45)


def test_table_without_freshness_column_uses_snapshot_age():
    shop_hourly = spec("dws.dws_shop_hourly")
    fresh = FakePaimon(snapshot_age_s=100)
    f = check_sla(fresh, shop_hourly, now=NOW)
    assert (f.snapshot_id, f.snapshot_age_s, f.newest_event, f.event_age_s) == (17, pytest.approx(100), None, None)
    assert fresh.reads == []

    with pytest.raises(FreshnessSlaMissed) as exc:
        check_sla(FakePaimon(snapshot_age_s=400), shop_hourly, now=NOW)
    assert str(exc.value).startswith("dws.dws_shop_hourly is stale: latest snapshot is 400 s old, SLA 300 s. ")
    assert "no event time" in str(exc.value)


def test_no_snapshot_is_an_error():
    paimon = FakePaimon(snapshot_age_s=None, data={TODAY: [naive(1)]})
    with pytest.raises(FreshnessSlaMissed, match=r"^ods\.ods_orders has no data yet \(SLA 120 s\)$"):
        check_sla(paimon, spec("ods.ods_orders"), now=NOW)
    assert paimon.reads == []  # nothing to read without a snapshot
    f = table_freshness(paimon, spec("ods.ods_orders"), now=NOW)
    assert (f.snapshot_id, f.snapshot_age_s, f.event_age_s) == (None, None, None)
    assert f.describe() == "ods.ods_orders: no snapshot yet; no event time"


def test_table_without_sla_never_raises():
    paimon = FakePaimon(snapshot_age_s=86400 * 30, data={None: [naive(86400 * 30)]})
    f = check_sla(paimon, spec("ods.ods_shops"), now=NOW)
    assert f.event_age_s == pytest.approx(86400 * 30)


def test_partitioned_table_falls_back_to_yesterdays_partition():
    # Ten minutes after midnight UTC today's partition is still empty.
    paimon = FakePaimon(snapshot_age_s=3, data={TODAY: [None], YESTERDAY: [naive(700), naive(650)]})

    f = table_freshness(paimon, spec("ods.ods_orders"), now=NOW)

    assert paimon.reads == [
        ("ods.ods_orders", {"dt": TODAY}, ("updated_at",)),
        ("ods.ods_orders", {"dt": YESTERDAY}, ("updated_at",)),
    ]
    assert f.newest_event == NOW_DT - timedelta(seconds=650)
    with pytest.raises(FreshnessSlaMissed, match="newest event is 650 s old, SLA 120 s"):
        check_sla(paimon, spec("ods.ods_orders"), now=NOW)


def test_partitioned_table_without_recent_events_falls_back_to_snapshot_age():
    paimon = FakePaimon(snapshot_age_s=500, data={"2025-06-13": [naive(86400)]})
    with pytest.raises(FreshnessSlaMissed, match="latest snapshot is 500 s old, SLA 120 s"):
        check_sla(paimon, spec("ods.ods_orders"), now=NOW)
    assert [r[1] for r in paimon.reads] == [{"dt": TODAY}, {"dt": YESTERDAY}]  # no older partition is scanned


def test_partitions_follow_the_utc_date_of_now():
    paimon = FakePaimon(snapshot_age_s=1)
    now = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()  # leap year
    table_freshness(paimon, spec("dwd.dwd_order_fact"), now=now)
    assert [r[1] for r in paimon.reads] == [{"dt": "2024-03-01"}, {"dt": "2024-02-29"}]
    assert all(r[0] == "dwd.dwd_order_fact" and r[2] == ("updated_at",) for r in paimon.reads)


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
