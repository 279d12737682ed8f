"""Every DAG sends its final task failures through the notifier; t1_daily and
streaming_supervision carry their deadline alerts."""

from __future__ import annotations

import os
from datetime import timedelta
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


def _deadlines(dag) -> list:
    return list(dag.deadline or [])


def test_t1_daily_has_no_deadline_check_t1_published_watches_it(dag_bag):
    """In Airflow 3.2.1, `airflow dags test` of a DAG with a deadline fails (DagRun.update_state looks
    each DeadlineAlert of the SDK DAG up as if it were a stored id: "'dict' object has no attribute
    'hex'"), and on-call and the tests run t1_daily that way. The publication is watched from the
    tags instead (table_freshness.check_t1_published, lakehouse.batch.published)."""
    assert not _deadlines(dag_bag.dags["t1_daily"])
    assert "check_t1_published" in dag_bag.dags["table_freshness"].task_ids


def test_streaming_supervision_has_its_job_down_deadline(dag_bag):
    from airflow.sdk import DeadlineReference

    from lakehouse.alerts.settings import load_settings

    (alert,) = _deadlines(dag_bag.dags["streaming_supervision"])
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=load_settings().deadlines.streaming_down_minutes)
    assert alert.callback.kwargs["alert"] == "streaming_job_down"


@pytest.mark.parametrize("dag_id", ["streaming_supervision"])
def test_the_dags_with_deadlines_serialize(dag_bag, dag_id):
    """The scheduler stores the deadline in the serialized DAG: it must serialize and come back."""
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(dag_bag.dags[dag_id])
    assert data["dag"]["deadline"], "the deadline was not serialized"
    DagSerialization.from_dict(data)
