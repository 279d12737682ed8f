"""`make demo`: the first slice end to end on the local stack, with what it did and how fresh the data is.

python -m lakehouse.dev.demo prepare   # OLTP schema + reference data in MariaDB
(airflow dags test streaming_deploy deploys the CDC job in between)
python -m lakehouse.dev.demo run       # load; insert-to-visible delay in ODS and DWD; ODS and DWS against MariaDB
"""

from __future__ import annotations

import argparse
import sys
import time

from lakehouse.core.polling import WaitTimeout, wait_until
from lakehouse.core.registry import registry
from lakehouse.core.resources import resources
from lakehouse.dev import oltp
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.probe import VisibilityProbe
from lakehouse.dev.reconcile import wait_until_equal
from lakehouse.dev.truth import DWS_GRAINS, compare_dws


def prepare() -> int:
    mysql = resources().mysql_source
    oltp.create_schema(mysql)
    oltp.seed_dimensions(mysql)
    counts = oltp.table_counts(mysql)
    print("demo: MariaDB schema ready: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


def run(rate: float, duration: float) -> int:
    reg = registry()
    r = resources()
    flink, paimon, mysql = r.flink, r.paimon, r.mysql_source
    missing = [name for name in reg.jobs if not flink.active_jobs_named(name)]
    if missing:
        print(
            f"demo: not running: {', '.join(missing)}; run `airflow dags test streaming_deploy` first", file=sys.stderr
        )
        return 1

    start_key = mysql.get_first("SELECT COALESCE(MAX(order_id), 0) FROM orders")[0]
    ods_probe = VisibilityProbe(paimon, table="ods.ods_orders", min_key=start_key).start()
    dwd_probe = VisibilityProbe(paimon, table="dwd.dwd_order_fact", min_key=start_key, in_order=False).start()
    print(f"demo: generating {rate:.0f} orders/s for {duration:.0f} s against MariaDB ...")
    stats = LoadGenerator(mysql, rate=rate, seed=int(time.time())).run(duration_s=duration)
    print(
        f"demo: wrote {stats.orders_created} orders ({stats.achieved_rate:.0f}/s), {stats.status_updates} status "
        f"changes, {stats.subsidies_created} subsidies, {stats.subsidies_deleted} subsidy deletes, "
        f"{stats.dimension_updates} dimension updates"
    )
    if stats.last_order_id:
        ods_probe.wait_for_key(stats.last_order_id, timeout=120)
        dwd_probe.wait_for_key(stats.last_order_id, timeout=120, count=stats.orders_created)
    ods_delays, dwd_delays = ods_probe.stop(), dwd_probe.stop()

    ods_diffs = wait_until_equal(reg.mirrored_tables(), mysql=mysql, paimon=paimon, timeout=120)
    dws_diffs = []

    def dws_equal() -> bool:
        dws_diffs[:] = [compare_dws(t, mysql=mysql, paimon=paimon) for t in DWS_GRAINS]
        return all(d.equal for d in dws_diffs)

    try:
        wait_until(dws_equal, timeout=120, interval=2, what="the DWS tables to equal the metrics computed from MariaDB")
    except WaitTimeout:
        pass  # the mismatches are printed below

    print()
    print(f"{len(reg.jobs)} Flink streaming jobs RUNNING (Flink UI: http://127.0.0.1:8081)")
    print("Insert-to-visible delay (MariaDB commit -> Paimon snapshot commit), per order:")
    print(f"  ODS ods.ods_orders         {ods_delays.summary()}")
    print(f"  DWD dwd.dwd_order_fact     {dwd_delays.summary()}")
    print()
    print(f"{'table':32} {'MySQL rows':>10} {'Paimon rows':>11}  {'match':6} {'snapshot':>8}  snapshot age")
    now = time.time()
    for d in ods_diffs:
        snap = paimon.latest_snapshot(d.table)
        age = f"{now - snap.commit_time.timestamp():.1f} s" if snap else "-"
        print(
            f"{d.table:32} {d.mysql_rows:>10} {d.paimon_rows:>11}  {'yes' if d.equal else 'NO':6} "
            f"{snap.snapshot_id if snap else '-':>8}  {age}"
        )
    print()
    print(f"{'DWS table vs metrics computed from MariaDB':44} {'groups':>7}  match")
    for d in dws_diffs:
        print(f"{d.table:44} {d.truth_groups:>7}  {'yes' if d.equal else 'NO'}")
    bad = [d for d in (*ods_diffs, *dws_diffs) if not d.equal]
    for d in bad:
        print("demo: MISMATCH " + d.summary(), file=sys.stderr)
    print()
    print("warehouse: " + paimon.catalog_options["warehouse"] + "   deployment history: ops.streaming_deployments")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="create the OLTP schema and reference data")
    r = sub.add_parser("run", help="generate load and report freshness and correctness")
    r.add_argument("--rate", type=float, default=200.0)
    r.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)
    return prepare() if args.command == "prepare" else run(args.rate, args.duration)


if __name__ == "__main__":
    raise SystemExit(main())
