"""scripts/stack.sh fails fast with a message naming the cause (busy port, missing Java) and deals with an
orphaned TaskManager (its JobManager gone): `up` stops it before starting the cluster, `status` names it."""

from __future__ import annotations

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
