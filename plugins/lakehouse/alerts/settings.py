"""Alert settings: config/alerts.yaml (typed, unknown keys refused) and two environment overrides.

- `LAKEHOUSE_ALERT_DESTINATIONS`: a comma-separated list of `table`, `webhook`, `smtp`. Set, it is
  exactly the destinations used (`table`, the record in `ops.alerts`, is always written); unset,
  a destination is used when its Airflow connection is defined. `scripts/env.sh` sets `table`, so a
  local stack only records alerts.
- `LAKEHOUSE_RUNBOOK_URL`: the runbook the alerts link to (else `runbook_url`, else this checkout's
  docs/RUNBOOK.md as a file:// URL).

Reading the file is cheap (DAG files build their deadlines from it at parse time).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from lakehouse.core.config import ConfigModel, load_yaml, validate
from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import CONFIG_DIR, REPO_ROOT

SEVERITIES = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]
DESTINATIONS = ("table", "webhook", "smtp")
DESTINATIONS_ENV = "LAKEHOUSE_ALERT_DESTINATIONS"
RUNBOOK_ENV = "LAKEHOUSE_RUNBOOK_URL"
ALERTS_FILE = CONFIG_DIR / "alerts.yaml"


class DestinationSettings(ConfigModel):
    conn_id: str
    min_severity: Severity = "warning"


class DeadlineSettings(ConfigModel):
    t1_published_by: str = "06:00"
    streaming_down_minutes: int = Field(15, ge=4)  # two supervision rounds at least
    streaming_max_gap_minutes: int = Field(10, ge=1)
    t1_watch_days: int = Field(2, ge=1, le=14)  # days back table_freshness checks for their t1-<dt> tag

    @field_validator("t1_published_by")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"must be HH:MM (UTC), e.g. 06:00; got {value!r}")
        return value

    @property
    def t1_interval(self) -> timedelta:
        """From the day's logical date (its 00:00 UTC) to HH:MM on the next day."""
        hh, mm = self.t1_published_by.split(":")
        return timedelta(days=1, hours=int(hh), minutes=int(mm))


class AlertSettings(ConfigModel):
    runbook_url: str = ""
    dedupe_window_minutes: int = Field(60, ge=0)
    timeout_seconds: float = Field(10.0, gt=0)  # per delivery (webhook request, SMTP session)
    destinations: dict[Literal["webhook", "smtp"], DestinationSettings] = Field(default_factory=dict)
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)

    def runbook(self) -> str:
        return os.environ.get(RUNBOOK_ENV) or self.runbook_url or (REPO_ROOT / "docs" / "RUNBOOK.md").as_uri()


@lru_cache(maxsize=4)
def _load(path: Path) -> AlertSettings:
    return validate(AlertSettings, load_yaml(path), source=path.name)


def load_settings(path: Path = ALERTS_FILE) -> AlertSettings:
    """config/alerts.yaml as `AlertSettings` (a missing file: the defaults); ConfigError naming the key."""
    if not path.exists():
        return AlertSettings()
    return _load(path)


def enabled_destinations() -> tuple[str, ...] | None:
    """The destinations `LAKEHOUSE_ALERT_DESTINATIONS` asks for (always with `table`), or None when
    unset (then a destination is used when its connection is defined)."""
    raw = os.environ.get(DESTINATIONS_ENV)
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in DESTINATIONS]
    if unknown:
        raise ConfigError(
            f"{DESTINATIONS_ENV}={raw!r}: unknown destination(s) {', '.join(unknown)}; "
            f"use a comma-separated list of {', '.join(DESTINATIONS)}"
        )
    return tuple(dict.fromkeys(["table", *names]))
