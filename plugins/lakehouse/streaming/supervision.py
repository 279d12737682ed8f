"""Keeping the registered streaming jobs alive, current and checkpointing.

For each job, `Supervisor.supervise` makes one decision and records it in the deployment
history (the Paimon table ops.streaming_deployments, which on-call can read). The decision
table (finding -> action -> recorded as) is written once, in docs/STREAMING.md, "Supervision".

On-call operations (streaming_operations) go through `stop`, `start` and `reset`; `reset` restarts
a job without state together with the jobs its replayed output would otherwise double count.

A job with any deployment history is never started without state except by `reset` (or, for a job
configured `on_restore_failure: reset`, supervision's own failed restore): without state it would
read its whole input again. Only an operator's `stop` (recorded `STOP`) holds a job stopped; the
stops of an upgrade and of a reset are recorded as `STOP_FOR_UPGRADE` and `STOP_FOR_RESET`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.core.errors import BadRequest, ExternalServiceError, GateFailed
from lakehouse.core.ops_tables import OpsTable
from lakehouse.core.registry import Registry, StreamingJobSpec, registry
from lakehouse.core.registry import pipeline_prefix as pipeline_prefix_from_env
from lakehouse.hooks.flink import FlinkHook, FlinkJobError, JobStatus, root_cause
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.streaming.deploy import deploy_job, job_sql_hash

log = logging.getLogger(__name__)

DEPLOYMENTS_TABLE = "ops.streaming_deployments"
ACTIONS = (
    "DEPLOY",
    "RESTORE",
    "UPGRADE",
    "ADOPT",
    "STOP",  # an operator's stop: the one stop that holds a job stopped
    "STOP_FOR_UPGRADE",  # supervision's stop before the redeploy of an upgrade
    "STOP_FOR_RESET",  # a reset's stop (or mark, when the job was not running) of each job it restarts
    "START",
    "RESET",
    "START_TASKMANAGER",
)
_RESET_OF = re.compile(r"restart without state of ([a-z0-9_]+)")  # names the reset in STOP_FOR_RESET details


class StreamingJobUnhealthy(GateFailed):
    """A streaming job is unhealthy and supervision cannot fix it (it does not checkpoint, so Paimon
    does not commit; it runs twice; it cannot restore; no TaskManager): page someone. `job` is the
    registered job, `job_id` the Flink job concerned when there is one."""

    def __init__(self, message: str, *, job: str, job_id: str | None = None):
        super().__init__(message)
        self.job = job
        self.job_id = job_id


class CheckpointsUnreadable(ExternalServiceError):
    """The folder of a job's retained checkpoints could not be listed (storage down, refused, not a
    folder). Not "no restore point": a job that ran before is never started without state on a
    guess. `path` is the folder, `job_id` the Flink job whose checkpoints it holds."""

    def __init__(self, message: str, *, path: str, job_id: str):
        super().__init__(message)
        self.path = path
        self.job_id = job_id


DEPLOYMENTS = OpsTable(
    DEPLOYMENTS_TABLE,
    lambda pa: [
        ("event_time", pa.timestamp("ms")),  # UTC, stored without a zone
        ("job_name", pa.string()),
        ("action", pa.string()),
        ("job_id", pa.string()),
        ("sql_hash", pa.string()),
        ("restored_from", pa.string()),
        ("savepoint_path", pa.string()),
        ("detail", pa.string()),
    ],
)


@dataclass(frozen=True)
class DeploymentRecord:
    event_time: datetime
    job_name: str
    action: str
    job_id: str | None = None
    sql_hash: str | None = None
    restored_from: str | None = None
    savepoint_path: str | None = None
    detail: str | None = None


class DeploymentHistory:
    """Append-only history of what the control plane did to each streaming job."""

    def __init__(self, paimon: PaimonHook):
        self.paimon = paimon

    def record(self, record: DeploymentRecord) -> None:
        if record.action not in ACTIONS:
            raise BadRequest(f"unknown action {record.action}; one of {', '.join(ACTIONS)}")
        row = {**record.__dict__, "event_time": record.event_time.astimezone(UTC).replace(tzinfo=None)}
        DEPLOYMENTS.append(self.paimon, [row])
        log.info(
            "deployment history: %s %s job_id=%s hash=%s restored_from=%s savepoint=%s %s",
            record.job_name,
            record.action,
            record.job_id,
            record.sql_hash,
            record.restored_from,
            record.savepoint_path,
            record.detail or "",
        )

    def records(self, job_name: str | None = None) -> list[DeploymentRecord]:
        rows = DEPLOYMENTS.read(self.paimon)
        out = [
            DeploymentRecord(**{**r, "event_time": r["event_time"].replace(tzinfo=UTC)})
            for r in rows
            if job_name is None or r["job_name"] == job_name
        ]
        return sorted(out, key=lambda r: r.event_time)

    def last(self, job_name: str) -> DeploymentRecord | None:
        records = self.records(job_name)
        return records[-1] if records else None

    def hash_of(self, job_name: str, job_id: str) -> str | None:
        for r in reversed(self.records(job_name)):
            if r.job_id == job_id and r.sql_hash:
                return r.sql_hash
        return None


@dataclass(frozen=True)
class RestorePoint:
    path: str
    kind: str  # savepoint | checkpoint
    taken_at: float  # epoch seconds


def checkpoint_folder(flink: FlinkHook, job_id: str) -> str | None:
    """Where a job's retained checkpoints are (`<state.checkpoints.dir>/<job id>`), None when the
    cluster has no checkpoint directory."""
    config = flink.cluster_config()
    base = config.get("state.checkpoints.dir") or config.get("execution.checkpointing.dir")
    return base.rstrip("/") + "/" + job_id if base else None


def latest_retained_checkpoint(flink: FlinkHook, job_id: str) -> RestorePoint | None:
    """The newest complete checkpoint (chk-N/_metadata) a job left in the cluster's checkpoint directory.

    None when there is none (no folder, only unfinished checkpoints, no checkpoint directory);
    CheckpointsUnreadable when the folder cannot be listed."""
    from pyarrow import fs

    folder = checkpoint_folder(flink, job_id)
    if not folder:
        return None
    best = None
    try:
        filesystem, root = fs.FileSystem.from_uri(folder)
        for entry in filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True)):
            name = entry.path.rsplit("/", 1)[-1]
            if entry.type != fs.FileType.Directory or not name.startswith("chk-"):
                continue
            meta = filesystem.get_file_info(entry.path + "/_metadata")
            if meta.type != fs.FileType.File:
                continue  # an unfinished checkpoint
            number = int(name[4:])
            if best is None or number > best[0]:
                best = (number, entry.path, meta.mtime.timestamp() if meta.mtime else 0.0)
    except OSError as exc:
        raise CheckpointsUnreadable(
            f"cannot list the retained checkpoints of job {job_id} in {folder}: {exc}; nothing was started "
            "(the job is not started without state while its state may be there). Check that the storage "
            "answers and the folder is readable; the task's retry tries again",
            path=folder,
            job_id=job_id,
        ) from exc
    if best is None:
        return None
    scheme = folder.split("://", 1)[0] + "://" if "://" in folder else ""
    path = best[1] if best[1].startswith(scheme) else scheme + best[1]
    return RestorePoint(path=path, kind="checkpoint", taken_at=best[2])


@dataclass(frozen=True)
class SupervisionResult:
    job_name: str
    # OK | WAITING | STOPPED (an operator's stop holds it) | NOT_DEPLOYED | one of ACTIONS that was recorded
    action: str
    job_id: str | None
    detail: str = ""


def not_deployed_yet(table_name: str, *, paimon: PaimonHook, reg: Registry | None = None) -> str | None:
    """Why there is nothing to check on `table_name` yet, or None.

    A table is "not deployed yet" when it does not exist and no job that writes it has ever been
    deployed (no row in ops.streaming_deployments): a fresh stack before `streaming_deploy`. The
    operational DAGs skip such a table instead of failing (and alerting) on every run. A table
    that is missing although its writer was deployed is not skipped: its check runs and fails."""
    if paimon.table_exists(table_name):
        return None
    reg = reg or registry()
    writers = [pipeline_prefix_from_env() + job.name for job in reg.writers(table_name)]
    history = DeploymentHistory(paimon)
    if any(history.records(name) for name in writers):
        return None
    return f"{table_name} does not exist and nothing that writes it was ever deployed: trigger streaming_deploy"


def skip_until_deployed(table_name: str, *, paimon: PaimonHook, reg: Registry | None = None) -> None:
    """In a DAG task: skip it (AirflowSkipException) while `not_deployed_yet` gives a reason."""
    reason = not_deployed_yet(table_name, paimon=paimon, reg=reg)
    if reason:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(reason)


class Supervisor:
    """Decisions and on-call operations on the registered streaming jobs, with the hooks it is given
    (a DAG task passes those of `lakehouse.core.resources.resources()`; `cdc` renders the CDC job's SQL)."""

    def __init__(
        self,
        *,
        flink: FlinkHook,
        paimon: PaimonHook,
        cdc: MySqlHook,
        reg: Registry | None = None,
        pipeline_prefix: str | None = None,
        now=time.time,
    ):
        self.flink = flink
        self.paimon = paimon
        self.cdc = cdc
        self.reg = reg or registry()
        self.prefix = pipeline_prefix if pipeline_prefix is not None else pipeline_prefix_from_env()
        self.history = DeploymentHistory(self.paimon)
        self.now = now

    # ------------------------------------------------------------------ helpers
    def pipeline(self, job: StreamingJobSpec) -> str:
        return self.prefix + job.name

    def _record(self, job: StreamingJobSpec, action: str, **fields) -> None:
        self.history.record(DeploymentRecord(datetime.now(UTC), self.pipeline(job), action, **fields))

    @staticmethod
    def _since_last_reset(records: list[DeploymentRecord]) -> list[DeploymentRecord]:
        resets = [i for i, r in enumerate(records) if r.action == "RESET"]
        return records[resets[-1] :] if resets else records  # state from before a reset is never restored

    def _reset_remedy(self, job: StreamingJobSpec, *, again: bool = False) -> str:
        also = [c.name for c, _ in self.reg.reset_cascade(job.name)]
        return f"restart_without_state for {job.name}{' again' if again else ''}" + (
            f" (it also restarts, without state: {', '.join(also)})" if also else ""
        )

    def restore_point(self, job: StreamingJobSpec) -> RestorePoint | None:
        """Newest of: the savepoint of the last stop or upgrade, the last job's retained checkpoint.

        Only state from after the last RESET counts. CheckpointsUnreadable when the last job's
        checkpoint folder cannot be listed."""
        candidates = []
        records = self._since_last_reset(self.history.records(self.pipeline(job)))
        for r in reversed(records):
            if r.savepoint_path:
                candidates.append(RestorePoint(r.savepoint_path, "savepoint", r.event_time.timestamp()))
                break
        for r in reversed(records):
            if r.job_id:
                cp = latest_retained_checkpoint(self.flink, r.job_id)
                if cp:
                    candidates.append(cp)
                break
        return max(candidates, key=lambda c: c.taken_at) if candidates else None

    def deploy(
        self,
        job: StreamingJobSpec,
        action: str,
        *,
        restore_from: str | None,
        allow_non_restored_state=False,
        savepoint_path: str | None = None,
        detail: str = "",
        read_from_snapshots: dict[str, int] | None = None,
        by_operator: bool = False,
    ) -> SupervisionResult:
        """Submit `job` (restoring `restore_from` when given) and record `action`.

        When the restore fails, a job configured `on_restore_failure: reset` restarts without state,
        but only on supervision's own restores and upgrades: an operator's start (`by_operator`)
        never resets; it fails with Flink's reason and leaves the job stopped."""
        digest = job_sql_hash(job, paimon=self.paimon, cdc=self.cdc)
        try:
            d = deploy_job(
                job.name,
                flink=self.flink,
                paimon=self.paimon,
                cdc=self.cdc,
                reg=self.reg,
                restore_from=restore_from,
                pipeline_name=self.pipeline(job),
                allow_non_restored_state=allow_non_restored_state,
                read_from_snapshots=read_from_snapshots,
            )
        except FlinkJobError as exc:
            if not restore_from:
                raise
            if by_operator or job.on_restore_failure != "reset":
                if by_operator:  # what the failed start left restarting is cancelled: the job stays stopped
                    self._cancel_active(job)
                what = (
                    "Nothing was reset: the job stays stopped. Check the path and start it from another savepoint"
                    if by_operator
                    else "Its state does not fit the job as it is now. Start it from another savepoint"
                )
                raise StreamingJobUnhealthy(
                    f"{self.pipeline(job)} could not restore from {restore_from}: {root_cause(str(exc))}\n"
                    f"{what}, or, to start it without state, run streaming_operations with "
                    f"{self._reset_remedy(job)}.\n{exc}",
                    job=job.name,
                    job_id=exc.job_id,
                ) from exc
            return self._reset_after_failed_restore(job, digest, restore_from, exc)
        self._record(
            job,
            action,
            job_id=d.job_id,
            sql_hash=digest,
            restored_from=restore_from,
            savepoint_path=savepoint_path,
            detail=detail,
        )
        return SupervisionResult(job.name, action, d.job_id, detail)

    def _reset_after_failed_restore(
        self, job: StreamingJobSpec, digest: str, restore_from: str, exc: FlinkJobError
    ) -> SupervisionResult:
        """The SQL changed in a way its old state does not fit (say, another aggregate): start clean.

        Safe for this job by configuration (`on_restore_failure: reset`): its sinks are primary-key
        tables and its sources, without state, read their whole input again."""
        cause = root_cause(str(exc))
        log.warning("%s could not restore from %s (%s): restarting without state", job.name, restore_from, cause)
        self._cancel_active(job)
        d = deploy_job(
            job.name, flink=self.flink, paimon=self.paimon, cdc=self.cdc, reg=self.reg, pipeline_name=self.pipeline(job)
        )
        detail = f"restore from {restore_from} failed ({cause[:300]}); restarted without state"
        self._record(job, "RESET", job_id=d.job_id, sql_hash=digest, restored_from=None, detail=detail)
        return SupervisionResult(job.name, "RESET", d.job_id, detail)

    def _cancel_active(self, job: StreamingJobSpec) -> None:
        """Cancel what a failed submission left active (a job restarting on a restore that cannot work)."""
        for running in self.flink.active_jobs_named(self.pipeline(job)):
            self.flink.cancel_job(running.job_id)
            self.flink.wait_for_job_state(running.job_id, {"CANCELED"}, timeout=120)

    # ------------------------------------------------------------------ the decision
    def supervise(self, job_name: str, *, deploy_new: bool = True) -> SupervisionResult:
        """Check the job and do what the decision table says. `deploy_new=False` (the scheduled
        streaming_supervision DAG): a job never deployed is left alone (`NOT_DEPLOYED`); deploying is
        streaming_deploy's, so a stack where nobody deployed yet (a fresh start, CI) gets no jobs."""
        job = self.reg.job(job_name)
        active = self.flink.active_jobs_named(self.pipeline(job))
        if len(active) > 1:
            ids = ", ".join(j.job_id for j in active)
            raise StreamingJobUnhealthy(
                f"{self.pipeline(job)} runs {len(active)} times ({ids}): cancel all but one", job=job.name
            )
        if not active:
            return self._not_running(job, deploy_new=deploy_new)
        status = self.flink.job_status(active[0].job_id)
        if status.is_recovering or not status.all_tasks_running:
            return self._recovering(job, status)
        current = job_sql_hash(job, paimon=self.paimon, cdc=self.cdc)
        deployed = self.history.hash_of(self.pipeline(job), status.job_id)
        if deployed is None:
            # Deployed outside supervision (or before the history existed): adopt it as it is.
            self._record(job, "ADOPT", job_id=status.job_id, sql_hash=current, detail="running job adopted")
            return SupervisionResult(job.name, "ADOPT", status.job_id)
        if deployed != current:
            return self._upgrade(job, status, deployed, current)
        self._check_checkpoints(job, status)
        return SupervisionResult(job.name, "OK", status.job_id)

    def _not_running(self, job: StreamingJobSpec, *, deploy_new: bool = True) -> SupervisionResult:
        records = self.history.records(self.pipeline(job))
        if not records and not deploy_new:
            return SupervisionResult(
                job.name, "NOT_DEPLOYED", None, "never deployed: trigger the streaming_deploy DAG to deploy it"
            )
        if not records:  # its first deployment: the one start without state supervision makes
            return self.deploy(job, "DEPLOY", restore_from=None, detail="first deployment")
        last = records[-1]
        if last.action == "STOP":
            return SupervisionResult(
                job.name,
                "STOPPED",
                None,
                f"stopped by an operator at {last.event_time:%Y-%m-%d %H:%M} UTC ({last.savepoint_path}); "
                "start it from the operations DAG",
            )
        if last.action == "STOP_FOR_RESET":
            raise self._unfinished_reset(job, last)
        if last.action == "STOP_FOR_UPGRADE" and last.savepoint_path:
            current = job_sql_hash(job, paimon=self.paimon, cdc=self.cdc)
            if current != last.sql_hash:  # the redeploy failed: do it again
                return self._redeploy_upgrade(
                    job, last.savepoint_path, f"sql hash {last.sql_hash} -> {current} (resumed)"
                )
        point = self.restore_point(job)
        if point is None:
            raise self._nothing_to_restore(job, records)
        return self.deploy(job, "RESTORE", restore_from=point.path, detail=f"from {point.kind}")

    def _nothing_to_restore(self, job: StreamingJobSpec, records: list[DeploymentRecord]) -> StreamingJobUnhealthy:
        last_job = next((r.job_id for r in reversed(self._since_last_reset(records)) if r.job_id), None)
        folder = checkpoint_folder(self.flink, last_job) if last_job else None
        if folder:
            where = f"the last job, {last_job}, left no complete checkpoint in {folder}"
        elif last_job:
            where = f"the last job, {last_job}, left none: the cluster has no state.checkpoints.dir"
        else:
            where = "no job of it is recorded"
        return StreamingJobUnhealthy(
            f"{self.pipeline(job)} is not running and has no savepoint or retained checkpoint to restore ({where}); "
            "it ran before, so starting it without state would read its whole input again. Run streaming_operations "
            f"with start_from_savepoint and a savepoint_path, or with {self._reset_remedy(job)}",
            job=job.name,
            job_id=last_job,
        )

    def _unfinished_reset(self, job: StreamingJobSpec, last: DeploymentRecord) -> StreamingJobUnhealthy:
        """A reset stopped (or marked) this job and did not start it again. Its savepoint is from
        before the replay of the reset job's output: restoring it would count the replay twice; a
        start without state must read the replay from the snapshot the reset noted. Rerun the reset."""
        match = _RESET_OF.search(last.detail or "")
        root = self.reg.jobs.get(match.group(1)) if match else None
        how = "stopped" if last.job_id else "marked (it was not running)"
        when = f"{self.pipeline(job)} was {how} at {last.event_time:%Y-%m-%d %H:%M} UTC"
        if root is None:
            return StreamingJobUnhealthy(
                f"{when} by a restart without state that did not finish ({last.detail}). Run streaming_operations "
                "with restart_without_state again for the job that restart was for",
                job=job.name,
                job_id=last.job_id,
            )
        why = (
            ("; the jobs its output reaches wait for it" if self.reg.reset_cascade(root.name) else "")
            if root.name == job.name
            else f": its savepoint predates the replay of {root.name}'s output, so restoring it would count the "
            "replay twice"
        )
        return StreamingJobUnhealthy(
            f"{when} for a restart without state of {root.name}, which did not finish{why}. "
            f"Run streaming_operations with {self._reset_remedy(root, again=True)}",
            job=job.name,
            job_id=last.job_id,
        )

    def _recovering(self, job: StreamingJobSpec, status: JobStatus) -> SupervisionResult:
        if self.flink.taskmanager_count() == 0:
            if self.flink.start_taskmanager():
                self._record(job, "START_TASKMANAGER", job_id=status.job_id, detail=f"job was {status.state}")
                return SupervisionResult(job.name, "START_TASKMANAGER", status.job_id)
            raise StreamingJobUnhealthy(
                f"{self.pipeline(job)} is {status.state} and the cluster has no TaskManager; "
                "start TaskManagers (the flink connection has no taskmanager_start_command)",
                job=job.name,
                job_id=status.job_id,
            )
        since_ms = status.state_since_ms or status.start_time_ms
        age = self.now() - since_ms / 1000
        what = status.state if not status.is_running else "RUNNING with tasks not yet running"
        if age > job.checkpoint_max_age_s:
            cause = self.flink.job_exception(status.job_id) or "no exception recorded"
            raise StreamingJobUnhealthy(
                f"{self.pipeline(job)} ({status.job_id}) has been {what} for {age:.0f} s: {root_cause(cause)}\n{cause}",
                job=job.name,
                job_id=status.job_id,
            )
        return SupervisionResult(job.name, "WAITING", status.job_id, f"{what} for {age:.0f} s")

    def _upgrade(self, job: StreamingJobSpec, status: JobStatus, deployed: str, current: str) -> SupervisionResult:
        log.info("%s: SQL changed (%s -> %s): stop with savepoint and redeploy", job.name, deployed, current)
        savepoint = self.flink.stop_with_savepoint(status.job_id)
        # Not an operator's STOP: if the redeploy fails, the next run redeploys (_not_running).
        self._record(
            job,
            "STOP_FOR_UPGRADE",
            job_id=status.job_id,
            sql_hash=deployed,
            savepoint_path=savepoint,
            detail="stopped for upgrade",
        )
        return self._redeploy_upgrade(job, savepoint, f"sql hash {deployed} -> {current}")

    def _redeploy_upgrade(self, job: StreamingJobSpec, savepoint: str, detail: str) -> SupervisionResult:
        # Dropping state the new plan does not claim is safe only where a replay is: a source that
        # lost its state reads its whole input again, and a job with a reset cascade would write
        # that replay into a changelog its readers count. Those jobs must restore all of it.
        replay_safe = not self.reg.reset_cascade(job.name)
        return self.deploy(
            job,
            "UPGRADE",
            restore_from=savepoint,
            allow_non_restored_state=replay_safe,
            savepoint_path=savepoint,
            detail=detail,
        )

    def _check_checkpoints(self, job: StreamingJobSpec, status: JobStatus) -> None:
        info = self.flink.checkpoints(status.job_id)
        now = self.now()
        last_ok = info.completed_at_ms / 1000 if info.completed_at_ms else status.start_time_ms / 1000
        age = now - last_ok
        if age > job.checkpoint_max_age_s:
            cause = self.flink.job_exception(status.job_id)
            what = (
                f"last completed checkpoint #{info.checkpoint_id} is {age:.0f} s old"
                if info.checkpoint_id
                else f"no checkpoint completed in the {age:.0f} s since it started"
            )
            raise StreamingJobUnhealthy(
                f"{self.pipeline(job)} ({status.job_id}): {what} (limit {job.checkpoint_max_age_s:.0f} s); "
                f"{info.failed_count} checkpoints failed, latest failure: {info.latest_failure or 'none'}"
                + (f"\njob exception: {cause}" if cause else ""),
                job=job.name,
                job_id=status.job_id,
            )

    # ------------------------------------------------------------------ on-call operations
    def stop(self, job_name: str) -> SupervisionResult:
        """An operator's stop with a savepoint: supervision leaves the job stopped until it is started."""
        job = self.reg.job(job_name)
        active = self.flink.active_jobs_named(self.pipeline(job))
        if not active:
            raise BadRequest(f"{self.pipeline(job)} is not running; nothing to stop")
        return self._stop(job, active[0].job_id, "STOP", "operator stop")

    def _stop(self, job: StreamingJobSpec, job_id: str, action: str, detail: str) -> SupervisionResult:
        digest = self.history.hash_of(self.pipeline(job), job_id)
        savepoint = self.flink.stop_with_savepoint(job_id)
        self._record(job, action, job_id=job_id, sql_hash=digest, savepoint_path=savepoint, detail=detail)
        return SupervisionResult(job.name, action, job_id, savepoint)

    def reset(self, job_name: str) -> list[SupervisionResult]:
        """Restart a job without state, with the jobs its replayed output would double count.

        Order matters (Registry.reset_cascade): every job of the cascade is stopped with a
        savepoint, downstream first, so no writer commits any more; then each replayed table's
        latest snapshot is noted; the job starts without state and writes its whole output again;
        each downstream job starts without state reading the replayed tables from the snapshot
        after the noted one, i.e. exactly the replay and what follows it. Every step is recorded.

        Each job of it is first recorded `STOP_FOR_RESET` (stopped with a savepoint, or only marked
        when it was not running), so a reset that fails half-way leaves no job that reads as
        stopped by an operator or gets restored: supervision fails on each, naming the reset to
        run again."""
        job = self.reg.job(job_name)
        cascade = self.reg.reset_cascade(job_name)
        for spec in [c for c, _ in reversed(cascade)] + [job]:
            active = self.flink.active_jobs_named(self.pipeline(spec))
            if active:
                self._stop(
                    spec, active[0].job_id, "STOP_FOR_RESET", f"stopped for a restart without state of {job.name}"
                )
            else:
                self._record(spec, "STOP_FOR_RESET", detail=f"not running at the restart without state of {job.name}")
        marks: dict[str, int] = {}
        for _, tables in cascade:
            for table in tables:
                if table not in marks:
                    latest = self.paimon.latest_snapshot(table)
                    marks[table] = latest.snapshot_id if latest else 0
        results = [self.deploy(job, "RESET", restore_from=None, detail="started without state by an operator")]
        for consumer, tables in cascade:
            start = {t: marks[t] + 1 for t in tables}
            reads = ", ".join(f"{t} from snapshot {n}" for t, n in start.items())
            results.append(
                self.deploy(
                    consumer,
                    "RESET",
                    restore_from=None,
                    read_from_snapshots=start,
                    detail=f"reset with {job.name}, whose output is replayed: reads {reads}",
                )
            )
        return results

    def start(self, job_name: str, *, savepoint_path: str | None) -> SupervisionResult:
        """Start a stopped job from `savepoint_path`, or from its newest savepoint or retained checkpoint."""
        job = self.reg.job(job_name)
        if self.flink.active_jobs_named(self.pipeline(job)):
            raise BadRequest(f"{self.pipeline(job)} is already running; stop it first")
        last = self.history.last(self.pipeline(job))
        if last and last.action == "STOP_FOR_RESET":
            raise BadRequest(str(self._unfinished_reset(job, last)))
        known = self.restore_point(job) if not savepoint_path else None
        point = savepoint_path or (known.path if known else None)
        if not point:
            raise BadRequest(f"no savepoint or retained checkpoint known for {self.pipeline(job)}; pass savepoint_path")
        return self.deploy(
            job, "START", restore_from=point, savepoint_path=point, detail="started by an operator", by_operator=True
        )
