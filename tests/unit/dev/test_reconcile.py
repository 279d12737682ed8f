"""Keyed comparison used against MariaDB (ODS row by row, DWS group by group)."""

from decimal import Decimal

from lakehouse.dev.reconcile import TableDiff, diff_keyed
from lakehouse.dev.truth import MetricDiff, _same


def test_missing_extra_and_changed_are_reported_by_key():
    diff = diff_keyed(TableDiff("ods.x", 3, 3), {1: ("a",), 2: ("b",), 3: ("c",)}, {1: ("a",), 2: ("B",), 4: ("d",)})
    assert (diff.missing, diff.extra, diff.changed) == ([3], [4], [(2, ("b",), ("B",))])
    assert not diff.equal
    assert diff.summary().startswith(
        "ods.x: MySQL 3 rows, Paimon 3; 1 missing (e.g. [3]), 1 extra (e.g. [4]), 1 changed"
    )


def test_equal_sets():
    diff = diff_keyed(TableDiff("ods.x", 1, 1), {1: ("a", None)}, {1: ("a", None)})
    assert diff.equal and diff.summary() == "ods.x: equal (1 rows)" and diff.mysql_rows == 1


def test_metric_comparison_tolerates_float_noise_but_not_decimal_differences():
    truth = {("2026-11-24", 1): (Decimal("10.50"), 3, 2.0000000000001)}
    assert diff_keyed(MetricDiff("dws.x", 1, 1), truth, {("2026-11-24", 1): (Decimal("10.5"), 3, 2.0)}, _same).equal
    off = diff_keyed(MetricDiff("dws.x", 1, 1), truth, {("2026-11-24", 1): (Decimal("10.51"), 3, 2.0)}, _same)
    assert not off.equal and off.truth_groups == 1 and "truth 1 groups, lake 1" in off.summary()
    assert not _same(None, 0) and _same(None, None)
