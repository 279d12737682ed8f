"""Audits: a table at one snapshot, a T+1 day, the streaming tables; results, quarantine and Data Docs recorded."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.core.errors import GateFailed
from lakehouse.core.ops_tables import OpsTable
from lakehouse.core.registry import registry
from lakehouse.core.results import to_jsonable
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.quality.parameters import closed_day_parameters, day_parameters, known_shop_ids
from lakehouse.quality.suites import load_suite, suite_path
from lakehouse.quality.validation import ValidationReport, frame_for_validation, validate_frame

log = logging.getLogger(__name__)
# GX logs hundreds of INFO lines while it imports; keep task logs readable.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

RESULTS_TABLE = "ops.dq_validations"
QUARANTINE_TABLE = "ops.dq_quarantine"
QUARANTINE_LIMIT = 10_000  # rows copied per expectation and run; the count is always recorded


def day_inputs() -> list[str]:
    """The ODS tables a T+1 day reads: every partitioned ODS table in the registry."""
    return [t.name for t in registry().tables_in_layer("ods") if t.partition]


class QualityGateFailed(GateFailed):
    """Critical expectations failed: nothing is published. The message lists each one."""


# ----------------------------------------------------------------------------- audit and records
def docs_root() -> Path:
    return Path(os.environ.get("LAKEHOUSE_DATA_DOCS") or Path(os.environ.get("LAKEHOUSE_HOME", ".stack")) / "data_docs")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)


def audit_table(
    table: str,
    *,
    dt: str | None,
    snapshot_id: int | None,
    paimon: PaimonHook,
    parameters: dict,
    run_id: str,
    quarantine: bool = True,
    docs: bool = True,
) -> ValidationReport:
    """Validate one partition (or a whole unpartitioned table) at one snapshot; record, quarantine, docs."""
    started = time.monotonic()
    suite = load_suite(table)
    holder = _safe(f"dq-{run_id}")[:120]
    if snapshot_id is None:
        latest = paimon.latest_snapshot(table)
        snapshot_id = latest.snapshot_id if latest else None
    pinned = snapshot_id is not None
    if pinned:  # the snapshot read stays readable however long the check takes
        paimon.pin_snapshot(table, snapshot_id, holder=holder, ttl_s=3 * 3600)
    try:
        data = (
            paimon.read_arrow(table, partition={"dt": dt} if dt else None, snapshot_id=snapshot_id)
            if snapshot_id is not None
            else None
        )
    finally:
        if pinned:
            paimon.unpin(table, holder=holder)
    partition = f"dt={dt}" if dt else "all"
    if data is None:
        df = frame_for_validation(_empty(paimon, table), suite)
    else:
        df = frame_for_validation(data, suite)
    docs_dir = docs_root() / _safe(table) / _safe(partition) / _safe(run_id) if docs else None
    outcomes, unexpected, docs_index = validate_frame(df, suite, parameters, docs_dir=docs_dir)
    report = ValidationReport(
        table, partition, snapshot_id, run_id, len(df), outcomes, time.monotonic() - started, docs_index
    )
    if quarantine and unexpected:
        report.quarantined = quarantine_rows(paimon, report, df, suite, unexpected)
    for line in report.lines():
        log.info(line)
    return report


def _empty(paimon: PaimonHook, table: str):
    import pyarrow as pa

    fields = paimon.get_table(table).fields
    return pa.table({f.name: pa.array([], type=pa.string()) for f in fields})


QUARANTINE = OpsTable(
    QUARANTINE_TABLE,
    lambda pa: [
        ("run_id", pa.string()),
        ("table_name", pa.string()),
        ("partition", pa.string()),
        ("snapshot_id", pa.int64()),
        ("expectation", pa.string()),
        ("severity", pa.string()),
        ("reason", pa.string()),
        ("row_key", pa.string()),
        ("row_json", pa.string()),
        ("quarantined_at", pa.timestamp("ms", tz="UTC")),
    ],
)


def quarantine_rows(paimon: PaimonHook, report: ValidationReport, df, suite: dict, unexpected: dict) -> int:
    """Copy the rows that broke row-level expectations to ops.dq_quarantine (one commit)."""
    keys = suite["meta"]["key_columns"]
    indexed = df.set_index(keys, drop=False)
    now = datetime.now(UTC)
    out = []
    for _, (outcome, index_list) in unexpected.items():
        for entry in index_list[:QUARANTINE_LIMIT]:
            key = tuple(entry[k] for k in keys)
            try:
                rows = indexed.loc[[key[0]] if len(keys) == 1 else [key]]
            except KeyError:
                continue
            for row in rows.to_dict("records"):
                out.append(
                    {
                        "run_id": report.run_id,
                        "table_name": report.table,
                        "partition": report.partition,
                        "snapshot_id": report.snapshot_id,
                        "expectation": f"{outcome.expectation}({outcome.target})",
                        "severity": outcome.severity,
                        "reason": outcome.notes or outcome.expectation,
                        "row_key": json.dumps(to_jsonable(dict(zip(keys, key, strict=True)))),
                        "row_json": json.dumps(to_jsonable(row)),
                        "quarantined_at": now,
                    }
                )
    QUARANTINE.append(paimon, out)  # nothing when no row broke an expectation
    return len(out)


RESULTS = OpsTable(
    RESULTS_TABLE,
    lambda pa: [
        ("run_id", pa.string()),
        ("table_name", pa.string()),
        ("partition", pa.string()),
        ("snapshot_id", pa.int64()),
        ("passed", pa.bool_()),
        ("rows", pa.int64()),
        ("evaluated", pa.int64()),
        ("failed", pa.int64()),
        ("warnings", pa.int64()),
        ("failed_expectations", pa.string()),
        ("quarantined", pa.int64()),
        ("docs", pa.string()),
        ("duration_s", pa.float64()),
        ("checked_at", pa.timestamp("ms", tz="UTC")),
    ],
)


def record_results(paimon: PaimonHook, reports: list[ValidationReport]) -> None:
    """One row per validation in ops.dq_validations."""
    now = datetime.now(UTC)
    rows = [
        {
            "run_id": r.run_id,
            "table_name": r.table,
            "partition": r.partition,
            "snapshot_id": r.snapshot_id,
            "passed": r.passed,
            "rows": r.rows,
            "evaluated": sum(1 for o in r.outcomes if o.success is not None),
            "failed": len(r.failed),
            "warnings": len(r.warnings),
            "failed_expectations": "; ".join(o.line() for o in r.failed + r.warnings),
            "quarantined": r.quarantined,
            "docs": r.docs,
            "duration_s": round(r.duration_s, 3),
            "checked_at": now,
        }
        for r in reports
    ]
    RESULTS.append(paimon, rows)  # nothing for no reports


def enforce(reports: list[ValidationReport], *, what: str) -> None:
    """Raise QualityGateFailed listing every failed critical expectation; warnings only log."""
    failed = [r for r in reports if not r.passed]
    if failed:
        lines = []
        for r in failed:
            lines.append(r.headline())
            lines.extend(f"  {o.line()}" for o in r.failed)
            if r.quarantined:
                lines.append(f"  {r.quarantined} rows copied to {QUARANTINE_TABLE} (run_id {r.run_id})")
            if r.docs:
                lines.append(f"  data docs: {r.docs}")
        raise QualityGateFailed(f"{what}: data quality gate failed, nothing published:\n" + "\n".join(lines))


def audit_day(dt: str, reports, *, paimon: PaimonHook, mysql, run_id: str) -> list[ValidationReport]:
    """Audit a closed day before it is published: the day's ODS inputs (latest, pinned while read)
    and each recomputed table at the snapshot its recomputation wrote (`reports`: the day's
    PartitionReports). Records every result; raises QualityGateFailed when a critical
    expectation failed."""
    written = {r.table: r for r in reports if r.overwrite_snapshot_id is not None and not r.dry_run}
    results = []
    for table in [t for t in day_inputs() if suite_path(t).exists()] + [t for t in written if suite_path(t).exists()]:
        report = written.get(table)
        params = closed_day_parameters(
            table, dt, paimon=paimon, mysql=mysql, read_snapshots=report.source_snapshots if report else None
        )
        results.append(
            audit_table(
                table,
                dt=dt,
                snapshot_id=report.overwrite_snapshot_id if report else None,
                paimon=paimon,
                parameters=params,
                run_id=run_id,
            )
        )
    record_results(paimon, results)
    enforce(results, what=f"T+1 audit of {dt}")
    return results


def check_streaming_tables(tables: list[str], *, paimon: PaimonHook, today: str, run_id: str) -> list[ValidationReport]:
    """The same suites on the latest snapshot of the streaming tables (today's partition, or the whole
    dimension table). Closed-day reconciliations are skipped; nothing is quarantined."""
    reports = []
    for table in tables:
        spec = registry().table(table)
        dt = today if spec.partition == "dt" else None
        params = day_parameters(today)
        if table == "dwd.dwd_order_fact":
            params["known_shop_ids"] = known_shop_ids(paimon)
        reports.append(
            audit_table(
                table, dt=dt, snapshot_id=None, paimon=paimon, parameters=params, run_id=run_id, quarantine=False
            )
        )
    record_results(paimon, reports)
    return reports
