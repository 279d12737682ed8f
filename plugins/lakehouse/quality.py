"""Data quality with Great Expectations: audit a partition at a snapshot, quarantine, gate publication.

Suites live in expectations/<database>.<table>.json (GX 1.x suite JSON, one per table). Each
expectation has a GX `severity`: "critical" fails the audit and blocks publication (no tag, no
Asset event), "warning" is logged and recorded. Expectations may take run-time values as
{"$PARAMETER": name} (reconciliation totals, the day's bounds, the known shop ids), computed here
from the source of truth; an expectation whose parameter a check cannot provide (a streaming check
has no closed-day totals) is skipped and reported as skipped.

Every audit reads the table at one snapshot (the one the recomputation wrote, or the latest,
pinned while it is read), records a row in ops.dq_validations, copies rows that break row-level
expectations to ops.dq_quarantine with the reason and the run, and writes GX Data Docs (HTML).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowException

from lakehouse.hooks.paimon import PaimonHook
from lakehouse.paths import EXPECTATIONS_DIR
from lakehouse.registry import registry

log = logging.getLogger(__name__)
# GX logs hundreds of INFO lines while it imports; keep task logs readable.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

RESULTS_TABLE = "ops.dq_validations"
QUARANTINE_TABLE = "ops.dq_quarantine"
SEVERITIES = ("critical", "warning")  # GX's FailureSeverity values we use: fail / warn
SAMPLE_KEYS = 5
QUARANTINE_LIMIT = 10_000  # rows copied per expectation and run; the count is always recorded
# Source tables whose day the T+1 run recomputes from, with the MariaDB table and day column
# their closed-day row count is reconciled against (fixed names, not user input).
ODS_DAY_SOURCES = {
    "ods.ods_orders": ("orders", "created_at"),
    "ods.ods_order_status_events": ("order_status_events", "event_time"),
    "ods.ods_order_subsidies": ("order_subsidies", "created_at"),
}
DAY_INPUTS = ("ods.ods_orders", "ods.ods_order_status_events", "ods.ods_order_subsidies", "ods.ods_user_events")


class QualityError(AirflowException):
    """A suite file that cannot be used; the message names the file and the problem."""


class QualityGateFailed(AirflowException):
    """Critical expectations failed: nothing is published. The message lists each one."""


# ---------------------------------------------------------------------------------------- suites
def suite_path(table: str) -> Path:
    return EXPECTATIONS_DIR / f"{table}.json"


def suite_tables() -> list[str]:
    return sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))


def load_suite(table: str) -> dict:
    """The suite of a registered table, checked: its name, key columns and severities."""
    spec = registry().table(table)
    path = suite_path(table)
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError:
        raise QualityError(f"{table} has no suite: expected {path.relative_to(EXPECTATIONS_DIR.parent)}") from None
    except json.JSONDecodeError as exc:
        raise QualityError(f"{path.name} is not valid JSON: {exc}") from None
    if suite.get("name") != table:
        raise QualityError(f"{path.name}: suite name {suite.get('name')!r} must be the table name {table!r}")
    keys = (suite.get("meta") or {}).get("key_columns")
    if not keys or not isinstance(keys, list):
        raise QualityError(f"{path.name}: meta.key_columns must list the columns that identify a row "
                           f"(quarantined rows are reported by them), e.g. {list(spec.primary_key)}")
    for i, exp in enumerate(suite.get("expectations") or []):
        severity = exp.get("severity", "critical")
        if severity not in SEVERITIES:
            raise QualityError(f"{path.name}: expectation {i} ({exp.get('type')}) has severity {severity!r}; "
                               f"use critical (blocks publication) or warning (recorded)")
    return suite


# -------------------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    expectation: str
    target: str  # the column(s) or "table"
    severity: str
    success: bool | None  # None: skipped
    observed: Any = None
    unexpected_count: int | None = None
    sample_keys: list = field(default_factory=list)
    notes: str | None = None
    skipped: str | None = None

    def line(self) -> str:
        if self.skipped:
            return f"SKIPPED {self.expectation}({self.target}): {self.skipped}"
        state = "ok" if self.success else ("FAILED" if self.severity == "critical" else "WARNING")
        text = f"{state} {self.expectation}({self.target})"
        if not self.success:
            if self.unexpected_count is not None:
                text += f": {self.unexpected_count} unexpected rows"
            if self.observed is not None:
                text += f", observed {_short(self.observed)}"
            if self.sample_keys:
                text += f", e.g. keys {self.sample_keys}"
            if self.notes:
                text += f" ({self.notes})"
        return text


@dataclass
class ValidationReport:
    table: str
    partition: str
    snapshot_id: int | None
    run_id: str
    rows: int
    outcomes: list[Outcome]
    duration_s: float
    docs: str | None = None
    quarantined: int = 0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is False and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is False and o.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def headline(self) -> str:
        evaluated = [o for o in self.outcomes if o.success is not None]
        return (f"{self.table} {self.partition} @ snapshot {self.snapshot_id}: "
                f"{'passed' if self.passed else 'FAILED'} ({len(evaluated) - len(self.failed) - len(self.warnings)} ok, "
                f"{len(self.failed)} failed, {len(self.warnings)} warnings, "
                f"{len(self.outcomes) - len(evaluated)} skipped; {self.rows} rows, {self.duration_s:.1f} s)"
                + (f"; {self.quarantined} rows quarantined" if self.quarantined else ""))

    def lines(self) -> list[str]:
        return [self.headline()] + [f"  {o.line()}" for o in self.outcomes if o.success is not True] + (
            [f"  data docs: {self.docs}"] if self.docs else [])


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> Python values (JSON, messages)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------ validation
def frame_for_validation(data, suite: dict):
    """Arrow table -> pandas, with decimals as floats and the suite's derived columns added."""
    import pandas as pd
    import pyarrow as pa

    columns = {}
    for name, column in zip(data.column_names, data.columns):
        if pa.types.is_decimal(column.type):
            column = column.cast(pa.float64())
        columns[name] = column
    df = pa.table(columns).to_pandas() if columns else pd.DataFrame()
    for name, expression in ((suite.get("meta") or {}).get("derived_columns") or {}).items():
        df[name] = df.eval(expression)  # expressions come from the versioned suite file, not from users
    return df


def _uses(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            return {value["$PARAMETER"]}
        return set().union(*(_uses(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_uses(v) for v in value)) if value else set()
    return set()


def _target(kwargs: dict) -> str:
    for key in ("column", "column_list", "column_A"):
        if key in kwargs:
            if key == "column_A":
                return f"{kwargs['column_A']} >= {kwargs['column_B']}"
            value = kwargs[key]
            return ", ".join(value) if isinstance(value, list) else str(value)
    return "table"


def validate_frame(df, suite: dict, parameters: dict, *, docs_dir: Path | None = None):
    """Validate a DataFrame with a suite; returns (outcomes, unexpected rows per expectation, docs index).

    Expectations needing a parameter not in `parameters` are skipped (reported, not run)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    keys = suite["meta"]["key_columns"]
    derived = list((suite.get("meta") or {}).get("derived_columns") or {})
    runnable, skipped = [], []
    for exp in suite.get("expectations") or []:
        exp = json.loads(json.dumps(exp))
        missing = sorted(_uses(exp.get("kwargs")) - set(parameters))
        if missing:
            skipped.append(Outcome(exp["type"], _target(exp["kwargs"]), exp.get("severity", "critical"), None,
                                   notes=exp.get("notes"), skipped=f"needs {', '.join(missing)}"))
            continue
        if exp["type"] == "expect_table_columns_to_match_set":
            exp["kwargs"]["column_set"] = list(exp["kwargs"]["column_set"]) + derived
        exp.setdefault("severity", "critical")
        runnable.append(exp)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("lakehouse").add_dataframe_asset(suite["name"])
                        .add_batch_definition_whole_dataframe("partition"))
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite["name"], expectations=runnable,
                                                      meta={k: v for k, v in (suite.get("meta") or {}).items()}))
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": keys,
                     "partial_unexpected_count": SAMPLE_KEYS}
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite["name"], data=batch_definition,
                                                                            suite=gx_suite))
    docs_index = None
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(site_name="lakehouse", site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}})
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{suite['name']}-audit", validation_definitions=[definition], result_format=result_format,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["lakehouse"])]))
        run = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters)
        (result,) = run.run_results.values()
        docs_index = str(docs_dir / "index.html")
    else:
        result = definition.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters,
                                result_format=result_format)

    order = {exp.id: i for i, exp in enumerate(gx_suite.expectations)}
    outcomes, unexpected = [], {}
    for r in sorted(result.results, key=lambda r: order.get(r.expectation_config.id, 0)):
        config = r.expectation_config
        severity = getattr(config.severity, "value", config.severity) or "critical"
        details = r.result or {}
        index_list = details.get("unexpected_index_list") or []
        if r.exception_info and r.exception_info.get("raised_exception"):
            observed = f"error: {r.exception_info.get('exception_message')}"
        else:
            observed = _plain(details.get("observed_value"))
        outcome = Outcome(config.type, _target(config.kwargs), severity, bool(r.success), observed,
                          details.get("unexpected_count"),
                          [_plain({k: row[k] for k in keys if k in row}) for row in index_list[:SAMPLE_KEYS]]
                          if index_list and isinstance(index_list[0], dict) else [],
                          config.notes)
        outcomes.append(outcome)
        if not r.success and index_list and isinstance(index_list[0], dict):
            unexpected[f"{config.type}({outcome.target})"] = (outcome, index_list)
    return outcomes + skipped, unexpected, docs_index


# ------------------------------------------------------------------------------------ parameters
def day_parameters(dt: str, *, now: datetime | None = None) -> dict:
    """Bounds every partition of day `dt` is checked against (naive UTC, as Paimon's timestamps).

    A time after the check itself (plus an hour of clock skew) is a wrong clock at the source; a
    late update of an old day legitimately carries today's time, so the bound is not the day's."""
    import pandas as pd

    start = pd.Timestamp(dt)
    checked_at = pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert(None)  # `now`: timezone-aware
    return {"day_start": start, "day_end": start + pd.Timedelta(days=1),
            "latest_plausible_time": checked_at + pd.Timedelta(hours=1)}


def _sum(data, column: str, mask=None) -> float:
    values = data.column(column).to_pylist()
    return float(sum(float(v) for v, keep in zip(values, mask or [True] * len(values)) if keep and v is not None))


def known_shop_ids(paimon: PaimonHook) -> list[int]:
    """The shops DWD's referential-integrity expectation accepts: every shop in ODS."""
    return sorted(set(paimon.read_arrow("ods.ods_shops", columns=["shop_id"]).column(0).to_pylist()))


def closed_day_parameters(table: str, dt: str, *, paimon: PaimonHook, mysql,
                          read_snapshots: dict[str, int | None] | None = None) -> dict:
    """Reconciliation values for a closed day: MariaDB's row counts for ODS, DWD's totals for DWS,
    ODS's events for the traffic table, the known shops for DWD.

    `read_snapshots` are the input snapshots the table's recomputation read (its report's
    source_snapshots): a DWS partition is reconciled with DWD as it read it, not with a DWD that
    late changes have moved on since."""
    params = day_parameters(dt)
    read = read_snapshots or {}
    tolerance = 0.005  # sums are compared as floats: within half a cent
    if table in ODS_DAY_SOURCES:
        source, column = ODS_DAY_SOURCES[table]
        start, end = params["day_start"].to_pydatetime(), params["day_end"].to_pydatetime()
        params["source_rows"] = int(mysql.get_first(
            f"SELECT COUNT(*) FROM `{source}` WHERE `{column}` >= %s AND `{column}` < %s", (start, end))[0])
    elif table == "dwd.dwd_order_fact":
        params["known_shop_ids"] = known_shop_ids(paimon)
    elif table == "dws.dws_shop_traffic_hourly":
        events = paimon.read_arrow("ods.ods_user_events", partition={"dt": dt}, columns=["event_id"],
                                   snapshot_id=read.get("ods.ods_user_events")).num_rows
        params["ods_events_min"] = params["ods_events_max"] = events
    elif table.startswith("dws."):
        dwd = paimon.read_arrow("dwd.dwd_order_fact", partition={"dt": dt}, snapshot_id=read.get("dwd.dwd_order_fact"),
                                columns=["status", "amount", "platform_subsidy", "shop_subsidy"])
        live = [s != "CANCELLED" for s in dwd.column("status").to_pylist()]
        totals = {"dwd_orders": float(dwd.num_rows), "dwd_gmv": _sum(dwd, "amount", live),
                  "dwd_subsidy_total": _sum(dwd, "platform_subsidy", live) + _sum(dwd, "shop_subsidy", live)}
        for name, value in totals.items():
            params[f"{name}_min"], params[f"{name}_max"] = value - tolerance, value + tolerance
    return params


# ----------------------------------------------------------------------------- audit and records
def docs_root() -> Path:
    return Path(os.environ.get("LAKEHOUSE_DATA_DOCS") or Path(os.environ.get("LAKEHOUSE_HOME", ".stack")) / "data_docs")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)


def audit_table(table: str, *, dt: str | None, snapshot_id: int | None, paimon: PaimonHook, parameters: dict,
                run_id: str, quarantine: bool = True, docs: bool = True) -> ValidationReport:
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
        data = (paimon.read_arrow(table, partition={"dt": dt} if dt else None, snapshot_id=snapshot_id)
                if snapshot_id is not None else None)
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
    report = ValidationReport(table, partition, snapshot_id, run_id, len(df), outcomes,
                              time.monotonic() - started, docs_index)
    if quarantine and unexpected:
        report.quarantined = quarantine_rows(paimon, report, df, suite, unexpected)
    for line in report.lines():
        log.info(line)
    return report


def _empty(paimon: PaimonHook, table: str):
    import pyarrow as pa

    fields = paimon.get_table(table).fields
    return pa.table({f.name: pa.array([], type=pa.string()) for f in fields})


def _quarantine_schema():
    import pyarrow as pa

    return pa.schema([("run_id", pa.string()), ("table_name", pa.string()), ("partition", pa.string()),
                      ("snapshot_id", pa.int64()), ("expectation", pa.string()), ("severity", pa.string()),
                      ("reason", pa.string()), ("row_key", pa.string()), ("row_json", pa.string()),
                      ("quarantined_at", pa.timestamp("ms", tz="UTC"))])


def quarantine_rows(paimon: PaimonHook, report: ValidationReport, df, suite: dict, unexpected: dict) -> int:
    """Copy the rows that broke row-level expectations to ops.dq_quarantine (one commit)."""
    import pyarrow as pa

    keys = suite["meta"]["key_columns"]
    indexed = df.set_index(keys, drop=False)
    now = datetime.now(timezone.utc)
    out = []
    for _, (outcome, index_list) in unexpected.items():
        for entry in index_list[:QUARANTINE_LIMIT]:
            key = tuple(entry[k] for k in keys)
            try:
                rows = indexed.loc[[key[0]] if len(keys) == 1 else [key]]
            except KeyError:
                continue
            for row in rows.to_dict("records"):
                out.append({"run_id": report.run_id, "table_name": report.table, "partition": report.partition,
                            "snapshot_id": report.snapshot_id, "expectation": f"{outcome.expectation}({outcome.target})",
                            "severity": outcome.severity, "reason": outcome.notes or outcome.expectation,
                            "row_key": json.dumps(_plain(dict(zip(keys, key))), default=str),
                            "row_json": json.dumps(_plain(row), default=str), "quarantined_at": now})
    if out:
        paimon.ensure_ops_table(QUARANTINE_TABLE, _quarantine_schema())
        paimon.append_rows(QUARANTINE_TABLE, pa.Table.from_pylist(out, schema=_quarantine_schema()))
    return len(out)


def _results_schema():
    import pyarrow as pa

    return pa.schema([("run_id", pa.string()), ("table_name", pa.string()), ("partition", pa.string()),
                      ("snapshot_id", pa.int64()), ("passed", pa.bool_()), ("rows", pa.int64()),
                      ("evaluated", pa.int64()), ("failed", pa.int64()), ("warnings", pa.int64()),
                      ("failed_expectations", pa.string()), ("quarantined", pa.int64()), ("docs", pa.string()),
                      ("duration_s", pa.float64()), ("checked_at", pa.timestamp("ms", tz="UTC"))])


def record_results(paimon: PaimonHook, reports: list[ValidationReport]) -> None:
    """One row per validation in ops.dq_validations."""
    import pyarrow as pa

    if not reports:
        return
    now = datetime.now(timezone.utc)
    rows = [{"run_id": r.run_id, "table_name": r.table, "partition": r.partition, "snapshot_id": r.snapshot_id,
             "passed": r.passed, "rows": r.rows, "evaluated": sum(1 for o in r.outcomes if o.success is not None),
             "failed": len(r.failed), "warnings": len(r.warnings),
             "failed_expectations": "; ".join(o.line() for o in r.failed + r.warnings),
             "quarantined": r.quarantined, "docs": r.docs, "duration_s": round(r.duration_s, 3), "checked_at": now}
            for r in reports]
    paimon.ensure_ops_table(RESULTS_TABLE, _results_schema())
    paimon.append_rows(RESULTS_TABLE, pa.Table.from_pylist(rows, schema=_results_schema()))


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
    for table in [t for t in DAY_INPUTS if suite_path(t).exists()] + [t for t in written if suite_path(t).exists()]:
        report = written.get(table)
        params = closed_day_parameters(table, dt, paimon=paimon, mysql=mysql,
                                       read_snapshots=report.source_snapshots if report else None)
        results.append(audit_table(table, dt=dt, snapshot_id=report.overwrite_snapshot_id if report else None,
                                   paimon=paimon, parameters=params, run_id=run_id))
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
        reports.append(audit_table(table, dt=dt, snapshot_id=None, paimon=paimon, parameters=params, run_id=run_id,
                                   quarantine=False))
    record_results(paimon, reports)
    return reports
