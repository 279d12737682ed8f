"""Airflow pools that keep the control plane from starving the data plane, sized for the machine.

Two pools, created by `python -m lakehouse.core.pools --apply` (docs/AIRFLOW_UI.md, "Pools"):

- `flink_batch`: every task that submits Flink batch statements (`t1_daily.recompute_day`,
  `t1_backfill.backfill_lane`, `table_maintenance.maintain`), whatever its DAG. A task takes as many
  slots as its session's parallelism (`slots_of`: 2 for a recomputation, 1 for a maintenance
  procedure). Size: the Flink cluster's task slots minus those the registered streaming jobs hold
  (the sum of their parallelism), and at least the largest task's 2.
- `quality`: Great Expectations validations (`dq_streaming_checks.check_*`, `t1_daily.audit`),
  one slot each. Size: half the CPU cores, at least 1.

Why these sizes:
- A batch statement needs as many free task slots as its parallelism (the Flink hook waits for them,
  then fails with FlinkSlotsUnavailable). Queued in the pool instead, work from every DAG waits its
  turn in Airflow, visibly ("queued"), and never holds a worker process while Flink has no room; the
  slots of the streaming jobs are never counted as free.
- A validation is CPU-bound Python (pyarrow and pandas in the worker); 13 of them at once put a load
  of 22 on 2 cores, with the streaming jobs on the same cores. Half the cores leaves the other half
  to Flink.

`LAKEHOUSE_FLINK_BATCH_SLOTS` and `LAKEHOUSE_QUALITY_SLOTS` override either size. Re-running
`--apply` resizes the pools (`airflow pools set` is idempotent); a task whose pool does not exist is
never scheduled (the UI shows a DAG warning "references non-existent pools"), so the stack creates
them before the scheduler starts.

This module is imported by DAG files at parse time: it imports nothing heavy (the Flink hook only in
`main`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lakehouse.core.errors import ConfigError

FLINK_BATCH_POOL = "flink_batch"
QUALITY_POOL = "quality"
POOLS = (FLINK_BATCH_POOL, QUALITY_POOL)
# The most slots one task takes in flink_batch: a recomputation (lakehouse.batch.recompute.BATCH_SESSION;
# tests/unit/test_dag_integrity.py checks the DAGs take what their sessions need).
LARGEST_BATCH_TASK = 2


def slots_of(session: Mapping[str, str]) -> int:
    """Flink task slots a batch session's statement holds: its parallelism (1 unless it sets one)."""
    values = []
    for key in ("parallelism.default", "table.exec.resource.default-parallelism"):
        try:
            values.append(int(session.get(key, "")))
        except ValueError:
            continue
    return max([v for v in values if v > 0], default=1)


@dataclass(frozen=True)
class Pool:
    name: str
    slots: int
    description: str


def pool_sizes(
    *, total_slots: int, streaming_slots: int, cpus: int, env: Mapping[str, str] | None = None
) -> list[Pool]:
    """The pools for a Flink cluster of `total_slots` whose streaming jobs hold `streaming_slots`, on
    a machine of `cpus` cores (the rule in the module docstring)."""
    env = os.environ if env is None else env
    free = total_slots - streaming_slots
    batch = max(LARGEST_BATCH_TASK, free)
    quality = max(1, cpus // 2)
    batch = _override(env, "LAKEHOUSE_FLINK_BATCH_SLOTS", batch, at_least=LARGEST_BATCH_TASK)
    quality = _override(env, "LAKEHOUSE_QUALITY_SLOTS", quality, at_least=1)
    return [
        Pool(
            FLINK_BATCH_POOL,
            batch,
            f"Flink batch work of every DAG (T+1, backfills, maintenance); a task takes its parallelism. "
            f"{total_slots} task slots - {streaming_slots} held by the streaming jobs = {free} free",
        ),
        Pool(QUALITY_POOL, quality, f"Great Expectations validations, one slot each: half of {cpus} CPU cores"),
    ]


def _override(env: Mapping[str, str], name: str, value: int, *, at_least: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return value
    try:
        chosen = int(raw)
    except ValueError:
        chosen = 0
    if chosen < at_least:
        raise ConfigError(f"{name}={raw!r}: give a whole number of at least {at_least} (pool slots), or unset it")
    return chosen


def streaming_slots() -> int:
    """Task slots the registered streaming jobs hold: the sum of their parallelism."""
    from lakehouse.core.registry import registry

    return sum(job.parallelism for job in registry().jobs.values())


def set_commands(pools: Sequence[Pool], airflow: Sequence[str] = (sys.executable, "-m", "airflow")) -> list[list[str]]:
    return [[*airflow, "pools", "set", p.name, str(p.slots), p.description] for p in pools]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse.core.pools",
        description="Size the Airflow pools flink_batch and quality for this machine and Flink cluster.",
    )
    parser.add_argument(
        "--flink-slots",
        type=int,
        help="total task slots of the Flink cluster; default: ask its REST API (connection flink_default)",
    )
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPU cores (default: this machine's)")
    parser.add_argument("--apply", action="store_true", help="create or resize the pools with `airflow pools set`")
    parser.add_argument(
        "--airflow", help="the airflow command to run (default: this interpreter's `python -m airflow`)"
    )
    args = parser.parse_args(argv)
    total = args.flink_slots
    if total is None:
        from lakehouse.core.resources import resources

        _, total = resources().flink.cluster_slots()  # FlinkUnavailableError names the endpoint
    pools = pool_sizes(total_slots=total, streaming_slots=streaming_slots(), cpus=args.cpus)
    for pool in pools:
        print(f"pool {pool.name}: {pool.slots} slots ({pool.description})")
    if args.apply:
        for command in set_commands(pools, *([[args.airflow]] if args.airflow else [])):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                print(f"`{' '.join(command[:6])}` failed (exit {done.returncode}); see above", file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
