"""Whether each recent day the warehouse holds was published (`t1-<dt>` tagged) by its deadline.

The deadline alert on `t1_daily` runs belongs to a DAG run: it cannot see a day for which no run
was ever created (a scheduler down over midnight, a paused DAG, a schedule stuck behind a run that
already exists), and it fires at once for a run created after its own deadline (a fresh stack's
first run), which is a late start, not a missed publication. This check looks at the outcome
instead: for each of the last `days` days whose deadline (`published_by` UTC on the next day,
config/alerts.yaml) has passed and whose ODS inputs hold data (a day the source never had is
not expected to be published), every DWD/DWS table must carry the tag `t1-<dt>`.
`table_freshness` runs it every five minutes; a missing tag fails its task with `T1NotPublished`,
which the notifier sends as `t1_not_published` (the same kind and subject as the deadline alert,
so the two are one alert in the dedupe window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from lakehouse.core.days import tag_name
from lakehouse.core.errors import GateFailed
from lakehouse.core.registry import Registry, registry

if TYPE_CHECKING:
    from lakehouse.hooks.paimon import PaimonHook

T1_DAG = "t1_daily"


class T1NotPublished(GateFailed):
    """Days the warehouse holds whose `t1-<dt>` tag is missing after their deadline; `missing` maps
    each day to the tables without the tag, `since` is the earliest deadline missed."""

    def __init__(self, message: str, *, missing: dict[str, list[str]], since: datetime):
        super().__init__(message)
        self.missing = missing
        self.since = since
        self.dag_id = T1_DAG
        self.job = T1_DAG  # the alert's subject, as the deadline alert's


@dataclass(frozen=True)
class DayPublication:
    dt: str
    deadline: datetime
    held: bool  # ODS holds rows of the day
    missing: tuple[str, ...]  # recomputed tables without the tag

    @property
    def late(self) -> bool:
        return self.held and bool(self.missing)

    def line(self) -> str:
        if not self.held:
            return f"{self.dt}: ODS holds no rows of the day: nothing to publish"
        if not self.missing:
            return f"{self.dt}: {tag_name(self.dt)} on every DWD/DWS table"
        due = f"{self.deadline:%Y-%m-%d %H:%M} UTC"
        return f"{self.dt}: {tag_name(self.dt)} missing on {', '.join(self.missing)} (due {due})"


def deadline_of(dt: str, published_by: str) -> datetime:
    hh, mm = (int(x) for x in published_by.split(":"))
    return datetime.fromisoformat(dt).replace(tzinfo=UTC) + timedelta(days=1, hours=hh, minutes=mm)


def due_days(now: datetime, *, published_by: str, days: int) -> list[str]:
    """The last `days` days whose deadline has passed at `now`, newest first."""
    newest = date.fromisoformat(f"{now:%Y-%m-%d}") - timedelta(days=1)
    if deadline_of(newest.isoformat(), published_by) > now:
        newest -= timedelta(days=1)
    return [(newest - timedelta(days=n)).isoformat() for n in range(days)]


def publication_status(
    paimon: PaimonHook, *, now: datetime, published_by: str, days: int = 2, reg: Registry | None = None
) -> list[DayPublication]:
    """Per due day: held by the warehouse, and which recomputed tables lack `t1-<dt>`."""
    from lakehouse.batch.recompute import recomputable_tables
    from lakehouse.batch.t1 import day_sources

    reg = reg or registry()
    tables = [t.name for t in recomputable_tables(reg)]
    due = due_days(now, published_by=published_by, days=days)
    held_days: set[str] = set()  # days an ODS input of the recomputation holds rows of (file metadata only)
    for source in day_sources(reg):
        if paimon.table_exists(source.name):
            held_days |= {f.partition.get(source.partition) for f in paimon.data_files(source.name) if f.rows > 0}
    tags = {t: set(paimon.list_tags(t)) if paimon.table_exists(t) else set() for t in tables}
    return [
        DayPublication(
            dt,
            deadline_of(dt, published_by),
            dt in held_days,
            tuple(t for t in tables if tag_name(dt) not in tags[t]),
        )
        for dt in due
    ]


def check_published(
    paimon: PaimonHook, *, now: datetime | None = None, published_by: str, days: int = 2, reg: Registry | None = None
) -> list[DayPublication]:
    """`publication_status`, raising `T1NotPublished` when a held day is late."""
    status = publication_status(paimon, now=now or datetime.now(UTC), published_by=published_by, days=days, reg=reg)
    late = [d for d in status if d.late]
    if late:
        days_text = "; ".join(d.line() for d in late)
        raise T1NotPublished(
            f"T+1 not published: {days_text}. Look at the {T1_DAG} run of each day (Airflow UI: failed, still "
            f"waiting for its day, or never created); rebuild a day with t1_backfill (docs/RUNBOOK.md, "
            f"'T1 not published')",
            missing={d.dt: list(d.missing) for d in late},
            since=min(d.deadline for d in late),
        )
    return status
