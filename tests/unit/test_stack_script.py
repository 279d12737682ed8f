"""scripts/stack.sh fails fast with a message naming the cause: busy port, missing Java."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
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
