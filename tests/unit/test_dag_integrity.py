"""DAG integrity (Astro template style): every DAG imports with no connections and no network,
and declares owner, tags, retries and catchup explicitly."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dag_bag():
    """Parse dags/ with every AIRFLOW_CONN_* removed and sockets disabled."""
    from airflow.dag_processing.dagbag import DagBag

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIRFLOW_CONN_")}
    real_connect = socket.socket.connect

    def no_network(self, address):
        raise AssertionError(f"DAG parsing opened a network connection to {address}")

    socket.socket.connect = no_network
    try:
        yield DagBag(dag_folder=str(DAGS_DIR), include_examples=False)
    finally:
        socket.socket.connect = real_connect
        os.environ.update(saved)


def test_dag_files_exist():
    assert DAG_FILES, "no DAG files found"


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}, dag_bag.import_errors


def test_every_file_defines_a_dag(dag_bag):
    files_with_dags = {Path(d.fileloc).name for d in dag_bag.dags.values()}
    assert files_with_dags == {p.name for p in DAG_FILES}


def test_default_args_set_owner_and_retries(dag_bag):
    """Owner and retries are decided per DAG (a task may still opt out of retries on purpose)."""
    for dag_id, dag in dag_bag.dags.items():
        assert dag.default_args.get("owner") not in (None, "", "airflow"), f"{dag_id} has no owner"
        assert "retries" in dag.default_args, f"{dag_id} leaves retries to the config default"
        for task in dag.tasks:
            assert task.owner == dag.default_args["owner"], f"{dag_id}.{task.task_id} owner {task.owner}"


def test_tags_and_docs(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 40, f"{dag_id} has no doc_md"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_explicit(path):
    """catchup must be written in the @dag(...) call, not left to the config default."""
    tree = ast.parse(path.read_text())
    dag_calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "dag"
    ]
    assert dag_calls, f"{path.name} has no @dag(...)"
    for call in dag_calls:
        assert any(k.arg == "catchup" for k in call.keywords), f"{path.name}: @dag without catchup="


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_module_level(path):
    """DAG files stay declarations: pypaimon, pyarrow, pandas, pymysql and requests load inside tasks."""
    heavy = {"pypaimon", "pyarrow", "pandas", "pymysql", "requests", "great_expectations"}
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in heavy, f"{path.name} imports {name} at parse time"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_loads_no_heavy_module(path):
    """Not even indirectly (through lakehouse.*): checked in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pypaimon', 'pyarrow', 'pandas', 'pymysql', 'requests', 'great_expectations') "
        "if m in sys.modules]; "
        "print('HEAVY=' + ','.join(heavy))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["PYTHONPATH"] = str(DAGS_DIR.parent / "plugins")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], f"{path.name} loads {marker} at parse time"


def test_every_task_has_an_execution_timeout(dag_bag):
    """No task can run for ever: a hung call to Flink or a database fails the task (and the hook
    cancels the batch job it started) instead of holding a worker slot and the cluster's slots."""
    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} has no execution_timeout"
            assert task.execution_timeout.total_seconds() > 0, f"{dag_id}.{task.task_id}"


# ------------------------------------------------------------------ the UI on-call uses (issue 13, item 4)


def _python_callable(task):
    """The function a TaskFlow task (plain, sensor or mapped) calls; None for other operators."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    if isinstance(task, MappedOperator):
        return task.partial_kwargs.get("python_callable")
    return getattr(task, "python_callable", None)


def test_every_python_task_fails_without_retry_on_deterministic_errors(dag_bag):
    """A failed gate, a bad request or a wrong config fails the same way a minute later: every
    TaskFlow task is wrapped with lakehouse.core.tasks.no_retry_on_deterministic."""
    from lakehouse.core.tasks import fails_fast

    missing, seen = [], 0
    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            func = _python_callable(task)
            if func is None:
                continue
            seen += 1
            if not fails_fast(func):
                missing.append(f"{dag_id}.{task.task_id}")
    assert seen >= 20, f"only {seen} python tasks found: the check does not see them"
    assert not missing, "add @no_retry_on_deterministic under @task:\n" + "\n".join(missing)


def test_every_mapped_task_names_its_instances(dag_bag):
    """The grid shows a mapped task's table or day, not [0], [1]."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    mapped = [(d, t) for d, dag in dag_bag.dags.items() for t in dag.tasks if isinstance(t, MappedOperator)]
    assert mapped, "no mapped task found"
    missing = [f"{d}.{t.task_id}" for d, t in mapped if not t.map_index_template]
    assert not missing, f"mapped tasks without map_index_template: {missing}"


@pytest.mark.parametrize(
    "dag_id, task_id, upstream, items, expected",
    [
        (
            "t1_backfill",
            "backfill_lane",
            "lanes_of",
            [
                {"days": ["2026-11-01", "2026-11-03"], "tables": ["dws.dws_city_daily"], "dry_run": False},
                {"days": ["2026-11-02"], "tables": ["dws.dws_city_daily"], "dry_run": False},
            ],
            ["2026-11-01, 2026-11-03", "2026-11-02"],
        ),
        (
            "table_maintenance",
            "maintain",
            "plan",
            [
                {"table": "ods.ods_orders", "operations": ["compaction"], "dry_run": False},
                {"table": "dws.dws_city_daily", "operations": ["snapshots", "tags"], "dry_run": True},
            ],
            ["ods.ods_orders: compaction", "dws.dws_city_daily: snapshots, tags (dry run)"],
        ),
    ],
)
def test_map_index_template_renders_the_mapped_argument(dag_bag, dag_id, task_id, upstream, items, expected):
    """Rendered as the worker renders it before running the task (Airflow's own task runner)."""
    from tests.support.task_runner import run_task

    dag = dag_bag.dags[dag_id]
    rendered = [
        run_task(dag, task_id, map_index=i, xcoms={upstream: items}, prepare_only=True).rendered_map_index
        for i in range(len(items))
    ]
    assert rendered == expected


def test_flink_batch_work_is_capped_by_the_flink_batch_pool(dag_bag):
    """Every task that submits Flink batch statements takes slots of one pool, as many as its session's
    parallelism (the Flink slots it holds), whatever DAG it belongs to."""
    from lakehouse.batch.recompute import BATCH_SESSION
    from lakehouse.core.pools import FLINK_BATCH_POOL, slots_of
    from lakehouse.maintenance.operations import PROCEDURE_SESSION

    expected = {
        ("t1_daily", "recompute_day"): slots_of(BATCH_SESSION),
        ("t1_backfill", "backfill_lane"): slots_of(BATCH_SESSION),
        ("table_maintenance", "maintain"): slots_of(PROCEDURE_SESSION),
    }
    for (dag_id, task_id), slots in expected.items():
        task = dag_bag.dags[dag_id].get_task(task_id)
        assert (task.pool, task.pool_slots) == (FLINK_BATCH_POOL, slots), f"{dag_id}.{task_id}"
    others = [
        f"{d}.{t.task_id}"
        for d, dag in dag_bag.dags.items()
        for t in dag.tasks
        if t.pool == FLINK_BATCH_POOL and (d, t.task_id) not in expected
    ]
    assert not others, f"in the flink_batch pool but not known to submit batch work: {others}"


def test_great_expectations_validations_share_the_quality_pool(dag_bag):
    """13 GX tasks at once starved 2 cores (load 22): validations queue in the `quality` pool."""
    from lakehouse.core.pools import QUALITY_POOL

    checks = [t for t in dag_bag.dags["dq_streaming_checks"].tasks if t.task_id.startswith("check_")]
    assert len(checks) >= 10
    gx = checks + [dag_bag.dags["t1_daily"].get_task("audit")]
    assert {(t.task_id, t.pool) for t in gx} == {(t.task_id, QUALITY_POOL) for t in gx}


def test_every_pool_a_task_names_is_one_lakehouse_pools_creates(dag_bag):
    from lakehouse.core.pools import POOLS

    pools = {t.pool for dag in dag_bag.dags.values() for t in dag.tasks}
    assert pools <= {"default_pool", *POOLS}, pools


@pytest.mark.parametrize(
    "dag_id, approval, writes",
    [
        ("streaming_operations", "approve_restart_without_state", "run_operation"),
        ("t1_backfill", "approve_writes", "lanes_of"),
    ],
)
def test_destructive_operations_wait_for_an_approval(dag_bag, dag_id, approval, writes):
    """A restart without state and a backfill's writes run only after a human approved them in the UI."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    dag = dag_bag.dags[dag_id]
    gate = dag.get_task(approval)
    assert isinstance(gate, ApprovalOperator)
    assert approval in dag.get_task(writes).upstream_task_ids
    assert gate.response_timeout is not None, "an approval nobody gives must fail the run, not wait for ever"
    assert gate.defaults is None, "a timeout must not choose an option: it fails"
    assert gate.retries == 0, "a retry would ask again after the timeout"
