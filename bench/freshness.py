"""End-to-end freshness benchmark: MariaDB commit -> visible in Paimon ODS, DWD and DWS.

Runs the load generator at a sustained order rate against the local stack (all streaming jobs
deployed and supervised), and for every Paimon snapshot of

  ods.ods_orders, dwd.dwd_order_fact   each newly visible order: snapshot commit - created_at
  dws.dws_city_daily                   sum(order_count) tells how many orders are counted; each
                                       newly counted order (by id order) gets commit - created_at

Prints p50/p95/p99/max per layer, whether the lag stayed bounded (last third vs first third of
the run, and the time to drain after the load stops), and writes JSON to bench/results/.

    source scripts/env.sh && .venv/bin/python bench/freshness.py --rates 500 1000 --duration 120
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC

from _common import save_results  # bench/ is on sys.path when a bench runs
from lakehouse.core.registry import registry
from lakehouse.core.resources import resources
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.probe import DelayStats, VisibilityProbe
from lakehouse.hooks.flink import FlinkHook
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.streaming.supervision import Supervisor


class CountProbe(threading.Thread):
    """Per-order delays in an aggregate table, from how many orders each snapshot counts."""

    def __init__(
        self, paimon: PaimonHook, mysql: MySqlHook, *, table: str, dt: str, start_key: int, poll_s: float = 0.5
    ):
        super().__init__(daemon=True)
        self.paimon, self.mysql, self.table, self.dt = paimon, mysql, table, dt
        self.start_key, self.poll_s = start_key, poll_s
        self.samples: list[tuple[float, float]] = []  # (created_at epoch, delay)
        self.stop_event = threading.Event()
        self.error = None
        base = paimon.read_arrow(table, partition={"dt": dt}, columns=["order_count"]).column(0).to_pylist()
        self.base_count = sum(base)
        self.counted = 0
        self.created: list[float] = []

    def _created_times(self, upto: int) -> None:
        if len(self.created) >= upto:
            return
        rows = self.mysql.get_records(
            "SELECT created_at FROM orders WHERE order_id > %s ORDER BY order_id LIMIT %s",
            (self.start_key + len(self.created), upto - len(self.created)),
        )
        self.created.extend(r[0].replace(tzinfo=UTC).timestamp() for r in rows)

    def run(self) -> None:
        table = self.paimon.get_table(self.table)
        last = (self.paimon.latest_snapshot(self.table) or type("S", (), {"snapshot_id": 0})).snapshot_id
        try:
            while True:
                stopping = self.stop_event.is_set()
                latest = table.snapshot_manager().get_latest_snapshot()
                if latest and latest.id > last:
                    for sid in range(last + 1, latest.id + 1):
                        snap = table.snapshot_manager().get_snapshot_by_id(sid)
                        if snap is None or snap.commit_kind != "APPEND":
                            continue
                        at = table.copy({"scan.snapshot-id": str(sid)})
                        rb = at.new_read_builder().with_projection(["order_count", "dt"])
                        rb = rb.with_filter(rb.new_predicate_builder().equal("dt", self.dt))
                        counts = rb.new_read().to_arrow(rb.new_scan().plan().splits()).column("order_count").to_pylist()
                        now_counted = sum(counts) - self.base_count
                        if now_counted > self.counted:
                            self._created_times(now_counted)
                            commit = snap.time_millis / 1000
                            for i in range(self.counted, min(now_counted, len(self.created))):
                                self.samples.append((self.created[i], commit - self.created[i]))
                            self.counted = now_counted
                    last = latest.id
                if stopping:
                    return
                self.stop_event.wait(self.poll_s)
        except BaseException as exc:
            self.error = exc


def pct(values, p):
    return DelayStats(sorted(values)).percentile(p) if values else None


def summarize(name: str, samples: list[tuple[float, float]], expected: int) -> dict:
    delays = [d for _, d in samples]
    if not delays:
        return {"layer": name, "n": 0}
    ordered = sorted(samples)
    third = max(1, len(ordered) // 3)
    first, last = [d for _, d in ordered[:third]], [d for _, d in ordered[-third:]]
    return {
        "layer": name,
        "n": len(delays),
        "expected": expected,
        "p50": pct(delays, 50),
        "p95": pct(delays, 95),
        "p99": pct(delays, 99),
        "max": max(delays),
        "p99_first_third": pct(first, 99),
        "p99_last_third": pct(last, 99),
    }


def run_rate(rate: float, duration: float, drain_timeout: float) -> dict:
    paimon, mysql = PaimonHook(), MySqlHook()
    start_key = mysql.get_first("SELECT COALESCE(MAX(order_id), 0) FROM orders")[0]
    dt = time.strftime("%Y-%m-%d", time.gmtime())
    ods = VisibilityProbe(paimon, table="ods.ods_orders", min_key=start_key).start()
    dwd = VisibilityProbe(paimon, table="dwd.dwd_order_fact", min_key=start_key, in_order=False).start()
    dws = CountProbe(paimon, mysql, table="dws.dws_city_daily", dt=dt, start_key=start_key)
    dws.start()
    stats = LoadGenerator(mysql, rate=rate, seed=int(rate)).run(duration_s=duration)
    load_end = time.time()
    last_key = stats.last_order_id or start_key
    drained = {}
    for name, done in (
        ("ods", lambda: ods.max_key >= last_key),
        ("dwd", lambda: dwd.visible(last_key, stats.orders_created)),
        ("dws", lambda: dws.counted >= stats.orders_created),
    ):
        while not done() and time.time() - load_end < drain_timeout:
            time.sleep(0.5)
        drained[name] = round(time.time() - load_end, 1) if done() else None
    dws.stop_event.set()
    dws.join(60)
    ods_stats, dwd_stats = ods.stop(), dwd.stop()
    if dws.error:
        raise dws.error

    def with_created(probe_stats):  # VisibilityProbe keeps delays only; order = arrival order
        return [(i, d) for i, d in enumerate(probe_stats.samples)]

    layers = [
        summarize("ods.ods_orders", with_created(ods_stats), stats.orders_created),
        summarize("dwd.dwd_order_fact", with_created(dwd_stats), stats.orders_created),
        summarize("dws.dws_city_daily", dws.samples, stats.orders_created),
    ]
    for layer, key in zip(layers, ("ods", "dwd", "dws"), strict=True):
        layer["drain_s"] = drained[key]
        layer["bounded"] = bool(
            drained[key] is not None
            and layer.get("p99_last_third") is not None
            and layer["p99_last_third"] <= 2 * max(layer["p99_first_third"], 10)
        )
    return {
        "target_rate": rate,
        "achieved_rate": round(stats.achieved_rate, 1),
        "orders": stats.orders_created,
        "status_changes": stats.status_updates,
        "duration_s": duration,
        "layers": layers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[1000])
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--drain-timeout", type=float, default=180)
    args = parser.parse_args()

    r = resources()
    sup = Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc)
    for job in registry().jobs:
        result = sup.supervise(job)
        print(f"bench: {job}: {result.action}")
    flink = FlinkHook()
    print(
        f"bench: {len([j for j in flink.list_jobs() if j.is_running])} jobs running; "
        f"checkpoint interval {registry().job('dwd_order_fact').checkpoint_interval} per layer"
    )
    runs = []
    for rate in args.rates:
        print(f"\nbench: {rate:.0f} orders/s for {args.duration:.0f} s ...")
        r = run_rate(rate, args.duration, args.drain_timeout)
        runs.append(r)
        print(f"achieved {r['achieved_rate']} orders/s ({r['orders']} orders, {r['status_changes']} status changes)")
        print(
            f"{'layer':22} {'n':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'p99 1st/3rd':>12} {'drain':>6} bounded"
        )
        for layer in r["layers"]:
            if not layer["n"]:
                print(f"{layer['layer']:22} no samples")
                continue
            print(
                f"{layer['layer']:22} {layer['n']:>7} {layer['p50']:>6.1f} {layer['p95']:>6.1f} {layer['p99']:>6.1f} {layer['max']:>6.1f} "
                f"{layer['p99_first_third']:>5.1f}/{layer['p99_last_third']:<6.1f} {str(layer['drain_s']):>6} {layer['bounded']}"
            )
        time.sleep(15)
    print()
    save_results("freshness", runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
