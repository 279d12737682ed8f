"""StarRocks statements: the Paimon catalog, the serving database, the views and their per-day refresh."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lakehouse.core.days import parse_day
from lakehouse.core.errors import BadRequest
from lakehouse.core.registry import Registry, RegistryError, TableSpec, registry
from lakehouse.core.sql_files import load_statements
from lakehouse.serving.config import SQL_SUBDIR, MaterializedView, ServingConfig, ServingError, serving_config

if TYPE_CHECKING:
    from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)

# Fits in a StarRocks "..." string literal as it is: nothing to escape, nothing to break out of.
_SAFE_VALUE = re.compile(r'^[^"\\\r\n]*$')
# Where a rendered view reads from: FROM / JOIN followed by a name (subqueries start with "(").
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(?!\()([^\s,;()]+)", re.I)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_SECRET_PROPERTY = re.compile(r'("aws\.s3\.(?:access|secret)_key"\s*=\s*)"[^"]*"')


# ---------------------------------------------------------------------------------------- rendering
def _render_one(relative: str, context: Mapping[str, Any]) -> str:
    statements = load_statements(relative, context)
    if len(statements) != 1:
        raise ServingError(f"sql/{relative} must hold one statement, it holds {len(statements)}")
    return statements[0]


def _safe(value: Any, what: str) -> str:
    text = str(value)
    if not text or not _SAFE_VALUE.match(text):
        raise ServingError(
            f"{what} is empty or contains a quote, backslash or line break; "
            "it cannot be written into the catalog properties"
        )
    return text


def catalog_context(options: Mapping[str, Any], *, conn_id: str = "paimon_default") -> dict[str, Any]:
    """Catalog template values from the Paimon connection's catalog options (pypaimon/Flink names:
    `warehouse`, `s3.endpoint`, `s3.access-key`, `s3.secret-key`, `s3.path.style.access`)."""
    warehouse = str(options.get("warehouse") or "")
    if not warehouse:
        raise ServingError(f"connection '{conn_id}' has no 'warehouse' extra")
    warehouse = warehouse if "://" in warehouse else "file://" + warehouse  # as PaimonHook.warehouse_uri
    if re.search(r"\s", warehouse):
        raise ServingError(f"connection '{conn_id}': the warehouse contains whitespace")
    context: dict[str, Any] = {"warehouse": _safe(warehouse, f"connection '{conn_id}': warehouse"), "s3": None}
    if not any(str(key).startswith("s3.") for key in options):
        return context
    missing = [key for key in ("s3.endpoint", "s3.access-key", "s3.secret-key") if not options.get(key)]
    if missing:
        raise ServingError(
            f"connection '{conn_id}' has S3 options but not {', '.join(missing)}: "
            "StarRocks needs the endpoint and the key pair of an S3-compatible store"
        )
    endpoint = _safe(options["s3.endpoint"], f"connection '{conn_id}': s3.endpoint")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServingError(f"connection '{conn_id}': s3.endpoint {endpoint!r} is not an http(s) URL")
    path_style = str(options.get("s3.path.style.access", "false")).strip().lower()
    if path_style not in ("true", "false"):
        raise ServingError(f"connection '{conn_id}': s3.path.style.access must be true or false")
    context["s3"] = {
        "endpoint": endpoint,
        "enable_ssl": "true" if parts.scheme == "https" else "false",
        "enable_path_style_access": path_style,
        "access_key": _safe(options["s3.access-key"], f"connection '{conn_id}': s3.access-key"),
        "secret_key": _safe(options["s3.secret-key"], f"connection '{conn_id}': s3.secret-key"),
    }
    return context


def catalog_statement(
    options: Mapping[str, Any], *, config: ServingConfig | None = None, conn_id: str = "paimon_default"
) -> str:
    """CREATE EXTERNAL CATALOG over the warehouse. It holds the S3 secret key: never log it
    as it is (`redact`)."""
    config = config or serving_config()
    return _render_one(
        f"{SQL_SUBDIR}catalog.sql", {"catalog": config.catalog, **catalog_context(options, conn_id=conn_id)}
    )


def database_statement(*, config: ServingConfig | None = None) -> str:
    config = config or serving_config()
    return _render_one(f"{SQL_SUBDIR}database.sql", {"database": config.database})


def view_statement(view: MaterializedView, *, config: ServingConfig | None = None) -> str:
    """The view's CREATE MATERIALIZED VIEW, with its tables resolved in the Paimon catalog.

    source('<db>.<table>') is the only way a template names a table: it must be one the view
    declares (all registered DWS tables, see load_serving); afterwards every FROM/JOIN of the
    statement must be such a source, and every declared table must be read."""
    config = config or serving_config()
    sources: dict[str, str] = {}

    def source(name: str) -> str:
        if name not in view.tables:
            raise ServingError(
                f"sql/{view.sql}: source({name!r}) is not among the tables of {view.name} "
                f"in config/serving.yaml ({', '.join(view.tables)})"
            )
        database, table = name.split(".", 1)
        sources[name] = f"`{config.catalog}`.`{database}`.`{table}`"
        return sources[name]

    statement = _render_one(
        view.sql, {"view": config.qualified(view.name), "source": source, "replication_num": config.replication_num}
    )
    check_reads(statement, sources, where=f"sql/{view.sql}")
    unread = sorted(set(view.tables) - set(sources))
    if unread:
        raise ServingError(
            f"sql/{view.sql} never reads {', '.join(unread)}, which config/serving.yaml lists for "
            f"{view.name}: publishing it would refresh a view that does not depend on it"
        )
    return statement


def check_reads(statement: str, sources: Mapping[str, str], *, where: str) -> list[str]:
    """The tables a rendered view reads (its FROM/JOIN targets); each must be a source()."""
    reads = _READS.findall(_LITERAL.sub("''", statement))  # not words inside a COMMENT "..."
    stray = sorted({r for r in reads if r not in sources.values()})
    if stray:
        raise ServingError(
            f"{where} reads {', '.join(stray)} without source(): a view may read only the "
            "registered DWS tables config/serving.yaml lists for it"
        )
    if not reads:
        raise ServingError(f"{where} reads no table")
    return reads


def view_statements(*, config: ServingConfig | None = None) -> dict[str, str]:
    """Every view's CREATE MATERIALIZED VIEW, by view name (no secret in these)."""
    config = config or serving_config()
    return {name: view_statement(view, config=config) for name, view in config.views.items()}


def setup_statements(*, paimon: PaimonHook, config: ServingConfig | None = None) -> list[str]:
    """The catalog, the serving database and the views, in that order; all idempotent (IF NOT
    EXISTS). The first statement holds the S3 secret key: never log it as it is (`redact`)."""
    config = config or serving_config()
    return [
        catalog_statement(
            paimon.catalog_options, config=config, conn_id=getattr(paimon, "paimon_conn_id", "paimon_default")
        ),
        database_statement(config=config),
        *view_statements(config=config).values(),
    ]


def redact(statement: str) -> str:
    """The statement with the S3 key pair of a catalog replaced by ***."""
    return _SECRET_PROPERTY.sub(r'\1"***"', statement)


def _table_names(tables: Iterable[str | TableSpec], reg: Registry) -> list[str]:
    names = []
    for table in tables:
        name = table.name if isinstance(table, TableSpec) else table
        if not isinstance(name, str):
            raise BadRequest(f"published tables are given by name, got {table!r}")
        try:
            names.append(reg.table(name).name)
        except RegistryError as exc:
            raise BadRequest(str(exc)) from None
    return names


def refresh_statements(
    dt: str, tables: Iterable[str | TableSpec], *, config: ServingConfig | None = None, reg: Registry | None = None
) -> list[tuple[str, str]]:
    """(view, REFRESH statement) for the day `dt` of each view built on any of `tables`.

    `dt` must be a calendar day (YYYY-MM-DD); tables must be registered (tables without a view,
    such as DWD, are ignored)."""
    day = parse_day(dt, field="dt")
    config = config or serving_config()
    names = _table_names(tables, reg or registry())
    return [
        (
            f"{config.database}.{view.name}",
            _render_one(
                f"{SQL_SUBDIR}refresh.sql",
                {
                    "view": config.qualified(view.name),
                    "start": day.isoformat(),
                    "end": (day + timedelta(days=1)).isoformat(),
                },
            ),
        )
        for view in config.views_reading(names)
    ]
