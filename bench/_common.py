"""What every benchmark shares: its own Paimon warehouse (.stack/bench-warehouse, the user's tables
are never touched), where its figures are kept (bench/results/<name>-<time>.json), timestamped
progress lines, steady load from the load generator, how this stack's Flink processes are told from
others', and the check that ODS and DWS equal MariaDB after a run."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Main classes of the Flink processes (their command lines, as flink-daemon.sh starts them).
TASKMANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
JOBMANAGER_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
SQL_GATEWAY_MAIN = "org.apache.flink.table.gateway.SqlGateway"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_bench_warehouse(conn_id: str = "paimon_default") -> Path:
    """Empty .stack/bench-warehouse and point the Airflow connection `conn_id` at it."""
    warehouse = Path(os.environ["LAKEHOUSE_HOME"]) / "bench-warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "paimon", "extra": {"warehouse": str(warehouse)}}
    )
    return warehouse


def save_results(name: str, results, out: Path | None = None) -> Path:
    """Write a run's figures to `out`, by default bench/results/<name>-<time>.json (one file per run), and say where."""
    if out is None:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"bench: results in {out}")
    return out


def is_stack_process(args: list[str], main_class: str, *, home: str, conf_dir: str) -> bool:
    """Whether a command line runs `main_class` for this stack: tagged -Dlakehouse.home=<home> or
    started with --configDir <conf_dir> (as scripts/stack.sh finds them)."""
    if main_class not in args:
        return False
    tagged = f"-Dlakehouse.home={home}" in args
    return tagged or any(a == "--configDir" and b == conf_dir for a, b in zip(args, args[1:], strict=False))


def stack_processes(main_class: str) -> list[int]:
    """Pids of this stack's processes running `main_class` (is_stack_process)."""
    home = os.environ["LAKEHOUSE_HOME"]
    conf = os.environ.get("FLINK_CONF_DIR", f"{home}/flink/conf")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if is_stack_process([a.decode(errors="replace") for a in args], main_class, home=home, conf_dir=conf):
            pids.append(int(proc.name))
    return sorted(pids)


# What a load run wrote, summed over its runs (fields of the load generator's stats object).
LOAD_COUNTS = ("orders_created", "status_updates", "subsidies_created", "subsidies_deleted")


class Load(threading.Thread):
    """The load generator at `rate` orders/s until stopped (or until the epoch time `until`), in runs of
    `segment_s`: a run that fails (MariaDB gone) is counted and retried after a second; each new run
    resumes from MariaDB's state (and so pays for reading the open orders again). `counts` sums
    LOAD_COUNTS over the runs."""

    def __init__(self, mysql, rate: float, *, segment_s: float = 5.0, until: float | None = None):
        super().__init__(daemon=True)
        self.mysql, self.rate, self.segment_s, self.until = mysql, rate, segment_s, until
        self.stop_event = threading.Event()
        self.counts = dict.fromkeys(LOAD_COUNTS, 0)
        self.seconds = 0.0
        self.errors: list[str] = []

    @property
    def orders(self) -> int:
        return self.counts["orders_created"]

    def run(self) -> None:
        from lakehouse.dev.loadgen import LoadGenerator

        seed = int(time.time())
        while not self.stop_event.is_set():
            seconds = self.segment_s if self.until is None else min(self.segment_s, self.until - time.time())
            if seconds <= 0:
                return
            seed += 1
            generator = None
            started = time.monotonic()
            try:
                generator = LoadGenerator(self.mysql, rate=self.rate, seed=seed)
                generator.run(duration_s=seconds)
            except Exception as exc:  # MariaDB down: count it, try again
                # (orders of the failed run's last, uncommitted tick may be counted; MariaDB is the truth)
                if not self.errors or self.errors[-1] != type(exc).__name__:
                    say(f"load: {type(exc).__name__}: {str(exc)[:160]} (retrying every second)")
                self.errors.append(type(exc).__name__)
                self.stop_event.wait(1.0)
            finally:
                if generator is not None:
                    for name in LOAD_COUNTS:
                        self.counts[name] += getattr(generator.stats, name, 0) or 0
                    self.seconds += time.monotonic() - started

    def stop(self) -> None:
        self.stop_event.set()
        self.join(self.segment_s + 60)

    def describe(self) -> str:
        rate = self.orders / self.seconds if self.seconds else 0.0
        failed = f", {len(self.errors)} failed load runs" if self.errors else ""
        return f"{rate:.0f} orders/s ({self.orders} orders{failed})"


def check_correct(reg, *, mysql, paimon, timeout: float, ods: bool = True) -> dict:
    """After the load stopped: every ODS table equals its MariaDB table (lakehouse.dev.reconcile; row by row,
    both sides read whole: `ods=False` leaves it out) and every DWS grain the metrics computed from MariaDB
    (lakehouse.dev.truth), each polled up to `timeout` s."""
    from lakehouse.core.polling import WaitTimeout, wait_until
    from lakehouse.dev.reconcile import wait_until_equal
    from lakehouse.dev.truth import DWS_GRAINS, compare_dws

    started = time.time()
    ods = wait_until_equal(reg.mirrored_tables(), mysql=mysql, paimon=paimon, timeout=timeout) if ods else None
    ods_s = time.time() - started
    dws = []

    def dws_equal() -> bool:
        dws[:] = [compare_dws(t, mysql=mysql, paimon=paimon) for t in DWS_GRAINS]
        return all(d.equal for d in dws)

    try:
        wait_until(dws_equal, timeout=timeout, interval=2, what="DWS = MariaDB")
    except WaitTimeout:
        pass
    dws_s = time.time() - started
    out = {
        "ods_equal": all(d.equal for d in ods) if ods is not None else None,
        "dws_equal": all(d.equal for d in dws),
        "ods_equal_after_s": round(ods_s, 1),
        "dws_equal_after_s": round(dws_s, 1),
        "dws_grains": {d.table: {"equal": d.equal, "groups": d.truth_groups} for d in dws},
        "mismatches": [d.summary() for d in (*(ods or []), *dws) if not d.equal],
    }
    ods_said = "not checked" if ods is None else "yes" if out["ods_equal"] else "NO"
    say(
        f"ODS = MariaDB: {ods_said} ({ods_s:.0f} s after the load stopped); "
        f"DWS = MariaDB: {'yes' if out['dws_equal'] else 'NO'} ({dws_s:.0f} s)"
    )
    for m in out["mismatches"]:
        say(f"MISMATCH {m[:400]}")
    return out
