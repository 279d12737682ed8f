"""Creating the registered Paimon tables and deploying the registered streaming jobs on Flink.

The DAGs call these functions; tests and `make demo` call them too, so there is one code path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from lakehouse.core.errors import ConfigError, GateFailed
from lakehouse.core.flink_sql import catalog_statements, sql_context, sql_quote
from lakehouse.core.registry import Registry, StreamingJobSpec, TableSpec, registry
from lakehouse.core.sql_files import declared_options, load_statements
from lakehouse.hooks.flink import FlinkHook, JobStatus
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    job_name: str
    job_id: str
    already_running: bool
    restored_from: str | None


class TableDriftError(GateFailed):
    """An existing table differs from its DDL in an option Paimon cannot change in place; nothing
    was altered. `drift` lists each difference ("<table>: '<option>' is <value>, the DDL says <value>")."""

    def __init__(self, drift: list[str]):
        super().__init__(
            "existing tables differ from their DDL in options that cannot be altered in place "
            "(recreate the table and backfill it):\n  " + "\n  ".join(drift)
        )
        self.drift = list(drift)


# Options that decide where rows live or how they merge: changing them needs a rewrite of the
# table (a new table and a backfill), never an ALTER behind running jobs.
FIXED_TABLE_OPTIONS = frozenset({"bucket", "bucket-key", "merge-engine", "sequence.field", "primary-key", "partition"})


def option_drift(declared: dict[str, str], actual: dict[str, str]) -> dict[str, tuple[str | None, str]]:
    """Declared options the table does not have (option -> (table's value, declared value))."""
    return {k: (actual.get(k), v) for k, v in sorted(declared.items()) if actual.get(k) != v}


def create_tables(tables: list[TableSpec], *, flink: FlinkHook, paimon: PaimonHook) -> list[str]:
    """Create the databases and tables (IF NOT EXISTS) through Flink, which owns them.

    A table that already exists keeps its content; options its DDL now declares differently
    (say `changelog-producer`, after a change of design) are applied with `ALTER TABLE ... SET`,
    so an old warehouse does not silently run on old settings. Jobs writing the table use the new
    value from their next start. A drift in an option that decides the layout
    (FIXED_TABLE_OPTIONS) fails with the table, the option and both values, and nothing altered.
    """
    context = sql_context(paimon=paimon)
    statements = catalog_statements(paimon)
    for database in sorted({t.database for t in tables}):
        statements.append(f"CREATE DATABASE IF NOT EXISTS lakehouse.`{database}`")
    declared: dict[str, dict[str, str]] = {}
    for table in tables:
        ddl = load_statements(table.ddl, context)
        statements.extend(ddl)
        declared[table.name] = {
            k: v
            for stmt in ddl
            if re.match(r"\s*CREATE\s+TABLE", stmt, re.I)
            for k, v in declared_options(stmt).items()
        }
    flink.execute_sql(statements)

    alters, fixed = [], []
    for table in tables:
        drift = option_drift(declared[table.name], dict(paimon.get_table(table.name).table_schema.options))
        if not drift:
            continue
        fixed += [
            f"{table.name}: '{k}' is {old!r}, the DDL says {new!r}"
            for k, (old, new) in drift.items()
            if k in FIXED_TABLE_OPTIONS
        ]
        changes = ", ".join(f"'{sql_quote(k)}' = '{sql_quote(new)}'" for k, (_, new) in drift.items())
        alters.append(f"ALTER TABLE lakehouse.`{table.database}`.`{table.table}` SET ({changes})")
        log.warning(
            "%s: options differ from its DDL, altering: %s",
            table.name,
            "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in drift.items()),
        )
    if fixed:
        raise TableDriftError(fixed)
    if alters:
        flink.execute_sql(catalog_statements(paimon) + alters)
    return [t.name for t in tables]


# Streaming reads of Paimon tables carry a consumer id (see consumer_options, docs/MAINTENANCE.md).
# How long a stopped reader's consumer keeps protecting its snapshots, counted from its last
# checkpoint: the longest stop the maintenance policy promises to survive. One day: a night or a day
# of incident; less than the DWS jobs' state TTL (36 h), the other bound on how long a stateful job
# may stay stopped; more than the longest pin (PaimonHook.pin_snapshot, 6 h), which is a consumer
# too. Every table a job streams declares the same value in its DDL (the writers expire consumers
# from their table's options).
CONSUMER_EXPIRATION_TIME = "1 d"
_CONSUMER_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def consumer_options(consumer_id: str, tables: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Per-table dynamic options that make a job's streaming reads of `tables` Paimon consumers.

    A consumer records, at each completed checkpoint, the next snapshot the reader needs; every
    snapshot expiry (the writers' own after each commit, and sys.expire_snapshots) keeps that
    snapshot and the later ones, also while the job is stopped, until `consumer.expiration-time`
    after its last checkpoint. The options:

    - `consumer-id`: the pipeline name (prefix included), one consumer per job and table;
    - `consumer.mode = at-least-once`: Paimon keeps the job's FLIP-27 source and records the slowest
      reader's snapshot (exactly-once swaps the source for another operator, whose state no
      savepoint of the jobs as they ran before has: the upgrade that adds the consumer would lose it);
    - `consumer.ignore-progress = true`: where to read from stays what it was, the job's restored
      state, or without state its scan mode (`latest-full`, or a reset's `from-snapshot`). Paimon
      would otherwise start a stateless reader at its old consumer's position, before looking at
      scan.mode: a reset would re-read what it must skip and its empty aggregates would upsert
      partial sums. The consumer is a retention guard only; the next checkpoint overwrites it.
    - `consumer.expiration-time`: Paimon refuses a consumer id without it (also in the DDLs).

    Consumer ids are lower snake case, so they never look like a pin (`pin-<holder>-until-<t>`)."""
    if not _CONSUMER_ID.match(consumer_id or ""):
        raise ConfigError(
            f"Paimon consumer id {consumer_id!r}: a streaming job's consumer id is its pipeline name, which must be "
            "lower snake case (job names in config/streaming_jobs.yaml, LAKEHOUSE_PIPELINE_PREFIX); "
            "ids like 'pin-...' are snapshot pins"
        )
    options: dict[str, str] = {}
    for table in tables:
        prefix = f"paimon.lakehouse.{table}."
        options[prefix + "consumer-id"] = consumer_id
        options[prefix + "consumer.mode"] = "at-least-once"
        options[prefix + "consumer.ignore-progress"] = "true"
        options[prefix + "consumer.expiration-time"] = CONSUMER_EXPIRATION_TIME
    return options


def job_session_config(
    job: StreamingJobSpec,
    *,
    restore_from: str | None = None,
    allow_non_restored_state: bool = False,
    read_from_snapshots: dict[str, int] | None = None,
) -> dict[str, str]:
    """Flink settings of one submission of a job.

    `read_from_snapshots` (table -> snapshot id) makes a job started without state read those
    tables' changelog from that snapshot on, instead of a full read of the latest snapshot
    (Paimon's per-table dynamic options `paimon.<catalog>.<db>.<table>.scan.mode`). A restored job
    reads on from the positions in its state and ignores them.

    Every table the job streams (not the ones it looks up) is read as the Paimon consumer
    `job.name`, the pipeline name (consumer_options)."""
    config = {
        "pipeline.name": job.name,
        "execution.runtime-mode": "streaming",
        "parallelism.default": str(job.parallelism),
        "table.exec.resource.default-parallelism": str(job.parallelism),
        "execution.checkpointing.interval": job.checkpoint_interval,
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        # Paimon merges by primary key itself; Flink's sink materializer must stay out of the way.
        "table.exec.sink.upsert-materialize": "NONE",
    }
    if job.state_ttl:
        config["table.exec.state.ttl"] = job.state_ttl
    config.update(consumer_options(job.name, job.streamed))
    for table, snapshot_id in sorted((read_from_snapshots or {}).items()):
        config[f"paimon.lakehouse.{table}.scan.mode"] = "from-snapshot"
        config[f"paimon.lakehouse.{table}.scan.snapshot-id"] = str(int(snapshot_id))
    if restore_from:
        config["execution.savepoint.path"] = restore_from
        if allow_non_restored_state:
            # After a SQL change some operators may not exist any more; their state is dropped
            # (sources without restored state re-read their full input, see docs/STREAMING.md).
            config["execution.savepoint.ignore-unclaimed-state"] = "true"
    return config


def job_sql_hash(job: StreamingJobSpec, *, paimon: PaimonHook, cdc: MySqlHook) -> str:
    """Content hash of what a deployment submits: rendered SQL plus job settings (not the restore path)."""
    import hashlib
    import json

    payload = json.dumps(
        {"sql": render_job(job, paimon=paimon, cdc=cdc), "config": job_session_config(job)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def render_job(job: StreamingJobSpec, *, paimon: PaimonHook, cdc: MySqlHook) -> list[str]:
    """The full statement list submitted for a job: catalog first, then the job file."""
    context = {**sql_context(paimon=paimon, cdc=cdc), **job.vars, "mode": "streaming"}
    return catalog_statements(paimon) + load_statements(job.sql, context)


def deploy_job(
    job_name: str,
    *,
    flink: FlinkHook,
    paimon: PaimonHook,
    cdc: MySqlHook,
    restore_from: str | None = None,
    reg: Registry | None = None,
    wait_for_checkpoint: bool = True,
    pipeline_name: str | None = None,
    allow_non_restored_state: bool = False,
    read_from_snapshots: dict[str, int] | None = None,
) -> Deployment:
    """Submit a registered streaming job unless it already runs; wait until it runs and checkpoints.

    Idempotent: a job with the same pipeline name that is already active is left alone.
    `pipeline_name` runs a second copy of a job under another name (tests, blue/green).
    """
    reg = reg or registry()
    job = reg.job(job_name)
    if pipeline_name:
        job = replace(job, name=pipeline_name)
    active = flink.active_jobs_named(job.name)
    if active:
        log.info("job %s already active as %s (%s); nothing to do", job.name, active[0].job_id, active[0].state)
        return Deployment(job.name, active[0].job_id, True, None)
    statements = render_job(job, paimon=paimon, cdc=cdc)
    config = job_session_config(
        job,
        restore_from=restore_from,
        allow_non_restored_state=allow_non_restored_state,
        read_from_snapshots=read_from_snapshots,
    )
    results = flink.execute_sql(statements, session_config=config)
    job_ids = [r.job_id for r in results if r.job_id]
    if not job_ids:
        raise ConfigError(f"{job.sql} submitted no job: it must end with an INSERT or a statement set")
    job_id = job_ids[-1]
    status: JobStatus = flink.wait_for_job_state(job_id, {"RUNNING"}, timeout=180)
    log.info(
        "job %s is %s as %s%s",
        job.name,
        status.state,
        job_id,
        f", restored from {restore_from}" if restore_from else "",
    )
    if wait_for_checkpoint:
        cp = flink.wait_for_checkpoint(job_id, timeout=300)
        log.info("job %s completed checkpoint %s", job.name, cp.checkpoint_id)
    return Deployment(job.name, job_id, False, restore_from)
