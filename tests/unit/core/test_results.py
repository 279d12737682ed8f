"""lakehouse.core.results.to_jsonable: task results as plain JSON values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path

from lakehouse.batch.recompute import PartitionReport, PartitionStats
from lakehouse.batch.t1 import reports_from_dicts
from lakehouse.core.results import to_jsonable


class Color(Enum):
    RED = "red"


@dataclass
class Inner:
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    items: tuple = ()
    tags: frozenset = frozenset()
    by_day: dict = field(default_factory=dict)


def test_nested_dataclasses_decimals_dates_and_containers():
    value = Outer(
        "x",
        Inner(Decimal("12.30"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        items=(1, Decimal("0.1"), None),
        tags=frozenset({"b", "a"}),
        by_day={date(2026, 1, 2): [time(1, 2)], "color": Color.RED, 3: Path("/tmp/x")},
    )
    out = to_jsonable(value)
    assert out == {
        "name": "x",
        "inner": {"amount": "12.30", "at": "2026-01-02T03:04:05+00:00"},
        "items": [1, "0.1", None],
        "tags": ["a", "b"],
        "by_day": {"2026-01-02": ["01:02:00"], "color": "red", 3: "/tmp/x"},
    }
    json.dumps(out)  # JSON as it is


def test_numpy_and_pandas_values():
    import numpy as np
    import pandas as pd

    out = to_jsonable(
        {
            "i": np.int64(3),
            "f": np.float32(0.5),
            "b": np.bool_(True),
            "ts": pd.Timestamp("2026-01-02 03:04:05"),
            "na": pd.NA,
            "list": [np.int32(1)],
        }
    )
    assert out == {"i": 3, "f": 0.5, "b": True, "ts": "2026-01-02T03:04:05", "na": "<NA>", "list": [1]}
    assert type(out["i"]) is int and type(out["b"]) is bool


def test_partition_reports_round_trip_through_xcom():
    """What t1_daily's recompute_day returns is what verify/audit/publish read back."""
    report = PartitionReport(
        "dws.dws_shop_daily",
        "2026-01-02",
        PartitionStats(3, {"gmv": Decimal("9.90")}, 4),
        PartitionStats(4, {"gmv": Decimal("12.00")}, 7),
        7,
        1.5,
        source_snapshots={"ods.ods_orders": 40},
    )
    payload = json.loads(json.dumps(to_jsonable(report)))
    assert payload["before"] == {"rows": 3, "totals": {"gmv": "9.90"}, "snapshot_id": 4}
    [back] = reports_from_dicts([payload])
    assert (back.table, back.dt, back.overwrite_snapshot_id, back.source_snapshots) == (
        "dws.dws_shop_daily",
        "2026-01-02",
        7,
        {"ods.ods_orders": 40},
    )
    assert back.after == PartitionStats(4, {"gmv": "12.00"}, 7)
