"""Per-table maintenance policy: config/maintenance.yaml, merged with its defaults and checked as a whole."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowException

from lakehouse.core.paths import CONFIG_DIR
from lakehouse.core.registry import Registry, RegistryError, parse_duration, registry

log = logging.getLogger(__name__)

OPERATIONS = ("compaction", "snapshots", "tags", "partitions", "orphan_files")

# A T+1 recomputation may run this long (batch.recompute_partition's timeout); no write lasts longer.
LONGEST_WRITE_S = 3600.0


class MaintenanceError(AirflowException):
    """A maintenance policy or run that cannot go ahead; the message says what to fix."""


# --------------------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class TablePolicy:
    table: str
    compaction: str = "closed-partitions"  # closed-partitions | none
    compaction_schedule: str = "20 * * * *"
    compaction_lookback_days: int = 7
    snapshots_schedule: str = "40 * * * *"
    retain_min: int = 10
    retain_max: int = 500
    retain_time_s: float = 7200.0
    max_deletes: int = 2000
    tag_retention_days: int | None = 90
    partition_retention_days: int | None = None
    orphan_schedule: str = "10 3 * * *"
    orphan_older_than_s: float = 86400.0
    small_file_alert_runs: int = 3

    def schedule(self, operation: str) -> str:
        """The cron of an operation; tags and partitions go with snapshot expiry."""
        return {"compaction": self.compaction_schedule, "orphan_files": self.orphan_schedule}.get(
            operation, self.snapshots_schedule)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = _merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MaintenanceError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return value


def _cron(value: Any, where: str) -> str:
    from croniter import croniter

    if not isinstance(value, str) or not croniter.is_valid(value):
        raise MaintenanceError(f"{where}: {value!r} is not a cron expression such as '20 * * * *'")
    return value


def _duration(value: Any, where: str) -> float:
    try:
        return parse_duration(str(value), where)
    except RegistryError as exc:
        raise MaintenanceError(str(exc).replace("'36h'", "'36h' or '1d'")) from None


def _days_duration(value: Any, where: str) -> float:
    text = str(value).strip()
    if re.fullmatch(r"\d+\s*d", text):
        return int(text[:-1]) * 86400.0
    return _duration(text, where)


def parse_policy(name: str, spec: dict) -> TablePolicy:
    """One table's merged settings -> TablePolicy, every value checked; errors name the setting."""
    where = f"maintenance.yaml: {name}"
    known = {"compaction", "snapshots", "tags", "partitions", "orphan_files", "small_files"}
    if set(spec) - known:
        raise MaintenanceError(f"{where}: unknown sections {sorted(set(spec) - known)}; known: {sorted(known)}")
    comp, snaps = spec.get("compaction") or {}, spec.get("snapshots") or {}
    tags, parts = spec.get("tags") or {}, spec.get("partitions") or {}
    orphans, small = spec.get("orphan_files") or {}, spec.get("small_files") or {}
    strategy = comp.get("strategy", "closed-partitions")
    if strategy not in ("closed-partitions", "none"):
        raise MaintenanceError(f"{where}: compaction.strategy must be closed-partitions or none, got {strategy!r}")
    retain_min = _int(snaps.get("retain_min", 10), f"{where}: snapshots.retain_min", minimum=1)
    retain_max = _int(snaps.get("retain_max", 500), f"{where}: snapshots.retain_max", minimum=1)
    if retain_max < retain_min:
        raise MaintenanceError(f"{where}: snapshots.retain_max ({retain_max}) is below retain_min ({retain_min})")
    older_than = _days_duration(orphans.get("older_than", "1d"), f"{where}: orphan_files.older_than")
    if older_than < LONGEST_WRITE_S:
        raise MaintenanceError(
            f"{where}: orphan_files.older_than must be at least {LONGEST_WRITE_S / 3600:g}h, the longest write "
            f"(a T+1 recomputation); a younger file may belong to a write in flight. Got {orphans.get('older_than')!r}")
    tag_days, part_days = tags.get("retention_days", 90), parts.get("retention_days")
    return TablePolicy(
        table=name,
        compaction=strategy,
        compaction_schedule=_cron(comp.get("schedule", "20 * * * *"), f"{where}: compaction.schedule"),
        compaction_lookback_days=_int(comp.get("lookback_days", 7), f"{where}: compaction.lookback_days", minimum=1),
        snapshots_schedule=_cron(snaps.get("schedule", "40 * * * *"), f"{where}: snapshots.schedule"),
        retain_min=retain_min,
        retain_max=retain_max,
        retain_time_s=_days_duration(snaps.get("retain_time", "2h"), f"{where}: snapshots.retain_time"),
        max_deletes=_int(snaps.get("max_deletes", 2000), f"{where}: snapshots.max_deletes", minimum=1),
        tag_retention_days=None if tag_days is None else _int(tag_days, f"{where}: tags.retention_days", minimum=1),
        partition_retention_days=None if part_days is None else _int(
            part_days, f"{where}: partitions.retention_days", minimum=1),
        orphan_schedule=_cron(orphans.get("schedule", "10 3 * * *"), f"{where}: orphan_files.schedule"),
        orphan_older_than_s=older_than,
        small_file_alert_runs=_int(small.get("alert_after_runs", 3), f"{where}: small_files.alert_after_runs",
                                   minimum=2),
    )


def load_policies(path: Path | None = None, reg: Registry | None = None) -> dict[str, TablePolicy]:
    """Every registered table's policy (defaults merged with its overrides), checked as a whole."""
    import yaml

    reg = reg or registry()
    path = path or CONFIG_DIR / "maintenance.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MaintenanceError(f"cannot read {path}: {exc}") from exc
    overrides = data.get("tables") or {}
    unknown = sorted(set(overrides) - set(reg.tables))
    if unknown:
        raise MaintenanceError(f"maintenance.yaml names unregistered tables {unknown}; "
                               f"registered: {', '.join(sorted(reg.tables))}")
    defaults = data.get("defaults") or {}
    policies = {name: parse_policy(name, _merge(defaults, overrides.get(name) or {})) for name in sorted(reg.tables)}
    _check_retention_chain(policies, reg)
    return policies


def _check_retention_chain(policies: dict[str, TablePolicy], reg: Registry) -> None:
    """A table recomputed from inputs must not keep days its inputs have dropped: a backfill of
    such a day would read empty inputs and overwrite the partition with nothing."""
    for name, policy in policies.items():
        if not reg.tables[name].model:
            continue
        for source in reg.partitioned_inputs(name):
            src_days = policies[source.name].partition_retention_days
            own = policy.partition_retention_days
            if src_days is not None and (own is None or own > src_days):
                raise MaintenanceError(
                    f"maintenance.yaml: {name} keeps partitions {'forever' if own is None else f'{own} days'} "
                    f"but its input {source.name} keeps {src_days} days: a backfill of an older day would "
                    f"overwrite it with nothing. Give {name} partitions.retention_days <= {src_days}.")


def due_operations(policy: TablePolicy, start: datetime, end: datetime) -> list[str]:
    """Operations whose schedule fires in [start, end): what an hourly run does for this table."""
    from croniter import croniter

    due = []
    for operation in OPERATIONS:
        fire = croniter(policy.schedule(operation), start - timedelta(microseconds=1)).get_next(datetime)
        if start <= fire < end:
            due.append(operation)
    return due


