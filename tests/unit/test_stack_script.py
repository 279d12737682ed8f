"""scripts/stack.sh fails fast with a message naming the cause (busy port, missing Java) and deals with an
orphaned TaskManager (its JobManager gone): `up` stops it before starting the cluster, `status` names it."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "stack.sh"


def run_stack(args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "FLINK_", "SQL_GATEWAY"))}
    env.update({"LAKEHOUSE_HOME": str(tmp_path / "stack"), "AIRFLOW_HOME": str(tmp_path / "airflow")})
    env.update(env_overrides)
    return subprocess.run(["bash", str(STACK), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


@pytest.mark.skipif(
    shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists(),
    reason="mariadb-server not installed (make install)",
)
def test_busy_mysql_port_is_named(tmp_path, busy_port):
    out = run_stack(["mariadb"], {"MYSQL_PORT": str(busy_port)}, tmp_path)
    assert out.returncode == 1
    assert f"port {busy_port} (needed for MariaDB) is already in use" in out.stderr


def test_busy_flink_port_is_named(tmp_path, busy_port):
    out = run_stack(["flink"], {"FLINK_REST_PORT": str(busy_port)}, tmp_path)
    assert out.returncode == 1
    assert f"port {busy_port} (needed for the Flink JobManager REST API) is already in use" in out.stderr


def test_missing_java_is_named(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "cat", "awk", "cut", "id", "ss", "head"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    out = run_stack(["flink"], {"PATH": str(bin_dir)}, tmp_path)
    assert out.returncode == 1
    assert "java not found on PATH" in out.stderr


def test_unknown_command_prints_usage(tmp_path):
    out = run_stack(["sideways"], {}, tmp_path)
    assert out.returncode == 1 and "usage:" in out.stderr


def test_env_sh_can_be_sourced_twice(tmp_path):
    """Re-sourcing must not corrupt the JSON Flink connection (scripts re-source env.sh)."""
    script = (
        f"export LAKEHOUSE_HOME={tmp_path}; source {ROOT}/scripts/env.sh; a=$AIRFLOW_CONN_FLINK_DEFAULT; "
        f'source {ROOT}/scripts/env.sh; [ "$a" = "$AIRFLOW_CONN_FLINK_DEFAULT" ] && echo "$a"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["SQL_GATEWAY_PORT"] = "18183"  # whatever the caller's ports, the value must survive re-sourcing
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    import json

    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["extra"]["sql_gateway_port"] == 18183


# ------------------------------------------------- an orphaned TaskManager (its JobManager is gone)
#
# A JobManager killed with -9 leaves its TaskManager running; `up` then started a second one beside
# it (6 GB each). These tests run the script with stubbed java/curl and a fake Flink distribution;
# the "TaskManager" is a sleeping Python process whose command line is a TaskManagerRunner's.

TM_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"

CURL_STUB = """#!/usr/bin/env bash
# Flink answers once start-cluster.sh has run (or from the start when $LAKEHOUSE_HOME/jm-up exists);
# its /overview reports $LAKEHOUSE_HOME/registered-tms TaskManagers (1 if absent). The gateway always answers.
url="${@: -1}"
case "$url" in
  */v1/info) exit 0 ;;
  */overview)
    [[ -f "$LAKEHOUSE_HOME/jm-up" ]] || exit 7
    n=$(cat "$LAKEHOUSE_HOME/registered-tms" 2>/dev/null || echo 1)
    echo "{\\"taskmanagers\\":$n,\\"slots-total\\":16,\\"slots-available\\":16,\\"jobs-running\\":0}" ;;
  *) exit 7 ;;
esac
"""

START_CLUSTER_STUB = """#!/usr/bin/env bash
# Records which TaskManager processes of this stack are alive when the cluster is started.
pgrep -f "TaskManagerRunner --configDir $FLINK_CONF_DIR" > "$LAKEHOUSE_HOME/tms-at-start" || true
touch "$LAKEHOUSE_HOME/jm-up"
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_flink(tmp_path):
    """Stubbed java and curl on PATH, a fake Flink distribution and connector jar under LAKEHOUSE_HOME."""
    home = tmp_path / "stack"
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "java").write_text("#!/usr/bin/env bash\necho 'openjdk version \"17.0.2\" 2022-01-18' >&2\n")
    (stubs / "curl").write_text(CURL_STUB)
    dist = home / "flink-dist" / "pyflink"
    for d in ("bin", "lib", "opt", "conf"):
        (dist / d).mkdir(parents=True)
    (dist / "bin" / "start-cluster.sh").write_text(START_CLUSTER_STUB)
    (dist / "conf" / "log4j.properties").write_text("")
    (home / "jars").mkdir()
    (home / "jars" / "paimon-flink.jar").write_text("")
    for f in (*stubs.iterdir(), dist / "bin" / "start-cluster.sh"):
        f.chmod(0o755)
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "JARS_DIR": str(home / "jars"),
        "WAREHOUSE": str(home / "warehouse"),
        "FLINK_REST_PORT": str(_free_port()),
        "FLINK_RPC_PORT": str(_free_port()),
        "SQL_GATEWAY_PORT": str(_free_port()),
    }
    return home, env


@pytest.fixture
def stray_taskmanager(tmp_path):
    """A process that looks like a TaskManager of the stack under tmp_path/stack, in Flink's pid file."""
    home = tmp_path / "stack"
    home.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", "import time; time.sleep(120)", f"-Dlakehouse.home={home}", TM_MAIN]
    proc = subprocess.Popen([*argv, "--configDir", str(home / "flink" / "conf")])
    (home / "flink--taskexecutor.pid").write_text(f"{proc.pid}\n")
    yield proc
    proc.kill()
    proc.wait()


def test_up_stops_an_orphaned_taskmanager_before_starting_the_cluster(tmp_path, fake_flink, stray_taskmanager):
    home, env = fake_flink
    out = run_stack(["flink"], env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"orphaned TaskManager (pid {stray_taskmanager.pid})" in out.stdout
    assert out.stdout.index("orphaned TaskManager") < out.stdout.index("starting Flink session cluster")
    assert stray_taskmanager.wait(timeout=5) is not None  # stopped
    assert (home / "tms-at-start").read_text().split() == []  # it was gone before start-cluster.sh ran
    assert not (home / "flink--taskexecutor.pid").exists()  # its stale pid file is pruned


def test_up_without_an_orphan_says_nothing_about_one(tmp_path, fake_flink):
    home, env = fake_flink
    out = run_stack(["flink"], env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "orphan" not in out.stdout.lower()
    assert "starting Flink session cluster" in out.stdout


def test_up_leaves_a_taskmanager_of_a_running_jobmanager_alone(tmp_path, fake_flink, stray_taskmanager):
    """With the JobManager up, an extra TaskManager may be one still registering: named, never killed."""
    home, env = fake_flink
    (home / "jm-up").touch()
    (home / "registered-tms").write_text("0")
    out = run_stack(["flink"], env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Flink already running" in out.stdout
    assert f"1 TaskManager process(es) (pid {stray_taskmanager.pid}) but 0 registered" in out.stdout
    assert stray_taskmanager.poll() is None  # still running


def test_status_reports_an_orphaned_taskmanager(tmp_path, fake_flink, stray_taskmanager):
    home, env = fake_flink
    out = run_stack(["status"], env, tmp_path)
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if line.startswith("taskmanager"))
    assert f"ORPHANED pid {stray_taskmanager.pid}" in line and "make up" in line
    assert stray_taskmanager.poll() is None  # status only reports


def test_status_reports_an_unregistered_taskmanager_beside_a_running_jobmanager(
    tmp_path, fake_flink, stray_taskmanager
):
    home, env = fake_flink
    (home / "jm-up").touch()
    (home / "registered-tms").write_text("0")
    out = run_stack(["status"], env, tmp_path)
    line = next(line for line in out.stdout.splitlines() if line.startswith("taskmanager"))
    assert f"pid {stray_taskmanager.pid}" in line and "0 registered" in line


def test_status_of_a_healthy_cluster_has_no_taskmanager_warning(tmp_path, fake_flink, stray_taskmanager):
    home, env = fake_flink
    (home / "jm-up").touch()  # /overview: 1 TaskManager registered, 1 process
    out = run_stack(["status"], env, tmp_path)
    assert not any(line.startswith("taskmanager") for line in out.stdout.splitlines()), out.stdout


def test_status_reports_a_second_taskmanager_even_when_both_registered(tmp_path, fake_flink, stray_taskmanager):
    """What the drill left behind with the old script: two TaskManagers of 6 GB, both registered."""
    home, env = fake_flink
    (home / "jm-up").touch()
    (home / "registered-tms").write_text("2")
    conf = home / "flink" / "conf"
    second = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", TM_MAIN, "--configDir", str(conf)])
    try:
        out = run_stack(["status"], env, tmp_path)
    finally:
        second.kill()
        second.wait()
    line = next(line for line in out.stdout.splitlines() if line.startswith("taskmanager"))
    assert "2 TaskManager processes" in line and str(second.pid) in line and "make down && make up" in line
    assert out.returncode == 1


# ------------------------------------------------- PostgreSQL and the Airflow services
#
# `up` starts PostgreSQL and the four Airflow services; `down` and `reset` stop every service `up`
# started, the Airflow services first; `status` lists them all. Stubbed: the Airflow services are
# sleeping processes started by a fake `airflow` (its `db migrate` only records the call), the
# Postgres binaries are scripts that record what they were asked, curl answers for Flink only when
# $LAKEHOUSE_HOME/jm-up exists and always for the api-server's health check.

AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

FAKE_AIRFLOW = """#!/usr/bin/env bash
echo "airflow $*" >> "$LAKEHOUSE_HOME/calls"
case "$1" in
  db|pools) exit 0 ;;
  *) exec -a "fake-airflow-$1" sleep 300 ;;
esac
"""

PG_CTL_STUB = """#!/usr/bin/env bash
echo "pg_ctl $*" >> "$LAKEHOUSE_HOME/calls"
case " $* " in
  *" stop "*) rm -f "$POSTGRES_DATA/postmaster.pid" ;;
esac
"""

STACK_CURL_STUB = """#!/usr/bin/env bash
url="${@: -1}"
case "$url" in
  */api/v2/monitor/health) exit 0 ;;
  */overview) [[ -f "$LAKEHOUSE_HOME/jm-up" ]] || exit 7
    echo '{"taskmanagers":1,"slots-total":16,"slots-available":16,"jobs-running":0}' ;;
  *) exit 7 ;;
esac
"""


@pytest.fixture
def fake_services(tmp_path):
    """Stubbed airflow, Postgres binaries and curl; free ports for every service."""
    home = tmp_path / "stack"
    stubs, venv_bin, pg_bin = tmp_path / "stubs", tmp_path / "venv" / "bin", tmp_path / "pg" / "bin"
    for d in (home, stubs, venv_bin, pg_bin):
        d.mkdir(parents=True, exist_ok=True)
    (venv_bin / "airflow").write_text(FAKE_AIRFLOW)
    (stubs / "curl").write_text(STACK_CURL_STUB)
    (pg_bin / "pg_ctl").write_text(PG_CTL_STUB)
    for tool in ("initdb", "postgres", "psql"):
        (pg_bin / tool).write_text(f'#!/usr/bin/env bash\necho "{tool} $*" >> "$LAKEHOUSE_HOME/calls"\n')
    # pg_isready answers while the postmaster.pid of our data directory exists.
    (pg_bin / "pg_isready").write_text('#!/usr/bin/env bash\n[[ -f "$POSTGRES_DATA/postmaster.pid" ]]\n')
    for f in (*venv_bin.iterdir(), *stubs.iterdir(), *pg_bin.iterdir()):
        f.chmod(0o755)
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "VENV": str(tmp_path / "venv"),
        "POSTGRES_BIN": str(pg_bin),
        # The stub binaries run as the test's user (as root the cluster would belong to `postgres`,
        # who cannot enter pytest's 0700 temp directories).
        "POSTGRES_OS_USER": getpass.getuser(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow/airflow.db",
        "AIRFLOW_SERVICES_START_TIMEOUT": "10",
        "MYSQL_PORT": str(_free_port()),
        "FLINK_REST_PORT": str(_free_port()),
        "FLINK_RPC_PORT": str(_free_port()),
        "SQL_GATEWAY_PORT": str(_free_port()),
        "POSTGRES_PORT": str(_free_port()),
        "AIRFLOW_API_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
    }
    yield home, env
    for pid_file in (tmp_path / "airflow" / "run").glob("*.pid"):  # whatever a failed test left running
        try:
            os.killpg(int(pid_file.read_text()), 9)
        except (ProcessLookupError, ValueError):
            pass


def _service_pids(tmp_path) -> dict[str, int]:
    run = tmp_path / "airflow" / "run"
    return {svc: int((run / f"{svc}.pid").read_text()) for svc in AIRFLOW_SERVICES if (run / f"{svc}.pid").exists()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")


def _detached_sleeper() -> int:
    """A `sleep` that is not our child (a killed child would stay a zombie that `kill -0` still finds)."""
    out = subprocess.run(["bash", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    return int(out.stdout)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _fake_postgres_running(home: Path) -> int:
    """A process standing in for the postmaster of $LAKEHOUSE_HOME/postgres (its pid in postmaster.pid)."""
    (home / "postgres").mkdir(parents=True, exist_ok=True)
    pid = _detached_sleeper()
    (home / "postgres" / "postmaster.pid").write_text(f"{pid}\n{home / 'postgres'}\n")
    return pid


def test_airflow_starts_all_four_services_once_and_migrates_only_when_something_is_down(tmp_path, fake_services):
    home, env = fake_services
    out = run_stack(["airflow"], env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    pids = _service_pids(tmp_path)
    assert set(pids) == set(AIRFLOW_SERVICES)
    assert all(_alive(p) for p in pids.values())
    calls = (home / "calls").read_text().splitlines()
    assert calls.count("airflow db migrate") == 1
    pools = [c for c in calls if c.startswith("airflow pools set ")]
    assert [c.split()[3] for c in pools] == ["flink_batch", "quality"], "the pools the DAGs use are created"
    assert {c for c in calls if c.startswith("airflow ") and c != "airflow db migrate" and c not in pools} == {
        "airflow api-server --host 127.0.0.1 --port " + env["AIRFLOW_API_SERVER_PORT"],
        "airflow scheduler",
        "airflow dag-processor",
        "airflow triggerer",
    }
    assert any(c.startswith("initdb ") for c in calls) and any(" start" in c for c in calls if c.startswith("pg_ctl"))

    again = run_stack(["airflow"], env, tmp_path)  # idempotent: nothing started twice, no migration
    assert again.returncode == 0, again.stdout + again.stderr
    assert _service_pids(tmp_path) == pids
    assert (home / "calls").read_text().splitlines().count("airflow db migrate") == 1
    for svc in AIRFLOW_SERVICES:
        assert f"{svc} already running (pid {pids[svc]})" in again.stdout

    down = run_stack(["down"], env, tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(_alive(p) for p in pids.values())


def test_down_stops_the_airflow_services_first_then_flink_mariadb_and_postgres(tmp_path, fake_services):
    home, env = fake_services
    assert run_stack(["airflow"], env, tmp_path).returncode == 0
    pids = _service_pids(tmp_path)
    mariadb = _detached_sleeper()
    (home / "mariadb.pid").write_text(f"{mariadb}\n")
    postmaster = _fake_postgres_running(home)  # the stub pg_ctl stop removes its postmaster.pid
    try:
        out = run_stack(["down"], env, tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        text = out.stdout
        order = [text.index(f"stopping {svc}") for svc in ("scheduler", "triggerer", "dag-processor", "api-server")]
        assert order == sorted(order)
        after = [text.index(what) for what in ("Flink stopped", "stopping MariaDB", "stopping PostgreSQL")]
        assert order[-1] < after[0] and after == sorted(after)
        assert not any(_alive(p) for p in pids.values())
        assert not _alive(mariadb)
        assert any(c.startswith("pg_ctl") and " stop" in c for c in (home / "calls").read_text().splitlines())
    finally:
        _kill(mariadb)
        _kill(postmaster)


def test_reset_stops_every_service_before_deleting_their_data(tmp_path, fake_services):
    home, env = fake_services
    assert run_stack(["airflow"], env, tmp_path).returncode == 0
    pids = _service_pids(tmp_path)
    postmaster = _fake_postgres_running(home)
    try:
        out = run_stack(["reset"], env, tmp_path)
    finally:
        _kill(postmaster)
    assert out.returncode == 0, out.stdout + out.stderr
    steps = [out.stdout.index(what) for what in ("stopping api-server", "stopping PostgreSQL", "removing")]
    assert steps == sorted(steps)
    assert not any(_alive(p) for p in pids.values())
    assert not home.exists()


def test_status_lists_every_service_with_pid_and_port(tmp_path, fake_services):
    home, env = fake_services
    assert run_stack(["airflow"], env, tmp_path).returncode == 0
    pids = _service_pids(tmp_path)
    postmaster = _fake_postgres_running(home)  # the stub pg_ctl starts nothing
    try:
        out = run_stack(["status"], env, tmp_path)
    finally:
        _kill(postmaster)
        run_stack(["airflow-down"], env, tmp_path)
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert out.returncode == 1  # MariaDB and Flink are down
    for name in ("mariadb", "flink", "sql-gateway"):
        assert "DOWN" in lines[name]
    assert f"127.0.0.1:{env['POSTGRES_PORT']}" in lines["postgres"] and f"pid {postmaster}" in lines["postgres"]
    assert f"http://127.0.0.1:{env['AIRFLOW_API_SERVER_PORT']}" in lines["api-server"]
    assert f":{env['AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT']}" in lines["scheduler"]
    assert f":{env['AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT']}" in lines["triggerer"]
    for svc in AIRFLOW_SERVICES:
        assert lines[svc].split()[1] == "up" and f"pid {pids[svc]}" in lines[svc], lines[svc]


def test_status_of_a_stopped_stack_names_every_service_down(tmp_path, fake_services):
    home, env = fake_services
    out = run_stack(["status"], env, tmp_path)
    assert out.returncode == 1
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for name in ("mariadb", "flink", "sql-gateway", "postgres", *AIRFLOW_SERVICES):
        assert lines[name].split()[1] == "DOWN", out.stdout


def test_busy_postgres_port_is_named(tmp_path, fake_services, busy_port):
    home, env = fake_services
    out = run_stack(["postgres"], {**env, "POSTGRES_PORT": str(busy_port)}, tmp_path)
    assert out.returncode == 1
    assert f"port {busy_port} (needed for PostgreSQL (Airflow's metadata database)) is already in use" in out.stderr


def test_missing_postgres_server_names_the_package(tmp_path, fake_services):
    home, env = fake_services
    out = run_stack(["postgres"], {**env, "POSTGRES_BIN": str(tmp_path / "nowhere")}, tmp_path)
    assert out.returncode == 1
    assert "PostgreSQL server binaries not found" in out.stderr and "apt-get install -y postgresql" in out.stderr


def test_busy_trigger_log_port_is_named_before_anything_starts(tmp_path, fake_services, busy_port):
    home, env = fake_services
    out = run_stack(["airflow"], {**env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(busy_port)}, tmp_path)
    assert out.returncode == 1
    assert f"port {busy_port} (needed for the triggerer's log server) is already in use" in out.stderr
    assert _service_pids(tmp_path) == {}


def test_missing_postgres_drivers_are_named(tmp_path, fake_services):
    """With the metadata database on Postgres, a .venv without psycopg2/asyncpg fails before migrating."""
    home, env = fake_services
    python = tmp_path / "python-without-drivers"
    python.write_text(
        f'#!/usr/bin/env bash\n[[ "$1 $2" == "-c import psycopg2, asyncpg" ]] && exit 1\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    pg_url = "postgresql+psycopg2://airflow:secret@127.0.0.1:1/airflow"
    env.update({"PYTHON": str(python), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url})
    out = run_stack(["airflow"], env, tmp_path)
    assert out.returncode == 1
    assert "PostgreSQL drivers (psycopg2, asyncpg) are missing" in out.stderr and "make install" in out.stderr
    assert "airflow db migrate" not in (home / "calls").read_text()


def test_env_sh_points_airflow_at_the_stacks_postgres(tmp_path):
    script = f"LAKEHOUSE_HOME={tmp_path}; source {ROOT}/scripts/env.sh; echo $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "POSTGRES_"))}
    env["POSTGRES_PORT"] = "5544"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert out.stdout.strip() == "postgresql+psycopg2://airflow:airflow-local@127.0.0.1:5544/airflow"
