"""lakehouse.core.resources: the hooks of a task, by role, from one place."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.core import flink_sql
from lakehouse.core.resources import CDC_CONN_ID, Resources, resources
from lakehouse.hooks.flink import FlinkHook
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.hooks.starrocks import StarRocksHook

DAGS_DIR = Path(__file__).resolve().parents[3] / "dags"


def test_default_roles_use_the_default_connections():
    r = resources()
    assert isinstance(r.flink, FlinkHook) and r.flink.flink_conn_id == "flink_default"
    assert isinstance(r.paimon, PaimonHook) and r.paimon.paimon_conn_id == "paimon_default"
    assert isinstance(r.mysql_source, MySqlHook) and r.mysql_source.mysql_conn_id == "mysql_source"
    assert r.cdc.mysql_conn_id == "mysql_cdc"
    assert r.ops.mysql_conn_id == "lakehouse_ops"
    assert isinstance(r.starrocks, StarRocksHook) and r.starrocks.starrocks_conn_id == "starrocks_default"
    # The hooks' own defaults are the same ids.
    assert (FlinkHook.default_conn_name, PaimonHook.default_conn_name, MySqlHook.default_conn_name) == (
        "flink_default",
        "paimon_default",
        "mysql_source",
    )


def test_each_hook_is_built_once_per_container_and_the_container_is_frozen():
    r = resources()
    assert r.paimon is r.paimon and r.cdc is r.cdc
    assert r.cdc is not r.mysql_source
    assert resources().paimon is not r.paimon  # a new container, new hooks
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.paimon_conn_id = "other"


def test_other_connections_by_role():
    r = resources(paimon_conn_id="it_paimon", cdc_conn_id="it_mysql_cdc")
    assert (r.paimon.paimon_conn_id, r.cdc.mysql_conn_id, r.flink.flink_conn_id) == (
        "it_paimon",
        "it_mysql_cdc",
        "flink_default",
    )
    with pytest.raises(TypeError):
        resources(paimon="it_paimon")  # a role's connection id, not the role


def test_cdc_conn_id_is_still_importable_from_flink_sql():
    assert flink_sql.CDC_CONN_ID == CDC_CONN_ID == Resources().cdc_conn_id == "mysql_cdc"


def test_importing_resources_imports_no_hook():
    code = (
        "import sys; import lakehouse.core.resources as r; r.Resources(); "
        "print(sorted(m for m in sys.modules if m.startswith('lakehouse.hooks') or m in ('pyarrow', 'pypaimon')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sorted(DAGS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_dag_tasks_build_no_hooks_themselves(path):
    """DAG tasks take their hooks from resources(): no `XHook(...)` call and no Supervisor() without hooks."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            assert not name.endswith("Hook"), f"{path.name}:{node.lineno} builds a {name}: use resources()"
            if name == "Supervisor":
                assert {k.arg for k in node.keywords} >= {"flink", "paimon", "cdc"}, f"{path.name}:{node.lineno}"
