"""The Flink SQL context every job and batch statement shares: the Paimon catalog and the values
its templates take from Airflow connections.

The values are passed as they are; the templates write each into a literal with the `sql_string`
filter (lakehouse.core.sql_files), the one place that quotes. The secrets among them are
registered with lakehouse.core.secrets, so the Flink hook masks them wherever they reappear."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakehouse.core.resources import CDC_CONN_ID
from lakehouse.core.secrets import is_secret_name, register_secret
from lakehouse.core.sql_files import SqlFileError, load_statements, sql_identifier, sql_int

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook


def sql_context(*, paimon: PaimonHook, cdc: MySqlHook | None = None) -> dict[str, Any]:
    """Variables for the SQL templates, taken from Airflow connections."""
    options = paimon.flink_catalog_options
    for name, value in options.items():
        # An access key id is masked by name only (lakehouse.core.secrets); 'accessKeySecret' is a secret.
        if is_secret_name(name) and not re.fullmatch(r"[\w.-]*access[-_.]?key(?:[-_.]?id)?", name, re.I):
            register_secret(value)
    context: dict[str, Any] = {
        "paimon": {
            "warehouse_uri": paimon.warehouse_uri,
            # The other catalog options (S3 endpoint and keys for an s3:// warehouse; none for a
            # local one) as (name, value) pairs.
            "catalog_options": list(options.items()),
        }
    }
    if cdc is not None:
        params = cdc.connection_params()
        conn_id = getattr(cdc, "mysql_conn_id", CDC_CONN_ID)
        register_secret(params["password"])
        context["mysql"] = {
            "host": params["host"],
            "port": _checked(sql_int, params["port"], conn_id, "port"),
            # A regular expression to Flink CDC: a plain name matches only itself.
            "database": _checked(sql_identifier, params["database"], conn_id, "database (schema)"),
            "cdc_user": params["user"],
            "cdc_password": params["password"],
            # Each binlog reader needs a server id unique among the MySQL server's replicas.
            "server_id_base": _checked(
                sql_int, params["extra"].get("server_id_base", 5400), conn_id, "extra server_id_base"
            ),
        }
    return context


def _checked(check: Callable[[Any], Any], value: Any, conn_id: str, field: str) -> Any:
    try:
        return check(value)
    except SqlFileError as exc:
        raise SqlFileError(f"connection '{conn_id}': {field}: {exc}; fix the connection") from None


def sql_quote(value: str) -> str:
    """The text of a SQL string literal without its quotes: a quote is doubled (for SQL built in
    Python; templates use the `sql_string` filter)."""
    return str(value).replace("'", "''")


def catalog_statements(paimon: PaimonHook) -> list[str]:
    return load_statements("catalog.sql", sql_context(paimon=paimon))
