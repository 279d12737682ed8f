"""Compaction: read time of one partition before and after, and write amplification.

In a separate warehouse (.stack/bench-warehouse, the user's tables are not touched):
  1. a streaming Flink job upserts `--rate` rows/s over `--keys` keys into one day of a
     primary-key table with ODS's settings (2 buckets, changelog-producer input) for
     `--seconds`, committing every `--checkpoint` seconds, as the CDC job writes ODS. The
     writers compact as in production (Paimon's universal compaction);
  2. the partition is read with pypaimon (merged view, median of 3), and aggregated by a Flink
     batch query (COUNT, SUM; one run, including job submission);
  3. the maintenance compaction of that closed day runs (lakehouse.maintenance, sys.compact full);
  4. the partition is read both ways again.
Write amplification = bytes written by compaction / bytes ingested, from each snapshot's
delta manifests (APPEND = ingested, COMPACT = rewritten), for the writers' own compaction and
for the full compaction.

    source scripts/env.sh && .venv/bin/python bench/maintenance.py --rate 5000 --seconds 90
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime

from _common import fresh_bench_warehouse, save_results  # bench/ is on sys.path when a bench runs

DAY = "2026-11-20"
TABLE = "bench.upserts"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=5000, help="rows per second")
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--keys", type=int, default=300_000, help="distinct keys (smaller: more updates)")
    parser.add_argument("--checkpoint", type=int, default=5, help="checkpoint interval, seconds")
    args = parser.parse_args()

    warehouse = fresh_bench_warehouse("paimon_default")

    from lakehouse.core.flink_sql import catalog_statements
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.maintenance import metrics, operations

    flink, paimon = FlinkHook(), PaimonHook()
    catalog = catalog_statements(paimon)
    flink.execute_sql(
        catalog
        + [
            "CREATE DATABASE IF NOT EXISTS lakehouse.bench",
            f"""CREATE TABLE lakehouse.{TABLE} (id BIGINT, amount DECIMAL(12, 2), note STRING, dt STRING,
              PRIMARY KEY (dt, id) NOT ENFORCED) PARTITIONED BY (dt)
            WITH ('bucket' = '2', 'changelog-producer' = 'input')""",
        ]
    )
    flink.execute_sql(
        catalog
        + [
            f"""CREATE TEMPORARY TABLE gen (id BIGINT, cents INT, note STRING) WITH ('connector' = 'datagen',
              'rows-per-second' = '{args.rate}', 'fields.id.min' = '1', 'fields.id.max' = '{args.keys}',
              'fields.cents.min' = '100', 'fields.cents.max' = '20000', 'fields.note.length' = '32')""",
            f"""INSERT INTO lakehouse.{TABLE} SELECT id, CAST(cents AS DECIMAL(12, 2)) / 100, note, '{DAY}' FROM gen""",
        ],
        session_config={
            "execution.runtime-mode": "streaming",
            "pipeline.name": "bench_upserts",
            "execution.checkpointing.interval": f"{args.checkpoint}s",
            "parallelism.default": "2",
        },
    )
    job = flink.active_jobs_named("bench_upserts")[0].job_id
    print(
        f"ingesting {args.rate} rows/s over {args.keys} keys for {args.seconds} s (checkpoint {args.checkpoint} s) ..."
    )
    time.sleep(args.seconds)
    flink.stop_with_savepoint(job, target_dir=f"file://{warehouse}/savepoints")

    def read_partition() -> tuple[float, int]:
        times, n = [], 0
        for _ in range(3):
            t0 = time.perf_counter()
            n = paimon.read_arrow(TABLE, partition={"dt": DAY}, columns=["id", "amount"]).num_rows
            times.append(time.perf_counter() - t0)
        return statistics.median(times), n

    def flink_scan() -> float:
        """A plain Flink batch aggregate over the partition (JVM reader, merge on read)."""
        t0 = time.perf_counter()
        flink.execute_sql(
            catalog + [f"SELECT COUNT(*), SUM(amount) FROM lakehouse.{TABLE} WHERE dt = '{DAY}'"],
            session_config={"execution.runtime-mode": "batch", "parallelism.default": "2"},
        )
        return time.perf_counter() - t0

    def amplification() -> dict:
        totals = {"APPEND": 0, "COMPACT": 0}
        for sid in paimon.snapshot_ids(TABLE):
            delta = paimon.snapshot_delta(TABLE, sid)
            totals[delta.commit_kind] = totals.get(delta.commit_kind, 0) + delta.added_bytes
        return totals

    before_files = metrics.measure(paimon, TABLE)
    read_before, rows_before = read_partition()
    flink_before = flink_scan()
    ingest = amplification()

    t0 = time.perf_counter()
    # The bench table is not in the registry: call the procedure the way compact_closed_partitions does.
    operations._call(flink, paimon, operations._render("compact_partition", table=TABLE, partition_column="dt", dt=DAY))
    compact_s = time.perf_counter() - t0
    after_files = metrics.measure(paimon, TABLE)
    read_after, rows_after = read_partition()
    flink_after = flink_scan()
    total = amplification()
    full_compaction_bytes = total["COMPACT"] - ingest["COMPACT"]

    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rate": args.rate,
        "seconds": args.seconds,
        "keys": args.keys,
        "checkpoint_s": args.checkpoint,
        "rows_in_partition": rows_after,
        "snapshots": before_files.snapshots,
        "files_before": before_files.data_files,
        "files_after": after_files.data_files,
        "bytes_before": before_files.total_bytes,
        "bytes_after": after_files.total_bytes,
        "read_s_before": round(read_before, 3),
        "read_s_after": round(read_after, 3),
        "read_speedup": round(read_before / read_after, 2) if read_after else None,
        "flink_scan_s_before": round(flink_before, 2),
        "flink_scan_s_after": round(flink_after, 2),
        "full_compaction_s": round(compact_s, 1),
        "ingested_bytes": ingest["APPEND"],
        "writer_compaction_bytes": ingest["COMPACT"],
        "full_compaction_bytes": full_compaction_bytes,
        "write_amplification_writers": round(ingest["COMPACT"] / ingest["APPEND"], 2),
        "write_amplification_full_compaction": round(full_compaction_bytes / ingest["APPEND"], 3),
    }
    assert rows_before == rows_after, f"compaction changed the row count: {rows_before} -> {rows_after}"
    print(json.dumps(result, indent=2))
    save_results("maintenance", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
