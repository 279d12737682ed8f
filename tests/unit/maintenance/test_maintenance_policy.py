"""Maintenance policy, scheduling and SQL rendering (no engines: tests/integration has those)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lakehouse.core.paths import CONFIG_DIR
from lakehouse.maintenance import metrics as maint_metrics
from lakehouse.maintenance import operations
from lakehouse.maintenance import policy as maint_policy

UTC = UTC


def write_config(tmp_path, text: str):
    path = tmp_path / "maintenance.yaml"
    path.write_text(text)
    return path


def test_real_config_loads_for_every_registered_table():
    from lakehouse.core.registry import registry

    policies = maint_policy.load_policies(CONFIG_DIR / "maintenance.yaml")
    assert set(policies) == set(registry().tables)
    events = policies["ods.ods_user_events"]
    assert events.partition_retention_days == 30 and events.retain_min == 10 and events.orphan_older_than_s == 86400
    assert policies["dwd.dwd_order_fact"].partition_retention_days is None
    assert policies["dwd.dwd_order_fact"].compaction == "closed-partitions"


@pytest.mark.parametrize(
    "snippet, message",
    [
        (
            "defaults: {snapshots: {retain_min: 0}}",
            "defaults.snapshots.retain_min: must be a whole number >= 1 (got 0)",
        ),
        ("defaults: {snapshots: {retain_min: '10'}}", "snapshots.retain_min: must be a whole number >= 1 (got '10')"),
        ("defaults: {snapshots: {retain_max: true}}", "snapshots.retain_max: must be a whole number >= 1 (got True)"),
        ("defaults: {snapshots: {max_deletes: 0}}", "snapshots.max_deletes: must be a whole number >= 1 (got 0)"),
        ("defaults: {snapshots: {retain_time: 2 hours}}", "snapshots.retain_time: must be a duration like"),
        ("defaults: {compaction: {lookback_days: 0}}", "compaction.lookback_days: must be a whole number >= 1 (got 0)"),
        ("defaults: {tags: {retention_days: 0}}", "tags.retention_days: must be a whole number >= 1, or null"),
        (
            "defaults: {partitions: {retention_days: -1}}",
            "partitions.retention_days: must be a whole number >= 1, or null",
        ),
        (
            "defaults: {small_files: {alert_after_runs: 1}}",
            "small_files.alert_after_runs: must be a whole number >= 2 (got 1)",
        ),
        (
            "defaults: {snapshots: {retain_min: 20, retain_max: 5}}",
            "maintenance.yaml: defaults: snapshots.retain_max (5) is below retain_min (20)",
        ),
        (
            "defaults: {snapshots: {retain_min: 20}}\ntables: {dws.dws_city_daily: {snapshots: {retain_max: 5}}}",
            "tables.dws.dws_city_daily (merged with the defaults): snapshots.retain_max (5) is below retain_min (20)",
        ),
        ("defaults: {orphan_files: {older_than: 10min}}", "orphan_files.older_than: must be at least 1h"),
        (
            "tables: {ods.ods_orders: {orphan_files: {older_than: 30min}}}",
            "tables.ods.ods_orders.orphan_files.older_than: must be at least 1h",
        ),
        ("defaults: {orphan_files: {older_than: soon}}", "orphan_files.older_than: must be a duration like"),
        (
            "defaults: {compaction: {schedule: 'every hour'}}",
            "compaction.schedule: must be a cron expression such as '20 * * * *' (got 'every hour')",
        ),
        (
            "tables: {ods.ods_orders: {snapshots: {schedule: '61 * * * *'}}}",
            "tables.ods.ods_orders.snapshots.schedule: must be a cron expression",
        ),
        ("defaults: {compaction: {strategy: sometimes}}", "compaction.strategy: must be closed-partitions or none"),
        (
            "defaults: {vacuum: {}}",
            "defaults.vacuum: unknown key; allowed: compaction, orphan_files, partitions, small_files, snapshots, tags",
        ),
        ("default: {snapshots: {retain_min: 5}}", "maintenance.yaml: default: unknown key; allowed: defaults, tables"),
        ("defaults: {snapshots: 5}", "defaults.snapshots: Input should be a valid dictionary"),
        ("tables: {ods.nope: {}}", "names unregistered tables ['ods.nope']"),
        (
            "tables: {ods.ods_orders: {partitions: {retention_days: 30}}}",
            "dwd.dwd_order_fact keeps partitions forever but its input ods.ods_orders keeps 30 days",
        ),
        (
            "defaults: {partitions: {retention_days: 10}}\n"
            "tables: {dws.dws_city_daily: {partitions: {retention_days: 40}}}",
            "dws.dws_city_daily keeps partitions 40 days but its input dwd.dwd_order_fact keeps 10 days",
        ),
    ],
)
def test_bad_policies_are_refused_naming_the_setting(tmp_path, snippet, message):
    with pytest.raises(maint_policy.MaintenanceError) as err:
        maint_policy.load_policies(write_config(tmp_path, snippet))
    assert message in str(err.value)


def test_overrides_merge_into_defaults(tmp_path):
    policies = maint_policy.load_policies(
        write_config(
            tmp_path,
            """
defaults: {snapshots: {retain_min: 5, retain_max: 50}, partitions: {retention_days: 400}}
tables: {dws.dws_city_daily: {snapshots: {retain_max: 7}, partitions: {retention_days: 100}}}
""",
        )
    )
    city = policies["dws.dws_city_daily"]
    assert (city.retain_min, city.retain_max, city.partition_retention_days) == (5, 7, 100)
    assert policies["dws.dws_shop_daily"].retain_max == 50


def test_empty_sections_and_overrides_mean_the_defaults(tmp_path):
    policies = maint_policy.load_policies(
        write_config(
            tmp_path,
            """
defaults:
  partitions:       # only comments: null in YAML
tables:
  dws.dws_city_daily:
""",
        )
    )
    assert policies["dws.dws_city_daily"] == maint_policy.TablePolicy("dws.dws_city_daily")


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("    retain_max: 500", "    retian_max: 500", "defaults.snapshots.retian_max"),
        (
            "      retention_days: 30        # raw click stream",
            "      retention_days: 30\n    snapshots:\n      retian_max: 5  # raw click stream",
            "tables.ods.ods_user_events.snapshots.retian_max",
        ),
    ],
)
def test_a_typo_in_the_real_file_fails_naming_file_key_and_allowed_keys(tmp_path, old, new, where):
    text = (CONFIG_DIR / "maintenance.yaml").read_text()
    assert text.count(old) == 1
    with pytest.raises(maint_policy.MaintenanceError) as err:
        maint_policy.load_policies(write_config(tmp_path, text.replace(old, new)))
    assert str(err.value) == (
        f"maintenance.yaml: {where}: unknown key; allowed: max_deletes, retain_max, retain_min, retain_time, schedule"
    )


def test_a_bad_policy_is_a_config_error():
    from lakehouse.core.errors import BadRequest, ConfigError

    assert issubclass(maint_policy.MaintenanceError, ConfigError)
    assert issubclass(maint_policy.MaintenanceRequestError, BadRequest)


def test_due_operations_follow_each_schedule():
    policy = maint_policy.TablePolicy(
        "dwd.dwd_order_fact",
        compaction_schedule="20 * * * *",
        snapshots_schedule="40 */2 * * *",
        orphan_schedule="10 3 * * *",
    )

    def hour(h):
        return datetime(2026, 11, 25, h, tzinfo=UTC), datetime(2026, 11, 25, h + 1, tzinfo=UTC)

    assert maint_policy.due_operations(policy, *hour(3)) == ["compaction", "orphan_files"]
    assert maint_policy.due_operations(policy, *hour(4)) == ["compaction", "snapshots", "tags", "partitions"]
    assert maint_policy.due_operations(policy, *hour(5)) == ["compaction"]
    # A fire time exactly at the start of the interval belongs to it, not to the one before.
    on_the_hour = maint_policy.TablePolicy("x.y", compaction_schedule="0 * * * *")
    assert "compaction" in maint_policy.due_operations(on_the_hour, *hour(6))


def metrics(files_per_partition: dict, buckets: int = 2) -> maint_metrics.TableMetrics:
    return maint_metrics.TableMetrics(
        "dwd.dwd_order_fact",
        9,
        9,
        1,
        sum(files_per_partition.values()),
        0,
        0,
        len(files_per_partition),
        buckets,
        0,
        0,
        files_per_partition,
    )


def test_only_closed_days_in_the_lookback_above_one_file_per_bucket_are_compacted():
    policy = maint_policy.TablePolicy("dwd.dwd_order_fact", compaction_lookback_days=3)
    got = operations.closed_partitions_to_compact(
        metrics(
            {
                "dt=2026-11-25": 9,  # today: the streaming writer's
                "dt=2026-11-24": 5,  # yesterday, 5 files over 2 buckets
                "dt=2026-11-23": 2,  # already one file per bucket
                "dt=2026-11-22": 3,
                "dt=2026-11-21": 8,  # beyond the lookback
            }
        ),
        policy,
        date(2026, 11, 25),
    )
    assert got == ["2026-11-22", "2026-11-24"]


def test_procedure_sql_is_rendered_from_the_files():
    sql = operations._render("compact_partition", table="dwd.dwd_order_fact", partition_column="dt", dt="2026-11-24")
    assert "CALL lakehouse.sys.compact(" in sql and "partitions => 'dt=2026-11-24'" in sql
    assert "compact_strategy => 'full'" in sql
    sql = operations._render(
        "expire_snapshots",
        table="ods.ods_orders",
        retain_min=10,
        retain_max=500,
        older_than="2026-11-25 10:00:00",
        max_deletes=2000,
    )
    assert "retain_min => 10" in sql and "older_than => '2026-11-25 10:00:00'" in sql
    assert "dry_run => true" in operations._render("remove_orphan_files", table="a.b", older_than="x", dry_run=True)
    with pytest.raises(Exception, match="retention_days"):
        operations._render("expire_partitions", table="a.b")  # StrictUndefined: a missing value is an error


class FakeHistory:
    """The ops.maintenance_metrics rows check_small_file_growth reads."""

    def __init__(self, rows):
        import pyarrow as pa

        self.table = pa.Table.from_pylist(rows)

    def table_exists(self, name):
        return True

    def read_arrow(self, name, columns=None):
        return self.table.select(columns)


def history(table: str, small_after: list[int]):
    return [
        {
            "table_name": table,
            "phase": phase,
            "measured_at": datetime(2026, 11, 25, i, tzinfo=UTC),
            "small_files": n if phase == "after" else n + 100,
        }
        for i, n in enumerate(small_after)
        for phase in ("before", "after")
    ]


def test_small_files_growing_run_after_run_alerts_with_the_figures():
    policies = {
        "dwd.dwd_order_fact": maint_policy.TablePolicy("dwd.dwd_order_fact", small_file_alert_runs=3),
        "ods.ods_orders": maint_policy.TablePolicy("ods.ods_orders", small_file_alert_runs=3),
    }
    paimon = FakeHistory(
        history("dwd.dwd_order_fact", [4, 9, 12, 15, 21]) + history("ods.ods_orders", [5, 9, 7, 11, 12])
    )
    with pytest.raises(maint_metrics.SmallFilesGrowing) as err:
        maint_metrics.check_small_file_growth(paimon, policies)
    assert "dwd.dwd_order_fact: small files after the last 4 runs 9 -> 12 -> 15 -> 21" in str(err.value)
    assert "ods.ods_orders" not in str(err.value)  # it dropped once in its last 4 runs
    assert err.value.tables == ["dwd.dwd_order_fact"]


def test_too_little_history_does_not_alert():
    policies = {"dwd.dwd_order_fact": maint_policy.TablePolicy("dwd.dwd_order_fact", small_file_alert_runs=3)}
    assert maint_metrics.check_small_file_growth(FakeHistory(history("dwd.dwd_order_fact", [1, 2, 3])), policies) == []


def test_unknown_operation_is_refused_before_anything_runs():
    with pytest.raises(maint_policy.MaintenanceRequestError, match=r"unknown maintenance operations \['vacuum'\]"):
        operations.maintain_table(
            maint_policy.TablePolicy("dwd.dwd_order_fact"),
            ["vacuum"],
            flink=None,
            paimon=None,
            leases=None,
            holder="h",
            now=datetime.now(UTC),
        )
