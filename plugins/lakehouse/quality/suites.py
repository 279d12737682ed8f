"""The Great Expectations suites: expectations/<database>.<table>.json, one per table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import EXPECTATIONS_DIR
from lakehouse.core.registry import registry

log = logging.getLogger(__name__)
# GX logs hundreds of INFO lines while it imports; keep task logs readable.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

SEVERITIES = ("critical", "warning")  # GX's FailureSeverity values we use: fail / warn


class QualityError(ConfigError):
    """A suite file that cannot be used; the message names the file and the problem."""


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
        raise QualityError(
            f"{path.name}: meta.key_columns must list the columns that identify a row "
            f"(quarantined rows are reported by them), e.g. {list(spec.primary_key)}"
        )
    for i, exp in enumerate(suite.get("expectations") or []):
        severity = exp.get("severity", "critical")
        if severity not in SEVERITIES:
            raise QualityError(
                f"{path.name}: expectation {i} ({exp.get('type')}) has severity {severity!r}; "
                f"use critical (blocks publication) or warning (recorded)"
            )
    return suite
