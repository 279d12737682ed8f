"""Airflow's plugin loader must not walk the lakehouse package.

Airflow's plugin manager imports every .py file under [core] plugins_folder as a top-level module
named after its file, skipping what a `.airflowignore` excludes. Walking plugins/lakehouse/ would
load lakehouse/streaming/kubernetes/operator.py as `operator` (the standard library's name), every
__main__.py as `__main__` (running its CLI and exiting the Airflow process), and so on.
plugins/.airflowignore keeps the package out of that walk; the package itself is imported the normal
way, from PYTHONPATH=plugins.

These tests run real Airflow processes (the plugin manager, then `airflow tasks test` of a one-task
DAG) in a temporary AIRFLOW_HOME with SQLite: no MariaDB, Flink or network, about 20 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"]).resolve()
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()

# Runs in a fresh interpreter: loads plugins as every Airflow component does, then reports what the
# loader left behind.
PLUGIN_MANAGER_PROBE = """
import json, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
import kubernetes, kubernetes.client, operator
import lakehouse.streaming.kubernetes.manifests
print("PLUGIN-PROBE " + json.dumps({
    "import_errors": plugins_manager.get_import_errors(),
    "kubernetes": kubernetes.__file__,
    "operator": operator.__file__,
    "main": getattr(sys.modules["__main__"], "__file__", None),
    "top_level_package_files": sorted(
        name for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(sys.argv[1]) and not name.startswith("lakehouse")
    ),
}))
"""

# A DAG of one task that imports what the loader used to shadow, in the task's own process.
PROBE_DAG = """
from __future__ import annotations

import datetime

from airflow.sdk import dag, task


@dag(dag_id="plugin_probe", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def plugin_probe():
    @task
    def probe():
        import json
        import operator

        import kubernetes.client

        import lakehouse.streaming.kubernetes.manifests  # noqa: F401

        print("PLUGIN-PROBE " + json.dumps({"kubernetes": kubernetes.__file__, "operator": operator.__file__,
                                            "attrgetter": hasattr(operator, "attrgetter")}))

    probe()


plugin_probe()
"""


def _airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """The caller's environment minus every AIRFLOW* setting, plus a throw-away home and SQLite database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=os.pathsep.join([str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _probe_report(proc: subprocess.CompletedProcess) -> dict:
    output = proc.stdout + proc.stderr
    assert "Failed to import plugin" not in output, (
        "Airflow's plugin manager imported package files as plugins; plugins/.airflowignore must exclude "
        f"lakehouse/:\n{output[-4000:]}"
    )
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{output[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PLUGIN-PROBE ")]
    assert lines, f"the probe printed no report:\n{output[-4000:]}"
    return json.loads(lines[-1].removeprefix("PLUGIN-PROBE "))


def _assert_real_libraries(report: dict) -> None:
    assert Path(report["kubernetes"]).resolve().is_relative_to(SITE_PACKAGES), (
        f"`kubernetes` is {report['kubernetes']}, not the Kubernetes client in {SITE_PACKAGES}"
    )
    assert Path(report["operator"]).resolve().is_relative_to(STDLIB), (
        f"`operator` is {report['operator']}, not the standard library's"
    )


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_airflowignore_keeps_the_package_out_of_the_plugin_walk(syntax):
    from airflow._shared.module_loading import find_path_from_directory

    assert (PLUGINS / ".airflowignore").is_file(), "plugins/.airflowignore is missing"
    walked = [Path(p) for p in find_path_from_directory(PLUGINS, ".airflowignore", syntax)]
    inside = [str(p.relative_to(PLUGINS)) for p in walked if p.suffix == ".py" and "lakehouse" in p.parts]
    assert not inside, f"with [core] dag_ignore_file_syntax={syntax} the plugin loader would import {inside}"


def test_plugin_manager_loads_no_package_file_and_shadows_nothing(tmp_path):
    proc = _run(
        ["-c", PLUGIN_MANAGER_PROBE, str(PLUGINS / "lakehouse")],
        _airflow_env(tmp_path / "airflow", tmp_path / "dags"),
        cwd=tmp_path,
    )
    report = _probe_report(proc)
    assert report["import_errors"] == {}, report["import_errors"]
    assert report["top_level_package_files"] == [], (
        f"package files loaded as top-level modules: {report['top_level_package_files']}"
    )
    assert report["main"] is None, f"__main__ was replaced by {report['main']}"
    _assert_real_libraries(report)


def test_a_task_runs_in_a_real_airflow_process(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "plugin_probe.py").write_text(PROBE_DAG)
    env = _airflow_env(tmp_path / "airflow", dags)
    migrate = _run(["-m", "airflow", "db", "migrate"], env, cwd=tmp_path)
    assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-4000:]
    report = _probe_report(
        _run(["-m", "airflow", "tasks", "test", "plugin_probe", "probe", "2026-01-01"], env, cwd=tmp_path)
    )
    assert report["attrgetter"], "`operator` in the task process lacks attrgetter: shadowed"
    _assert_real_libraries(report)
