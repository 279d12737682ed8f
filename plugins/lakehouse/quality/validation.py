"""Running a suite on a frame with Great Expectations, and what came out of it (outcomes, reports)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.core.results import to_jsonable

log = logging.getLogger(__name__)
# GX logs hundreds of INFO lines while it imports; keep task logs readable.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

SAMPLE_KEYS = 5


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
        return (
            f"{self.table} {self.partition} @ snapshot {self.snapshot_id}: "
            f"{'passed' if self.passed else 'FAILED'} ({len(evaluated) - len(self.failed) - len(self.warnings)} ok, "
            f"{len(self.failed)} failed, {len(self.warnings)} warnings, "
            f"{len(self.outcomes) - len(evaluated)} skipped; {self.rows} rows, {self.duration_s:.1f} s)"
            + (f"; {self.quarantined} rows quarantined" if self.quarantined else "")
        )

    def lines(self) -> list[str]:
        return (
            [self.headline()]
            + [f"  {o.line()}" for o in self.outcomes if o.success is not True]
            + ([f"  data docs: {self.docs}"] if self.docs else [])
        )


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------------------------ validation
def frame_for_validation(data, suite: dict):
    """Arrow table -> pandas, with decimals as floats and the suite's derived columns added."""
    import pandas as pd
    import pyarrow as pa

    columns = {}
    for name, column in zip(data.column_names, data.columns, strict=True):
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
            skipped.append(
                Outcome(
                    exp["type"],
                    _target(exp["kwargs"]),
                    exp.get("severity", "critical"),
                    None,
                    notes=exp.get("notes"),
                    skipped=f"needs {', '.join(missing)}",
                )
            )
            continue
        if exp["type"] == "expect_table_columns_to_match_set":
            exp["kwargs"]["column_set"] = list(exp["kwargs"]["column_set"]) + derived
        exp.setdefault("severity", "critical")
        runnable.append(exp)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("lakehouse")
        .add_dataframe_asset(suite["name"])
        .add_batch_definition_whole_dataframe("partition")
    )
    gx_suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite["name"], expectations=runnable, meta={k: v for k, v in (suite.get("meta") or {}).items()}
        )
    )
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": keys,
        "partial_unexpected_count": SAMPLE_KEYS,
    }
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite["name"], data=batch_definition, suite=gx_suite)
    )
    docs_index = None
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="lakehouse",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            },
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite['name']}-audit",
                validation_definitions=[definition],
                result_format=result_format,
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["lakehouse"])],
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters)
        (result,) = run.run_results.values()
        docs_index = str(docs_dir / "index.html")
    else:
        result = definition.run(
            batch_parameters={"dataframe": df}, expectation_parameters=parameters, result_format=result_format
        )

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
            observed = to_jsonable(details.get("observed_value"))
        outcome = Outcome(
            config.type,
            _target(config.kwargs),
            severity,
            bool(r.success),
            observed,
            details.get("unexpected_count"),
            [to_jsonable({k: row[k] for k in keys if k in row}) for row in index_list[:SAMPLE_KEYS]]
            if index_list and isinstance(index_list[0], dict)
            else [],
            config.notes,
        )
        outcomes.append(outcome)
        if not r.success and index_list and isinstance(index_list[0], dict):
            unexpected[f"{config.type}({outcome.target})"] = (outcome, index_list)
    return outcomes + skipped, unexpected, docs_index
