"""Deterministic failures are not retried: the error model drives Airflow's retries
(lakehouse.core.tasks), checked through Airflow's own task runner."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from lakehouse.batch.leases import LeaseHeld
from lakehouse.core.errors import BadRequest, ConfigError, ExternalServiceError, GateFailed
from lakehouse.core.tasks import fails_fast, is_deterministic, kind_of, no_retry_on_deterministic
from lakehouse.quality.audit import QualityGateFailed
from tests.support.task_runner import run_task


def _dag_raising(exc: BaseException | None, *, retries: int = 2):
    from airflow.sdk import dag, task

    @dag(dag_id="raises", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False)
    def raises():
        @task(retries=retries)
        @no_retry_on_deterministic
        def work(table: str = "dws.dws_city_daily", ti=None) -> str:
            assert ti is not None, "the context argument reached the function"
            if exc is not None:
                raise exc
            return table

        work()

    return raises()


@pytest.mark.parametrize(
    "exc",
    [QualityGateFailed("3 critical expectations failed"), BadRequest("bad day"), ConfigError("bad key")],
    ids=["gate", "bad-request", "config"],
)
def test_a_deterministic_failure_fails_the_task_without_retry(exc):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState
    from airflow.sdk.exceptions import AirflowFailException

    outcome = run_task(_dag_raising(exc), "work", should_retry=True)  # retries are left
    assert outcome.state == TaskInstanceState.FAILED
    assert outcome.message.state == TaskInstanceState.FAILED
    assert isinstance(outcome.error, AirflowFailException)
    assert outcome.error.__cause__ is exc  # the original, with its fields, for the log and callbacks
    assert type(exc).__name__ in str(outcome.error) and str(exc) in str(outcome.error)


@pytest.mark.parametrize(
    "exc",
    [
        ExternalServiceError("Flink did not answer"),
        LeaseHeld("held by t1_daily", dt="2026-11-24", holders={}),
        KeyError("unexpected"),
    ],
    ids=["external", "retryable-gate", "unknown"],
)
def test_a_transient_failure_is_retried(exc):
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    outcome = run_task(_dag_raising(exc), "work", should_retry=True)
    assert outcome.state == TaskInstanceState.UP_FOR_RETRY
    assert outcome.error is exc


def test_success_passes_the_return_value_and_arguments_through():
    from airflow.sdk.api.datamodels._generated import TaskInstanceState

    outcome = run_task(_dag_raising(None), "work")
    assert outcome.state == TaskInstanceState.SUCCESS


def test_the_wrapper_keeps_name_signature_and_marker():
    def recompute_day(dt: str, run_id=None) -> dict:
        return {}

    wrapped = no_retry_on_deterministic(recompute_day)
    assert wrapped.__name__ == "recompute_day"
    assert inspect.signature(wrapped) == inspect.signature(recompute_day)
    assert fails_fast(wrapped) and not fails_fast(recompute_day) and not fails_fast(None)


def test_kinds_and_retryable():
    assert kind_of(QualityGateFailed("x")) == "GateFailed"
    assert kind_of(BadRequest("x")) == "BadRequest"
    assert is_deterministic(GateFailed("x")) and not is_deterministic(ExternalServiceError("x"))
    assert not is_deterministic(LeaseHeld("x", dt="2026-11-24", holders={}))
    assert not is_deterministic(ValueError("x"))

    class RetryableGate(GateFailed):
        retryable = True

    assert not is_deterministic(RetryableGate("x"))
