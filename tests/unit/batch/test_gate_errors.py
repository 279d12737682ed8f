"""Gates that carry what they found: LeaseHeld (the holders) and VerificationFailed (the failed checks)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pymysql
import pytest

from lakehouse.batch.leases import LeaseHeld, LeaseManager
from lakehouse.batch.recompute import PartitionReport, PartitionStats
from lakehouse.batch.t1 import VerificationFailed, verify_day
from lakehouse.core.errors import GateFailed

DAY = "2026-11-23"
UNTIL = datetime(2026, 11, 24, 3, 0, 0)


class HeldLeases:
    """The MySqlHook surface LeaseManager uses; every lease is held by another run."""

    def __init__(self, holders: dict[str, tuple[str, datetime]]):
        self.held = holders

    def run_script(self, statements):
        pass

    @contextmanager
    def cursor(self):
        class Cursor:
            def execute(self, sql, params=None):
                if sql.startswith("INSERT"):
                    raise pymysql.err.IntegrityError(1062, "Duplicate entry")

        yield Cursor()

    def get_first(self, sql, params):
        return self.held.get(params[0])


def test_a_held_lease_names_its_holders_in_the_message_and_the_fields():
    held = {"dwd.dwd_order_fact": ("t1_daily/other-run", UNTIL)}
    with pytest.raises(LeaseHeld) as exc:
        LeaseManager(HeldLeases(held)).acquire(["dwd.dwd_order_fact"], DAY, "t1_backfill/run")
    assert str(exc.value) == (
        f"partition dt={DAY} is being overwritten by another run: dwd.dwd_order_fact held by "
        "t1_daily/other-run until 2026-11-24 03:00:00 UTC. Wait for it to finish, or retry later."
    )
    assert (exc.value.dt, exc.value.holders) == (DAY, held)
    assert isinstance(exc.value, GateFailed) and exc.value.retryable


class Tables:
    """read_arrow over fixed tables: ODS has two valid orders (10 + 5), DWD only one of them."""

    def read_arrow(self, table, *, partition=None, snapshot_id=None, columns=None):
        if table == "ods.ods_orders":
            return pa.table({"amount": [Decimal("10.00"), Decimal("5.00")], "status": ["DELIVERED", "CREATED"]})
        assert table == "dwd.dwd_order_fact" and snapshot_id == 7
        return pa.table({"amount": [Decimal("10.00")]})


def test_failed_verification_lists_each_failed_check():
    stats = PartitionStats(1, {}, 7)
    reports = [PartitionReport("dwd.dwd_order_fact", DAY, stats, stats, 7, 1.0)]
    with pytest.raises(VerificationFailed) as exc:
        verify_day(DAY, reports, paimon=Tables())
    assert exc.value.dt == DAY
    assert exc.value.problems == [
        f"dwd.dwd_order_fact dt={DAY} rows = valid ODS orders: expected 2, got 1",
        f"dwd.dwd_order_fact dt={DAY} sum(amount) = ODS: expected 15.00, got 10.00",
    ]
    assert str(exc.value) == f"T+1 verification of {DAY} failed, nothing published:\n- " + "\n- ".join(
        exc.value.problems
    )
    assert isinstance(exc.value, GateFailed) and not exc.value.retryable
