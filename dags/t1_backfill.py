"""
### T+1 backfill (on-call)

Rebuilds DWD/DWS partitions for a range of past days from ODS, with the same SQL models as the
streaming jobs and the daily run. Trigger it with the form:

| field | meaning |
|---|---|
| tables | `all`, a layer (`dwd`, `dws`) or individual tables |
| start_date, end_date | the days to rebuild, inclusive (YYYY-MM-DD); before today |
| dry_run | only report what would be rebuilt, with the current rows and totals |
| parallel_days | how many days are rebuilt at the same time (1–4) |

Everything is checked in **validate_request** before any data is touched; a bad request fails
there with a list of what to fix. Each day takes a lease on its (table, day) partitions, so a
backfill never overwrites a partition the daily run or another backfill is writing. Published
`t1-<day>` tags are never moved: a backfill corrects the tables, the tag keeps what was
published. The report lists, per partition, rows and totals before and after, snapshot ids and
duration. Each rebuilt day is audited with the Great Expectations suites (`expectations/`) at the
snapshots the backfill wrote; a lane with a failed critical expectation fails, listing each.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from lakehouse.batch.backfill import MAX_PARALLEL_DAYS, table_choices


@dag(
    dag_id="t1_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["batch", "t+1", "backfill", "on-call"],
    default_args={
        "owner": "data-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "tables": Param(
            ["all"],
            type="array",
            items={"type": "string", "enum": table_choices()},
            title="Tables",
            description="all, a layer (dwd, dws) or individual tables. DWD is rebuilt before the DWS "
            "tables that read it.",
        ),
        # No computed default (yesterday): a value that changes daily would make a new DAG version every day.
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Start date",
            description="First day to rebuild (YYYY-MM-DD, UTC), e.g. yesterday.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="End date",
            description="Last day to rebuild, inclusive; must be before today (today's partition is "
            "still being written by the streaming jobs).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Report the partitions and their current rows and totals; write nothing.",
        ),
        "parallel_days": Param(
            1,
            type="integer",
            minimum=1,
            maximum=MAX_PARALLEL_DAYS,
            title="Days in parallel",
            description=f"How many days are rebuilt at the same time (1-{MAX_PARALLEL_DAYS}).",
        ),
    },
)
def t1_backfill():
    @task(retries=0)
    def validate_request(params=None) -> dict:
        from lakehouse.batch.backfill import validate_backfill
        from lakehouse.core.results import to_jsonable

        request = validate_backfill(params)
        print(
            f"backfill {len(request.days)} days x {len(request.tables)} tables, {len(request.lanes())} lanes, "
            f"dry_run={request.dry_run}: {request.tables}"
        )
        return {**to_jsonable(request), "lanes": request.lanes()}

    @task
    def lanes_of(request: dict) -> list[dict]:
        return [{"days": days, "tables": request["tables"], "dry_run": request["dry_run"]} for days in request["lanes"]]

    # A lane rebuilds up to LAKEHOUSE_BACKFILL_MAX_DAYS days one after the other (each ~1-2 h at worst).
    @task(max_active_tis_per_dagrun=MAX_PARALLEL_DAYS, execution_timeout=timedelta(hours=12))
    def backfill_lane(lane: dict, run_id=None, ti=None) -> list[dict]:
        from lakehouse.batch.backfill import run_lane
        from lakehouse.batch.leases import LeaseManager, lease_holder
        from lakehouse.core.resources import resources
        from lakehouse.core.results import to_jsonable

        r = resources()
        reports = run_lane(
            lane["days"],
            lane["tables"],
            holder=lease_holder("t1_backfill", run_id, ti.map_index),  # each lane its own leases and pins
            run_id=run_id,
            flink=r.flink,
            paimon=r.paimon,
            leases=LeaseManager(r.ops),
            mysql=r.mysql_source,
            dry_run=lane["dry_run"],
        )
        return [to_jsonable(report) for report in reports]

    @task
    def report(lane_reports: list[list[dict]]) -> list[dict]:
        from lakehouse.batch.t1 import format_report

        rows = sorted((r for lane in lane_reports for r in lane), key=lambda r: (r["dt"], r["table"]))
        print(format_report(rows))
        return rows

    request = validate_request()
    report(backfill_lane.expand(lane=lanes_of(request)))


t1_backfill()
