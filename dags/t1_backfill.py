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
there with a list of what to fix. **preview** then reports every partition the request covers with
its current rows and totals (a dry run ends there). With writes, **approve_writes** shows that
report in the UI (*Required actions*) and waits for a human: Approve and the lanes rebuild the
days; Reject and nothing is written; no answer within 4 hours and the run fails, nothing written
(docs/BACKFILL_UI.md). Each day takes a lease on its (table, day) partitions, so a
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

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.batch.backfill import MAX_PARALLEL_DAYS, table_choices
from lakehouse.batch.recompute import BATCH_SESSION
from lakehouse.core.approvals import ApprovalGate, describe_backfill
from lakehouse.core.pools import FLINK_BATCH_POOL, slots_of
from lakehouse.core.tasks import no_retry_on_deterministic

# How long a backfill with writes waits for its approval before the run fails, writing nothing.
APPROVAL_TIMEOUT = timedelta(hours=4)


@dag(
    dag_id="t1_backfill",
    schedule=None,
    is_paused_upon_creation=False,  # runs only when triggered; unpaused, so a run triggered by any means starts
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["batch", "t+1", "backfill", "on-call"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
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
    @no_retry_on_deterministic
    def validate_request(params=None) -> dict:
        from lakehouse.batch.backfill import validate_backfill
        from lakehouse.core.results import to_jsonable

        request = validate_backfill(params)
        print(
            f"backfill {len(request.days)} days x {len(request.tables)} tables, {len(request.lanes())} lanes, "
            f"dry_run={request.dry_run}: {request.tables}"
        )
        return {**to_jsonable(request), "lanes": request.lanes()}

    # What a write would replace, before anything is written: for a dry run, the whole result.
    @task(execution_timeout=timedelta(hours=2))
    @no_retry_on_deterministic
    def preview(request: dict, run_id=None) -> dict:
        from lakehouse.batch.backfill import run_lane
        from lakehouse.batch.leases import LeaseManager, lease_holder
        from lakehouse.batch.t1 import format_report
        from lakehouse.core.resources import resources
        from lakehouse.core.results import to_jsonable

        r = resources()
        reports = run_lane(
            request["days"],
            request["tables"],
            holder=lease_holder("t1_backfill", run_id),  # not a lane's: lanes hold .../<map index>
            run_id=run_id,
            flink=r.flink,
            paimon=r.paimon,
            leases=LeaseManager(r.ops),
            mysql=r.mysql_source,
            dry_run=True,
        )
        rows = [to_jsonable(report) for report in reports]
        print(format_report(rows))
        if not request["dry_run"]:
            print("waiting for approval of these overwrites in the UI (approve_writes)")
        return {"dry_run": request["dry_run"], "parallel_days": request["parallel_days"], "rows": rows}

    # Writes only: asks in the UI (Required actions), showing the preview; skipped for a dry run.
    approve_writes = ApprovalGate(
        task_id="approve_writes",
        what="the backfill's writes",
        from_task="preview",
        describe=describe_backfill,
        response_timeout=APPROVAL_TIMEOUT,
        doc_md="Approve the overwrites listed (the dry-run report of each partition); reject or let it time "
        "out to write nothing.",
    )

    @task
    @no_retry_on_deterministic
    def lanes_of(request: dict) -> list[dict]:
        return [{"days": days, "tables": request["tables"], "dry_run": request["dry_run"]} for days in request["lanes"]]

    # A lane rebuilds up to LAKEHOUSE_BACKFILL_MAX_DAYS days one after the other (each ~1-2 h at worst).
    # Its Flink statements hold BATCH_SESSION's parallelism in task slots: as many flink_batch pool slots.
    @task(
        max_active_tis_per_dagrun=MAX_PARALLEL_DAYS,
        execution_timeout=timedelta(hours=12),
        pool=FLINK_BATCH_POOL,
        pool_slots=slots_of(BATCH_SESSION),
        map_index_template="{{ task.op_kwargs['lane']['days'] | join(', ') }}",
    )
    @no_retry_on_deterministic
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
    @no_retry_on_deterministic
    def report(lane_reports: list[list[dict]]) -> list[dict]:
        from lakehouse.batch.t1 import format_report

        rows = sorted((r for lane in lane_reports for r in lane), key=lambda r: (r["dt"], r["table"]))
        print(format_report(rows))
        return rows

    request = validate_request()
    lanes = lanes_of(request)
    preview(request) >> approve_writes >> lanes
    report(backfill_lane.expand(lane=lanes))


t1_backfill()
