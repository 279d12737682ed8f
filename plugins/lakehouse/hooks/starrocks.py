"""StarRocks hook: the MySQL hook pointed at a StarRocks frontend (FE query port 9030).

StarRocks speaks the MySQL protocol, so this is `MySqlHook` with StarRocks' defaults: connection
`starrocks_default` (conn type `starrocks` or `mysql`; host, port, login, password; schema
optional, the serving SQL names every object in full), autocommit (StarRocks DDL and
materialized-view refreshes are not transactional), and errors that say StarRocks.
The connection is opened lazily, per call, like the MySQL hook's.
"""

from __future__ import annotations

from typing import Any

from lakehouse.core.resources import STARROCKS_CONN_ID
from lakehouse.hooks.mysql import MySqlHook, MySqlUnavailableError


class StarRocksUnavailableError(MySqlUnavailableError):
    """The StarRocks frontend does not accept connections."""


class StarRocksHook(MySqlHook):
    """pymysql connections to a StarRocks FE, built from an Airflow connection."""

    conn_name_attr = "starrocks_conn_id"
    default_conn_name = STARROCKS_CONN_ID
    conn_type = "starrocks"
    hook_name = "StarRocks (MySQL protocol, pymysql)"

    server_name = "StarRocks"
    default_port = 9030
    conn_example = (
        '{"conn_type": "starrocks", "host": "starrocks-fe", "port": 9030, "login": "lakehouse", "password": "..."}'
    )
    unavailable_error = StarRocksUnavailableError
    unavailable_hint = (
        "StarRocks runs in the Docker Compose stack only (docs/SERVING.md); "
        "without it, leave the connection undefined and serving is skipped."
    )
    transactional = False

    def __init__(self, starrocks_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(starrocks_conn_id, **kwargs)
        self.starrocks_conn_id = starrocks_conn_id
