"""Soak: the whole system with the scheduler live, under steady load, for an hour (issue 13, item 8).

Run on the real local stack after `make demo` (MariaDB seeded, the streaming jobs running, the four Airflow
services up with their DAGs on their schedules). The benchmark writes load into MariaDB's delivery
database as the demo does and only reads everything else: it never deploys, supervises or restarts.

  load        the load generator (lakehouse.dev.loadgen, orders with status changes, subsidies and
              subsidy deletes) at --rate orders/s for --duration-min minutes, in a process of its own
              (so the measuring below does not take its interpreter lock) with bench/_common.Load.
  freshness   every --sample-every s, every registered table's lag behind its source or inputs
              (lakehouse.quality.freshness.table_freshness, what the table_freshness DAG checks)
              against its freshness_sla. A table whose one measurement takes longer than
              --sample-every x --sample-budget s (the ODS mirrors read their whole day to find their
              newest change) is measured every (its measurement time / --sample-budget) s instead, so
              the sampling itself stays a small share of the machine; the counts say how often. The
              table_freshness DAG's own checks during the load count as samples too (the lag in their
              Asset events; a failed check is a miss).
  DWS delay   per order, from its insert in MariaDB to the commit of the dws.dws_city_daily snapshot
              that first counts it (bench/freshness.CountProbe, today's partition: do not cross UTC midnight).
  CPU         every --cpu-every s, every process's CPU time (psutil; a process's reaped children count
              with it, so short task processes are not missed), by role: control plane = this stack's
              Airflow services with their workers and tasks (the sessions of $AIRFLOW_HOME/run/*.pid)
              and its Postgres; data plane = this stack's Flink JobManager, TaskManager and SQL Gateway,
              and MariaDB; load = the load process; bench = this process (sampling and probes); other =
              everything else, the kernel included (machine busy time less the roles).
  scheduler   the heartbeats of the scheduler, dag-processor and triggerer (GET /api/v2/monitor/health
              every 2 s). A service heartbeats at the end of a loop once 5 s have passed since the last,
              so a gap between heartbeats is 5 s plus the rest of the loop running then (plus an idle sleep
              of at most 1 s): a gap of 6 + x s means a loop longer than x s. (The exact loop time is a
              statsd metric, scheduler.scheduler_loop_duration, which the stack does not emit.) DAG parsing: each file's parse time as the dag-processor
              prints it every 30 s ("DAG File Processing Stats" in its log).
  at the end  every DWS grain (with --check-ods every ODS table too) against MariaDB (bench/_common.check_correct);
              snapshots per table against the maintenance policy (retain_max plus an expiry period's
              commits), data files per bucket against the writer's bound (Paimon's sorted-run stop trigger);
              the task instances of every DAG run that started during the load, by final state (REST API),
              after waiting up to --runs-timeout s for those runs to end.

    source scripts/env.sh && .venv/bin/python bench/soak.py --rate 300 --duration-min 60

Prints a progress line every minute and a Markdown summary (docs/BENCHMARKS.md, "Soak"); writes JSON to
bench/results/soak-<time>.json (--out) and the chart to docs/images/soak-freshness.png (--chart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from _common import Load, check_correct, save_results, say  # bench/ is on sys.path when a bench runs
from _soak import (
    FINAL_STATES,
    ROLES,
    TARGET_CONTROL_SHARE,
    TARGET_WITHIN_SLA,
    CpuAccount,
    Proc,
    StackIds,
    busy_idle,
    classify,
    dag_check_samples,
    distribution,
    epoch,
    expiry_period_s,
    files_per_bucket,
    heartbeat_gaps,
    interval_shares,
    no_worse,
    parse_processing_stats,
    pct,
    snapshot_bound,
    tally_states,
    within_sla,
    writer_file_bound,
)

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "docs" / "images" / "soak-freshness.png"


def scan_processes(ids: StackIds) -> list[Proc]:
    import psutil

    rows = []
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "create_time", "cpu_times"]):
        info = p.info
        if info["cpu_times"] is None or info["create_time"] is None:
            continue
        t = info["cpu_times"]
        try:
            sid = os.getsid(info["pid"])
        except OSError:
            sid = None
        rows.append((info["pid"], info["ppid"] or 0, info["create_time"], info["cmdline"] or [], sid, t))
    parent = {pid: ppid for pid, ppid, *_ in rows}
    procs = []
    for pid, ppid, created, args, sid, t in rows:
        ancestors, up = [], ppid
        while up and up not in ancestors and len(ancestors) < 64:
            ancestors.append(up)
            up = parent.get(up, 0)
        component = classify(args, pid=pid, sid=sid, ancestors=tuple(ancestors), ids=ids)
        cpu = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        procs.append(Proc(pid, ppid, created, component, cpu))
    return procs


def machine_busy_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


# ------------------------------------------------------------------------------ Airflow REST API
class AirflowApi:
    """The stack's api-server (scripts/env.sh: AIRFLOW_API_SERVER_*, AIRFLOW_ADMIN_*), logged in."""

    def __init__(self):
        import httpx

        from lakehouse.dev.demo import AirflowUi

        self.ui = AirflowUi.from_env()
        self.client = httpx.Client(timeout=30)
        self.login()

    def login(self) -> None:
        r = self.client.post(f"{self.ui.url}/auth/token", json={"username": self.ui.user, "password": self.ui.password})
        r.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        r = self.client.get(f"{self.ui.url}{path}", params=params)
        if r.status_code == 401:  # token expired
            self.login()
            r = self.client.get(f"{self.ui.url}{path}", params=params)
        r.raise_for_status()
        return r.json()

    def pages(self, path: str, key: str, **params) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.get(path, limit=100, offset=offset, **params)
            out += page[key]
            offset += len(page[key])
            if not page[key] or offset >= page.get("total_entries", 0):
                return out

    def health(self) -> dict:
        return self.get("/api/v2/monitor/health")

    def runs_started(self, start: datetime, end: datetime) -> list[dict]:
        return self.pages(
            "/api/v2/dags/~/dagRuns",
            "dag_runs",
            start_date_gte=start.isoformat(),
            start_date_lte=end.isoformat(),
            order_by="start_date",
        )

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")

    def freshness_events(self, start: datetime) -> list[dict]:
        """The Asset events the table_freshness DAG's passing checks emitted since `start` (extra: lag_s)."""
        return self.pages(
            "/api/v2/assets/events", "asset_events", source_dag_id="table_freshness", timestamp_gte=start.isoformat()
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.pages(
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances", "task_instances"
        )


# ------------------------------------------------------------------------------ the samplers
def load_process(rate: float, until: float, stop, results) -> None:
    """The load generator in a process of its own (bench/_common.Load, in runs of a minute) until the epoch
    time `until` or until `stop` is set; its counts on `results`."""
    from lakehouse.core.resources import resources
    from lakehouse.dev.demo import quiet_logging

    quiet_logging()
    load = Load(resources().mysql_source, rate, segment_s=60, until=until)
    load.start()
    while load.is_alive() and not stop.wait(1.0):
        pass
    load.stop()
    results.put({"counts": load.counts, "seconds": load.seconds, "failed_runs": len(load.errors)})


class Monitor:
    """A thread that scans the processes' CPU every `cpu_every` s and the services' heartbeats every 2 s."""

    def __init__(self, ids: StackIds, api: AirflowApi, cpu_every: float):
        import threading

        self.ids, self.api, self.cpu_every = ids, api, cpu_every
        self.account = CpuAccount()
        self.cores = os.cpu_count() or 1
        self.intervals: list[dict] = []
        self.heartbeats: dict[str, list[tuple[float, float | None]]] = {
            "scheduler": [],
            "dag_processor": [],
            "triggerer": [],
        }
        self.errors: Counter = Counter()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-monitor", daemon=True)

    def start(self) -> Monitor:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(60)

    def _scan(self, last: tuple[float, float] | None) -> tuple[float, float]:
        now, busy = time.time(), machine_busy_s()
        components = self.account.update(scan_processes(self.ids))
        if last is not None:
            interval = {
                "start": last[0],
                "end": now,
                "seconds": now - last[0],
                "cores": self.cores,
                "busy_s": busy - last[1],
                "components": components,
            }
            interval["shares"] = interval_shares(interval)
            self.intervals.append(interval)
        return now, busy

    def _heartbeat(self) -> None:
        now = time.time()
        try:
            health = self.api.health()
        except Exception as exc:
            self.errors[f"health: {type(exc).__name__}"] += 1
            for k in self.heartbeats:
                self.heartbeats[k].append((now, None))
            return
        for k in self.heartbeats:
            self.heartbeats[k].append((now, epoch((health.get(k) or {}).get(f"latest_{k}_heartbeat"))))

    def _run(self) -> None:
        last, next_cpu = None, 0.0
        while not self.stop_event.is_set():
            if time.time() >= next_cpu:
                next_cpu = time.time() + self.cpu_every
                try:
                    last = self._scan(last)
                except Exception as exc:
                    self.errors[f"cpu: {type(exc).__name__}"] += 1
            self._heartbeat()
            self.stop_event.wait(2.0)

    def shares_since(self, t0: float) -> dict[str, float]:
        """Each role's mean share of the machine over the intervals since t0."""
        recent = [i for i in self.intervals if i["start"] >= t0]
        if not recent:
            return {}
        seconds = sum(i["seconds"] for i in recent)
        keys = (*ROLES, "machine")
        return {k: sum(i["shares"][k] * i["seconds"] for i in recent) / seconds for k in keys}


class FreshnessSampler:
    """table_freshness of every registered table, each every `every` s or, when its measurement takes
    longer than every x budget s, every (measurement time / budget) s. A round measures the due tables
    quickest first and ends after one slow measurement, so the quick ones keep their interval."""

    def __init__(self, paimon, mysql, reg, *, every: float, budget: float, start: float):
        self.paimon, self.mysql, self.reg = paimon, mysql, reg
        self.every, self.budget, self.start = every, budget, start
        self.next_due = dict.fromkeys(reg.tables, 0.0)
        self.took = dict.fromkeys(reg.tables, 0.0)
        self.samples: list[dict] = []

    def due_in(self) -> float:
        return max(0.0, min(self.next_due.values()) - time.time())

    def round(self, until: float) -> None:
        """Measure the tables that are due, none after the epoch time `until`."""
        from lakehouse.quality.freshness import table_freshness

        due = [n for n in self.reg.tables if time.time() >= self.next_due[n]]
        # quickest first; before their first measurement, the ODS tables last (the mirrors read their whole day)
        due.sort(key=lambda n: (self.took[n], self.reg.table(n).layer == "ods"))
        for name in due:
            spec = self.reg.table(name)
            if time.time() >= until:
                return
            t0 = time.time()
            sample = {"t": round(t0 - self.start, 1), "table": name, "layer": spec.layer, "sla_s": spec.freshness_sla_s}
            try:
                f = table_freshness(self.paimon, spec, mysql=self.mysql, reg=self.reg, now=t0)
                sample.update(lag_s=f.lag_s, measure=f.measure)
                if f.lag_s is None:
                    sample["error"] = f.detail[:300]
            except Exception as exc:
                sample.update(lag_s=None, measure=None, error=f"{type(exc).__name__}: {str(exc)[:300]}")
            took = time.time() - t0
            sample["took_s"] = round(took, 2)
            self.samples.append(sample)
            self.took[name] = took
            self.next_due[name] = t0 + max(self.every, took / self.budget)
            if took > self.every * self.budget:
                return

    def latest(self) -> dict[str, dict]:
        out = {}
        for s in self.samples:
            out[s["table"]] = s
        return out


# ------------------------------------------------------------------------------ the run
class Soak:
    def __init__(self, args):
        from lakehouse.core.registry import registry
        from lakehouse.core.resources import resources

        self.args = args
        self.reg = registry()
        r = resources()
        self.flink, self.paimon, self.mysql = r.flink, r.paimon, r.mysql_source
        self.api = AirflowApi()
        self.results: dict = {
            "rate": args.rate,
            "duration_min": args.duration_min,
            "sample_every_s": args.sample_every,
            "sample_budget": args.sample_budget,
            "cpu_every_s": args.cpu_every,
            "cores": os.cpu_count(),
            "sources": {
                "scheduler_loop": "heartbeat gaps of GET /api/v2/monitor/health every 2 s (5 s + at most one "
                "loop); Airflow's scheduler.scheduler_loop_duration is a statsd metric the stack does not emit",
                "dag_parsing": "per-file 'Last Duration' of the dag-processor's DAG File Processing Stats (its log)",
                "cpu": "psutil process CPU times (children reaped included) by role",
                "freshness": "lakehouse.quality.freshness.table_freshness (the table_freshness DAG's measure)",
                "dws_delay": "bench/freshness.CountProbe on dws.dws_city_daily (insert -> first counted)",
            },
        }

    # -------------------------------------------------------------- before
    def preflight(self) -> list[str]:
        problems = []
        missing = [name for name in self.reg.jobs if not self.flink.active_jobs_named(name)]
        if missing:
            problems.append(f"streaming jobs not running: {', '.join(missing)} (make demo deploys them)")
        try:
            health = self.api.health()
            sick = [k for k, v in health.items() if (v or {}).get("status") != "healthy"]
            if sick:
                problems.append(f"Airflow not healthy: {', '.join(sick)} (make status; docs/AIRFLOW.md)")
        except Exception as exc:
            problems.append(f"Airflow API at {self.api.ui.url}: {type(exc).__name__}: {exc}")
        return problems

    def measure_tables(self) -> dict[str, dict]:
        from lakehouse.maintenance.metrics import measure

        out = {}
        for name in self.reg.tables:
            try:
                m = measure(self.paimon, name)
                spec = self.reg.table(name)
                files = [(f.partition, f.bucket) for f in self.paimon.data_files(name)]
                today, closed = files_per_bucket(files, spec.partition, time.strftime("%Y-%m-%d", time.gmtime()))
                options = self.paimon.get_table(name).options.options.to_map()
                out[name] = {
                    "files_per_bucket_today": today,
                    "files_per_bucket_closed": closed,
                    "writer_file_bound": writer_file_bound(options, bool(spec.primary_key)),
                    "snapshot_id": m.snapshot_id,
                    "snapshots": m.snapshots,
                    "data_files": m.data_files,
                    "small_files": m.small_files,
                    "bytes": m.total_bytes,
                    "buckets": m.buckets,
                    "files_per_partition": m.files_per_partition,
                }
            except Exception as exc:
                out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return out

    # -------------------------------------------------------------- during
    def run(self) -> int:
        import multiprocessing

        from freshness import CountProbe

        args = self.args
        problems = self.preflight()
        if problems:
            for p in problems:
                say(f"not ready: {p}")
            return 2
        duration = args.duration_min * 60
        if datetime.fromtimestamp(time.time() + duration + 600, UTC).date() != datetime.now(UTC).date():
            say("WARNING: the run crosses UTC midnight; the DWS delay probe counts today's partition only")
        log_path = (
            Path(os.environ.get("STACK_LOGS", f"{os.environ['LAKEHOUSE_HOME']}/logs")) / "airflow-dag-processor.log"
        )
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        say("measuring every table's snapshots and data files ...")
        before = self.measure_tables()
        start_key = self.mysql.get_first("SELECT COALESCE(MAX(order_id), 0) FROM orders")[0]
        dt = time.strftime("%Y-%m-%d", time.gmtime())
        probe = CountProbe(self.paimon, self.mysql, table="dws.dws_city_daily", dt=dt, start_key=start_key)

        ctx = multiprocessing.get_context("spawn")
        stop, counts = ctx.Event(), ctx.Queue()
        start = time.time()
        loader = ctx.Process(
            target=load_process, args=(args.rate, start + duration, stop, counts), name="soak-load", daemon=True
        )
        loader.start()
        monitor = Monitor(StackIds.discover(load_pid=loader.pid), self.api, args.cpu_every).start()
        probe.start()
        sampler = FreshnessSampler(
            self.paimon, self.mysql, self.reg, every=args.sample_every, budget=args.sample_budget, start=start
        )
        say(
            f"soak: {args.rate:.0f} orders/s for {args.duration_min:g} min (load pid {loader.pid}); freshness every "
            f"{args.sample_every:g} s, CPU every {args.cpu_every:g} s; progress every minute"
        )
        next_progress, last_key, last_t = start + 60, start_key, start
        try:
            while time.time() - start < duration:
                if not loader.is_alive() and time.time() < start + duration - 5:
                    say(f"the load process ended early (exit {loader.exitcode})")
                    break
                sampler.round(until=start + duration)
                if time.time() >= next_progress:
                    next_progress += 60
                    try:
                        key = self.mysql.get_first("SELECT COALESCE(MAX(order_id), 0) FROM orders")[0]
                        rate = (key - last_key) / (time.time() - last_t)
                        last_key, last_t = key, time.time()
                        self.progress(start, sampler, monitor, probe, rate, key - start_key)
                    except Exception as exc:  # a progress line is not worth the run
                        say(f"progress: {type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(min(max(0.0, start + duration - time.time()), sampler.due_in(), 1.0))
        finally:
            stop.set()
            loader.join(120)
            load_end = time.time()
            monitor.stop()
        load = counts.get(timeout=10) if not counts.empty() else {"counts": {}, "seconds": 0, "failed_runs": None}
        say(f"load stopped after {(load_end - start) / 60:.1f} min: {load['counts']}")
        self.results["window"] = {
            "start": datetime.fromtimestamp(start, UTC),
            "load_end": datetime.fromtimestamp(load_end, UTC),
        }
        self.results["load"] = {
            **load,
            "achieved_rate": (load["counts"].get("orders_created", 0) / load["seconds"]) if load["seconds"] else 0.0,
            "orders_in_mariadb": self.mysql.get_first("SELECT COALESCE(MAX(order_id), 0) FROM orders")[0] - start_key,
        }

        # -------------------------------------------------------------- after
        # Whatever the steps below collect is saved, even when one of them fails.
        self.results["freshness_samples"] = [{**s, "source": "soak"} for s in sampler.samples]
        try:
            say(
                f"checking {'ODS and ' if args.check_ods else ''}DWS against MariaDB (up to {args.check_timeout:.0f} s) ..."
            )
            self.results["correctness"] = check_correct(
                self.reg, mysql=self.mysql, paimon=self.paimon, timeout=args.check_timeout, ods=args.check_ods
            )
            probe.stop_event.set()
            probe.join(60)
            self.results["dws_delay_probe_error"] = repr(probe.error) if probe.error else None
            self.results["dws_delay"] = self.dws_delay(probe.samples, start)
            self.results["cpu"] = self.cpu(monitor, sampler.samples, probe.samples, start)
            self.results["heartbeats"] = {k: distribution(heartbeat_gaps(v)) for k, v in monitor.heartbeats.items()}
            self.results["monitor_errors"] = dict(monitor.errors)
            self.results["dag_parsing"] = self.dag_parsing(log_path, log_offset, start)
            say("measuring every table's snapshots and data files again ...")
            self.results["tables"] = self.table_growth(before, self.measure_tables(), load_end - start)
            self.results["task_instances"], tis = self.task_instances(start, load_end)
            tables = {name: (spec.layer, spec.freshness_sla_s) for name, spec in self.reg.tables.items()}
            events = self.api.freshness_events(datetime.fromtimestamp(start, UTC))
            self.results["freshness_dag_checks"] = dag_check_samples(tis, events, tables, start)
            both = sampler.samples + self.results["freshness_dag_checks"]
            self.results["freshness"] = {
                name: {
                    **within_sla([s for s in both if s["table"] == name], sla),
                    "soak_samples": sum(1 for s in sampler.samples if s["table"] == name),
                }
                for name, (_layer, sla) in tables.items()
            }
            summary = markdown(self.results)
            print()
            print(summary)
            print()
            self.results["summary_markdown"] = summary
            self.results["verdicts"] = verdicts(self.results)
        finally:
            save_results("soak", self.results, args.out)
        chart(self.results, args.chart)
        return 0 if self.results["verdicts"]["all"] else 1

    def progress(self, start, sampler, monitor, probe, rate, orders) -> None:
        latest = sampler.latest()
        lags = defaultdict(list)
        for s in latest.values():
            if s["lag_s"] is not None:
                lags[s["layer"]].append(s["lag_s"])
        ok = [s for s in sampler.samples if s["sla_s"] is not None]
        within = sum(1 for s in ok if s["lag_s"] is not None and s["lag_s"] <= s["sla_s"]) / len(ok) if ok else 1.0
        recent = [d for c, d in probe.samples[-20000:] if c >= time.time() - 120]
        shares = monitor.shares_since(time.time() - 60)
        cpu = (
            " ".join(f"{k.split('_')[0]} {shares[k]:.0%}" for k in ("control_plane", "data_plane", "load", "bench"))
            if shares
            else "-"
        )
        lag = " ".join(f"{layer.upper()} {max(v):.0f}s" for layer, v in sorted(lags.items()))
        delay = f"{pct(recent, 50):.0f}/{pct(recent, 99):.0f}s" if recent else "-"
        say(
            f"{(time.time() - start) / 60:4.1f} min: {rate:.0f} orders/s ({orders} since start); max lag {lag}; "
            f"within SLA {within:.1%} of {len(ok)}; DWS delay p50/p99 {delay}; CPU {cpu} "
            f"(machine {shares.get('machine', 0):.0%})"
        )

    # -------------------------------------------------------------- summaries
    def table_growth(self, before: dict, after: dict, seconds: float) -> dict:
        from lakehouse.maintenance.policy import load_policies

        policies = load_policies(reg=self.reg)
        out = {}
        for name in self.reg.tables:
            b, a, policy = before.get(name, {}), after.get(name, {}), policies[name]
            row = {"start": b, "end": a}
            if "error" not in a and "error" not in b and a.get("snapshot_id") is not None:
                commits = (a["snapshot_id"] or 0) - (b.get("snapshot_id") or 0)
                row["commits"] = commits
                row["snapshot_bound"] = snapshot_bound(
                    policy.retain_max, commits, seconds, expiry_period_s(policy.snapshots_schedule)
                )
                row["snapshots_bounded"] = a["snapshots"] <= row["snapshot_bound"]
                # Files per bucket, in any partition: what the writer keeps (primary-key tables: its sorted-run
                # stop trigger; late changes reach closed days too); the closed-partitions compaction brings a
                # closed day back to one file per bucket once an hour (files_per_bucket_closed shows where it stands).
                bound = a["writer_file_bound"]
                most = max(a["files_per_bucket_today"], a["files_per_bucket_closed"])
                row["files_bounded"] = bound is None or most <= bound
                row["bounded"] = row["snapshots_bounded"] and row["files_bounded"]
            out[name] = row
        return out

    def dws_delay(self, samples: list[tuple[float, float]], start: float) -> dict:
        per_minute = defaultdict(list)
        for created, delay in samples:
            per_minute[int((created + delay - start) // 60)].append(delay)
        return {
            "overall": distribution([d for _, d in samples]),
            "per_minute": [
                {"minute": m, "n": len(v), "p50": pct(v, 50), "p99": pct(v, 99), "max": max(v)}
                for m, v in sorted(per_minute.items())
            ],
        }

    def cpu(self, monitor: Monitor, fresh: list[dict], delays: list[tuple[float, float]], start: float) -> dict:
        intervals = [
            {"start": i["start"], "end": i["end"], "control": i["shares"]["control_plane"]} for i in monitor.intervals
        ]
        seconds = sum(i["seconds"] for i in monitor.intervals)
        mean = {
            k: (sum(i["shares"][k] * i["seconds"] for i in monitor.intervals) / seconds if seconds else None)
            for k in (*ROLES, "machine")
        }
        components = Counter()
        for i in monitor.intervals:
            components.update(i["components"])
        dws_lag = [
            (start + s["t"] - self.args.sample_every, start + s["t"], s["lag_s"])
            for s in fresh
            if s["layer"] == "dws" and s["lag_s"] is not None
        ]
        return {
            "mean_share": mean,
            "control_plane_p95_share": pct([i["control"] for i in intervals], 95),
            "cpu_seconds_by_component": dict(components),
            "intervals": [
                {"t": round(i["start"] - start, 1), "seconds": round(i["seconds"], 2), **i["shares"]}
                for i in monitor.intervals
            ],
            "dws_delay_busy_idle": busy_idle([(c, c + d, d) for c, d in delays], intervals),
            "dws_lag_busy_idle": busy_idle(dws_lag, intervals),
        }

    def dag_parsing(self, log_path: Path, offset: int, start: float) -> dict:
        try:
            with open(log_path, errors="replace") as f:
                f.seek(offset)
                text = f.read()
        except OSError as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        parses = [(f, d) for f, d, at in parse_processing_stats(text) if at.timestamp() >= start - 1]
        per_file = defaultdict(list)
        for f, d in parses:
            per_file[f].append(d)
        return {
            "source": str(log_path),
            "all": distribution([d for _, d in parses]),
            "per_file": {f: distribution(v) for f, v in sorted(per_file.items())},
        }

    def task_instances(self, start: float, load_end: float) -> tuple[dict, list[dict]]:
        window = (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(load_end, UTC))
        runs = self.api.runs_started(*window)
        say(
            f"{len(runs)} DAG runs started during the load; waiting up to {self.args.runs_timeout:.0f} s for them to end ..."
        )
        deadline = time.time() + self.args.runs_timeout
        pending = [r for r in runs if r["state"] not in ("success", "failed")]
        while pending and time.time() < deadline:
            time.sleep(10)
            pending = [
                r for r in pending if self.api.run(r["dag_id"], r["dag_run_id"])["state"] not in ("success", "failed")
            ]
        from lakehouse.dev.demo import log_error, task_log_path

        home = os.environ.get("AIRFLOW_HOME", f"{os.environ['LAKEHOUSE_HOME']}/airflow")
        by_dag: dict[str, Counter] = defaultdict(Counter)
        all_tis, failures, waits = [], [], []
        run_states = Counter()
        for r in runs:
            state = self.api.run(r["dag_id"], r["dag_run_id"])["state"]
            run_states[state] += 1
            tis = self.api.task_instances(r["dag_id"], r["dag_run_id"])
            all_tis += tis
            by_dag[r["dag_id"]].update(tally_states(tis))
            for ti in tis:
                scheduled, began = epoch(ti.get("scheduled_when")), epoch(ti.get("start_date"))
                if scheduled and began:
                    waits.append(began - scheduled)
                if ti.get("state") in ("failed", "upstream_failed") or ti.get("state") not in FINAL_STATES:
                    path = task_log_path(home, ti)
                    failures.append(
                        {
                            "dag_id": ti["dag_id"],
                            "run_id": ti["dag_run_id"],
                            "task_id": ti["task_id"],
                            "map_index": ti.get("map_index"),
                            "state": ti.get("state"),
                            "try_number": ti.get("try_number"),
                            "error": log_error(path) if ti.get("state") == "failed" else None,
                            "log": str(path),
                        }
                    )
        retried = sum(1 for ti in all_tis if (ti.get("try_number") or 0) > 1)
        return {
            "runs": len(runs),
            "run_states": dict(run_states),
            "by_state": tally_states(all_tis),
            "by_dag": {d: dict(c) for d, c in sorted(by_dag.items())},
            "retried": retried,
            "failed_or_unfinished": failures,
            "scheduled_to_start_s": distribution(waits),
        }, all_tis


# ------------------------------------------------------------------------------ report
def verdicts(r: dict) -> dict:
    fresh = [v["within_sla"] for v in r["freshness"].values() if v["within_sla"] is not None]
    ti = r["task_instances"]["by_state"]
    tables = [t for t in r["tables"].values() if "snapshots_bounded" in t]
    cpu = r["cpu"]
    out = {
        "no_failed_tasks": not ti.get("failed") and not ti.get("upstream_failed") and not ti.get("unfinished"),
        "within_sla_99": bool(fresh) and min(fresh) >= TARGET_WITHIN_SLA,
        "dws_equal": bool(r["correctness"]["dws_equal"]),
        "tables_bounded": bool(tables) and all(t["bounded"] for t in tables),
        "control_under_quarter": (cpu["mean_share"]["control_plane"] or 0) < TARGET_CONTROL_SHARE,
        "dws_no_worse_busy": no_worse(cpu["dws_delay_busy_idle"]) is not False,
    }
    out["all"] = all(out.values())
    return out


def _s(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _yes(value) -> str:
    return "-" if value is None else ("yes" if value else "**NO**")


def markdown(r: dict) -> str:
    v = verdicts(r)
    load = r["load"]
    c = load["counts"]
    ti = r["task_instances"]
    cpu = r["cpu"]
    share = cpu["mean_share"]
    hb = r["heartbeats"]
    parse = r["dag_parsing"].get("all", {})
    delay = r["dws_delay"]["overall"]
    split = cpu["dws_delay_busy_idle"]
    lag_split = cpu["dws_lag_busy_idle"]
    fresh = r["freshness"]
    worst = min((x["within_sla"] for x in fresh.values() if x["within_sla"] is not None), default=None)
    lines = [
        f"Load: {load['achieved_rate']:.0f} orders/s for {r['duration_min']:g} min: {c.get('orders_created', 0):,} orders, "
        f"{c.get('status_updates', 0):,} status changes, {c.get('subsidies_created', 0):,} subsidies, "
        f"{c.get('subsidies_deleted', 0):,} subsidy deletes ({load.get('failed_runs') or 0} failed load runs).",
        "",
        "| measure | target | result | met |",
        "|---|---|---|---|",
        f"| task instances of the {ti['runs']} DAG runs started during the load, by final state | 0 failed | "
        f"{', '.join(f'{k} {n}' for k, n in ti['by_state'].items()) or 'none'}; {ti['retried']} retried | {_yes(v['no_failed_tasks'])} |",
        f"| freshness samples within the table's SLA, the soak's and the table_freshness DAG's checks (worst table) | ≥ 99 % | {_s(worst * 100 if worst is not None else None)} % | "
        f"{_yes(v['within_sla_99'])} |",
        f"| DWS grains = MariaDB at the end | all 4 | "
        f"{sum(1 for g in r['correctness'].get('dws_grains', {}).values() if g['equal'])} of "
        f"{len(r['correctness'].get('dws_grains', {}))} ({r['correctness']['dws_equal_after_s']:.0f} s after the load); "
        f"ODS = MariaDB: {_yes(r['correctness']['ods_equal']) if r['correctness']['ods_equal'] is not None else 'not checked'} | {_yes(v['dws_equal'])} |",
        f"| snapshots within the policy bound, files per bucket within the writer's (every table) | all | "
        f"{sum(1 for t in r['tables'].values() if t.get('bounded'))} of "
        f"{len(r['tables'])} | {_yes(v['tables_bounded'])} |",
        f"| control plane CPU, mean share of the machine ({r['cores']} cores) | < 25 % | {_s(share['control_plane'] * 100)} % "
        f"(p95 of {r['cpu_every_s']:g}-s intervals {_s((cpu['control_plane_p95_share'] or 0) * 100)} %) | {_yes(v['control_under_quarter'])} |",
        f"| DWS delay while the control plane is busy vs idle (p50 / p95) | no worse | busy {_s(split['busy'].get('p50'))} / "
        f"{_s(split['busy'].get('p95'))} s, idle {_s(split['idle'].get('p50'))} / {_s(split['idle'].get('p95'))} s | "
        f"{_yes(no_worse(split))} |",
        "",
        "| other figures | |",
        "|---|---|",
        f"| DWS delay per order, insert -> counted in dws_city_daily | p50 {_s(delay.get('p50'))} s, p99 {_s(delay.get('p99'))} s, "
        f"max {_s(delay.get('max'))} s ({delay.get('n', 0):,} orders) |",
        f"| DWS lag (table_freshness) busy vs idle, p95 | busy {_s(lag_split['busy'].get('p95'))} s, idle {_s(lag_split['idle'].get('p95'))} s |",
        f"| CPU, mean share of the machine | control plane {_s(share['control_plane'] * 100)} %, data plane "
        f"{_s(share['data_plane'] * 100)} %, load {_s(share['load'] * 100)} %, bench {_s(share['bench'] * 100)} %, "
        f"other {_s(share['other'] * 100)} %; machine busy {_s(share['machine'] * 100)} % |",
        f"| scheduler heartbeat gap (5 s + the rest of the loop running then, + ≤ 1 s idle sleep) | p50 {_s(hb['scheduler'].get('p50'))} s, p95 "
        f"{_s(hb['scheduler'].get('p95'))} s, max {_s(hb['scheduler'].get('max'))} s ({hb['scheduler'].get('n', 0)} gaps) |",
        f"| dag-processor heartbeat gap | p50 {_s(hb['dag_processor'].get('p50'))} s, max {_s(hb['dag_processor'].get('max'))} s |",
        f"| DAG file parse time (dag-processor stats) | p50 {_s(parse.get('p50'), 2)} s, p95 {_s(parse.get('p95'), 2)} s, "
        f"max {_s(parse.get('max'), 2)} s ({parse.get('n', 0)} parses) |",
        f"| task instance scheduled -> started | p50 {_s(ti['scheduled_to_start_s'].get('p50'))} s, p95 "
        f"{_s(ti['scheduled_to_start_s'].get('p95'))} s, max {_s(ti['scheduled_to_start_s'].get('max'))} s |",
        "",
        "| table | SLA s | samples (soak + DAG checks) | within SLA | lag p50 / p99 / max s | measure s (mean) | snapshots start → end (bound) | data files start → end | files/bucket today, closed (writer bound) | bounded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in fresh.items():
        t = r["tables"].get(name, {})
        took = [s["took_s"] for s in r["freshness_samples"] if s["table"] == name]
        start, end = t.get("start", {}), t.get("end", {})
        share_txt = "-" if f["within_sla"] is None else f"{f['within_sla']:.1%}"
        lines.append(
            f"| {name} | {_s(f['sla_s'], 0)} | {f['soak_samples']} + {f['samples'] - f['soak_samples']} | {share_txt} | {_s(f.get('p50'))} / {_s(f.get('p99'))} / "
            f"{_s(f.get('max'))} | {_s(statistics.fmean(took) if took else None, 2)} | {start.get('snapshots', '-')} → "
            f"{end.get('snapshots', '-')} ({t.get('snapshot_bound', '-')}) | {start.get('data_files', '-')} → "
            f"{end.get('data_files', '-')} | {end.get('files_per_bucket_today', '-')}, {end.get('files_per_bucket_closed', '-')} "
            f"(≤ {end.get('writer_file_bound') or '-'}) | {_yes(t.get('bounded'))} |"
        )
    bad = ti["failed_or_unfinished"]
    if bad:
        lines += ["", "Task instances failed or not finished:"]
        lines += [
            f"- {b['dag_id']}.{b['task_id']} ({b['run_id']}): {b['state']}" + (f": {b['error']}" if b["error"] else "")
            for b in bad[:20]
        ]
    for m in r["correctness"]["mismatches"]:
        lines.append(f"- MISMATCH {m[:300]}")
    return "\n".join(lines)


def chart(r: dict, path: Path) -> None:
    """Per-layer freshness over the run (each table's lag, the SLAs, the DWS delay per order) above the CPU shares."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"ods": "tab:blue", "dwd": "tab:orange", "dws": "tab:green"}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[3, 2])
    by_table = defaultdict(list)
    for s in r["freshness_samples"]:
        if s["lag_s"] is not None:
            by_table[(s["layer"], s["table"])].append((s["t"] / 60, s["lag_s"]))
    labelled = set()
    for (layer, _table), points in sorted(by_table.items()):
        xs, ys = zip(*points, strict=True)
        label = f"{layer.upper()} tables: lag (table_freshness)" if layer not in labelled else None
        labelled.add(layer)
        top.plot(xs, ys, color=colors.get(layer, "grey"), alpha=0.6, lw=1, marker=".", ms=3, label=label)
    slas = {}
    for s in r["freshness_samples"]:
        if s["sla_s"] is not None:
            slas[s["layer"]] = max(slas.get(s["layer"], 0), s["sla_s"])
    dag = [s for s in r.get("freshness_dag_checks", []) if s["lag_s"] is not None]
    for layer in sorted({s["layer"] for s in dag}):
        points = [(s["t"] / 60, s["lag_s"]) for s in dag if s["layer"] == layer]
        top.scatter(*zip(*points, strict=True), marker="x", s=18, color=colors.get(layer, "grey"), label=None)
    if dag:
        top.scatter([], [], marker="x", color="grey", label="table_freshness DAG checks")
    for layer, sla in slas.items():
        top.axhline(sla, color=colors.get(layer, "grey"), ls="--", lw=1, label=f"{layer.upper()} SLA {sla:.0f} s")
    per_minute = r["dws_delay"]["per_minute"]
    if per_minute:
        xs = [m["minute"] + 0.5 for m in per_minute]
        top.plot(xs, [m["p50"] for m in per_minute], color="black", lw=1.5, label="DWS delay per order, p50 per minute")
        top.plot(xs, [m["p99"] for m in per_minute], color="black", lw=1, ls=":", label="DWS delay per order, p99")
    top.set_ylabel("seconds")
    top.set_yscale("symlog", linthresh=10)
    top.set_title(f"Soak: {r['rate']:.0f} orders/s for {r['duration_min']:g} min, the scheduler live")
    top.legend(fontsize=7, loc="upper left", ncol=2)
    top.grid(alpha=0.3)
    iv = r["cpu"]["intervals"]
    if iv:
        xs = [i["t"] / 60 for i in iv]
        for role, color in (
            ("control_plane", "tab:red"),
            ("data_plane", "tab:purple"),
            ("load", "tab:brown"),
            ("bench", "tab:gray"),
            ("other", "tab:olive"),
        ):
            bottom.plot(xs, [i[role] * 100 for i in iv], color=color, lw=1, label=role.replace("_", " "))
        bottom.plot(xs, [i["machine"] * 100 for i in iv], color="black", lw=0.8, ls=":", label="machine busy")
        bottom.axhline(TARGET_CONTROL_SHARE * 100, color="tab:red", ls="--", lw=1, label="control plane target (25 %)")
    bottom.set_ylabel(f"% of the machine ({r['cores']} cores)")
    bottom.set_xlabel("minutes since the load started")
    bottom.legend(fontsize=7, loc="upper left", ncol=3)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"bench: chart in {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="load, orders/s (default 300)")
    parser.add_argument("--duration-min", type=float, default=60, help="minutes of load (default 60)")
    parser.add_argument("--sample-every", type=float, default=30, help="seconds between freshness samples (default 30)")
    parser.add_argument(
        "--sample-budget",
        type=float,
        default=0.05,
        help="largest share of its interval one table's measurement may take before the table is sampled "
        "less often (default 0.05)",
    )
    parser.add_argument("--cpu-every", type=float, default=5, help="seconds between CPU scans (default 5)")
    parser.add_argument("--check-timeout", type=float, default=300, help="longest wait for ODS/DWS = MariaDB, s")
    parser.add_argument(
        "--check-ods",
        action="store_true",
        help="also compare every ODS table with MariaDB row by row at the end (reads both whole: after an hour "
        "at 300/s, millions of rows in memory)",
    )
    parser.add_argument(
        "--runs-timeout", type=float, default=900, help="longest wait for the soak's DAG runs to end, s"
    )
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/soak-<time>.json)")
    parser.add_argument("--chart", type=Path, default=CHART, help=f"chart PNG (default {CHART.relative_to(ROOT)})")
    args = parser.parse_args()
    if args.duration_min <= 0 or args.rate <= 0 or args.sample_every <= 0 or not 0 < args.sample_budget <= 1:
        parser.error("--rate, --duration-min and --sample-every must be positive, --sample-budget in (0, 1]")
    from lakehouse.dev.demo import quiet_logging

    quiet_logging()
    return Soak(args).run()


if __name__ == "__main__":
    raise SystemExit(main())
