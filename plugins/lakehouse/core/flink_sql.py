"""The Flink SQL context every job and batch statement shares: the Paimon catalog and the values
its templates take from Airflow connections, quoted for SQL string literals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.core.resources import CDC_CONN_ID  # noqa: F401  (importable from here as before)
from lakehouse.core.sql_files import load_statements

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook


def sql_context(*, paimon: PaimonHook, cdc: MySqlHook | None = None) -> dict[str, Any]:
    """Variables for the SQL templates, taken from Airflow connections."""
    context: dict[str, Any] = {
        "paimon": {
            "warehouse_uri": paimon.warehouse_uri,
            # The other catalog options (S3 endpoint and keys for an s3:// warehouse; none for a
            # local one) as (name, value) pairs quoted for a SQL string literal.
            "catalog_options": [(sql_quote(k), sql_quote(v)) for k, v in paimon.flink_catalog_options.items()],
        }
    }
    if cdc is not None:
        params = cdc.connection_params()
        context["mysql"] = {
            "host": params["host"],
            "port": params["port"],
            "database": params["database"],
            "cdc_user": params["user"],
            "cdc_password": params["password"],
            # Each binlog reader needs a server id unique among the MySQL server's replicas.
            "server_id_base": int(params["extra"].get("server_id_base", 5400)),
        }
    return context


def sql_quote(value: str) -> str:
    """The text of a SQL string literal: a quote is doubled (a key or secret may contain one)."""
    return str(value).replace("'", "''")


def catalog_statements(paimon: PaimonHook) -> list[str]:
    return load_statements("catalog.sql", sql_context(paimon=paimon))
