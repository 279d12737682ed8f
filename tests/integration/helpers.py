"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.dev.truth import DWS_GRAINS, compare_dws
from lakehouse.streaming.supervision import Supervisor

# Flink pipeline names of this test session: two sessions (say, two worktrees) can share one cluster.
PREFIX = f"it{os.getpid()}_"
ORDER_JOBS = [
    "ods_delivery_cdc",
    "dwd_order_fact",
    "dws_shop_hourly",
    "dws_shop_daily",
    "dws_city_hourly",
    "dws_city_daily",
]


def wait_dws_equals_truth(env, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        diffs = [compare_dws(t, mysql=env.mysql, paimon=env.paimon) for t in DWS_GRAINS]
        if all(d.equal for d in diffs) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert all(d.equal for d in diffs), "\n".join(d.summary() for d in diffs)
    return diffs


def start_order_pipeline(env):
    """Deploy this session's it_ order pipeline, or adopt it when another module already runs it.

    Returns the Supervisor and what each supervision round did per job."""
    from lakehouse.core.registry import registry
    from lakehouse.streaming.deploy import create_tables

    reg = registry()
    create_tables(list(reg.tables.values()), flink=env.flink, paimon=env.paimon)
    sup = Supervisor(flink=env.flink, paimon=env.paimon, cdc=env.cdc, reg=reg, pipeline_prefix=PREFIX)
    env.job_names.extend(PREFIX + j for j in ORDER_JOBS if PREFIX + j not in env.job_names)
    return sup, supervise_until(sup, ORDER_JOBS)


def supervise_until(sup: Supervisor, jobs, *, want=("OK",), timeout=240):
    """Run supervision rounds (as the DAG does every 2 minutes) until every job reports `want`."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[str]] = {j: [] for j in jobs}
    while True:
        results = {j: sup.supervise(j) for j in jobs}
        for j, r in results.items():
            seen[j].append(r.action)
        if all(r.action in want for r in results.values()):
            return seen
        assert time.monotonic() < deadline, f"supervision did not settle: {seen}"
        time.sleep(5)


def days_written(env, table: str, snapshot_id: int) -> set[str]:
    """The dt partitions a commit wrote (from its delta manifest)."""
    from pypaimon.manifest.manifest_file_manager import ManifestFileManager
    from pypaimon.manifest.manifest_list_manager import ManifestListManager

    handle = env.paimon.get_table(table)
    snapshot = handle.snapshot_manager().get_snapshot_by_id(snapshot_id)
    keys = list(handle.partition_keys)
    return {
        dict(zip(keys, entry.partition.values, strict=True))["dt"]
        for meta in ManifestListManager(handle).read_delta(snapshot)
        for entry in ManifestFileManager(handle).read(meta.file_name)
    }


ROOT = Path(__file__).resolve().parents[2]


def backdated_clock(day: str):
    """Wall-clock time moved to 10:00 UTC of `day`: load for a past day, arriving now."""
    start = datetime.now(UTC)
    base = datetime.fromisoformat(day).replace(hour=10)
    return lambda: base + (datetime.now(UTC) - start)


_migrated: set[str] = set()


def _migrate_once(airflow: str, env: dict) -> None:
    """`airflow db migrate` of the session's throw-away metadata database (tests/conftest.py), once."""
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if url in _migrated:
        return
    out = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert out.returncode == 0, f"airflow db migrate of the tests' database {url} failed:\n{out.stdout}\n{out.stderr}"
    _migrated.add(url)


def airflow_cli(*args: str, timeout: float = 1800, **env: str) -> subprocess.CompletedProcess:
    """The `airflow` CLI with the default connections pointed at this session's database and warehouse
    (the given environment variables win over both), on the session's throw-away Airflow home and
    SQLite database (tests/conftest.py), never the user's: migrated on first use."""
    session = {
        "AIRFLOW_CONN_PAIMON_DEFAULT": "AIRFLOW_CONN_IT_PAIMON",
        "AIRFLOW_CONN_MYSQL_SOURCE": "AIRFLOW_CONN_IT_MYSQL",
        "AIRFLOW_CONN_LAKEHOUSE_OPS": "AIRFLOW_CONN_IT_MYSQL",
    }
    overrides = {
        **{name: os.environ[var] for name, var in session.items() if var in os.environ},
        "PYTHONPATH": str(ROOT / "plugins"),
        **env,
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    full_env = {**os.environ, **overrides}
    assert full_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:"), "tests use their own Airflow DB"
    _migrate_once(airflow, full_env)
    return subprocess.run(
        [airflow, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
