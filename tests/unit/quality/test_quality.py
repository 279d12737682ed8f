"""Great Expectations suites and the audit logic, on in-memory frames (real GX, no engines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.core.paths import EXPECTATIONS_DIR
from lakehouse.core.registry import registry
from lakehouse.quality import audit, parameters, suites, validation

DAY = "2026-11-20"
T = datetime(2026, 11, 20, 10)
PROVIDED = {
    "day_start",
    "day_end",
    "latest_plausible_time",
    "source_rows",
    "known_shop_ids",
    *(f"{n}_{b}" for n in ("dwd_orders", "dwd_gmv", "dwd_subsidy_total", "ods_events") for b in ("min", "max")),
}


def test_every_registered_table_has_a_valid_suite():
    assert suites.suite_tables() == sorted(registry().tables)
    import great_expectations.expectations as gxe  # noqa: F401  (the registry of expectation types)
    from great_expectations.expectations.registry import get_expectation_impl

    for table in suites.suite_tables():
        suite = suites.load_suite(table)
        assert set(suite["meta"]["key_columns"]) <= {f.name for f in _columns(table)} | set(
            suite["meta"].get("derived_columns") or {}
        )
        for exp in suite["expectations"]:
            get_expectation_impl(exp["type"])  # raises for an unknown type
            assert validation._uses(exp["kwargs"]) <= PROVIDED, f"{table}: {exp['type']} needs an unknown parameter"


def _columns(table):
    import re

    ddl = (EXPECTATIONS_DIR.parent / "sql" / registry().table(table).ddl).read_text()
    return [
        type("F", (), {"name": m.group(1)})
        for m in re.finditer(r"^\s+(\w+)\s+[A-Z]", ddl, re.M)
        if m.group(1) not in ("PRIMARY", "PARTITIONED", "WITH")
    ]


def test_the_suite_column_sets_match_the_ddl():
    for table in suites.suite_tables():
        suite = suites.load_suite(table)
        (schema,) = [e for e in suite["expectations"] if e["type"] == "expect_table_columns_to_match_set"]
        assert set(schema["kwargs"]["column_set"]) == {f.name for f in _columns(table)}, table


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.update(name="other"), "suite name 'other' must be the table name"),
        (lambda s: s["meta"].pop("key_columns"), "meta.key_columns must list the columns"),
        (lambda s: s["expectations"][0].update(severity="fatal"), "has severity 'fatal'; use critical"),
    ],
)
def test_bad_suite_files_are_refused(tmp_path, monkeypatch, edit, message):
    suite = json.loads((EXPECTATIONS_DIR / "dws.dws_city_daily.json").read_text())
    edit(suite)
    (tmp_path / "dws.dws_city_daily.json").write_text(json.dumps(suite))
    monkeypatch.setattr(suites, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(suites.QualityError, match=message):
        suites.load_suite("dws.dws_city_daily")


def test_a_table_without_a_suite_says_where_it_should_be(tmp_path, monkeypatch):
    monkeypatch.setattr(suites, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(
        suites.QualityError, match=r"dwd.dwd_order_fact has no suite: expected .*dwd.dwd_order_fact.json"
    ):
        suites.load_suite("dwd.dwd_order_fact")


DWD_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("user_id", pa.int64()),
        ("shop_id", pa.int64()),
        ("shop_name", pa.string()),
        ("shop_category", pa.string()),
        ("city", pa.string()),
        ("user_city", pa.string()),
        ("rider_id", pa.int64()),
        ("status", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("platform_subsidy", pa.decimal128(12, 2)),
        ("shop_subsidy", pa.decimal128(12, 2)),
        ("created_at", pa.timestamp("ms")),
        ("accepted_at", pa.timestamp("ms")),
        ("picked_up_at", pa.timestamp("ms")),
        ("delivered_at", pa.timestamp("ms")),
        ("cancelled_at", pa.timestamp("ms")),
        ("delivery_minutes", pa.float64()),
        ("order_hour", pa.int32()),
        ("updated_at", pa.timestamp("ms")),
        ("dt", pa.string()),
    ]
)


def dwd_rows(n=6):
    return [
        dict(
            order_id=i,
            user_id=1,
            shop_id=1 + i % 3,
            shop_name="s",
            shop_category="tea",
            city="wuhan",
            user_city="wuhan",
            rider_id=7,
            status="DELIVERED",
            amount=Decimal("20.00"),
            platform_subsidy=Decimal("1.00"),
            shop_subsidy=Decimal("0.50"),
            created_at=T,
            accepted_at=None,
            picked_up_at=None,
            delivered_at=T + timedelta(minutes=30),
            cancelled_at=None,
            delivery_minutes=30.0,
            order_hour=10,
            updated_at=T,
            dt=DAY,
        )
        for i in range(1, n + 1)
    ]


def validate(table, rows, schema, **params):
    suite = suites.load_suite(table)
    df = validation.frame_for_validation(pa.Table.from_pylist(rows, schema=schema), suite)
    outcomes, unexpected, _ = validation.validate_frame(df, suite, {**parameters.day_parameters(DAY), **params})
    return {f"{o.expectation}({o.target})": o for o in outcomes}, unexpected


def test_a_clean_dwd_partition_passes():
    outcomes, unexpected = validate("dwd.dwd_order_fact", dwd_rows(), DWD_SCHEMA, known_shop_ids=[1, 2, 3])
    assert [k for k, o in outcomes.items() if o.success is False] == [] and unexpected == {}


@pytest.mark.parametrize(
    "change, expectation",
    [
        (
            dict(shop_subsidy=Decimal("25.00")),
            "expect_column_pair_values_a_to_be_greater_than_b(amount >= subsidy_total)",
        ),
        (dict(shop_id=99, shop_name=None), "expect_column_values_to_be_in_set(shop_id)"),
        (dict(shop_id=99, shop_name=None), "expect_column_values_to_not_be_null(shop_name)"),
        (dict(delivery_minutes=5.0e6), "expect_column_values_to_be_between(delivery_minutes)"),
        (dict(amount=Decimal("-3.00")), "expect_column_values_to_be_between(amount)"),
    ],
)
def test_each_bad_dwd_row_fails_its_expectation_with_its_key(change, expectation):
    rows = dwd_rows()
    rows[2].update(change)
    outcomes, unexpected = validate("dwd.dwd_order_fact", rows, DWD_SCHEMA, known_shop_ids=[1, 2, 3])
    failed = outcomes[expectation]
    assert failed.success is False and failed.severity == "critical"
    assert failed.unexpected_count == 1 and failed.sample_keys == [{"order_id": 3}]
    assert expectation in unexpected


def test_a_missing_user_is_only_a_warning():
    rows = dwd_rows()
    rows[0]["user_city"] = None
    outcomes, _ = validate("dwd.dwd_order_fact", rows, DWD_SCHEMA, known_shop_ids=[1, 2, 3])
    warning = outcomes["expect_column_values_to_not_be_null(user_city)"]
    assert warning.success is False and warning.severity == "warning"
    report = validation.ValidationReport("dwd.dwd_order_fact", f"dt={DAY}", 7, "r1", 6, list(outcomes.values()), 0.1)
    assert report.passed and len(report.warnings) == 1
    audit.enforce([report], what="test")  # warnings do not block


def test_expectations_without_their_parameters_are_skipped_not_failed():
    outcomes, _ = validate("dwd.dwd_order_fact", dwd_rows(), DWD_SCHEMA)  # no known_shop_ids
    skipped = outcomes["expect_column_values_to_be_in_set(shop_id)"]
    assert skipped.success is None and skipped.skipped == "needs known_shop_ids"


ODS_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("order_id", pa.int64()),
        ("status", pa.string()),
        ("rider_id", pa.int64()),
        ("event_time", pa.timestamp("ms")),
        ("binlog_ts", pa.timestamp("ms", tz="UTC")),
        ("dt", pa.string()),
    ]
)


def test_a_replayed_status_event_and_a_wrong_row_count_fail():
    rows = [
        dict(event_id=i, order_id=i, status="CREATED", rider_id=None, event_time=T, binlog_ts=None, dt=DAY)
        for i in range(1, 5)
    ]
    rows.append(dict(rows[1], event_id=99))  # the event of order 2 delivered a second time
    outcomes, unexpected = validate("ods.ods_order_status_events", rows, ODS_SCHEMA, source_rows=4)
    replay = outcomes["expect_compound_columns_to_be_unique(order_id, status)"]
    assert replay.success is False and replay.unexpected_count == 2
    assert sorted(k["event_id"] for k in replay.sample_keys) == [2, 99]
    count = outcomes["expect_table_row_count_to_equal(table)"]
    assert count.success is False and count.observed == 5


def test_the_gate_message_lists_each_failure_with_observed_values_and_keys():
    rows = dwd_rows()
    rows[1]["shop_subsidy"] = Decimal("25.00")
    outcomes, _ = validate("dwd.dwd_order_fact", rows, DWD_SCHEMA, known_shop_ids=[1, 2, 3])
    report = validation.ValidationReport(
        "dwd.dwd_order_fact",
        f"dt={DAY}",
        7,
        "run-1",
        6,
        list(outcomes.values()),
        0.1,
        docs="/x/index.html",
        quarantined=1,
    )
    with pytest.raises(audit.QualityGateFailed) as err:
        audit.enforce([report], what=f"T+1 audit of {DAY}")
    text = str(err.value)
    assert text.startswith(f"T+1 audit of {DAY}: data quality gate failed, nothing published")
    assert "FAILED expect_column_pair_values_a_to_be_greater_than_b(amount >= subsidy_total): 1 unexpected rows" in text
    assert "e.g. keys [{'order_id': 2}]" in text and "subsidies never exceed what the user pays" in text
    assert "1 rows copied to ops.dq_quarantine (run_id run-1)" in text and "data docs: /x/index.html" in text


def test_a_future_clock_is_relative_to_the_check_not_the_day():
    params = parameters.day_parameters("2026-11-01", now=datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert str(params["latest_plausible_time"]) == "2026-11-25 13:00:00"
    assert str(params["day_end"]) == "2026-11-02 00:00:00"
