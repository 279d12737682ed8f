"""The error model drives Airflow's retries: a deterministic failure fails the task at once.

Airflow retries a task that raises anything, `retries` times, `retry_delay` apart. That is right for
Flink or a database that did not answer (`ExternalServiceError`, and the gates marked `retryable`:
another run holds the lease, the source is still changing), and wrong for everything else the
project raises on purpose: a bad request, a wrong config file or a failed quality gate fails the
same way a minute later, and the retry only delays the alert (and, for a backfill lane, rebuilds
every day again before failing again).

Every Python task in dags/ is wrapped with `no_retry_on_deterministic`, between `@task` and the
function (tests/unit/test_dag_integrity.py checks that none is missed):

    @task
    @no_retry_on_deterministic
    def audit(result: dict, run_id=None) -> dict:
        ...

A `LakehouseError` whose `retryable` is false is re-raised as Airflow's `AirflowFailException`
(the one exception the task runner fails without retrying), with the original as its `__cause__`
and its class, kind and message in the text. Retryable errors and every other exception propagate
unchanged, so Airflow retries them as configured (an unexpected exception may be transient).

Why a decorator and not a cluster policy (`task_policy` in `airflow_local_settings.py`): a policy
runs where Airflow finds that module on its path, so a deployment that forgets to install it would
silently retry gates again; the decorator is in the DAG files and travels with them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from lakehouse.core.errors import BadRequest, ConfigError, ExternalServiceError, GateFailed, LakehouseError

F = TypeVar("F", bound=Callable[..., Any])

MARKER = "__lakehouse_no_retry_on_deterministic__"
KINDS = (ConfigError, BadRequest, GateFailed, ExternalServiceError)


def kind_of(exc: LakehouseError) -> str:
    """The kind of a LakehouseError ('GateFailed', ...), or 'LakehouseError' for the bare base."""
    return next((k.__name__ for k in KINDS if isinstance(exc, k)), "LakehouseError")


def is_deterministic(exc: BaseException) -> bool:
    """True for the project's errors that fail the same way when run again: retrying cannot help."""
    return isinstance(exc, LakehouseError) and not getattr(exc, "retryable", False)


def no_retry_on_deterministic(func: F) -> F:
    """Wrap a task function so that a non-retryable LakehouseError fails the task without retries."""

    @functools.wraps(func)  # keeps __name__ (the task id) and the signature Airflow reads context from
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LakehouseError as exc:
            if not is_deterministic(exc):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{type(exc).__name__} ({kind_of(exc)}, not retried: it fails the same way until fixed): {exc}"
            ) from exc

    setattr(wrapper, MARKER, True)
    return wrapper  # type: ignore[return-value]


def fails_fast(func: Callable[..., Any] | None) -> bool:
    """Whether a task's python callable is wrapped by no_retry_on_deterministic."""
    return bool(func is not None and getattr(func, MARKER, False))
