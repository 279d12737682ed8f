"""Backfill throughput: one day of N orders, T+1 recomputation vs a plain Flink batch scan.

In a separate warehouse (.stack/bench-warehouse, the user's tables are not touched):
  1. a Flink batch job fills ODS for one day (orders, subsidies, shops, users) from datagen;
  2. plain scan:  SELECT COUNT(*), SUM(amount) FROM ods_orders WHERE dt = <day>  (batch mode);
  3. the T+1 recomputation of that day as t1_daily runs it (lakehouse.batch.t1.run_day: leases,
     INSERT OVERWRITE of DWD then the five DWS tables, verification against ODS);
and prints rows/s for each and the ratio, which is the overhead of our orchestration and SQL.

    source scripts/env.sh && .venv/bin/python bench/backfill.py --orders 2000000
"""

from __future__ import annotations

import argparse
import shutil
import time

from _common import fresh_bench_warehouse, save_results  # bench/ is on sys.path when a bench runs

DAY = "2026-11-20"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench warehouse afterwards")
    args = parser.parse_args()

    warehouse = fresh_bench_warehouse("paimon_bench")

    from lakehouse.batch.leases import LeaseManager
    from lakehouse.batch.recompute import BATCH_SESSION
    from lakehouse.batch.t1 import run_day, select_tables
    from lakehouse.core.flink_sql import catalog_statements
    from lakehouse.core.registry import registry
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.streaming.deploy import create_tables

    flink, paimon = FlinkHook(), PaimonHook("paimon_bench")
    create_tables(list(registry().tables.values()), flink=flink, paimon=paimon)
    n = args.orders
    gen = catalog_statements(paimon) + [
        f"""CREATE TEMPORARY TABLE gen_orders (order_id BIGINT, user_id BIGINT, shop_id BIGINT, r INT, cents INT)
            WITH ('connector' = 'datagen', 'number-of-rows' = '{n}', 'fields.order_id.kind' = 'sequence',
                  'fields.order_id.start' = '1', 'fields.order_id.end' = '{n}',
                  'fields.user_id.min' = '1', 'fields.user_id.max' = '2000', 'fields.shop_id.min' = '1',
                  'fields.shop_id.max' = '300', 'fields.r.min' = '0', 'fields.r.max' = '99',
                  'fields.cents.min' = '1500', 'fields.cents.max' = '20000')""",
        """CREATE TEMPORARY TABLE gen_dim (id BIGINT, r INT) WITH ('connector' = 'datagen', 'number-of-rows' = '2000',
            'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '2000', 'fields.r.min' = '0', 'fields.r.max' = '5')""",
        f"""CREATE TEMPORARY VIEW day_orders AS SELECT order_id, user_id, shop_id, r, CAST(cents AS DECIMAL(12, 2)) / 100 AS amount,
            TIMESTAMPADD(SECOND, CAST(MOD(order_id, 86400) AS INT), TIMESTAMP '{DAY} 00:00:00') AS created_at FROM gen_orders""",
        f"""EXECUTE STATEMENT SET BEGIN
            INSERT INTO lakehouse.ods.ods_orders SELECT order_id, user_id, shop_id, CAST(NULL AS BIGINT),
              CASE MOD(r, 6) WHEN 0 THEN 'shanghai' WHEN 1 THEN 'hangzhou' WHEN 2 THEN 'beijing' WHEN 3 THEN 'shenzhen'
                WHEN 4 THEN 'chengdu' ELSE 'wuhan' END,
              CASE WHEN r < 5 THEN 'CANCELLED' WHEN r < 90 THEN 'DELIVERED' ELSE 'CREATED' END,
              CAST(amount AS DECIMAL(12, 2)), created_at, created_at, created_at,
              CASE WHEN r >= 5 AND r < 90 THEN TIMESTAMPADD(MINUTE, 20 + r / 5, created_at) END,
              CASE WHEN r < 5 THEN created_at END, created_at, CAST(NULL AS TIMESTAMP_LTZ(3)), '{DAY}' FROM day_orders;
            INSERT INTO lakehouse.ods.ods_order_subsidies SELECT order_id, order_id, IF(MOD(r, 2) = 0, 'PLATFORM', 'SHOP'),
              CAST(LEAST(amount, 5) AS DECIMAL(12, 2)), created_at, created_at, CAST(NULL AS TIMESTAMP_LTZ(3)), '{DAY}'
              FROM day_orders WHERE r < 60;
            INSERT INTO lakehouse.ods.ods_shops SELECT id, CONCAT('shop-', CAST(id AS STRING)), 'wuhan', 'tea',
              TIMESTAMP '{DAY} 00:00:00', TIMESTAMP '{DAY} 00:00:00', CAST(NULL AS TIMESTAMP_LTZ(3)) FROM gen_dim WHERE id <= 300;
            INSERT INTO lakehouse.ods.ods_users SELECT id, CONCAT('user-', CAST(id AS STRING)), 'wuhan', CAST(NULL AS STRING),
              TIMESTAMP '{DAY} 00:00:00', TIMESTAMP '{DAY} 00:00:00', CAST(NULL AS TIMESTAMP_LTZ(3)) FROM gen_dim;
            END""",
    ]
    t = time.monotonic()
    flink.execute_sql(gen, session_config=BATCH_SESSION, result_timeout=3600)
    gen_s = time.monotonic() - t
    rows = paimon.read_arrow("ods.ods_orders", partition={"dt": DAY}, columns=["amount"]).num_rows
    print(f"bench: ODS filled with {rows} orders for {DAY} in {gen_s:.1f} s")

    t = time.monotonic()
    scan = flink.execute_sql(
        catalog_statements(paimon) + [f"SELECT COUNT(*), SUM(amount) FROM lakehouse.ods.ods_orders WHERE dt = '{DAY}'"],
        session_config=BATCH_SESSION,
        result_timeout=3600,
    )
    scan_s = time.monotonic() - t
    print(f"bench: plain scan: {scan[-1].rows} in {scan_s:.1f} s ({rows / scan_s:,.0f} orders/s)")

    leases = LeaseManager(MySqlHook("lakehouse_ops"))
    t = time.monotonic()
    result = run_day(DAY, select_tables(), holder="bench", flink=flink, paimon=paimon, leases=leases)
    t1_s = time.monotonic() - t
    per_table = {r.table: round(r.duration_s, 1) for r in result.reports}
    dwd_s = per_table["dwd.dwd_order_fact"]
    print(f"bench: T+1 day (DWD + 5 DWS + verification): {t1_s:.1f} s ({rows / t1_s:,.0f} orders/s)")
    for table, secs in per_table.items():
        print(f"         {table:30} {secs:6.1f} s")
    print(
        f"bench: DWD recompute {dwd_s:.1f} s = {rows / dwd_s:,.0f} orders/s; ratio DWD recompute / plain scan = "
        f"{dwd_s / scan_s:.1f}x; whole day / plain scan = {t1_s / scan_s:.1f}x"
    )
    save_results(
        "backfill",
        {
            "orders": rows,
            "generate_s": gen_s,
            "scan_s": scan_s,
            "t1_day_s": t1_s,
            "per_table_s": per_table,
            "checks": result.checks,
        },
    )
    if not args.keep:
        shutil.rmtree(warehouse, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
