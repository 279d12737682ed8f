"""The T+1 publication check: a day the warehouse holds must carry t1-<dt> on every DWD/DWS table
once its deadline has passed, whether or not a t1_daily run was ever created for it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakehouse.batch.published import T1NotPublished, check_published, due_days, publication_status
from lakehouse.batch.recompute import recomputable_tables
from lakehouse.hooks.paimon import DataFile

TABLES = [t.name for t in recomputable_tables()]
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class FakePaimon:
    def __init__(self, held=(), tags=None, tables=None):
        self.held = set(held)
        self.tags = tags or {}
        self.tables = set(tables if tables is not None else ["ods.ods_orders", *TABLES])

    def table_exists(self, name):
        return name in self.tables

    def data_files(self, name):
        if name != "ods.ods_orders":  # the day's other ODS inputs hold nothing here
            return []
        return [DataFile(f"f-{d}", {"dt": d}, 0, 100, 0, 10) for d in sorted(self.held)]

    def list_tags(self, name):
        return sorted(self.tags.get(name, ()))


def tagged(*days, tables=TABLES):
    return {t: {f"t1-{d}" for d in days} for t in tables}


def test_due_days_are_the_days_whose_deadline_passed():
    assert due_days(NOW, published_by="06:00", days=2) == ["2026-11-28", "2026-11-27"]
    # Before 06:00 the day that just ended is not due yet.
    early = datetime(2026, 11, 29, 5, 59, tzinfo=UTC)
    assert due_days(early, published_by="06:00", days=2) == ["2026-11-27", "2026-11-26"]


def test_a_held_day_without_its_tag_after_the_deadline_fails():
    paimon = FakePaimon(held=["2026-11-27", "2026-11-28"], tags=tagged("2026-11-27"))
    with pytest.raises(T1NotPublished) as err:
        check_published(paimon, now=NOW, published_by="06:00")
    assert err.value.missing == {"2026-11-28": TABLES}
    assert err.value.since == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert err.value.job == "t1_daily"  # the alert's subject, the deadline alert's too
    assert "t1-2026-11-28 missing" in str(err.value) and "t1_backfill" in str(err.value)


def test_one_table_missing_its_tag_is_enough():
    tags = tagged("2026-11-27", "2026-11-28")
    tags[TABLES[-1]].discard("t1-2026-11-28")
    with pytest.raises(T1NotPublished) as err:
        check_published(FakePaimon(held=["2026-11-27", "2026-11-28"], tags=tags), now=NOW, published_by="06:00")
    assert err.value.missing == {"2026-11-28": [TABLES[-1]]}


def test_published_days_pass():
    paimon = FakePaimon(held=["2026-11-27", "2026-11-28"], tags=tagged("2026-11-27", "2026-11-28"))
    status = check_published(paimon, now=NOW, published_by="06:00")
    assert [s.late for s in status] == [False, False]


def test_days_the_warehouse_never_held_are_not_expected_a_fresh_stack_is_quiet():
    """A stack started today holds no earlier day: nothing is late, whatever the time."""
    paimon = FakePaimon(held=["2026-11-29"], tags={})
    status = check_published(paimon, now=NOW, published_by="06:00")
    assert [(s.dt, s.held, s.late) for s in status] == [("2026-11-28", False, False), ("2026-11-27", False, False)]


def test_before_streaming_deploy_created_the_tables_nothing_is_late():
    assert not any(s.late for s in publication_status(FakePaimon(tables=[]), now=NOW, published_by="06:00"))


def test_the_deadline_time_is_configurable():
    paimon = FakePaimon(held=["2026-11-28"], tags={})
    check_published(paimon, now=NOW, published_by="10:00", days=1)  # due at 10:00: not yet
    with pytest.raises(T1NotPublished):
        check_published(paimon, now=NOW, published_by="08:30", days=1)
