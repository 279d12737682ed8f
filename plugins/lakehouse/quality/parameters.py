"""Run-time values the suites compare with: a day's bounds and the closed day's totals from the source of truth."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from lakehouse.core.registry import registry
from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)
# GX logs hundreds of INFO lines while it imports; keep task logs readable.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def ods_day_sources() -> dict[str, tuple[str, str]]:
    """Partitioned ODS tables that mirror MariaDB, with the MariaDB table and the column whose day is
    the row's partition: their closed-day row count is reconciled against it (tables.yaml: source;
    registry names, lower snake case, not user input)."""
    return {t.name: (t.source, t.source_day_column) for t in registry().mirrored_tables() if t.source_day_column}


# ------------------------------------------------------------------------------------ parameters
def day_parameters(dt: str, *, now: datetime | None = None) -> dict:
    """Bounds every partition of day `dt` is checked against (naive UTC, as Paimon's timestamps).

    A time after the check itself (plus an hour of clock skew) is a wrong clock at the source; a
    late update of an old day legitimately carries today's time, so the bound is not the day's."""
    import pandas as pd

    start = pd.Timestamp(dt)
    checked_at = pd.Timestamp(now or datetime.now(UTC)).tz_convert(None)  # `now`: timezone-aware
    return {
        "day_start": start,
        "day_end": start + pd.Timedelta(days=1),
        "latest_plausible_time": checked_at + pd.Timedelta(hours=1),
    }


def _sum(data, column: str, mask=None) -> float:
    values = data.column(column).to_pylist()
    keeps = mask or [True] * len(values)
    return float(sum(float(v) for v, keep in zip(values, keeps, strict=True) if keep and v is not None))


def known_shop_ids(paimon: PaimonHook) -> list[int]:
    """The shops DWD's referential-integrity expectation accepts: every shop in ODS."""
    return sorted(set(paimon.read_arrow("ods.ods_shops", columns=["shop_id"]).column(0).to_pylist()))


def closed_day_parameters(
    table: str, dt: str, *, paimon: PaimonHook, mysql, read_snapshots: dict[str, int | None] | None = None
) -> dict:
    """Reconciliation values for a closed day: MariaDB's row counts for ODS, DWD's totals for DWS,
    ODS's events for the traffic table, the known shops for DWD.

    `read_snapshots` are the input snapshots the table's recomputation read (its report's
    source_snapshots): a DWS partition is reconciled with DWD as it read it, not with a DWD that
    late changes have moved on since."""
    params = day_parameters(dt)
    read = read_snapshots or {}
    tolerance = 0.005  # sums are compared as floats: within half a cent
    day_sources = ods_day_sources()
    if table in day_sources:
        source, column = day_sources[table]
        start, end = params["day_start"].to_pydatetime(), params["day_end"].to_pydatetime()
        params["source_rows"] = int(
            mysql.get_first(
                f"SELECT COUNT(*) FROM `{source}` WHERE `{column}` >= %s AND `{column}` < %s", (start, end)
            )[0]
        )
    elif table == "dwd.dwd_order_fact":
        params["known_shop_ids"] = known_shop_ids(paimon)
    elif table == "dws.dws_shop_traffic_hourly":
        events = paimon.read_arrow(
            "ods.ods_user_events",
            partition={"dt": dt},
            columns=["event_id"],
            snapshot_id=read.get("ods.ods_user_events"),
        ).num_rows
        params["ods_events_min"] = params["ods_events_max"] = events
    elif table.startswith("dws."):
        dwd = paimon.read_arrow(
            "dwd.dwd_order_fact",
            partition={"dt": dt},
            snapshot_id=read.get("dwd.dwd_order_fact"),
            columns=["status", "amount", "platform_subsidy", "shop_subsidy"],
        )
        live = [s != "CANCELLED" for s in dwd.column("status").to_pylist()]
        totals = {
            "dwd_orders": float(dwd.num_rows),
            "dwd_gmv": _sum(dwd, "amount", live),
            "dwd_subsidy_total": _sum(dwd, "platform_subsidy", live) + _sum(dwd, "shop_subsidy", live),
        }
        for name, value in totals.items():
            params[f"{name}_min"], params[f"{name}_max"] = value - tolerance, value + tolerance
    return params
