"""The project's one error model: every error it raises on purpose is a `LakehouseError` of one kind.

Callers act on the kind, not on the message:

| kind                   | means                                                     | retry? |
|------------------------|-----------------------------------------------------------|--------|
| `ConfigError`          | a file under config/ (or a setting) is wrong: fix it      | no     |
| `BadRequest`           | a request (form, CLI, call) is wrong; nothing was written | no     |
| `GateFailed`           | a safety check said no (verification, quality gate, SLA,  | no     |
|                        | supervision, a day not complete); nothing was published   |        |
| `ExternalServiceError` | Flink, MySQL, Paimon or StarRocks failed or did not answer| yes    |

`retryable` says whether running the same thing again can succeed without a person: Airflow
retries are for the retryable kinds only (a failed gate or a bad request fails the same way every
time). Subclasses carry fields a caller can read instead of parsing messages.

Nothing here imports Airflow: Airflow's providers are moving away from raising `AirflowException`,
and a task that raises any exception fails the same way.
"""

from __future__ import annotations

from typing import ClassVar


class LakehouseError(Exception):
    """Base of every error the lakehouse raises on purpose."""

    retryable: ClassVar[bool] = False


class ConfigError(LakehouseError, ValueError):
    """A configuration file or setting is wrong; the message names the file, the key and the fix."""


class BadRequest(LakehouseError, ValueError):
    """A request is wrong (bad parameters, unknown names); nothing was written."""


class GateFailed(LakehouseError):
    """A safety check refused to go on (verification, quality gate, freshness, supervision)."""


class ExternalServiceError(LakehouseError):
    """An external system (Flink, MySQL, Paimon, StarRocks) failed or did not answer in time."""

    retryable: ClassVar[bool] = True
