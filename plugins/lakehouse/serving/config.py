"""config/serving.yaml: the StarRocks serving database and its materialized views, checked against the registry."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from airflow.sdk.exceptions import AirflowException

from lakehouse.hooks._base import MissingConnectionError, get_connection
from lakehouse.hooks.starrocks import StarRocksHook
from lakehouse.core.paths import CONFIG_DIR
from lakehouse.core.registry import Registry, RegistryError, registry
from lakehouse.core.sql_files import SqlFileError, sql_path

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)



CONN_ID = StarRocksHook.default_conn_name
SERVING_FILE = CONFIG_DIR / "serving.yaml"
SQL_SUBDIR = "starrocks/"
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


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


