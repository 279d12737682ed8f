"""Full-table, keyed comparison of an ODS table in Paimon with its MySQL source.

The source of truth is MySQL; a difference is reported per key as missing (in MySQL, not in
Paimon), extra (in Paimon only) or changed (same key, other values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lakehouse.core.errors import BadRequest
from lakehouse.core.polling import WaitTimeout, wait_until
from lakehouse.core.registry import TableSpec
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook

# Columns the ODS adds to the source's: derived partition and capture metadata.
ODS_ONLY_COLUMNS = frozenset({"dt", "binlog_ts"})
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class KeyedDiff:
    """Differences between an expected and an actual keyed data set."""

    table: str
    expected_count: int
    actual_count: int
    missing: list[Any] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    changed: list[tuple[Any, tuple, tuple]] = field(default_factory=list)
    labels = ("expected", "actual", "rows")

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def summary(self, sample: int = 5) -> str:
        want, got, unit = self.labels
        if self.equal:
            return f"{self.table}: equal ({self.expected_count} {unit})"
        return (
            f"{self.table}: {want} {self.expected_count} {unit}, {got} {self.actual_count}; "
            f"{len(self.missing)} missing (e.g. {self.missing[:sample]}), {len(self.extra)} extra "
            f"(e.g. {self.extra[:sample]}), {len(self.changed)} changed (e.g. {self.changed[:sample]})"
        )


def diff_keyed(diff: KeyedDiff, expected: dict, actual: dict, same=lambda a, b: a == b) -> KeyedDiff:
    """Fill `diff` with the keys missing from `actual`, extra in it, and changed (by `same`, per value)."""
    for key, values in expected.items():
        got = actual.get(key)
        if got is None:
            diff.missing.append(key)
        elif len(got) != len(values) or not all(same(a, b) for a, b in zip(values, got, strict=True)):
            diff.changed.append((key, values, got))
    diff.extra.extend(k for k in actual if k not in expected)
    return diff


class TableDiff(KeyedDiff):
    """An ODS table against its MySQL source, row by row."""

    labels = ("MySQL", "Paimon", "rows")

    @property
    def mysql_rows(self) -> int:
        return self.expected_count

    @property
    def paimon_rows(self) -> int:
        return self.actual_count


def compare_ods_table(spec: TableSpec, *, mysql: MySqlHook, paimon: PaimonHook) -> TableDiff:
    """Compare every row of `spec` (an ODS table) with its MySQL source table, by primary key."""
    if spec.layer != "ods" or not spec.source:
        raise BadRequest(f"{spec.name} is not an ODS table with a MySQL source")
    arrow = paimon.read_arrow(spec.name)
    columns = [c for c in arrow.column_names if c not in ODS_ONLY_COLUMNS]
    for c in columns + [spec.source]:
        if not _COLUMN.match(c):
            raise BadRequest(f"unexpected identifier {c!r}")
    key_idx = [columns.index(k) for k in spec.primary_key]
    value_idx = [i for i in range(len(columns)) if i not in key_idx]

    def keyed(rows) -> dict:
        out = {}
        for row in rows:
            key = tuple(row[i] for i in key_idx)
            out[key[0] if len(key) == 1 else key] = tuple(row[i] for i in value_idx)
        return out

    paimon_rows = list(zip(*(arrow.column(c).to_pylist() for c in columns), strict=True)) if arrow.num_rows else []
    select = ", ".join(f"`{c}`" for c in columns)
    mysql_rows = mysql.get_records(f"SELECT {select} FROM `{spec.source}`")
    expected, actual = keyed(mysql_rows), keyed(paimon_rows)
    diff = TableDiff(spec.name, len(mysql_rows), len(paimon_rows))
    if len(actual) != len(paimon_rows):
        diff.extra.append(f"{len(paimon_rows) - len(actual)} duplicate keys")
    return diff_keyed(diff, expected, actual)


def wait_until_equal(
    specs: list[TableSpec], *, mysql: MySqlHook, paimon: PaimonHook, timeout: float = 120.0, poll: float = 2.0
) -> list[TableDiff]:
    """Poll until every table equals its source; return the last diffs (equal or not) at the deadline."""
    diffs: list[TableDiff] = []

    def equal() -> bool:
        diffs[:] = [compare_ods_table(s, mysql=mysql, paimon=paimon) for s in specs]
        return all(d.equal for d in diffs)

    try:
        wait_until(equal, timeout=timeout, interval=poll, what="the ODS tables to equal their MySQL sources")
    except WaitTimeout:
        pass  # the caller reports the differences
    return diffs
