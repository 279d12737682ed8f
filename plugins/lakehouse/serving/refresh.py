"""Running the statements on StarRocks: setup, and the refresh of a day after its T+1 publish."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lakehouse.core.errors import ExternalServiceError
from lakehouse.core.registry import TableSpec
from lakehouse.hooks.starrocks import StarRocksHook, StarRocksUnavailableError
from lakehouse.serving.config import ServingConfig, ServingError, serving_config
from lakehouse.serving.render import refresh_statements, setup_statements

if TYPE_CHECKING:
    from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- execution
def _run(starrocks: StarRocksHook, statement: str, what: str) -> None:
    import pymysql

    try:
        starrocks.run_script([statement])
    except StarRocksUnavailableError:
        raise
    except pymysql.err.MySQLError as exc:
        # The server's message only: the statement may hold a secret (the catalog's keys).
        raise ExternalServiceError(f"StarRocks refused to {what}: {exc.args[-1] if exc.args else exc}") from exc


def setup_serving(*, starrocks: StarRocksHook, paimon: PaimonHook, config: ServingConfig | None = None) -> list[str]:
    """Create what is missing: the catalog, the database, the views (a no-op when they exist;
    a changed view definition needs DROP MATERIALIZED VIEW first, see docs/SERVING.md).
    Returns what it ensured."""
    config = config or serving_config()
    statements = setup_statements(paimon=paimon, config=config)
    objects = [
        f"catalog {config.catalog}",
        f"database {config.database}",
        *(f"materialized view {config.database}.{name}" for name in config.views),
    ]
    for what, statement in zip(objects, statements, strict=True):
        _run(starrocks, statement, f"create {what}")
        log.info("ensured %s", what)
    return objects


def existing_views(starrocks: StarRocksHook, *, config: ServingConfig | None = None) -> set[str]:
    config = config or serving_config()
    rows = starrocks.get_records(
        "SELECT TABLE_NAME FROM information_schema.materialized_views WHERE TABLE_SCHEMA = %s", (config.database,)
    )
    return {str(row[0]) for row in rows}


def refresh_after_publish(
    dt: str, tables: Iterable[str | TableSpec], *, starrocks: StarRocksHook, config: ServingConfig | None = None
) -> list[str]:
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
        raise ServingError(
            f"materialized views {', '.join(missing)} do not exist in StarRocks: create them with "
            "lakehouse.serving.refresh.setup_serving (python -m lakehouse.serving setup)"
        )
    refreshed = []
    for view, statement in planned:
        _run(starrocks, statement, f"refresh {view} for {dt}")
        log.info("refreshed %s for %s", view, dt)
        refreshed.append(view)
    return refreshed
