"""Backfill requests are validated before anything is touched; every problem is named."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse.batch.backfill import MAX_DAYS, InvalidBackfillRequest, validate_backfill
from lakehouse.core.days import parse_day, tag_name
from lakehouse.core.errors import BadRequest

TODAY = date(2026, 11, 25)


def ok(**overrides):
    params = {
        "tables": ["all"],
        "start_date": "2026-11-20",
        "end_date": "2026-11-24",
        "dry_run": False,
        "parallel_days": 2,
    }
    params.update(overrides)
    return validate_backfill(params, today=TODAY)


def bad(**overrides) -> str:
    with pytest.raises(InvalidBackfillRequest) as exc:
        ok(**overrides)
    assert str(exc.value).startswith("Nothing was written. Fix the backfill request:")
    assert str(exc.value) == "Nothing was written. Fix the backfill request:\n- " + "\n- ".join(exc.value.problems)
    return str(exc.value)


def test_valid_request_expands_days_tables_and_lanes():
    r = ok()
    assert r.days == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]
    assert r.tables[0] == "dwd.dwd_order_fact" and len(r.tables) == 6  # DWD before the DWS tables
    assert r.lanes() == [["2026-11-20", "2026-11-22", "2026-11-24"], ["2026-11-21", "2026-11-23"]]


def test_layer_and_table_selection_keep_dependency_order():
    assert ok(tables=["dws.dws_city_daily", "dwd"]).tables == ["dwd.dwd_order_fact", "dws.dws_city_daily"]
    assert all(t.startswith("dws.") for t in ok(tables=["dws"]).tables)


def test_more_lanes_than_days_is_capped():
    assert ok(start_date="2026-11-24", parallel_days=4).lanes() == [["2026-11-24"]]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"start_date": "2026-11-24", "end_date": "2026-11-20"}, "end_date 2026-11-20 is before start_date 2026-11-24"),
        ({"end_date": "2026-11-25"}, "end_date 2026-11-25 is not in the past"),
        ({"end_date": "2027-01-01"}, "the latest day to backfill is 2026-11-24"),
        ({"start_date": "2026-13-01"}, "start_date '2026-13-01' is not a calendar day"),
        ({"start_date": "20261120"}, "start_date '20261120' is not a date in the form YYYY-MM-DD"),
        ({"start_date": ""}, "start_date '' is not a date"),
        ({"start_date": "2026-01-01"}, f"days requested; at most {MAX_DAYS} per backfill"),
        ({"tables": ["ods.ods_orders"]}, "tables: 'ods.ods_orders' is not one of all, dwd, dws"),
        ({"tables": []}, "choose at least one table"),
        ({"parallel_days": 0}, "parallel_days must be a whole number from 1 to 4"),
        ({"parallel_days": "2"}, "parallel_days must be a whole number"),
        ({"dry_run": "yes"}, "dry_run must be true or false"),
    ],
)
def test_each_bad_field_is_named(overrides, message):
    assert message in bad(**overrides)


def test_all_problems_are_listed_at_once():
    text = bad(tables=["nope"], start_date="x", parallel_days=9)
    assert text.count("\n- ") == 3


def test_sql_injection_in_dates_is_refused():
    with pytest.raises(BadRequest):
        parse_day("2026-11-24' OR '1'='1")
    assert "not a date" in bad(start_date="2026-11-24'; DROP TABLE x; --")


def test_tag_name():
    assert tag_name("2026-11-23") == "t1-2026-11-23"
    with pytest.raises(BadRequest):
        tag_name("2026-11-31")


# ---------------------------------------------------------------------------------- the lane loop
class _Report:
    def __init__(self, dt):
        self.dt = dt

    def line(self):
        return f"report {self.dt}"


def _lane_env(monkeypatch, failing_days=()):
    from types import SimpleNamespace

    from lakehouse.batch import t1
    from lakehouse.quality import audit

    calls = []

    def run_day(dt, tables, **kwargs):
        calls.append(("run_day", dt, kwargs["holder"], kwargs["dry_run"]))
        return SimpleNamespace(reports=[_Report(dt)])

    def audit_day(dt, reports, **kwargs):
        calls.append(("audit_day", dt, kwargs["run_id"]))
        if dt in failing_days:
            raise audit.QualityGateFailed(f"{dt}: 1 critical expectation failed")
        return []

    monkeypatch.setattr(t1, "run_day", run_day)
    monkeypatch.setattr(audit, "audit_day", audit_day)
    return calls


def test_a_lane_audits_every_day_then_fails_with_every_failed_gate(monkeypatch):
    from lakehouse.batch.backfill import run_lane
    from lakehouse.quality.audit import QualityGateFailed

    calls = _lane_env(monkeypatch, failing_days={"2026-11-20", "2026-11-22"})
    with pytest.raises(QualityGateFailed) as exc:
        run_lane(
            ["2026-11-20", "2026-11-21", "2026-11-22"],
            ["all"],
            holder="h",
            run_id="r",
            flink=None,
            paimon=None,
            leases=None,
            mysql=None,
            echo=lambda *_: None,
        )
    assert "2026-11-20" in str(exc.value) and "2026-11-22" in str(exc.value)
    assert [c[1] for c in calls if c[0] == "audit_day"] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert ("audit_day", "2026-11-21", "r/2026-11-21") in calls


def test_a_dry_run_lane_reports_and_audits_nothing(monkeypatch):
    from lakehouse.batch.backfill import run_lane

    calls = _lane_env(monkeypatch)
    reports = run_lane(
        ["2026-11-20", "2026-11-21"],
        ["dwd"],
        holder="h",
        run_id="r",
        flink=None,
        paimon=None,
        leases=None,
        mysql=None,
        dry_run=True,
        echo=lambda *_: None,
    )
    assert [r.dt for r in reports] == ["2026-11-20", "2026-11-21"]
    assert [c[0] for c in calls] == ["run_day", "run_day"] and all(c[3] for c in calls)
