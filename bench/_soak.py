"""The pure parts of bench/soak.py: how this stack's processes are told from others' and their CPU time
counted by role, the services' heartbeat gaps, the dag-processor's parse times, and the summaries of
the samples (percentiles, the share within an SLA, task instances by final state, busy against idle,
the bounds the maintenance policy and the writers put on snapshots and files)."""

from __future__ import annotations

import bisect
import math
import os
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import JOBMANAGER_MAIN, SQL_GATEWAY_MAIN, TASKMANAGER_MAIN, is_stack_process

ROLE_OF = {
    "airflow": "control_plane",
    "postgres": "control_plane",
    "flink_jobmanager": "data_plane",
    "flink_taskmanager": "data_plane",
    "sql_gateway": "data_plane",
    "mariadb": "data_plane",
    "load": "load",
    "bench": "bench",
    "other": "other",
}
ROLES = ("control_plane", "data_plane", "load", "bench", "other")
FINAL_STATES = ("success", "failed", "upstream_failed", "skipped", "removed")
HEARTBEAT_S = 5.0  # [scheduler] scheduler_heartbeat_sec / job_heartbeat_sec of the stack (Airflow's default)
TARGET_CONTROL_SHARE = 0.25
TARGET_WITHIN_SLA = 0.99


# ------------------------------------------------------------------------------ CPU by role
@dataclass(frozen=True)
class StackIds:
    """How this stack's processes are told from others' (other Airflow homes, other tests, other stacks)."""

    home: str
    flink_conf: str
    airflow_sessions: frozenset[int]  # the services' session leaders ($AIRFLOW_HOME/run/*.pid, setsid)
    postmaster: int | None  # the stack's Postgres ($POSTGRES_DATA/postmaster.pid); backends are its children
    bench_pid: int
    load_pid: int | None = None

    @classmethod
    def discover(cls, load_pid: int | None = None) -> StackIds:
        home = os.environ["LAKEHOUSE_HOME"]
        run = Path(os.environ.get("AIRFLOW_HOME", f"{home}/airflow")) / "run"
        sessions = set()
        for pid_file in run.glob("*.pid"):
            text = pid_file.read_text().strip()
            if text.isdigit():
                sessions.add(int(text))
        postmaster = None
        try:
            first = (Path(os.environ.get("POSTGRES_DATA", f"{home}/postgres")) / "postmaster.pid").read_text()
            postmaster = int(first.splitlines()[0])
        except (OSError, ValueError, IndexError):
            pass
        return cls(
            home=home,
            flink_conf=os.environ.get("FLINK_CONF_DIR", f"{home}/flink/conf"),
            airflow_sessions=frozenset(sessions),
            postmaster=postmaster,
            bench_pid=os.getpid(),
            load_pid=load_pid,
        )


def classify(args: list[str], *, pid: int, sid: int | None, ancestors: tuple[int, ...], ids: StackIds) -> str:
    """The component a process belongs to (a key of ROLE_OF), from its command line, session and ancestors."""
    if ids.load_pid is not None and (pid == ids.load_pid or ids.load_pid in ancestors):
        return "load"
    if pid == ids.bench_pid or ids.bench_pid in ancestors:
        return "bench"
    if sid is not None and sid in ids.airflow_sessions:
        return "airflow"
    if ids.postmaster is not None and (pid == ids.postmaster or ids.postmaster in ancestors):
        return "postgres"
    for main_class, component in (
        (JOBMANAGER_MAIN, "flink_jobmanager"),
        (TASKMANAGER_MAIN, "flink_taskmanager"),
        (SQL_GATEWAY_MAIN, "sql_gateway"),
    ):
        if is_stack_process(args, main_class, home=ids.home, conf_dir=ids.flink_conf):
            return component
    if args and Path(args[0]).name in ("mariadbd", "mysqld") and f"--defaults-file={ids.home}/mariadb.cnf" in args:
        return "mariadb"
    return "other"


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    create_time: float
    component: str
    cpu_s: float  # user + system, its reaped children's included


@dataclass
class CpuAccount:
    """CPU seconds per component between two scans of the process table.

    A process's CPU time counts its reaped children's (children_user/children_system), so a task process
    that lives and dies between two scans is still counted, with its parent. A child seen alive and then
    reaped would count twice (in its own deltas, then in its parent's children time): what was already
    counted of it is credited to its parent and taken off the parent's next increase."""

    seen: dict[int, Proc] = field(default_factory=dict)
    credit: dict[int, list] = field(default_factory=dict)  # ppid -> [seconds, scans left]
    scans: int = 0

    def update(self, procs: list[Proc]) -> dict[str, float]:
        now = {p.pid: p for p in procs}
        for pid, old in self.seen.items():
            new = now.get(pid)
            if new is None or new.create_time != old.create_time:  # gone (or its pid reused)
                self.credit.setdefault(old.ppid, [0.0, 3])[0] += old.cpu_s
        out: dict[str, float] = defaultdict(float)
        first = self.scans == 0
        for p in procs:
            old = self.seen.get(p.pid)
            same = old is not None and old.create_time == p.create_time
            raw = p.cpu_s - old.cpu_s if same else p.cpu_s
            credit = self.credit.get(p.pid)
            if credit and raw > 0:
                taken = min(credit[0], raw)
                credit[0] -= taken
                raw -= taken
            if not first:
                out[p.component] += max(0.0, raw)
        for pid in list(self.credit):
            self.credit[pid][1] -= 1
            if self.credit[pid][0] <= 1e-9 or self.credit[pid][1] <= 0:
                del self.credit[pid]
        self.seen = now
        self.scans += 1
        return dict(out)


def interval_shares(interval: dict) -> dict[str, float]:
    """One CPU interval's roles as shares of the machine (CPU seconds / (seconds x cores)); `other` is
    the machine's busy time less the classified roles (unclassified processes and the kernel), not the
    sum of the unclassified processes: orphans reaped by pid 1 (other test runs' daemons) would count
    there twice, once while they ran and again in pid 1's children time."""
    capacity = interval["seconds"] * interval["cores"]
    roles = dict.fromkeys(ROLES, 0.0)
    for component, seconds in interval["components"].items():
        roles[ROLE_OF[component]] += seconds
    classified = sum(v for k, v in roles.items() if k != "other")
    roles["other"] = max(0.0, interval["busy_s"] - classified)
    out = {k: v / capacity if capacity else 0.0 for k, v in roles.items()}
    out["machine"] = interval["busy_s"] / capacity if capacity else 0.0
    return out


# ------------------------------------------------------------------------------ heartbeats, DAG parsing
def heartbeat_gaps(observations: list[tuple[float, float | None]], max_blind: float = HEARTBEAT_S) -> list[float]:
    """Gaps between consecutive heartbeats from (observed at, heartbeat) pairs, both epoch seconds. A gap
    counts only when no observation was missed around it for longer than `max_blind` s (heartbeats are at
    least that far apart, so none can have passed unseen)."""
    gaps = []
    last_value, last_seen = None, None
    for seen, value in observations:
        if value is None:
            last_seen = None
            continue
        if last_value is not None and value != last_value and last_seen is not None and seen - last_seen <= max_blind:
            gaps.append(value - last_value)
        last_value, last_seen = value, seen
    return gaps


_STATS_ROW = re.compile(
    r"^\s*\S+\s+(?P<file>\S+\.py)\s+(?:\d+\s+[\d.]+s\s+)?\d+\s+\d+\s+(?P<last>[\d.]+)s\s+"
    r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\s*$"
)


def parse_processing_stats(text: str) -> list[tuple[str, float, datetime]]:
    """(file, parse seconds, parsed at, UTC) of each DAG file parse in the dag-processor's "DAG File
    Processing Stats" tables, each parse once (the table is printed every print_stats_interval)."""
    seen = {}
    for line in text.splitlines():
        m = _STATS_ROW.match(line)
        if m:
            at = datetime.fromisoformat(m["at"]).replace(tzinfo=UTC)
            seen[(m["file"], at)] = float(m["last"])
    return [(f, d, at) for (f, at), d in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


# ------------------------------------------------------------------------------ summaries
def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (lakehouse.dev.probe.DelayStats)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered) / 100) - 1))]


def distribution(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def within_sla(samples: list[dict], sla_s: float | None) -> dict:
    """Share of a table's freshness samples within its SLA; a sample whose lag could not be told is a miss
    (as check_sla fails it). No SLA: nothing to meet (share None)."""
    lags = [s["lag_s"] for s in samples]
    known = [lag for lag in lags if lag is not None]
    out = {"samples": len(lags), "unknown": len(lags) - len(known), "sla_s": sla_s, **distribution(known)}
    out.pop("n", None)
    if sla_s is None or not lags:
        out["within_sla"] = None
    else:
        out["within_sla"] = sum(1 for lag in known if lag <= sla_s) / len(lags)
    return out


def tally_states(tis: list[dict]) -> dict[str, int]:
    """Task instances by final state; any other state (still running, queued, up for retry...) is 'unfinished'."""
    counts = Counter(ti.get("state") if ti.get("state") in FINAL_STATES else "unfinished" for ti in tis)
    return dict(sorted(counts.items()))


def control_share_at(intervals: list[dict], t0: float, t1: float) -> float | None:
    """The control plane's time-weighted mean share of the machine over [t0, t1] (intervals: start, end, control)."""
    starts = [i["start"] for i in intervals]
    k = max(0, bisect.bisect_right(starts, t0) - 1)
    weight = total = 0.0
    for i in intervals[k:]:
        if i["start"] >= t1 and weight:
            break
        lo, hi = max(t0, i["start"]), min(t1, i["end"])
        w = hi - lo if hi > lo else (1.0 if i["start"] <= t0 <= i["end"] and t0 == t1 else 0.0)
        weight += w
        total += w * i["control"]
    return total / weight if weight else None


def busy_idle(samples: list[tuple[float, float, float]], intervals: list[dict]) -> dict:
    """Samples (window start, window end, value) split by the control plane's CPU share over their window:
    busy above its median over the run, idle at or below; each side's distribution."""
    if not intervals:
        return {"median_control_share": None, "busy": {"n": 0}, "idle": {"n": 0}}
    median = statistics.median(i["control"] for i in intervals)
    busy, idle = [], []
    for t0, t1, value in samples:
        share = control_share_at(intervals, t0, t1)
        if share is not None:
            (busy if share > median else idle).append(value)
    return {"median_control_share": median, "busy": distribution(busy), "idle": distribution(idle)}


def no_worse(split: dict, tolerance: float = 0.10, slack_s: float = 1.0) -> bool | None:
    """Busy p50 and p95 within `tolerance` (plus `slack_s`) of idle's; None without samples on both sides."""
    busy, idle = split["busy"], split["idle"]
    if not busy.get("n") or not idle.get("n"):
        return None
    return all(busy[p] <= idle[p] * (1 + tolerance) + slack_s for p in ("p50", "p95"))


def snapshot_bound(retain_max: int, commits: int, seconds: float, expiry_period_s: float) -> int:
    """Most snapshots a table can hold under the policy: retain_max after an expiry run, plus what it
    commits until the next one (its commit rate over the soak, times the expiry period)."""
    rate = commits / seconds if seconds > 0 else 0.0
    return retain_max + math.ceil(rate * expiry_period_s)


def expiry_period_s(schedule: str) -> float:
    """Seconds between two snapshot-expiry runs: the cron's period, at least the hourly table_maintenance run."""
    from croniter import croniter

    it = croniter(schedule, datetime(2026, 1, 1, tzinfo=UTC))
    first, second = it.get_next(datetime), it.get_next(datetime)
    return max(3600.0, (second - first).total_seconds())


def files_per_bucket(files: list[tuple[dict, int]], partition_key: str | None, today: str) -> tuple[int, int]:
    """(most data files in one bucket of today's partition, most in one bucket of a closed partition) from
    (partition, bucket) per file; an unpartitioned table's files count as today's."""
    per_bucket = Counter((tuple(sorted(p.items())), b) for p, b in files)
    today_max = closed_max = 0
    for (partition, _bucket), n in per_bucket.items():
        if partition_key is None or dict(partition).get(partition_key) == today:
            today_max = max(today_max, n)
        else:
            closed_max = max(closed_max, n)
    return today_max, closed_max


def writer_file_bound(options: dict[str, str], has_primary_key: bool) -> int | None:
    """Files per bucket a primary-key table's writer keeps at most: Paimon's num-sorted-run.stop-trigger
    (default num-sorted-run.compaction-trigger + 3 = 8; one file a sorted run at these sizes). None for
    append tables, whose writers compact by file count and size instead."""
    if not has_primary_key:
        return None
    stop = options.get("num-sorted-run.stop-trigger")
    return int(stop) if stop else int(options.get("num-sorted-run.compaction-trigger", 5)) + 3


def epoch(value: str | None) -> float | None:
    """An Airflow API timestamp (ISO 8601, `Z` or an offset) as epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def dag_check_samples(
    tis: list[dict], events: list[dict], tables: dict[str, tuple[str, float | None]], start: float
) -> list[dict]:
    """The table_freshness DAG's own checks as freshness samples: a check that passed gives the lag its Asset
    event carries, one that failed is a miss (lag unknown, as for check_sla); other states (skipped: a table
    not deployed yet) are left out. `tables`: name -> (layer, freshness SLA s)."""
    by_task = {(e.get("source_run_id"), e.get("source_task_id")): e for e in events}
    out = []
    for ti in tis:
        task = ti.get("task_id", "")
        if ti.get("dag_id") != "table_freshness" or not task.startswith("check_"):
            continue
        name = task[len("check_") :].replace("__", ".", 1)
        if name not in tables or ti.get("state") not in ("success", "failed"):
            continue
        sample = {"table": name, "layer": tables[name][0], "sla_s": tables[name][1], "source": "dag"}
        event = by_task.get((ti.get("dag_run_id"), task))
        if ti["state"] == "success" and event is not None:
            at, lag = epoch(event.get("timestamp")), (event.get("extra") or {}).get("lag_s")
        else:
            at, lag = epoch(ti.get("end_date")), None
            sample["error"] = "check failed" if ti["state"] == "failed" else "passed without an Asset event"
        if at is None:
            continue
        out.append({"t": round(at - start, 1), "lag_s": lag, **sample})
    return sorted(out, key=lambda s: s["t"])
