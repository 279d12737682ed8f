"""Per-table maintenance policy: config/maintenance.yaml, merged with its defaults and checked as a whole.

The file is read into frozen models (`lakehouse.core.config.ConfigModel`) that refuse unknown keys
and check every value; `defaults` merged with each table's overrides become that table's
`TablePolicy`; then the whole file is checked: the tables it names are registered, retain_max is
not below retain_min, and no table keeps days its inputs have dropped."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from lakehouse.core.config import ConfigModel, load_yaml, validate
from lakehouse.core.errors import BadRequest, ConfigError
from lakehouse.core.paths import CONFIG_DIR
from lakehouse.core.registry import Registry, registry

log = logging.getLogger(__name__)

OPERATIONS = ("compaction", "snapshots", "tags", "partitions", "orphan_files")

# A T+1 recomputation may run this long (batch.recompute_partition's timeout); no write lasts longer.
LONGEST_WRITE_S = 3600.0


class MaintenanceError(ConfigError):
    """config/maintenance.yaml is wrong; the message names the file, the key and the fix."""


class MaintenanceRequestError(BadRequest):
    """A maintenance run was asked for something no policy allows (an unknown operation, settings
    out of range); nothing ran."""


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
            operation, self.snapshots_schedule
        )


# ----------------------------------------------------------------------------- the file's values
def _whole_number(minimum: int, *, nullable: bool = False) -> PlainValidator:
    """A whole number >= minimum (not a bool, not a string of digits); with nullable, also null."""
    message = f"must be a whole number >= {minimum}" + (", or null (kept forever)" if nullable else "")

    def check(value: Any) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("whole_number", message)
        return value

    return PlainValidator(check)


def _cron(value: Any) -> str:
    from croniter import croniter

    if not isinstance(value, str) or not croniter.is_valid(value):
        raise PydanticCustomError("cron", "must be a cron expression such as '20 * * * *'")
    return value


_DURATION = re.compile(r"^(\d+)\s*(ms|s|min|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> float:
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise PydanticCustomError("duration", "must be a duration like '10s', '2min', '36h' or '1d'")
    return int(match.group(1)) * float(_UNIT_S[match.group(2)])


def _orphan_age(value: Any) -> float:
    seconds = _seconds(value)
    if seconds < LONGEST_WRITE_S:
        raise PydanticCustomError(
            "orphan_age",
            f"must be at least {LONGEST_WRITE_S / 3600:g}h, the longest write (a T+1 recomputation); "
            "a younger file may belong to a write in flight",
        )
    return seconds


def _strategy(value: Any) -> str:
    if value not in ("closed-partitions", "none"):
        raise PydanticCustomError("strategy", "must be closed-partitions or none")
    return value


Cron = Annotated[str, PlainValidator(_cron)]
Seconds = Annotated[float, PlainValidator(_seconds)]  # in the file '2h', '1d'; in the model seconds


class _Mapping(ConfigModel):
    """A mapping of settings; an empty one (`partitions:` followed by comments only) is null in YAML."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


class CompactionSettings(_Mapping):
    # closed-partitions: full compaction of closed days with more than one file per bucket; none: writers only.
    strategy: Annotated[str, PlainValidator(_strategy)] = "closed-partitions"
    schedule: Cron = "20 * * * *"
    lookback_days: Annotated[int, _whole_number(1)] = 7


class SnapshotSettings(_Mapping):
    schedule: Cron = "40 * * * *"
    retain_min: Annotated[int, _whole_number(1)] = 10  # retain_min 0 corrupts tables (PAIMON-10088)
    retain_max: Annotated[int, _whole_number(1)] = 500
    retain_time: Seconds = 7200.0
    max_deletes: Annotated[int, _whole_number(1)] = 2000


class TagSettings(_Mapping):
    retention_days: Annotated[int | None, _whole_number(1, nullable=True)] = 90


class PartitionSettings(_Mapping):
    retention_days: Annotated[int | None, _whole_number(1, nullable=True)] = None


class OrphanFileSettings(_Mapping):
    schedule: Cron = "10 3 * * *"
    older_than: Annotated[float, PlainValidator(_orphan_age)] = 86400.0


class SmallFileSettings(_Mapping):
    alert_after_runs: Annotated[int, _whole_number(2)] = 3


class PolicySettings(_Mapping):
    """`defaults`, or one table's overrides of them (only the keys it sets count)."""

    compaction: CompactionSettings = CompactionSettings()
    snapshots: SnapshotSettings = SnapshotSettings()
    tags: TagSettings = TagSettings()
    partitions: PartitionSettings = PartitionSettings()
    orphan_files: OrphanFileSettings = OrphanFileSettings()
    small_files: SmallFileSettings = SmallFileSettings()

    def merged(self, overrides: PolicySettings) -> PolicySettings:
        """These settings with every key `overrides` sets replaced by its value."""
        return self.model_copy(
            update={
                section: getattr(self, section).model_copy(
                    update={
                        key: getattr(getattr(overrides, section), key)
                        for key in getattr(overrides, section).model_fields_set
                    }
                )
                for section in overrides.model_fields_set
            }
        )

    def policy(self, table: str) -> TablePolicy:
        comp, snaps, orphans = self.compaction, self.snapshots, self.orphan_files
        return TablePolicy(
            table=table,
            compaction=comp.strategy,
            compaction_schedule=comp.schedule,
            compaction_lookback_days=comp.lookback_days,
            snapshots_schedule=snaps.schedule,
            retain_min=snaps.retain_min,
            retain_max=snaps.retain_max,
            retain_time_s=snaps.retain_time,
            max_deletes=snaps.max_deletes,
            tag_retention_days=self.tags.retention_days,
            partition_retention_days=self.partitions.retention_days,
            orphan_schedule=orphans.schedule,
            orphan_older_than_s=orphans.older_than,
            small_file_alert_runs=self.small_files.alert_after_runs,
        )


class MaintenanceFile(_Mapping):
    """config/maintenance.yaml."""

    defaults: PolicySettings = PolicySettings()
    tables: dict[str, PolicySettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _null_tables(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tables") is None:
            return {key: value for key, value in data.items() if key != "tables"}
        return data


def load_policies(path: Path | None = None, reg: Registry | None = None) -> dict[str, TablePolicy]:
    """Every registered table's policy (defaults merged with its overrides), checked as a whole."""
    reg = reg or registry()
    path = path or CONFIG_DIR / "maintenance.yaml"
    source = path.name
    try:
        config = validate(MaintenanceFile, load_yaml(path), source=source)
    except ConfigError as exc:
        raise MaintenanceError(str(exc)) from None
    unknown = sorted(set(config.tables) - set(reg.tables))
    if unknown:
        raise MaintenanceError(
            f"{source} names unregistered tables {unknown}; registered: {', '.join(sorted(reg.tables))}"
        )
    _check_settings(config.defaults, f"{source}: defaults")
    settings = {
        name: config.defaults.merged(config.tables[name]) if name in config.tables else config.defaults
        for name in sorted(reg.tables)
    }
    for name in config.tables:
        _check_settings(settings[name], f"{source}: tables.{name} (merged with the defaults)")
    policies = {name: spec.policy(name) for name, spec in settings.items()}
    _check_retention_chain(policies, reg, file=source)
    return policies


def _check_settings(settings: PolicySettings, where: str) -> None:
    """What one key cannot check alone, on the settings a table gets."""
    snaps = settings.snapshots
    if snaps.retain_max < snaps.retain_min:
        raise MaintenanceError(
            f"{where}: snapshots.retain_max ({snaps.retain_max}) is below retain_min "
            f"({snaps.retain_min}); raise retain_max or lower retain_min"
        )


def _check_retention_chain(policies: dict[str, TablePolicy], reg: Registry, file: str) -> None:
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
                    f"{file}: {name} keeps partitions {'forever' if own is None else f'{own} days'} "
                    f"but its input {source.name} keeps {src_days} days: a backfill of an older day would "
                    f"overwrite it with nothing. Give {name} partitions.retention_days <= {src_days}."
                )


def due_operations(policy: TablePolicy, start: datetime, end: datetime) -> list[str]:
    """Operations whose schedule fires in [start, end): what an hourly run does for this table."""
    from croniter import croniter

    due = []
    for operation in OPERATIONS:
        fire = croniter(policy.schedule(operation), start - timedelta(microseconds=1)).get_next(datetime)
        if start <= fire < end:
            due.append(operation)
    return due
