"""
### Table maintenance: compaction, expiry, orphan files, measured

Runs every hour. For each registered Paimon table it does the operations whose schedule in
`config/maintenance.yaml` fires in that hour, with Paimon's own procedures through Flink:

| operation | procedure | never breaks |
|---|---|---|
| compaction | `sys.compact` (full) of closed days above one file per bucket | today's partition (the streaming writer's), a day being backfilled (same lease) |
| snapshots | `sys.expire_snapshots` (retain_min / retain_max / retain_time) | snapshots a consumer id needs: streaming readers, and pins of running T+1 runs and checks; files of tagged snapshots |
| tags | `sys.delete_tag` of `t1-<day>` tags older than the retention | other tags |
| partitions | `sys.expire_partitions` of days older than the retention | tables recomputed from inputs they would outlive (refused in the config) |
| orphan_files | `sys.remove_orphan_files` older than the threshold (>= 1 h) | files of writes in flight |

Each table is measured before and after (snapshots, data files, bytes, small files, partitions);
the figures go to the Paimon table `ops.maintenance_metrics` and the task log.
**alert_small_file_growth** fails when a table's small files grew in each of its last runs.

Trigger it by hand to run chosen operations now (form: tables, operations, dry run).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from lakehouse.alerts.notifier import LakehouseNotifier
from lakehouse.core.pools import FLINK_BATCH_POOL
from lakehouse.core.registry import registry
from lakehouse.core.tasks import no_retry_on_deterministic
from lakehouse.maintenance.policy import OPERATIONS

TABLE_NAMES = sorted(registry().tables)
# The grid's name of a mapped `maintain` (rendered with its `item`): "ods.ods_orders: compaction, snapshots".
MAINTAIN_LABEL = (
    "{% set item = task.op_kwargs['item'] %}{{ item['table'] }}: {{ item['operations'] | join(', ') }}"
    "{{ ' (dry run)' if item['dry_run'] else '' }}"
)


@dag(
    dag_id="table_maintenance",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,  # upkeep of the current state: missed hours are not worth replaying
    is_paused_upon_creation=False,  # operational: live from the first start (docs/AIRFLOW.md)
    max_active_runs=1,
    doc_md=__doc__,
    tags=["paimon", "maintenance", "flink"],
    default_args={
        "owner": "data-platform",
        "on_failure_callback": LakehouseNotifier(),  # final failures only (docs/ALERTS.md)
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=1),  # one table's due operations, each a Flink batch job
    },
    params={
        "tables": Param(
            [],
            type="array",
            items={"type": "string", "enum": TABLE_NAMES},
            title="Tables",
            description="Tables to maintain; empty: every registered table.",
        ),
        "operations": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(OPERATIONS)},
            title="Operations",
            description="Run these now, whatever their schedule; empty: what the schedules in "
            "config/maintenance.yaml say for this hour.",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Measure and say what would be done; change nothing."
        ),
    },
)
def table_maintenance():
    @task(retries=0)
    @no_retry_on_deterministic
    def plan(params=None, data_interval_start=None, data_interval_end=None) -> list[dict]:
        from lakehouse.core.resources import resources
        from lakehouse.maintenance.policy import due_operations, load_policies
        from lakehouse.streaming.supervision import not_deployed_yet

        policies = load_policies()  # a bad config fails here, naming the setting
        names = params.get("tables") or sorted(policies)
        chosen = params.get("operations") or []
        work = []
        paimon = resources().paimon
        for name in names:
            reason = not_deployed_yet(name, paimon=paimon)
            if reason:  # a fresh stack before streaming_deploy: nothing to maintain
                print(f"{name}: skipped, {reason}")
                continue
            ops = list(chosen) or due_operations(policies[name], data_interval_start, data_interval_end)
            if ops:
                work.append({"table": name, "operations": ops, "dry_run": bool(params.get("dry_run"))})
                print(f"{name}: {', '.join(ops)}")
        if not work:
            print("nothing is due in this hour")
        return work

    # Each operation is a Flink batch job of one slot (PROCEDURE_SESSION): one flink_batch pool slot, shared
    # with T+1 and backfills; at most two tables of a run at a time on 2 cores. The grid names the table.
    @task(
        max_active_tis_per_dagrun=2,
        pool=FLINK_BATCH_POOL,
        pool_slots=1,
        map_index_template=MAINTAIN_LABEL,
    )
    @no_retry_on_deterministic
    def maintain(item: dict, run_id=None, ti=None, data_interval_end=None) -> list[dict]:
        from lakehouse.batch.leases import LeaseManager, lease_holder
        from lakehouse.core.resources import resources
        from lakehouse.maintenance.operations import maintain_table
        from lakehouse.maintenance.policy import load_policies

        r = resources()
        report = maintain_table(
            load_policies()[item["table"]],
            item["operations"],
            flink=r.flink,
            paimon=r.paimon,
            leases=LeaseManager(r.ops),
            holder=lease_holder("table_maintenance", run_id, ti.map_index),  # each mapped task its own
            now=data_interval_end,
            dry_run=item["dry_run"],
        )
        for line in report.lines():
            print(line)
        return report.metric_rows()

    @task(trigger_rule="all_done")  # keep the figures of the tables that were maintained
    @no_retry_on_deterministic
    def record_metrics(rows: list[list[dict]], run_id=None, params=None) -> int:
        from lakehouse.core.resources import resources
        from lakehouse.maintenance.metrics import METRICS_TABLE
        from lakehouse.maintenance.metrics import record_metrics as record

        flat = [r for table_rows in rows if table_rows for r in table_rows]
        if not flat or params.get("dry_run"):
            print("nothing to record")
            return 0
        snapshot = record(resources().paimon, run_id, flat)
        print(f"{len(flat)} rows appended to {METRICS_TABLE} (snapshot {snapshot})")
        return len(flat)

    @task
    @no_retry_on_deterministic
    def alert_small_file_growth(work: list[dict]) -> None:
        from lakehouse.core.resources import resources
        from lakehouse.maintenance.metrics import check_small_file_growth
        from lakehouse.maintenance.policy import load_policies

        policies = load_policies()
        check_small_file_growth(resources().paimon, {w["table"]: policies[w["table"]] for w in work})
        print("small files are not growing run after run")

    work = plan()
    recorded = record_metrics(maintain.expand(item=work))
    recorded >> alert_small_file_growth(work)


table_maintenance()
