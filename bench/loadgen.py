"""The load generator alone against MariaDB: achieved against requested rate, the mix per order, and CPU.

For each rate, in a throw-away database `it_bench_loadgen` (created afresh, dropped at the end; the app
user's grants cover it_*): the delivery schema and reference data, then `--duration` seconds of load
(lakehouse.dev.loadgen), then the lifecycle check in MariaDB (lakehouse.dev.lifecycles). Prints per rate
the achieved rate, how far the writers fell behind, the changes per order, the CPU of the generator's
processes (all of them, start-up included), of mysqld and of the rest of the machine, and writes JSON to
bench/results/. No Flink job reads this database, but the binlog is shared: a running CDC job still
receives and skips these changes. MYSQL_PORT selects the server (default 3306, the stack's MariaDB); the
server's CPU is that of the process listening on that port.

    source scripts/env.sh && .venv/bin/python bench/loadgen.py --rates 1000 5000 10000 15000 --duration 30
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from _common import save_results  # bench/ is on sys.path when a bench runs
from lakehouse.dev import oltp
from lakehouse.dev.lifecycles import check_lifecycles
from lakehouse.dev.loadgen import LoadGenerator

DATABASE = "it_bench_loadgen"
CONN_ID = "bench_loadgen"
TICKS = os.sysconf("SC_CLK_TCK")


def fresh_database():
    """The bench's database, empty but for the schema and reference data; returns its MySqlHook."""
    # Imported here: the generator's worker processes import this module again (multiprocessing spawn)
    # and need no Airflow.
    from lakehouse.hooks.mysql import MySqlHook

    conn = oltp.admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cur.execute(f"CREATE DATABASE `{DATABASE}`")
    conn.close()
    user, pw = os.environ.get("MYSQL_APP_USER", "app"), os.environ.get("MYSQL_APP_PASSWORD", "app")
    port = int(os.environ.get("MYSQL_PORT", 3306))
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = f"mysql://{user}:{pw}@127.0.0.1:{port}/{DATABASE}"
    mysql = MySqlHook(CONN_ID)
    oltp.create_schema(mysql)
    oltp.seed_dimensions(mysql)
    return mysql


def drop_database() -> None:
    conn = oltp.admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    conn.close()


def mysqld_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port` (the MariaDB server the bench writes to), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of a process so far."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def own_cpu() -> float:
    """CPU seconds of this process and its finished children (the generator's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_rate(rate: float, duration: float, workers: int | None, seed: int) -> dict:
    mysql = fresh_database()
    pid = mysqld_pid(int(os.environ.get("MYSQL_PORT", 3306)))
    gen = LoadGenerator(mysql, rate=rate, seed=seed, workers=workers, report_every_s=10)
    m0, g0, (b0, t0), w0 = process_cpu(pid), own_cpu(), machine_cpu(), time.monotonic()
    stats = gen.run(duration_s=duration)
    m1, g1, (b1, t1), w1 = process_cpu(pid), own_cpu(), machine_cpu(), time.monotonic()
    wall = w1 - w0  # the run with the worker processes' start and stop
    started = time.monotonic()
    lifecycles = check_lifecycles(mysql)
    cores = (t1 - t0) / wall
    generator_cpu, mysqld_cpu, busy = g1 - g0, m1 - m0, b1 - b0
    return {
        "requested_rate": rate,
        "mysqld_pid": pid,
        "achieved_rate": round(stats.achieved_rate, 1),
        "orders": stats.orders_created,
        "writers": stats.writers,
        "elapsed_s": round(stats.elapsed_s, 2),
        "wall_s": round(wall, 2),
        "max_lag_s": round(stats.max_lag_s, 2),
        "transactions": stats.transactions,
        "missed_changes": stats.missed_changes,
        "orders_dropped": stats.orders_dropped,
        "mix_per_order": {k: round(v, 4) for k, v in stats.mix().items()},
        "counts": {
            "status_changes": stats.status_updates,
            "subsidies": stats.subsidies_created,
            "subsidy_deletes": stats.subsidies_deleted,
            "dimension_updates": stats.dimension_updates,
        },
        # CPU as a share of one core over the run's wall time, and per 1,000 orders.
        "generator_cpu_pct": round(100 * generator_cpu / wall, 1),
        "writer_loops_cpu_pct": round(100 * stats.cpu_s / wall, 1),  # without process start-up
        "mysqld_cpu_pct": round(100 * mysqld_cpu / wall, 1),
        "machine_cpu_pct": round(100 * busy / wall, 1),
        "others_cpu_pct": round(100 * (busy - generator_cpu - mysqld_cpu) / wall, 1),
        "cores": round(cores, 2),
        "generator_cpu_ms_per_1000_orders": round(1e6 * generator_cpu / max(stats.orders_created, 1), 1),
        "mysqld_cpu_ms_per_1000_orders": round(1e6 * mysqld_cpu / max(stats.orders_created, 1), 1),
        "loadavg_after": os.getloadavg()[0],
        "lifecycles_valid": lifecycles.valid,
        "lifecycles": lifecycles.summary(),
        "lifecycle_paths": lifecycles.paths,
        "lifecycle_check_s": round(time.monotonic() - started, 1),
    }


def print_table(runs: list[dict]) -> None:
    print(
        f"{'requested':>9} {'achieved':>8} {'dropped':>7} {'writers':>7} {'lag s':>6} {'status':>6} {'subs':>5} {'sub del':>7} "
        f"{'dims':>5} {'gen CPU':>7} {'loops':>5} {'mysqld':>6} {'others':>6} {'gen ms/1k':>9} {'db ms/1k':>8}  lifecycles"
    )
    for r in runs:
        m = r["mix_per_order"]
        print(
            f"{r['requested_rate']:>9.0f} {r['achieved_rate']:>8.0f} {r['orders_dropped']:>7} {r['writers']:>7} {r['max_lag_s']:>6.2f} "
            f"{m['status_changes']:>6.2f} {m['subsidies']:>5.3f} {m['subsidy_deletes']:>7.4f} "
            f"{m['dimension_updates']:>5.3f} {r['generator_cpu_pct']:>6.0f}% {r['writer_loops_cpu_pct']:>4.0f}% "
            f"{r['mysqld_cpu_pct']:>5.0f}% "
            f"{r['others_cpu_pct']:>5.0f}% {r['generator_cpu_ms_per_1000_orders']:>9.0f} "
            f"{r['mysqld_cpu_ms_per_1000_orders']:>8.0f}  {'valid' if r['lifecycles_valid'] else 'INVALID'}"
        )
    print(
        "(per order: status changes, subsidies, subsidy deletes, dimension updates; CPU in % of one core over the "
        "run: the generator's processes with their start-up, its writer loops alone, mysqld, 'others' = the rest "
        "of the machine; gen/db ms: CPU per 1,000 orders)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 5000, 10000, 15000])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--workers", type=int, default=None, help="writers (default: by rate)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pause", type=float, default=5, help="seconds between rates")
    args = parser.parse_args()
    runs = []
    try:
        for i, rate in enumerate(args.rates):
            if i:
                time.sleep(args.pause)
            print(f"bench: {rate:.0f} orders/s for {args.duration:.0f} s in a fresh {DATABASE} ...", flush=True)
            run = run_rate(rate, args.duration, args.workers, args.seed)
            runs.append(run)
            print(
                f"bench: {run['achieved_rate']:.0f}/s achieved, {run['orders']} orders; lifecycles: {run['lifecycles']}",
                flush=True,
            )
    finally:
        drop_database()
    print()
    print_table(runs)
    save_results("loadgen", runs)
    return 0 if all(r["lifecycles_valid"] and not r["missed_changes"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
