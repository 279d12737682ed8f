"""Fault drills, measured: a piece of the local stack fails under load; how long until it is whole
again, and is every table still equal to MariaDB afterwards?

Run on the real local stack after `make demo` (MariaDB seeded, every streaming job running). Each
drill: steady load from the load generator (--rate orders/s), --warmup s, the fault, recovery (with
a supervision round every --supervise-every s, default 120 as the streaming_supervision DAG), --after s
more load, the load stopped, then the correctness check: every ODS table equals its MariaDB table
(lakehouse.dev.reconcile) and every DWS grain equals the metrics computed from MariaDB
(lakehouse.dev.truth), each polled up to --check-timeout s.

  taskmanager  kill -9 the TaskManager. Flink cannot restart the jobs until a TaskManager is back:
               supervision starts one (START_TASKMANAGER, the flink connection's taskmanager_start_command).
  jobmanager   kill -9 the JobManager: the session cluster and its jobs are gone. Supervision must say
               so with the remedy; then `scripts/stack.sh up` (stops the orphaned TaskManager, starts a
               cluster) and one supervision round, in which every job must RESTORE from its retained checkpoint.
  mariadb      MariaDB stopped (scripts/stack.sh mariadb-down) for --mariadb-outage s, then started again;
               the CDC job fails and restarts until it can read the binlog again. The load generator
               fails meanwhile and resumes when MariaDB is back.
  gateway      the SQL Gateway stopped and started again (scripts/stack.sh flink): the running jobs must
               not notice; recovered when a statement runs through the gateway again.
  t1_kill      `airflow dags test t1_daily <dt + 1 day>` (its own AIRFLOW_HOME) killed with -9 while an
               INSERT OVERWRITE batch job of the recomputation runs. Reported: the leases the run left
               (released or when they expire), the batch job left running (and how long until it ends by
               itself), the pins left (and their end time). Then, unless --no-cleanup, the leases and
               pins of the killed run are removed and a batch job still running is cancelled.

"time to recover" is from the fault (for mariadb: from MariaDB being back) until every streaming job
is RUNNING with all its tasks running and has completed a checkpoint after that moment (Paimon
commits on checkpoints: data flows again). Every wait has a timeout; a drill that times out is
reported as such and the next drill starts from a healthy stack or is skipped.

    source scripts/env.sh && .venv/bin/python bench/faults.py --drills taskmanager jobmanager --rate 200

Prints figures as it goes, a summary table in the format of docs/RELIABILITY.md, and writes JSON
to bench/results/faults-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _common import (  # bench/ is on sys.path when a bench runs
    JOBMANAGER_MAIN,
    TASKMANAGER_MAIN,
    Load,
    check_correct,
    save_results,
    say,
    stack_processes,
)

ROOT = Path(__file__).resolve().parents[1]
DRILLS = ("taskmanager", "jobmanager", "mariadb", "gateway", "t1_kill")


# ------------------------------------------------------------------ the local stack
def stack_sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """scripts/stack.sh <args>, its output printed; a hang is a TimeoutExpired, not a wait forever."""
    say(f"$ scripts/stack.sh {' '.join(args)}")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "stack.sh"), *args], capture_output=True, text=True, timeout=timeout
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"    {line}")
    return done


def kill9(pids: list[int], what: str) -> None:
    if not pids:
        raise RuntimeError(f"no {what} process of this stack found (is the stack up? `make status`)")
    for pid in pids:
        say(f"kill -9 {what} (pid {pid})")
        os.kill(pid, signal.SIGKILL)


def airflow_home_env(home: Path) -> dict[str, str]:
    """An Airflow home with its own SQLite database: scripts/env.sh points AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    at the stack's Postgres, where a drill's `dags test` run would keep the scheduler from its own run."""
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


class Drills:
    """The hooks, the supervisor and the registered streaming jobs the drills work with."""

    def __init__(self, args):
        from lakehouse.core.registry import pipeline_prefix, registry
        from lakehouse.core.resources import resources
        from lakehouse.streaming.supervision import Supervisor

        self.args = args
        self.reg = registry()
        r = resources()
        self.resources = r
        self.flink, self.paimon, self.mysql = r.flink, r.paimon, r.mysql_source
        self.supervisor = Supervisor(flink=r.flink, paimon=r.paimon, cdc=r.cdc, reg=self.reg)
        self.jobs = list(self.reg.jobs)
        self.pipelines = [pipeline_prefix() + j for j in self.jobs]

    # ---------------------------------------------------------------- supervision and recovery
    def supervise_all(self) -> dict[str, str]:
        """One supervision round (Supervisor.supervise per job); job -> action or the error's first line."""
        out = {}
        for job in self.jobs:
            try:
                out[job] = self.supervisor.supervise(job).action
            except Exception as exc:
                out[job] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return out

    def not_recovered(self, since: float) -> list[str]:
        """The pipelines not yet RUNNING with all tasks running and a checkpoint completed after `since`."""
        waiting = []
        try:
            jobs = {j.name: j for j in self.flink.list_jobs() if j.is_active}
        except Exception as exc:
            return [f"Flink REST: {type(exc).__name__}"]
        for name in self.pipelines:
            job = jobs.get(name)
            if job is None:
                waiting.append(f"{name}: not running")
                continue
            try:
                status = self.flink.job_status(job.job_id)
                if not (status.is_running and status.all_tasks_running):
                    waiting.append(f"{name}: {status.state}")
                    continue
                cp = self.flink.checkpoints(job.job_id)
                if not cp.completed_at_ms or cp.completed_at_ms / 1000 < since:
                    waiting.append(f"{name}: no checkpoint since the fault")
            except Exception as exc:
                waiting.append(f"{name}: {type(exc).__name__}")
        return waiting

    def wait_recovered(self, since: float, *, supervise: bool = True) -> tuple[float | None, list[dict]]:
        """Seconds from `since` until every job has recovered (None at --recover-timeout), with a supervision
        round every --supervise-every s meanwhile; returns the rounds that did something other than OK/WAITING."""
        deadline = time.time() + self.args.recover_timeout
        rounds: list[dict] = []
        next_round = time.time()
        last_report = 0.0
        while time.time() < deadline:
            waiting = self.not_recovered(since)
            if not waiting:
                took = time.time() - since
                say(f"recovered: every job running and checkpointed {took:.1f} s after the fault")
                return took, rounds
            if time.time() - last_report >= 15:
                say(
                    f"waiting ({time.time() - since:.0f} s): {'; '.join(waiting[:4])}{' ...' if len(waiting) > 4 else ''}"
                )
                last_report = time.time()
            if supervise and time.time() >= next_round:
                actions = self.supervise_all()
                notable = {j: a for j, a in actions.items() if a not in ("OK", "WAITING")}
                if notable:
                    say(f"supervision: {notable}")
                    rounds.append({"at_s": round(time.time() - since, 1), "actions": notable})
                next_round = time.time() + self.args.supervise_every
            time.sleep(2)
        say(f"NOT recovered within {self.args.recover_timeout:.0f} s: {'; '.join(self.not_recovered(since))}")
        return None, rounds

    def healthy(self) -> bool:
        """Before a drill: every job recovered (a supervision round first, then up to --recover-timeout)."""
        if not self.not_recovered(time.time() - 3600):
            return True
        say("stack not healthy before the drill; one supervision round, then waiting for the jobs")
        took, _ = self.wait_recovered(time.time() - 3600)
        return took is not None

    # ---------------------------------------------------------------- correctness
    def check_correct(self) -> dict:
        """ODS = MariaDB and DWS = MariaDB, each polled up to --check-timeout s (after the load stopped)."""
        return check_correct(self.reg, mysql=self.mysql, paimon=self.paimon, timeout=self.args.check_timeout)

    # ---------------------------------------------------------------- the drills
    def taskmanager(self, row: dict) -> float:
        before = stack_processes(TASKMANAGER_MAIN)
        fault = time.time()
        kill9(before, "TaskManager")
        took, rounds = self.wait_recovered(fault)
        after = stack_processes(TASKMANAGER_MAIN)
        started_tm = any("START_TASKMANAGER" in r["actions"].values() for r in rounds)
        row.update(recover_s=took, supervision=rounds, taskmanagers_after=after)
        row["notes"].append(
            f"TaskManager restarted by {'supervision (START_TASKMANAGER)' if started_tm else 'not supervision'}; "
            f"{len(after)} TaskManager process(es) after"
        )
        return fault

    def jobmanager(self, row: dict) -> float:
        from lakehouse.core.errors import ExternalServiceError

        fault = time.time()
        kill9(stack_processes(JOBMANAGER_MAIN), "JobManager")
        time.sleep(2)
        # What supervision says while the cluster is gone: the error and its remedy.
        try:
            said = f"no error: {self.supervisor.supervise(self.jobs[0]).action}"
        except ExternalServiceError as exc:
            said = str(exc).splitlines()[0]
        except Exception as exc:
            said = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        say(f"supervision while the JobManager is gone: {said}")
        row["supervision_said"] = said
        row["notes"].append("supervision names the remedy (make up)" if "make up" in said else f"supervision: {said}")
        orphans = stack_processes(TASKMANAGER_MAIN)
        up_started = time.time()
        done = stack_sh("up", timeout=self.args.recover_timeout)
        row["stack_up_s"] = round(time.time() - up_started, 1)
        row["stack_up_rc"] = done.returncode
        tms = stack_processes(TASKMANAGER_MAIN)
        row["notes"].append(
            f"orphaned TaskManager before make up: {orphans or 'none'}; after: {len(tms)} TaskManager process(es)"
        )
        if done.returncode != 0:
            row["notes"].append(f"stack.sh up exited {done.returncode}")
        actions = self.supervise_all()
        say(f"supervision after make up: {actions}")
        row["restore_actions"] = actions
        not_restored = {j: a for j, a in actions.items() if a != "RESTORE"}
        row["notes"].append(
            "every job RESTOREd from its retained checkpoint" if not not_restored else f"not RESTORE: {not_restored}"
        )
        took, rounds = self.wait_recovered(fault)
        row.update(recover_s=took, supervision=rounds)
        return fault

    def mariadb(self, row: dict) -> float:
        down = stack_sh("mariadb-down", timeout=120)
        if down.returncode != 0:
            raise RuntimeError(f"scripts/stack.sh mariadb-down exited {down.returncode}")
        stopped = time.time()
        say(f"MariaDB stopped for {self.args.mariadb_outage:.0f} s")
        # Supervision rounds during the outage, as the DAG would run them.
        while time.time() - stopped < self.args.mariadb_outage:
            actions = {j: a for j, a in self.supervise_all().items() if a not in ("OK", "WAITING")}
            if actions:
                row.setdefault("supervision_during_outage", []).append(actions)
            time.sleep(min(self.args.supervise_every, max(0.0, self.args.mariadb_outage - (time.time() - stopped))))
        up = stack_sh("mariadb", timeout=120)
        back = time.time()
        row["outage_s"] = round(back - stopped, 1)
        if up.returncode != 0:
            raise RuntimeError(f"scripts/stack.sh mariadb exited {up.returncode}: MariaDB did not come back")
        took, rounds = self.wait_recovered(back)
        row.update(recover_s=took, supervision=rounds)
        row["notes"].append(f"MariaDB down {row['outage_s']:.0f} s; time to recover counted from MariaDB back")
        return back

    def gateway(self, row: dict) -> float:
        before = {j.name: j.job_id for j in self.flink.list_jobs() if j.is_active}
        fault = time.time()
        say("$ $FLINK_HOME/bin/sql-gateway.sh stop")
        subprocess.run(
            [f"{os.environ['FLINK_HOME']}/bin/sql-gateway.sh", "stop"], capture_output=True, text=True, timeout=120
        )
        stack_sh("flink", timeout=self.args.recover_timeout)
        took, last = None, ""
        deadline = time.time() + self.args.recover_timeout
        while time.time() < deadline:
            try:
                self.flink.execute_sql(["SHOW CATALOGS"], result_timeout=30)
                took = time.time() - fault
                break
            except Exception as exc:
                last = f"{type(exc).__name__}: {str(exc)[:120]}"
                time.sleep(2)
        if took is None:
            row["notes"].append(
                f"no statement ran through the gateway within {self.args.recover_timeout:.0f} s ({last})"
            )
        else:
            say(f"a statement runs through the SQL Gateway again {took:.1f} s after it was stopped")
        after = {j.name: j.job_id for j in self.flink.list_jobs() if j.is_active}
        changed = sorted(n for n in self.pipelines if before.get(n) != after.get(n))
        row["notes"].append("streaming jobs untouched" if not changed else f"jobs with a new id: {changed}")
        row["recover_s"] = took
        return fault

    def t1_kill(self, row: dict) -> float:
        from lakehouse.batch.recompute import recomputable_tables
        from lakehouse.batch.t1 import pin_holder

        dt = self.args.t1_day or (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        logical = (date.fromisoformat(dt) + timedelta(days=1)).isoformat()
        tables = [t.name for t in recomputable_tables(self.reg)]
        if self.args.t1_orders:  # give the day enough data for the recomputation to be caught mid-overwrite
            from lakehouse.dev.loadgen import LoadGenerator

            rate = 400.0
            start, base = datetime.now(UTC), datetime.fromisoformat(dt).replace(hour=10, tzinfo=UTC)
            say(f"load {self.args.t1_orders} orders into {dt} (back-dated clock, {rate:.0f}/s)")
            stats = LoadGenerator(self.mysql, rate=rate, seed=7, clock=lambda: base + (datetime.now(UTC) - start)).run(
                duration_s=self.args.t1_orders / rate
            )
            row["notes"].append(f"{stats.orders_created} orders loaded into {dt} first")
        home = Path(self.airflow_home)
        env = {**os.environ, **airflow_home_env(home)}
        airflow = str(Path(sys.executable).with_name("airflow"))
        log_path = home / f"t1_daily-{dt}.log"
        say(f"$ airflow dags test t1_daily {logical}   (T+1 of {dt}; AIRFLOW_HOME={home}; log {log_path})")
        streaming = set(self.pipelines)
        # The recomputation's batch jobs: pipeline.name "t1_recompute <table> dt=<dt> [<token>]" (FlinkHook).
        target = "t1_recompute "
        known = {j.job_id for j in self.flink.list_jobs()}
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [airflow, "dags", "test", "t1_daily", logical],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a whole, like a lost worker
            )
        started = time.time()
        batch = None
        try:
            while time.time() - started < self.args.recover_timeout and proc.poll() is None:
                jobs = [
                    j
                    for j in self.flink.list_jobs()
                    if j.job_id not in known
                    and j.name not in streaming
                    and j.name.startswith(target)
                    and f"dt={dt}" in j.name
                ]
                running = [j for j in jobs if j.is_active]
                if running:
                    batch = running[0]
                    break
                time.sleep(0.5)
        finally:
            exited = proc.poll()  # the run ended before we caught a batch job
            if exited is None:
                fault = time.time()
                say(
                    f"kill -9 the T+1 run (process group {proc.pid}) while {batch.name if batch else 'no batch job'} runs"
                )
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            else:
                fault = time.time()
        if batch is None:
            how = "started no batch job" if exited is None else f"ended by itself (exit {exited})"
            row["notes"].append(
                f"not caught mid-overwrite: the run {how} within {fault - started:.0f} s; see {log_path}"
            )
        row["t1_day"] = dt
        # What the killed run left behind.
        leases = self.mysql_ops_leases(dt)
        row["leases_left"] = leases
        if leases:
            expiry = max(e for _, _, e in leases)
            row["notes"].append(f"{len(leases)} lease(s) of dt={dt} left, expiring {expiry:%H:%M} UTC")
        else:
            row["notes"].append("no lease left")
        pins = {t: self.paimon.pins(t) for t in tables if self.paimon.table_exists(t)}
        pins = {t: {c: (s, e.isoformat()) for c, (s, e) in p.items() if pin_holder(dt) in c} for t, p in pins.items()}
        pins = {t: p for t, p in pins.items() if p}
        row["pins_left"] = pins
        row["notes"].append(f"pins left on {len(pins)} table(s)" if pins else "no pin left")
        left_running = None
        if batch is not None:
            end = time.time() + self.args.recover_timeout
            while time.time() < end:
                try:
                    status = self.flink.job_status(batch.job_id)
                except Exception as exc:  # Flink busy: ask again
                    say(f"batch job status: {type(exc).__name__}")
                    time.sleep(2)
                    continue
                if status.is_terminal:
                    left_running = round(time.time() - fault, 1)
                    say(
                        f"the batch job {batch.job_id} ended by itself ({status.state}) {left_running} s after the kill"
                    )
                    break
                time.sleep(2)
            row["batch_job"] = {"job_id": batch.job_id, "name": batch.name, "ended_after_s": left_running}
            row["notes"].append(
                f"batch job left running, ended by itself after {left_running} s"
                if left_running is not None
                else f"batch job {batch.job_id} still running {self.args.recover_timeout:.0f} s after the kill"
            )
        # For this drill, "recovered" is: no batch job of the killed run still running.
        row["recover_s"] = left_running if batch is not None else "-"
        if not self.args.no_cleanup:
            self.t1_cleanup(dt, leases, pins, batch if left_running is None else None)
        return fault

    def mysql_ops_leases(self, dt: str) -> list[tuple[str, str, datetime]]:
        try:
            rows = self.resources.ops.get_records(
                "SELECT table_name, holder, expires_at FROM partition_leases WHERE dt = %s AND holder LIKE %s",
                (dt, "t1_daily/%"),
            )
        except Exception as exc:  # no lease table yet: no lease
            say(f"leases: {type(exc).__name__}: {str(exc)[:160]}")
            return []
        return [(r[0], r[1], r[2]) for r in rows]

    def t1_cleanup(self, dt: str, leases, pins, batch) -> None:
        from lakehouse.batch.leases import LeaseManager
        from lakehouse.batch.t1 import pin_holder

        manager = LeaseManager(self.resources.ops)
        for holder in sorted({h for _, h, _ in leases}):
            say(f"cleanup: released {manager.release(holder, dt)} lease(s) of {holder}")
        for table in pins:
            say(f"cleanup: removed {self.paimon.unpin(table, holder=pin_holder(dt))} pin(s) on {table}")
        if batch is not None:
            say(f"cleanup: cancelling the batch job {batch.job_id}")
            self.flink.cancel_job(batch.job_id)

    def prepare_airflow_home(self) -> None:
        """An Airflow home of the drill's own (SQLite), so the lead's .stack/airflow is not touched."""
        self.airflow_home = Path(os.environ["LAKEHOUSE_HOME"]) / "bench-faults-airflow"
        shutil.rmtree(self.airflow_home, ignore_errors=True)
        self.airflow_home.mkdir(parents=True)
        say(f"airflow db migrate in {self.airflow_home} ...")
        subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            env={**os.environ, **airflow_home_env(self.airflow_home)},
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )

    # ---------------------------------------------------------------- one drill, end to end
    def run(self, name: str) -> dict:
        row = {"drill": name, "load": "-", "recover_s": None, "ods_equal": None, "dws_equal": None, "notes": []}
        print()
        say(f"==== drill {name}")
        if name == "t1_kill":
            try:
                self.prepare_airflow_home()
            except (subprocess.SubprocessError, OSError) as exc:
                detail = getattr(exc, "stderr", "") or str(exc)
                row["notes"].append(f"skipped: airflow db migrate failed: {str(detail)[-300:]}")
                return row
        if not self.healthy():
            row["notes"].append("skipped: the stack was not healthy before the drill")
            return row
        load = Load(self.mysql, self.args.rate)
        load.start()
        try:
            say(f"load {self.args.rate:.0f} orders/s; warm-up {self.args.warmup:.0f} s")
            time.sleep(self.args.warmup)
            getattr(self, name)(row)
            say(f"load for {self.args.after:.0f} s more")
            time.sleep(self.args.after)
        except Exception as exc:
            say(f"drill {name} failed: {type(exc).__name__}: {exc}")
            row["notes"].append(f"drill failed: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            load.stop()
            row["load"] = load.describe()
            row["load_errors"] = len(load.errors)
        try:
            row.update(self.check_correct())
        except Exception as exc:
            row["notes"].append(f"correctness check failed: {type(exc).__name__}: {str(exc)[:200]}")
        return row


def fmt_s(value) -> str:
    if isinstance(value, str):
        return value
    return "timed out" if value is None else f"{value:.0f} s"


def yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def summary(rows: list[dict]) -> str:
    """The results table of docs/RELIABILITY.md."""
    lines = [
        "| drill | load | time to recover | ODS = MariaDB | DWS = MariaDB | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['drill']} | {r['load']} | {fmt_s(r['recover_s'])} | {yes_no(r['ods_equal'])} | "
            f"{yes_no(r['dws_equal'])} | {'; '.join(r['notes'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", nargs="+", choices=DRILLS, default=list(DRILLS), help="drills to run, in order")
    parser.add_argument("--rate", type=float, default=200, help="load, orders/s (default 200)")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of load before the fault (default 30)")
    parser.add_argument("--after", type=float, default=30, help="seconds of load after recovery (default 30)")
    parser.add_argument("--recover-timeout", type=float, default=600, help="longest wait for recovery, s (default 600)")
    parser.add_argument("--check-timeout", type=float, default=300, help="longest wait for ODS/DWS = MariaDB, s")
    parser.add_argument(
        "--supervise-every",
        type=float,
        default=120,
        help="seconds between supervision rounds (default 120, as the DAG)",
    )
    parser.add_argument("--mariadb-outage", type=float, default=60, help="seconds MariaDB stays down (default 60)")
    parser.add_argument("--t1-day", help="day the killed T+1 run recomputes (default: yesterday, UTC)")
    parser.add_argument(
        "--t1-orders", type=int, default=0, help="orders to load into --t1-day first (back-dated; default 0)"
    )
    parser.add_argument("--no-cleanup", action="store_true", help="leave the killed T+1 run's leases, pins and job")
    args = parser.parse_args()

    drills = Drills(args)
    say(f"{len(drills.pipelines)} streaming jobs: {', '.join(drills.pipelines)}")
    rows = []
    for name in args.drills:
        rows.append(drills.run(name))
        print()
        print(summary(rows[-1:]))
    print()
    print(summary(rows))
    print()
    save_results("faults", rows)
    return 0 if all(r["ods_equal"] and r["dws_equal"] and r["recover_s"] is not None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
