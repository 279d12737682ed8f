"""lakehouse.core.ops_tables.OpsTable against a real pypaimon warehouse in tmp_path."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lakehouse.core.ops_tables import OpsTable
from lakehouse.hooks.paimon import PaimonHook

CONN_ID = "paimon_ops_ut"


@pytest.fixture
def paimon(tmp_path, monkeypatch):
    wh = tmp_path / "warehouse"
    wh.mkdir()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAIMON_OPS_UT", json.dumps({"conn_type": "paimon", "extra": {"warehouse": str(wh)}})
    )
    return PaimonHook(CONN_ID)


def events() -> OpsTable:
    return OpsTable(
        "ops.ut_events", lambda pa: [("at", pa.timestamp("ms", tz="UTC")), ("name", pa.string()), ("n", pa.int64())]
    )


class CountingHook:
    """A PaimonHook that counts ensure_ops_table calls."""

    def __init__(self, hook: PaimonHook):
        self.hook, self.ensured = hook, 0

    def ensure_ops_table(self, *args, **kwargs):
        self.ensured += 1
        return self.hook.ensure_ops_table(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.hook, name)


def test_append_creates_once_and_read_returns_the_rows(paimon):
    table = events()
    assert table.read(paimon) == []  # not created yet: reading creates nothing
    assert not paimon.table_exists("ops.ut_events")
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    counting = CountingHook(paimon)
    first = table.append(counting, [{"at": at, "name": "a", "n": 1}])
    second = table.append(counting, [{"at": at, "name": "b"}])  # a missing column writes NULL
    assert counting.ensured == 1
    assert second == first + 1  # one commit per append
    rows = sorted(PaimonHook(CONN_ID).read_arrow("ops.ut_events").to_pylist(), key=lambda r: r["name"])
    assert [(r["name"], r["n"]) for r in rows] == [("a", 1), ("b", None)]
    assert sorted(r["name"] for r in table.read(PaimonHook(CONN_ID), columns=["name"])) == ["a", "b"]


def test_append_of_no_rows_writes_nothing(paimon):
    assert events().append(paimon, []) is None
    assert not paimon.table_exists("ops.ut_events")


def test_a_bad_row_fails_before_anything_is_created(paimon):
    with pytest.raises(Exception, match="int"):
        events().append(paimon, [{"at": None, "name": "a", "n": "not a number"}])
    assert not paimon.table_exists("ops.ut_events")


def test_only_ops_tables_can_be_declared():
    with pytest.raises(ValueError, match=r"dwd.x: ops tables live in the ops database \(ops.<table>\)"):
        OpsTable("dwd.x", lambda pa: [])


def test_declaring_imports_no_pyarrow():
    """Modules imported at DAG parse time declare ops tables: the schema is built on first use."""
    import subprocess
    import sys

    code = (
        "import sys; from lakehouse.core.ops_tables import OpsTable; "
        "OpsTable('ops.x', lambda pa: [('a', pa.string())]); print('pyarrow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
