"""What the hooks share: looking up an Airflow connection with an error that says how to fix it."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from lakehouse.core.errors import ConfigError


class MissingConnectionError(ConfigError):
    """The Airflow connection a hook needs is not defined."""


def get_connection(conn_id: str, *, example: str):
    """Return the Airflow connection `conn_id` or raise an error that shows how to define it."""
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        env = "AIRFLOW_CONN_" + conn_id.upper()
        raise MissingConnectionError(
            f"Airflow connection '{conn_id}' is not defined. Define it in the Airflow UI "
            f"(Admin > Connections) or as an environment variable, e.g. {env}='{example}' "
            f"(scripts/env.sh sets the local defaults)."
        ) from exc
