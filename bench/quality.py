"""Validation time of a one-million-row partition, and where the time goes.

In a separate warehouse (.stack/bench-warehouse), a Flink batch job writes one day of `--rows`
orders into dwd.dwd_order_fact (the registered DDL: 2 buckets, primary key). Then the audit of that
partition, step by step as lakehouse.quality.audit.audit_table does it:
  read (pypaimon, at the snapshot) -> pandas (decimals as floats, derived columns) -> GX suite
  (expectations/dwd.dwd_order_fact.json, result_format COMPLETE with the key column) -> Data Docs;
and each expectation alone, to see which ones cost.

    source scripts/env.sh && .venv/bin/python bench/quality.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import fresh_bench_warehouse, save_results  # bench/ is on sys.path when a bench runs

DAY = "2026-11-20"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    fresh_bench_warehouse("paimon_default")

    from lakehouse.batch.recompute import BATCH_SESSION
    from lakehouse.core.flink_sql import catalog_statements
    from lakehouse.core.registry import registry
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.quality import parameters, suites, validation
    from lakehouse.streaming.deploy import create_tables

    flink, paimon = FlinkHook(), PaimonHook()
    create_tables([registry().table("dwd.dwd_order_fact")], flink=flink, paimon=paimon)
    n = args.rows
    t0 = time.perf_counter()
    flink.execute_sql(
        catalog_statements(paimon)
        + [
            f"""CREATE TEMPORARY TABLE gen (order_id BIGINT, user_id BIGINT, shop_id BIGINT, r INT, cents INT, secs INT)
            WITH ('connector' = 'datagen', 'number-of-rows' = '{n}', 'fields.order_id.kind' = 'sequence',
                  'fields.order_id.start' = '1', 'fields.order_id.end' = '{n}', 'fields.user_id.min' = '1',
                  'fields.user_id.max' = '2000', 'fields.shop_id.min' = '1', 'fields.shop_id.max' = '300',
                  'fields.r.min' = '0', 'fields.r.max' = '99', 'fields.cents.min' = '1500', 'fields.cents.max' = '20000',
                  'fields.secs.min' = '600', 'fields.secs.max' = '3600')""",
            f"""INSERT INTO lakehouse.dwd.dwd_order_fact
            SELECT order_id, user_id, shop_id, 'shop', 'tea', 'wuhan', 'wuhan', CAST(r AS BIGINT),
                   CASE WHEN r < 5 THEN 'CANCELLED' ELSE 'DELIVERED' END,
                   CAST(cents AS DECIMAL(12, 2)) / 100, CAST(1.00 AS DECIMAL(12, 2)), CAST(0.50 AS DECIMAL(12, 2)),
                   created_at, created_at, created_at, TIMESTAMPADD(SECOND, secs, created_at), CAST(NULL AS TIMESTAMP(3)),
                   CAST(secs AS DOUBLE) / 60, CAST(HOUR(created_at) AS INT), created_at, '{DAY}'
            FROM (SELECT *, TIMESTAMPADD(SECOND, CAST(MOD(order_id, 86400) AS INT),
                                         TIMESTAMP '{DAY} 00:00:00') AS created_at FROM gen)""",
        ],
        session_config=BATCH_SESSION,
        result_timeout=1800,
    )
    print(f"wrote {n} rows in {time.perf_counter() - t0:.1f} s")

    table = "dwd.dwd_order_fact"
    suite = suites.load_suite(table)
    snapshot = paimon.latest_snapshot(table).snapshot_id
    params = {**parameters.day_parameters(DAY), "known_shop_ids": list(range(1, 301))}
    timings = {}

    t = time.perf_counter()
    data = paimon.read_arrow(table, partition={"dt": DAY}, snapshot_id=snapshot)
    timings["read (pypaimon)"] = time.perf_counter() - t
    t = time.perf_counter()
    df = validation.frame_for_validation(data, suite)
    timings["to pandas + derived columns"] = time.perf_counter() - t
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (timed: its import is a fixed cost per task process)

    timings["import great_expectations"] = time.perf_counter() - t
    t = time.perf_counter()
    outcomes, unexpected, _ = validation.validate_frame(df, suite, params)
    timings["GX validation, whole suite"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as docs:
        t = time.perf_counter()
        validation.validate_frame(df, suite, params, docs_dir=Path(docs))
        timings["GX validation + Data Docs"] = time.perf_counter() - t
    assert all(o.success is not False for o in outcomes), [o.line() for o in outcomes if o.success is False]

    per_expectation = {}
    for exp in suite["expectations"]:
        one = {**suite, "expectations": [exp]}
        t = time.perf_counter()
        (outcome,), _, _ = validation.validate_frame(df, one, params)
        per_expectation[f"{outcome.expectation}({outcome.target})"] = time.perf_counter() - t
    baseline = min(per_expectation.values())  # the fixed cost of one validation (context, batch, hashing)

    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": data.num_rows,
        "expectations": len(suite["expectations"]),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "one_validation_fixed_cost_s": round(baseline, 2),
        "per_expectation_above_fixed_cost_s": {
            k: round(v - baseline, 2) for k, v in sorted(per_expectation.items(), key=lambda kv: -kv[1])
        },
    }
    print(json.dumps(result, indent=2))
    save_results("quality", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
