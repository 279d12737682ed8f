"""The T+1 day: is it complete, recompute it, check it, publish it.

Used by the `t1_daily` DAG (one run per day, tags the day) and the `t1_backfill` DAG (date
ranges, never moves a published tag).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal

from lakehouse.batch.leases import LeaseManager
from lakehouse.batch.recompute import PartitionReport, recomputable_tables, recompute_partition
from lakehouse.core.days import day_bounds, parse_day, tag_name
from lakehouse.core.errors import GateFailed
from lakehouse.core.registry import Registry, TableSpec, pipeline_prefix, registry
from lakehouse.hooks.flink import FlinkHook
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook, pin_holder_name

log = logging.getLogger(__name__)


def day_sources(reg: Registry | None = None) -> list[TableSpec]:
    """The mirrored ODS tables a day's recomputation reads (the partitioned inputs of the recomputable
    tables), each with its MySQL table and the column that dates a change (tables.yaml: source)."""
    reg = reg or registry()
    inputs = {t.name for target in recomputable_tables(reg) for t in reg.partitioned_inputs(target.name)}
    return [t for t in reg.mirrored_tables() if t.name in inputs]


class VerificationFailed(GateFailed):
    """The recomputed partitions do not add up to ODS; nothing is published. `dt` is the day and
    `problems` lists each check that failed (what, expected, got)."""

    def __init__(self, dt: str, problems: list[str]):
        super().__init__(f"T+1 verification of {dt} failed, nothing published:\n- " + "\n- ".join(problems))
        self.dt = dt
        self.problems = list(problems)


def day_complete(dt: str, *, paimon: PaimonHook, mysql: MySqlHook, flink: FlinkHook) -> tuple[bool, str]:
    """Whether ODS holds every change of day `dt` that the source has.

    Per source table: ODS has caught up when the newest binlog time it holds is at or after
    min(end of day, the source's newest change). Reading the binlog in order, the CDC job
    then has every change up to that point. A quiet source (no change after the day) counts
    as caught up once ODS holds its last change.
    """
    _, day_end = day_bounds(dt)
    reg = registry()
    sources = day_sources(reg)
    for writer in dict.fromkeys(job.name for t in sources for job in reg.writers(t.name)):  # the CDC job
        cdc_job = pipeline_prefix() + writer
        if not flink.active_jobs_named(cdc_job):
            return False, f"{cdc_job} is not running"
    reasons = []
    for spec in sources:
        table, source, column = spec.name, spec.source, spec.source_change_column
        newest_source = mysql.get_first(f"SELECT MAX(`{column}`) FROM `{source}`")[
            0
        ]  # registry names: lower snake case
        if newest_source is None:
            continue
        target = min(day_end, newest_source.replace(tzinfo=UTC))
        binlog = paimon.read_arrow(table, columns=["binlog_ts"]).column(0).to_pylist()
        newest_ods = max((b for b in binlog if b is not None), default=None)
        if newest_ods is not None and newest_ods.tzinfo is None:
            newest_ods = newest_ods.replace(tzinfo=UTC)
        if newest_ods is None or newest_ods < target:
            reasons.append(f"{table} has changes up to {newest_ods} but needs {target:%Y-%m-%d %H:%M:%S}")
    return (not reasons), ("; ".join(reasons) or f"ODS holds every change of {dt}")


@dataclass
class DayResult:
    dt: str
    reports: list[PartitionReport] = field(default_factory=list)
    pin_holder: str = ""  # who pinned the OVERWRITE snapshots (publish_day unpins with it)
    checks: list[str] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)


def _sum(table, column, mask=None) -> Decimal:
    values = table.column(column).to_pylist()
    flags = mask if mask is not None else [True] * len(values)
    return sum((v for v, keep in zip(values, flags, strict=True) if keep and v is not None), Decimal(0))


def verify_day(dt: str, reports: list[PartitionReport], *, paimon: PaimonHook) -> list[str]:
    """Row counts and totals of the recomputed partitions against ODS; raises on any mismatch."""
    snap = {r.table: r.overwrite_snapshot_id for r in reports if not r.dry_run}
    problems, checks = [], []

    def check(what: str, expected, actual) -> None:
        line = f"{what}: expected {expected}, got {actual}"
        (checks if expected == actual else problems).append(line)

    ods = paimon.read_arrow("ods.ods_orders", partition={"dt": dt}, columns=["amount", "status"])
    statuses = ods.column("status").to_pylist()
    amounts = ods.column("amount").to_pylist()
    known = registry().table("ods.ods_orders").statuses
    valid = [a is not None and a > 0 and s in known for a, s in zip(amounts, statuses, strict=True)]
    valid_count = sum(valid)
    valid_amount = _sum(ods, "amount", valid)
    gmv = _sum(ods, "amount", [v and s != "CANCELLED" for v, s in zip(valid, statuses, strict=True)])
    if "dwd.dwd_order_fact" in snap:
        dwd = paimon.read_arrow(
            "dwd.dwd_order_fact", partition={"dt": dt}, snapshot_id=snap["dwd.dwd_order_fact"], columns=["amount"]
        )
        check(f"dwd.dwd_order_fact dt={dt} rows = valid ODS orders", valid_count, dwd.num_rows)
        check(f"dwd.dwd_order_fact dt={dt} sum(amount) = ODS", valid_amount, _sum(dwd, "amount"))
    for table in ("dws.dws_shop_hourly", "dws.dws_shop_daily", "dws.dws_city_hourly", "dws.dws_city_daily"):
        if table in snap:
            dws = paimon.read_arrow(
                table, partition={"dt": dt}, snapshot_id=snap[table], columns=["order_count", "gmv"]
            )
            check(f"{table} dt={dt} sum(order_count) = valid ODS orders", valid_count, int(_sum(dws, "order_count")))
            check(f"{table} dt={dt} sum(gmv) = ODS non-cancelled amount", gmv, _sum(dws, "gmv"))
    if "dws.dws_shop_traffic_hourly" in snap:
        events = paimon.read_arrow("ods.ods_user_events", partition={"dt": dt}, columns=["event_id"]).num_rows
        pv = paimon.read_arrow(
            "dws.dws_shop_traffic_hourly",
            partition={"dt": dt},
            snapshot_id=snap["dws.dws_shop_traffic_hourly"],
            columns=["pv"],
        )
        check(f"dws.dws_shop_traffic_hourly dt={dt} sum(pv) = ODS events", events, int(_sum(pv, "pv")))
    for line in checks:
        log.info("ok: %s", line)
    if problems:
        raise VerificationFailed(dt, problems)
    return checks


def publish_day(
    dt: str, reports: list[PartitionReport], *, paimon: PaimonHook, pin_holder: str | None = None
) -> dict[str, int]:
    """Tag each recomputed table at the snapshot the recomputation wrote, then release the pins of
    `pin_holder` (the DayResult.pin_holder of the run_day that wrote them; none: nothing to unpin).
    An existing tag is left as published."""
    name = tag_name(dt)
    tagged = {}
    for r in reports:
        if r.dry_run or r.overwrite_snapshot_id is None:
            continue
        if name in paimon.list_tags(r.table):
            log.info("%s already has tag %s: a published day is not moved", r.table, name)
            continue
        paimon.create_tag(r.table, name, snapshot_id=r.overwrite_snapshot_id)
        tagged[r.table] = r.overwrite_snapshot_id
    if pin_holder:
        release_pins(reports, holder=pin_holder, paimon=paimon)  # the tag keeps the snapshot's files from now on
    return tagged


def select_tables(names: list[str] | None = None) -> list[TableSpec]:
    tables = recomputable_tables()
    if names:
        wanted = set(names)
        tables = [t for t in tables if t.name in wanted]
    return tables


def pin_holder(dt: str, run: str) -> str:
    """Who pins the snapshots a day's recomputation wrote, until they are verified and tagged: the
    day and the run (`run`: its lease holder, which names the DAG run and a backfill lane's map
    index), as a Paimon consumer id allows (hooks.paimon.pin_holder_name). Every run has its own:
    a backfill of the day that ends never removes the pins t1_daily still needs for its publish."""
    return pin_holder_name(f"t1-{parse_day(dt).isoformat()}-{run}")


def run_day(
    dt: str,
    tables: list[TableSpec],
    *,
    holder: str,
    flink: FlinkHook,
    paimon: PaimonHook,
    leases: LeaseManager,
    dry_run: bool = False,
    verify: bool = True,
    lease_wait_s: float = 600,
    keep_pins: bool = False,
) -> DayResult:
    """Lease, recompute in dependency order, verify, release. Publishing is the caller's choice.

    The leases are held with `LeaseManager.held`: renewed while the day runs, released once the
    last Flink statement has returned or raised (so never while one of its jobs may still write).
    A lease lost to another run (it expired unrenewed and was taken over) stops the day before the
    next overwrite, and fails it (LeaseLost) even when every table was done.

    Each OVERWRITE snapshot is pinned (a Paimon consumer, holder `pin_holder(dt, holder)`: this
    run's own) so that snapshot expiry cannot remove it while it is verified and tagged; with
    keep_pins the pins outlive a successful call and publish_day(..., pin_holder=result.pin_holder)
    releases them (t1_daily verifies and publishes in later tasks). A failed call releases them."""
    parse_day(dt)
    result = DayResult(dt, pin_holder=pin_holder(dt, holder))
    try:
        with leases.held([t.name for t in tables], dt, holder, wait_s=lease_wait_s) as lease:
            for table in tables:
                lease.check()  # a lost lease: overwrite nothing more
                report = recompute_partition(table, dt, flink=flink, paimon=paimon, dry_run=dry_run)
                result.reports.append(report)
                if report.overwrite_snapshot_id is not None:
                    paimon.pin_snapshot(table.name, report.overwrite_snapshot_id, holder=result.pin_holder)
            if verify and not dry_run:
                lease.check()
                result.checks = verify_day(dt, result.reports, paimon=paimon)
    except BaseException:
        try:
            release_pins(result.reports, holder=result.pin_holder, paimon=paimon)
        except Exception:  # noqa: BLE001 - the day's own error is the one to report; the pins lapse
            log.exception("could not release the pins of %s (they lapse at their end time)", result.pin_holder)
        raise
    if not keep_pins:
        release_pins(result.reports, holder=result.pin_holder, paimon=paimon)
    return result


def release_pins(reports: list[PartitionReport], *, holder: str, paimon: PaimonHook) -> None:
    """Remove `holder`'s pins of the recomputed tables (exactly its own: PaimonHook.unpin)."""
    for r in reports:
        if r.overwrite_snapshot_id is not None:
            paimon.unpin(r.table, holder=holder)


def reports_from_dicts(rows: list[dict]) -> list[PartitionReport]:
    """PartitionReports back from XCom (lakehouse.core.results.to_jsonable of each; totals stay str)."""
    from lakehouse.batch.recompute import PartitionStats

    out = []
    for r in rows:
        before = PartitionStats(**r["before"])
        after = PartitionStats(**r["after"]) if r.get("after") else None
        out.append(
            PartitionReport(
                r["table"],
                r["dt"],
                before,
                after,
                r["overwrite_snapshot_id"],
                r["duration_s"],
                r.get("dry_run", False),
                r.get("source_snapshots") or {},
            )
        )
    return out


def format_report(rows: list[dict]) -> str:
    """A per-partition table for the task log."""
    lines = [
        f"{'dt':10} {'table':30} {'rows before':>11} {'rows after':>10} {'snapshot':>17} {'secs':>6}"
        "  totals before -> after"
    ]
    for r in rows:
        after = r.get("after") or {}
        snap = f"{r['before'].get('snapshot_id')} -> {r.get('overwrite_snapshot_id')}"
        lines.append(
            f"{r['dt']:10} {r['table']:30} {r['before']['rows']:>11} {str(after.get('rows', '-')):>10} "
            f"{snap:>17} {r['duration_s']:>6.1f}  {r['before']['totals']} -> {after.get('totals', '-')}"
            + ("  (dry run)" if r.get("dry_run") else "")
        )
    return "\n".join(lines)
