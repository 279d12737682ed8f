"""config/serving.yaml: the StarRocks serving database and its materialized views, checked against the registry."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator
from pydantic_core import PydanticCustomError

from lakehouse.core.config import ConfigModel, load_yaml, validate
from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import CONFIG_DIR, SQL_DIR
from lakehouse.core.registry import Registry, registry
from lakehouse.core.sql_files import SqlFileError, sql_path
from lakehouse.hooks._base import MissingConnectionError, get_connection
from lakehouse.hooks.starrocks import StarRocksHook

log = logging.getLogger(__name__)

CONN_ID = StarRocksHook.default_conn_name
SERVING_FILE = CONFIG_DIR / "serving.yaml"
SQL_SUBDIR = "starrocks/"
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class ServingError(ConfigError):
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
def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise PydanticCustomError("identifier", "must be a lower snake case identifier")
    return value


def _view_sql(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(SQL_SUBDIR):
        raise PydanticCustomError("view_sql", f"must be a file under sql/{SQL_SUBDIR}")
    try:
        path = sql_path(value)
    except SqlFileError as exc:
        raise PydanticCustomError("view_sql", "{error}", {"error": str(exc)}) from None
    if (SQL_DIR / SQL_SUBDIR).resolve() not in path.parents:  # starrocks/../models/x.sql
        raise PydanticCustomError("view_sql", f"must be a file under sql/{SQL_SUBDIR}")
    return value


def _view_tables(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise PydanticCustomError("view_tables", "must list the registered DWS tables the view reads")
    return value


def _replicas(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PydanticCustomError("replicas", "must be an integer >= 1")
    return value


def _some_views(value: dict) -> dict:
    if not value:
        raise PydanticCustomError("no_views", "must map view names to their settings (sql, tables, description)")
    return value


Identifier = Annotated[str, PlainValidator(_identifier)]


class ViewSettings(ConfigModel):
    """One entry of materialized_views."""

    sql: Annotated[str, PlainValidator(_view_sql)]
    tables: Annotated[list[str], PlainValidator(_view_tables)]
    description: str = ""


class ServingFile(ConfigModel):
    """config/serving.yaml."""

    catalog: Identifier
    database: Identifier
    replication_num: Annotated[int, PlainValidator(_replicas)] = 1
    materialized_views: Annotated[dict[Identifier, ViewSettings], AfterValidator(_some_views)]


def load_serving(path: Path | None = None, reg: Registry | None = None) -> ServingConfig:
    """config/serving.yaml, checked: no unknown keys, names are identifiers, SQL files exist under
    sql/starrocks/, and every view reads registered DWS tables partitioned by dt (a day can be refreshed)."""
    path = path or SERVING_FILE
    reg = reg or registry()
    where = path.name
    try:
        data = validate(ServingFile, load_yaml(path), source=where)
    except ConfigError as exc:
        raise ServingError(str(exc)) from None
    views: dict[str, MaterializedView] = {}
    for name, spec in data.materialized_views.items():
        at = f"{where}: materialized_views.{name}.tables"
        for table in spec.tables:
            spec_t = reg.tables.get(table)
            if spec_t is None:
                raise ServingError(f"{at}: unknown table {table!r}; registered tables: {', '.join(sorted(reg.tables))}")
            if spec_t.layer != "dws" or spec_t.partition != "dt":
                raise ServingError(
                    f"{at}: {table} is a {spec_t.layer} table partitioned by {spec_t.partition!r}; "
                    f"views are built on DWS tables partitioned by dt"
                )
        views[name] = MaterializedView(name=name, sql=spec.sql, tables=tuple(spec.tables), description=spec.description)
    return ServingConfig(
        catalog=data.catalog, database=data.database, replication_num=data.replication_num, views=views
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
