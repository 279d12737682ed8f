"""How the maintenance operations hand a Paimon procedure to Flink: a bounded batch session, a
pipeline name per procedure, and the names of jobs a procedure names itself (so that the hook can
cancel them at the deadline or when the task is killed)."""

from __future__ import annotations

import pytest

from lakehouse.core import flink_sql
from lakehouse.maintenance import operations


class RecordingFlink:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def execute_sql(self, statements, **kwargs):
        self.calls.append({"statements": list(statements), **kwargs})
        return []


@pytest.fixture
def flink(monkeypatch):
    monkeypatch.setattr(flink_sql, "catalog_statements", lambda paimon: ["CREATE CATALOG lakehouse"])
    return RecordingFlink()


@pytest.mark.parametrize(
    ("statement", "procedure", "job_names"),
    [
        (
            "CALL lakehouse.sys.remove_orphan_files(`table` => 'ods.t', older_than => '2026-11-20 00:00:00')",
            "remove_orphan_files",
            ("OrphanFilesClean",),
        ),
        ("CALL sys.compact(`table` => 'ods.t', partitions => 'dt=2026-11-20')", "compact", ()),
    ],
)
def test_call_runs_a_bounded_batch_session(flink, statement, procedure, job_names):
    assert operations._call(flink, None, statement, timeout=60) == []
    [call] = flink.calls
    assert call["statements"] == ["CREATE CATALOG lakehouse", statement]
    assert call["result_timeout"] == 60
    assert call["session_config"] == {**operations.PROCEDURE_SESSION, "pipeline.name": f"maintenance {procedure}"}
    assert call["session_config"]["restart-strategy.type"] == "fixed-delay"
    assert tuple(call["job_names"]) == job_names
