"""Every DAG sends its final task failures through the notifier; t1_daily and
streaming_supervision carry their deadline alerts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIRFLOW_CONN_")}
    try:
        bag = DagBag(dag_folder=str(DAGS_DIR), include_examples=False)
    finally:
        os.environ.update(saved)
    assert bag.import_errors == {}, bag.import_errors
    return bag


def test_every_task_of_every_dag_alerts_on_its_final_failure(dag_bag):
    from lakehouse.alerts.notifier import LakehouseNotifier

    assert len(dag_bag.dags) >= 8
    missing = []
    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
            if sum(isinstance(cb, LakehouseNotifier) for cb in callbacks) != 1:
                missing.append(f"{dag_id}.{task.task_id}")
    assert not missing, f"tasks without exactly one LakehouseNotifier on_failure_callback: {missing}"


def test_no_dag_alerts_on_retries(dag_bag):
    """A task that will be retried is not a failure yet: only on_failure_callback alerts."""
    from lakehouse.alerts.notifier import LakehouseNotifier

    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_retry_callback or []
            callbacks = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
            assert not any(isinstance(cb, LakehouseNotifier) for cb in callbacks), f"{dag_id}.{task.task_id}"


def test_no_dag_carries_a_deadline_until_the_triggerer_runs_them_safely(dag_bag):
    """The deadline callbacks (lakehouse.alerts.notifier.t1_published_deadline, streaming_down_deadline)
    are built and unit-tested, but not wired: on the live stack the triggerer's runner died
    ("Response read out of order") right after running one, and the t1 deadline of the first run
    after a fresh start was already past. docs/ALERTS.md says what remains to do."""
    assert {dag_id for dag_id, dag in dag_bag.dags.items() if dag.deadline} == set()
