"""Pool sizes for the machine and the Flink cluster (lakehouse.core.pools)."""

from __future__ import annotations

import subprocess

import pytest

from lakehouse.core import pools
from lakehouse.core.errors import ConfigError
from lakehouse.core.pools import FLINK_BATCH_POOL, QUALITY_POOL, pool_sizes, set_commands, slots_of, streaming_slots


def _sizes(**kw) -> dict[str, int]:
    return {p.name: p.slots for p in pool_sizes(**kw)}


def test_the_local_stack_one_taskmanager_of_16_slots_on_2_cores():
    assert streaming_slots() == 8  # the eight registered jobs, parallelism 1 each
    assert _sizes(total_slots=16, streaming_slots=8, cpus=2, env={}) == {FLINK_BATCH_POOL: 8, QUALITY_POOL: 1}


def test_flink_batch_is_what_the_streaming_jobs_leave_and_never_below_one_recomputation():
    assert _sizes(total_slots=32, streaming_slots=8, cpus=8, env={}) == {FLINK_BATCH_POOL: 24, QUALITY_POOL: 4}
    # A cluster full of streaming jobs: a recomputation still fits the pool (and waits for Flink's slots).
    assert _sizes(total_slots=8, streaming_slots=8, cpus=1, env={}) == {FLINK_BATCH_POOL: 2, QUALITY_POOL: 1}


def test_the_rule_is_written_in_the_pool_descriptions():
    batch, quality = pool_sizes(total_slots=16, streaming_slots=8, cpus=2, env={})
    assert "16 task slots - 8 held by the streaming jobs = 8 free" in batch.description
    assert "half of 2 CPU cores" in quality.description


def test_sizes_can_be_overridden():
    env = {"LAKEHOUSE_FLINK_BATCH_SLOTS": "4", "LAKEHOUSE_QUALITY_SLOTS": "2"}
    assert _sizes(total_slots=16, streaming_slots=8, cpus=2, env=env) == {FLINK_BATCH_POOL: 4, QUALITY_POOL: 2}


@pytest.mark.parametrize(
    "env", [{"LAKEHOUSE_FLINK_BATCH_SLOTS": "1"}, {"LAKEHOUSE_QUALITY_SLOTS": "0"}, {"LAKEHOUSE_QUALITY_SLOTS": "two"}]
)
def test_an_override_too_small_to_run_anything_is_refused(env):
    name = next(iter(env))
    with pytest.raises(ConfigError, match=name):
        pool_sizes(total_slots=16, streaming_slots=8, cpus=2, env=env)


def test_slots_of_a_session_is_its_parallelism():
    from lakehouse.batch.recompute import BATCH_SESSION
    from lakehouse.maintenance.operations import PROCEDURE_SESSION

    assert slots_of(BATCH_SESSION) == pools.LARGEST_BATCH_TASK == 2
    assert slots_of(PROCEDURE_SESSION) == 1
    assert slots_of({}) == 1


def test_set_commands_are_airflow_pools_set():
    batch, quality = pool_sizes(total_slots=16, streaming_slots=8, cpus=2, env={})
    assert set_commands([batch, quality], airflow=["airflow"]) == [
        ["airflow", "pools", "set", "flink_batch", "8", batch.description],
        ["airflow", "pools", "set", "quality", "1", quality.description],
    ]


def test_main_applies_the_pools(monkeypatch, capsys):
    ran = []

    def fake_run(command, **kw):
        ran.append(command[-4:-1])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(pools.subprocess, "run", fake_run)
    monkeypatch.delenv("LAKEHOUSE_FLINK_BATCH_SLOTS", raising=False)
    monkeypatch.delenv("LAKEHOUSE_QUALITY_SLOTS", raising=False)
    assert pools.main(["--flink-slots", "16", "--cpus", "2", "--apply"]) == 0
    assert ran == [["set", "flink_batch", "8"], ["set", "quality", "1"]]
    assert "pool flink_batch: 8 slots" in capsys.readouterr().out


def test_main_reports_a_failed_airflow_command(monkeypatch, capsys):
    monkeypatch.setattr(
        pools.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "no database")
    )
    assert pools.main(["--flink-slots", "16", "--cpus", "2", "--apply"]) == 1
    assert "no database" in capsys.readouterr().err
