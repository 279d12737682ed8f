"""DAGs live from the first start (docs/AIRFLOW.md): the operational DAGs and t1_daily are unpaused when the
dag-processor first stores them; t1_daily has no catchup, so its first scheduled run is for the latest
complete day, not one run per day since its start_date."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
LIVE = ["streaming_supervision", "table_freshness", "dq_streaming_checks", "table_maintenance", "t1_daily"]
ON_CALL = ["streaming_deploy", "streaming_operations", "t1_backfill"]


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR), include_examples=False)
    assert not bag.import_errors, bag.import_errors
    return bag.dags


@pytest.mark.parametrize("dag_id", LIVE)
def test_scheduled_dags_are_unpaused_upon_creation(dags, dag_id):
    assert dags[dag_id].is_paused_upon_creation is False


@pytest.mark.parametrize("dag_id", ON_CALL)
def test_on_call_dags_are_unpaused_so_a_triggered_run_starts(dags, dag_id):
    """Paused, a run triggered over REST or the CLI (not the UI form, which offers to unpause) stayed
    queued with nothing saying why."""
    assert dags[dag_id].is_paused_upon_creation is False


@pytest.mark.parametrize("dag_id", ON_CALL)
def test_on_call_dags_have_no_schedule(dags, dag_id):
    """Triggered only; nothing runs them on a timer."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    assert coerce_to_core_timetable(dags[dag_id].timetable).can_be_scheduled is False


def test_t1_daily_first_run_is_the_latest_complete_day_not_a_catchup(dags, monkeypatch):
    import airflow.timetables.interval as interval
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    dag = dags["t1_daily"]
    assert dag.catchup is False
    # The dag-processor first sees the DAG on 2026-11-29 18:30, nine days after its start_date.
    monkeypatch.setattr(interval, "utcnow", lambda: pendulum.datetime(2026, 11, 29, 18, 30, tz="UTC"))
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    timetable = coerce_to_core_timetable(dag.timetable)
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert (first.data_interval.start, first.data_interval.end) == (
        pendulum.datetime(2026, 11, 28, tz="UTC"),
        pendulum.datetime(2026, 11, 29, tz="UTC"),
    )


def test_t1_daily_start_date_is_fixed(dags):
    """A start date computed at parse time would move with every parse (and with every deploy)."""
    from airflow.dag_processing.dagbag import DagBag

    again = DagBag(dag_folder=str(DAGS_DIR / "t1_daily.py"), include_examples=False).dags["t1_daily"]
    assert again.start_date == dags["t1_daily"].start_date == pendulum.datetime(2026, 11, 20, tz="UTC")
