"""`make demo`: the first slice end to end on the local stack, with what it did and how fresh the data is.

python -m lakehouse.dev.demo prepare   # OLTP schema + reference data in MariaDB
python -m lakehouse.dev.demo deploy    # a streaming_deploy run triggered through the scheduler, waited for
python -m lakehouse.dev.demo run       # load; insert-to-visible delay in ODS and DWD; ODS and DWS against
                                       # MariaDB; ends with the Airflow UI address and login

`deploy` goes through the running Airflow (scripts/airflow_services.sh, started by `make up`) as on-call
would from the UI: it logs in to the REST API, waits until the dag-processor has parsed
`streaming_deploy`, unpauses it (a manual DAG: it runs only when triggered; the UI's trigger form does
the same), triggers a run and follows it task by task until it succeeds, or fails naming the failed
tasks and their log files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from lakehouse.core.errors import ExternalServiceError
from lakehouse.core.polling import WaitTimeout, wait_until
from lakehouse.core.registry import registry
from lakehouse.core.resources import resources
from lakehouse.dev import oltp
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.probe import VisibilityProbe
from lakehouse.dev.reconcile import wait_until_equal
from lakehouse.dev.truth import DWS_GRAINS, compare_dws


def quiet_logging() -> None:
    """What `make demo` should not print: pypaimon's INFO line per scan and commit, and Airflow's
    "Skipping masking for a secret as it's too short" warning (the local MariaDB password is `app`)."""
    logging.getLogger("pypaimon").setLevel(logging.WARNING)
    for name in ("airflow._shared.secrets_masker", "airflow.sdk._shared.secrets_masker"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class AirflowUi:
    """Where the local Airflow answers and how to log in (scripts/env.sh)."""

    url: str
    user: str
    password: str

    @classmethod
    def from_env(cls, env=os.environ) -> AirflowUi:
        host = env.get("AIRFLOW_API_SERVER_HOST", "127.0.0.1")
        port = env.get("AIRFLOW_API_SERVER_PORT", "8080")
        return cls(
            f"http://{host}:{port}", env.get("AIRFLOW_ADMIN_USER", "admin"), env.get("AIRFLOW_ADMIN_PASSWORD", "admin")
        )


class DeployFailed(ExternalServiceError):
    """The triggered streaming_deploy run did not succeed, or Airflow did not take it (the message names
    the failed tasks, their errors and log files)."""


TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}


def task_log_path(airflow_home: str | Path, ti: dict) -> Path:
    """The task's log file under Airflow's default `log_filename_template`."""
    path = (
        Path(airflow_home)
        / "logs"
        / f"dag_id={ti['dag_id']}"
        / f"run_id={ti['dag_run_id']}"
        / f"task_id={ti['task_id']}"
    )
    if ti.get("map_index", -1) is not None and ti.get("map_index", -1) >= 0:
        path = path / f"map_index={ti['map_index']}"
    return path / f"attempt={max(ti.get('try_number') or 1, 1)}.log"


def trigger_and_wait(
    client: httpx.Client,
    ui: AirflowUi,
    *,
    dag_id: str = "streaming_deploy",
    airflow_home: str | Path,
    parse_timeout: float = 180,
    run_timeout: float = 900,
    interval: float = 3,
    out: Callable[[str], object] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> str:
    """Trigger `dag_id` through the REST API and follow the run until it ends; returns the run id.

    Raises DeployFailed when the run fails or does not end within `run_timeout` (naming each failed
    or unfinished task and its log file), or when the DAG is not parsed within `parse_timeout`."""
    waits = {"interval": interval, "clock": clock, "sleep": sleep}
    r = client.post(f"{ui.url}/auth/token", json={"username": ui.user, "password": ui.password})
    if r.status_code != 201 and r.status_code != 200:
        raise DeployFailed(
            f"could not log in to Airflow at {ui.url} as {ui.user} (HTTP {r.status_code}): "
            "check AIRFLOW_ADMIN_USER/AIRFLOW_ADMIN_PASSWORD, or 'make status'"
        )
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def parsed() -> dict | None:
        r = client.get(f"{ui.url}/api/v2/dags/{dag_id}")
        if r.status_code == 200:
            return r.json()
        errors = client.get(f"{ui.url}/api/v2/importErrors").json().get("import_errors", [])
        broken = [e for e in errors if Path(e.get("filename", "")).stem == dag_id]
        if broken:
            raise DeployFailed(f"{dag_id} does not import:\n{broken[0].get('stack_trace', '')}")
        return None

    out(f"demo: waiting for the dag-processor to parse {dag_id} ...")
    try:
        dag = wait_until(parsed, timeout=parse_timeout, what=f"{dag_id} to be parsed", **waits)
    except WaitTimeout as e:
        raise DeployFailed(f"{e}; see the dag-processor's log (.stack/logs/airflow-dag-processor.log)") from e
    if dag.get("is_paused"):
        client.patch(f"{ui.url}/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    r = client.post(f"{ui.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "note": "make demo"})
    r.raise_for_status()
    run_id = r.json()["dag_run_id"]
    out(f"demo: triggered {dag_id} run {run_id}; following it (up to {run_timeout:.0f} s; UI: {ui.url}/dags/{dag_id})")

    seen: dict[str, str] = {}
    state: dict = {}

    def ended() -> bool:
        tis = client.get(f"{ui.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        state["tis"] = tis
        for ti in tis:
            key, ti_state = ti["task_id"], ti.get("state") or "none"
            if ti_state in TERMINAL and seen.get(key) != ti_state:
                done = sum(1 for t in tis if t.get("state") in TERMINAL)
                out(f"demo:   {key:36} {ti_state:8} ({done}/{len(tis)} tasks done)")
            seen[key] = ti_state
        state["run"] = client.get(f"{ui.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        return state["run"] in ("success", "failed")

    try:
        wait_until(ended, timeout=run_timeout, what=f"{dag_id} run {run_id} to end", **waits)
    except WaitTimeout:
        state["run"] = f"still {state.get('run')} after {run_timeout:.0f} s"
    if state["run"] == "success":
        out(f"demo: {dag_id} run {run_id} succeeded")
        return run_id
    tis = state.get("tis", [])
    lines = []
    for t in tis:
        if t.get("state") in ("success", "skipped", "upstream_failed"):
            continue
        path = task_log_path(airflow_home, t)
        error = log_error(path)
        attempt = f" (attempt {t.get('try_number')})" if (t.get("try_number") or 0) > 1 else ""
        lines.append(f"  {t['task_id']}: {t.get('state') or 'not started'}{attempt}" + (f": {error}" if error else ""))
        lines.append(f"    log: {path}")
    skipped = [t["task_id"] for t in tis if t.get("state") == "upstream_failed"]
    if skipped:
        lines.append(f"  not run (an upstream task failed): {', '.join(skipped)}")
    raise DeployFailed(
        f"{dag_id} run {run_id}: {state['run']}\n"
        + "\n".join(lines)
        + f"\nin the UI: {ui.url}/dags/{dag_id}/runs/{run_id}"
    )


def log_error(path: Path) -> str | None:
    """The exception a task log (Airflow 3: JSON lines) ends with, as "Type: message"; None if none."""
    import json

    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    found = None
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") == "error":
            details = record.get("error_detail") or []
            first = details[0] if details and isinstance(details[0], dict) else {}
            found = f"{first.get('exc_type')}: {first.get('exc_value')}" if first else str(record.get("event"))
    return found


def deploy(timeout: float) -> int:
    ui = AirflowUi.from_env()
    home = os.environ.get("AIRFLOW_HOME", ".stack/airflow")
    try:
        with httpx.Client(timeout=30) as client:
            trigger_and_wait(client, ui, airflow_home=home, run_timeout=timeout)
    except httpx.HTTPError as e:
        print(f"demo: Airflow at {ui.url} did not answer ({e}); 'make status' shows the services", file=sys.stderr)
        return 1
    except DeployFailed as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    return 0


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
            f"demo: not running: {', '.join(missing)}; deploy them first: python -m lakehouse.dev.demo deploy "
            "(triggers streaming_deploy)",
            file=sys.stderr,
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
    print("alerts: ops.alerts (read them: .venv/bin/python -m lakehouse.alerts.history; docs/ALERTS.md)")
    print(ui_lines(AirflowUi.from_env()))
    return 1 if bad else 0


def ui_lines(ui: AirflowUi) -> str:
    return (
        f"Airflow UI: {ui.url}   login: {ui.user} / {ui.password}\n"
        "  the operational DAGs run on their schedules there; services, logs and ports: docs/AIRFLOW.md"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="create the OLTP schema and reference data")
    d = sub.add_parser("deploy", help="trigger streaming_deploy through the scheduler and wait for it")
    d.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the run (default 900)")
    r = sub.add_parser("run", help="generate load and report freshness and correctness")
    r.add_argument("--rate", type=float, default=200.0)
    r.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)
    quiet_logging()
    if args.command == "prepare":
        return prepare()
    if args.command == "deploy":
        return deploy(args.timeout)
    return run(args.rate, args.duration)


if __name__ == "__main__":
    raise SystemExit(main())
