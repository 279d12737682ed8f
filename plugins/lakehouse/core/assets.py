"""Every registered Paimon table is an Airflow Asset, so DAGs can be scheduled on data.

Parsing-time cheap: builds Asset objects from the registry, no I/O beyond the config files.
"""

from __future__ import annotations

from airflow.sdk import Asset

from lakehouse.core.registry import TableSpec, registry


def table_asset(table: TableSpec | str) -> Asset:
    name = table if isinstance(table, str) else table.name
    registry().table(name)  # unknown names are an error
    database, table_name = name.split(".", 1)
    return Asset(name=name, uri=f"paimon://lakehouse/{database}/{table_name}", group="paimon")
