"""StarRocks serving: a Paimon catalog, a serving database and the dashboards' materialized views.

StarRocks reads the DWS tables in place, through an external Paimon catalog over the warehouse
the Flink jobs write; dashboards query asynchronous materialized views kept in StarRocks' own
storage, not the lake. The views are partitioned by day and `REFRESH DEFERRED MANUAL`: nothing
refreshes them on a schedule or on lake changes. After each T+1 publish, `refresh_after_publish`
refreshes exactly the published day of the views built on the published tables, so a dashboard
shows published days and a view never materializes a day the streaming jobs are still writing.

What is served is config/serving.yaml, checked against the registry: a view reads only registered
DWS tables partitioned by `dt`, and its SQL names them only through `source()`. Values reach the
SQL after validation (`dt` is parsed as a date; catalog options contain no quote, backslash or line
break). StarRocks is optional: without the `starrocks_default` connection `serving_configured()`
is False and callers skip serving. See docs/SERVING.md.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import urlsplit

from airflow.sdk.exceptions import AirflowException

from lakehouse.batch import parse_day
from lakehouse.hooks._base import MissingConnectionError, get_connection
from lakehouse.hooks.starrocks import StarRocksHook, StarRocksUnavailableError
from lakehouse.paths import CONFIG_DIR
from lakehouse.registry import Registry, RegistryError, TableSpec, registry
from lakehouse.sql_files import SqlFileError, load_statements, sql_path

if TYPE_CHECKING:
    from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)

CONN_ID = StarRocksHook.default_conn_name
SERVING_FILE = CONFIG_DIR / "serving.yaml"
SQL_SUBDIR = "starrocks/"
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
# Fits in a StarRocks "..." string literal as it is: nothing to escape, nothing to break out of.
_SAFE_VALUE = re.compile(r'^[^"\\\r\n]*$')
# Where a rendered view reads from: FROM / JOIN followed by a name (subqueries start with "(").
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(?!\()([^\s,;()]+)", re.I)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_SECRET_PROPERTY = re.compile(r'("aws\.s3\.(?:access|secret)_key"\s*=\s*)"[^"]*"')


class ServingError(AirflowException):
    """config/serving.yaml, a catalog option, a rendered view or StarRocks' state is not usable."""


@dataclass(frozen=True)
class MaterializedView:
    name: str
    sql: str  # CREATE MATERIALIZED VIEW template, relative to sql/
    tables: tuple[str, ...]  # registered DWS tables it reads
    description: str = ""


@dataclass(frozen=True)
class ServingConfig:
    catalog: str
    database: str
    replication_num: int
    views: dict[str, MaterializedView]

    def qualified(self, view: str) -> str:
        return f"`{self.database}`.`{view}`"

    def views_reading(self, tables: Iterable[str]) -> list[MaterializedView]:
        """The views built on any of `tables`, in config order."""
        wanted = set(tables)
        return [v for v in self.views.values() if wanted.intersection(v.tables)]


# ---------------------------------------------------------------------------------- configuration
def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ServingError(f"{where}: {value!r} must be a lower snake case identifier")
    return value


def load_serving(path: Path | None = None, reg: Registry | None = None) -> ServingConfig:
    """config/serving.yaml, checked: names are identifiers, SQL files exist under sql/starrocks/,
    and every view reads registered DWS tables partitioned by dt (a day can be refreshed)."""
    import yaml

    path = path or SERVING_FILE
    reg = reg or registry()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ServingError(f"cannot read {path}: {exc}") from exc
    where = path.name
    replication = data.get("replication_num", 1)
    if not isinstance(replication, int) or isinstance(replication, bool) or replication < 1:
        raise ServingError(f"{where}: replication_num must be an integer >= 1, got {replication!r}")
    specs = data.get("materialized_views")
    if not isinstance(specs, dict) or not specs:
        raise ServingError(f"{where}: materialized_views must map view names to their settings")
    views: dict[str, MaterializedView] = {}
    for name, spec in specs.items():
        at = f"{where}: {name}"
        _identifier(name, f"{where}: view name")
        if not isinstance(spec, dict):
            raise ServingError(f"{at}: expected a mapping (sql, tables, description), got {spec!r}")
        sql = str(spec.get("sql", ""))
        if not sql.startswith(SQL_SUBDIR):
            raise ServingError(f"{at}: sql must be a file under sql/{SQL_SUBDIR}, got {sql!r}")
        try:
            sql_path(sql)
        except SqlFileError as exc:
            raise ServingError(f"{at}: {exc}") from None
        tables = spec.get("tables")
        if not isinstance(tables, list) or not tables:
            raise ServingError(f"{at}: tables must list the registered DWS tables the view reads")
        for table in tables:
            try:
                spec_t = reg.table(str(table))
            except RegistryError as exc:
                raise ServingError(f"{at}: {exc}") from None
            if spec_t.layer != "dws" or spec_t.partition != "dt":
                raise ServingError(f"{at}: {table} is a {spec_t.layer} table partitioned by {spec_t.partition!r}; "
                                   f"views are built on DWS tables partitioned by dt")
        views[name] = MaterializedView(name=name, sql=sql, tables=tuple(str(t) for t in tables),
                                       description=str(spec.get("description", "")))
    return ServingConfig(
        catalog=_identifier(data.get("catalog"), f"{where}: catalog"),
        database=_identifier(data.get("database"), f"{where}: database"),
        replication_num=replication,
        views=views,
    )


@lru_cache(maxsize=1)
def serving_config() -> ServingConfig:
    """The project's serving configuration, loaded once per process."""
    return load_serving()


def serving_configured(conn_id: str = CONN_ID) -> bool:
    """Whether the StarRocks connection is defined. StarRocks is optional (it runs in the Docker
    Compose stack only): callers such as t1_daily skip serving when this is False, e.g.

        if serving_configured():
            refresh_after_publish(dt, tables, starrocks=StarRocksHook())
    """
    try:
        get_connection(conn_id, example=StarRocksHook.conn_example)
    except MissingConnectionError:
        return False
    return True


# ---------------------------------------------------------------------------------------- rendering
def _render_one(relative: str, context: Mapping[str, Any]) -> str:
    statements = load_statements(relative, context)
    if len(statements) != 1:
        raise ServingError(f"sql/{relative} must hold one statement, it holds {len(statements)}")
    return statements[0]


def _safe(value: Any, what: str) -> str:
    text = str(value)
    if not text or not _SAFE_VALUE.match(text):
        raise ServingError(f"{what} is empty or contains a quote, backslash or line break; "
                           "it cannot be written into the catalog properties")
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
        raise ServingError(f"connection '{conn_id}' has S3 options but not {', '.join(missing)}: "
                           "StarRocks needs the endpoint and the key pair of an S3-compatible store")
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


def catalog_statement(options: Mapping[str, Any], *, config: ServingConfig | None = None,
                      conn_id: str = "paimon_default") -> str:
    """CREATE EXTERNAL CATALOG over the warehouse. It holds the S3 secret key: never log it
    as it is (`redact`)."""
    config = config or serving_config()
    return _render_one(f"{SQL_SUBDIR}catalog.sql",
                       {"catalog": config.catalog, **catalog_context(options, conn_id=conn_id)})


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
            raise ServingError(f"sql/{view.sql}: source({name!r}) is not among the tables of {view.name} "
                               f"in config/serving.yaml ({', '.join(view.tables)})")
        database, table = name.split(".", 1)
        sources[name] = f"`{config.catalog}`.`{database}`.`{table}`"
        return sources[name]

    statement = _render_one(view.sql, {"view": config.qualified(view.name), "source": source,
                                       "replication_num": config.replication_num})
    check_reads(statement, sources, where=f"sql/{view.sql}")
    unread = sorted(set(view.tables) - set(sources))
    if unread:
        raise ServingError(f"sql/{view.sql} never reads {', '.join(unread)}, which config/serving.yaml lists for "
                           f"{view.name}: publishing it would refresh a view that does not depend on it")
    return statement


def check_reads(statement: str, sources: Mapping[str, str], *, where: str) -> list[str]:
    """The tables a rendered view reads (its FROM/JOIN targets); each must be a source()."""
    reads = _READS.findall(_LITERAL.sub("''", statement))  # not words inside a COMMENT "..."
    stray = sorted({r for r in reads if r not in sources.values()})
    if stray:
        raise ServingError(f"{where} reads {', '.join(stray)} without source(): a view may read only the "
                           "registered DWS tables config/serving.yaml lists for it")
    if not reads:
        raise ServingError(f"{where} reads no table")
    return reads


def view_statements(*, config: ServingConfig | None = None) -> dict[str, str]:
    """Every view's CREATE MATERIALIZED VIEW, by view name (no secret in these)."""
    config = config or serving_config()
    return {name: view_statement(view, config=config) for name, view in config.views.items()}


def setup_statements(*, paimon: "PaimonHook", config: ServingConfig | None = None) -> list[str]:
    """The catalog, the serving database and the views, in that order; all idempotent (IF NOT
    EXISTS). The first statement holds the S3 secret key: never log it as it is (`redact`)."""
    config = config or serving_config()
    return [
        catalog_statement(paimon.catalog_options, config=config,
                          conn_id=getattr(paimon, "paimon_conn_id", "paimon_default")),
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
            raise ServingError(f"published tables are given by name, got {table!r}")
        try:
            names.append(reg.table(name).name)
        except RegistryError as exc:
            raise ServingError(str(exc)) from None
    return names


def refresh_statements(dt: str, tables: Iterable[str | TableSpec], *, config: ServingConfig | None = None,
                       reg: Registry | None = None) -> list[tuple[str, str]]:
    """(view, REFRESH statement) for the day `dt` of each view built on any of `tables`.

    `dt` must be a calendar day (YYYY-MM-DD); tables must be registered (tables without a view,
    such as DWD, are ignored)."""
    day = parse_day(dt, field="dt")
    config = config or serving_config()
    names = _table_names(tables, reg or registry())
    return [
        (f"{config.database}.{view.name}",
         _render_one(f"{SQL_SUBDIR}refresh.sql", {"view": config.qualified(view.name), "start": day.isoformat(),
                                                  "end": (day + timedelta(days=1)).isoformat()}))
        for view in config.views_reading(names)
    ]


# ---------------------------------------------------------------------------------------- execution
def _run(starrocks: StarRocksHook, statement: str, what: str) -> None:
    import pymysql

    try:
        starrocks.run_script([statement])
    except StarRocksUnavailableError:
        raise
    except pymysql.err.MySQLError as exc:
        # The server's message only: the statement may hold a secret (the catalog's keys).
        raise ServingError(f"StarRocks refused to {what}: {exc.args[-1] if exc.args else exc}") from exc


def setup_serving(*, starrocks: StarRocksHook, paimon: "PaimonHook", config: ServingConfig | None = None) -> list[str]:
    """Create what is missing: the catalog, the database, the views (a no-op when they exist;
    a changed view definition needs DROP MATERIALIZED VIEW first, see docs/SERVING.md).
    Returns what it ensured."""
    config = config or serving_config()
    statements = setup_statements(paimon=paimon, config=config)
    objects = [f"catalog {config.catalog}", f"database {config.database}",
               *(f"materialized view {config.database}.{name}" for name in config.views)]
    for what, statement in zip(objects, statements):
        _run(starrocks, statement, f"create {what}")
        log.info("ensured %s", what)
    return objects


def existing_views(starrocks: StarRocksHook, *, config: ServingConfig | None = None) -> set[str]:
    config = config or serving_config()
    rows = starrocks.get_records(
        "SELECT TABLE_NAME FROM information_schema.materialized_views WHERE TABLE_SCHEMA = %s", (config.database,))
    return {str(row[0]) for row in rows}


def refresh_after_publish(dt: str, tables: Iterable[str | TableSpec], *, starrocks: StarRocksHook,
                          config: ServingConfig | None = None) -> list[str]:
    """Refresh day `dt` of every view built on the tables a T+1 run has just published, one view
    after the other, each waiting for its refresh to finish. Returns the refreshed views
    (`<database>.<view>`), empty when no published table has a view.

    Pass every table the run published (re-runs included: a refresh is idempotent), by name.
    Call it only when `serving_configured()`: without the `starrocks_default` connection
    StarRocks is not part of the deployment and the caller skips serving cleanly; with it, an
    unreachable StarRocks or a failed refresh fails the call (StarRocksUnavailableError, ServingError).
    A view that does not exist yet fails with what to run (`setup_serving`)."""
    config = config or serving_config()
    planned = refresh_statements(dt, tables, config=config)
    if not planned:
        return []
    existing = existing_views(starrocks, config=config)
    missing = sorted(view for view, _ in planned if view.split(".", 1)[1] not in existing)
    if missing:
        raise ServingError(f"materialized views {', '.join(missing)} do not exist in StarRocks: create them with "
                           "lakehouse.serving.setup_serving (python -m lakehouse.serving setup)")
    refreshed = []
    for view, statement in planned:
        _run(starrocks, statement, f"refresh {view} for {dt}")
        log.info("refreshed %s for %s", view, dt)
        refreshed.append(view)
    return refreshed


def main(argv: list[str] | None = None) -> int:
    """python -m lakehouse.serving render | setup | refresh --dt YYYY-MM-DD [--tables ...]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lakehouse.serving", description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="print the setup statements (S3 keys redacted)")
    sub.add_parser("setup", help="create the catalog, database and views in StarRocks (idempotent)")
    refresh = sub.add_parser("refresh", help="refresh one day of the views on the given tables")
    refresh.add_argument("--dt", required=True)
    refresh.add_argument("--tables", nargs="*", help="published tables (default: every table with a view)")
    args = parser.parse_args(argv)

    from lakehouse.hooks.paimon import PaimonHook

    if args.command != "render" and not serving_configured():
        print(f"connection '{CONN_ID}' is not defined: StarRocks is not part of this deployment "
              f"(define AIRFLOW_CONN_{CONN_ID.upper()}, see docs/SERVING.md)")
        return 1
    if args.command == "render":
        for statement in setup_statements(paimon=PaimonHook()):
            print(redact(statement) + ";\n")
    elif args.command == "setup":
        for what in setup_serving(starrocks=StarRocksHook(), paimon=PaimonHook()):
            print("ok:", what)
    else:
        tables = args.tables or sorted({t for v in serving_config().views.values() for t in v.tables})
        for view in refresh_after_publish(args.dt, tables, starrocks=StarRocksHook()):
            print("refreshed:", view)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
