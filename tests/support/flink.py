"""A fake Flink cluster at the level of the FlinkHook methods the control plane calls."""

from __future__ import annotations

from lakehouse.hooks.flink import CheckpointInfo, JobStatus

NOW = 1_750_000_000.0  # the default clock of ages (a Supervisor's `now` in the tests)


class FakeFlinkCluster:
    """The FlinkHook methods the control plane calls (supervision, deploy, table creation), without
    HTTP; `jobs` are the cluster's active jobs, `batches` the statement lists sent to the SQL
    Gateway. Mutating calls are recorded in `calls`. Times are measured against `now`."""

    def __init__(self, checkpoint_root: str | None = None, *, now: float = NOW):
        self.now = now
        self.jobs: list[JobStatus] = []
        self.details: dict[str, JobStatus] = {}
        self.exceptions: dict[str, str] = {}
        self.checkpoint_info: dict[str, CheckpointInfo] = {}
        self.tm_count = 1
        self.tm_startable = True
        self.config = {"state.checkpoints.dir": checkpoint_root} if checkpoint_root else {}
        self.calls: list[tuple] = []
        self.batches: list[list[str]] = []

    # job listing
    def list_jobs(self):
        return list(self.jobs)

    def active_jobs_named(self, name):
        self.calls.append(("active_jobs_named", name))
        return [j for j in self.jobs if j.name == name]

    def add_job(self, job_id, name, state="RUNNING", *, all_tasks_running=True, since_s=None, started_s=None):
        started_s = self.now - 3600 if started_s is None else started_s
        overview = JobStatus(job_id, name, state, int(started_s * 1000))
        self.jobs.append(overview)
        self.details[job_id] = JobStatus(
            job_id,
            name,
            state,
            int(started_s * 1000),
            int(since_s * 1000) if since_s is not None else None,
            all_tasks_running,
        )
        # A healthy job checkpointed 5 s ago unless a test says otherwise.
        self.checkpoint_info.setdefault(job_id, CheckpointInfo(12, None, int((self.now - 5) * 1000), 12, 0, None))

    # job details
    def job_status(self, job_id):
        self.calls.append(("job_status", job_id))
        return self.details[job_id]

    def job_exception(self, job_id):
        return self.exceptions.get(job_id)

    def checkpoints(self, job_id):
        return self.checkpoint_info[job_id]

    # cluster
    def taskmanager_count(self):
        return self.tm_count

    def start_taskmanager(self):
        self.calls.append(("start_taskmanager",))
        if self.tm_startable:
            self.tm_count += 1
        return self.tm_startable

    def cluster_config(self):
        return dict(self.config)

    def stop_with_savepoint(self, job_id):
        self.calls.append(("stop_with_savepoint", job_id))
        self.jobs = [j for j in self.jobs if j.job_id != job_id]
        return f"file:///savepoints/savepoint-{job_id[:6]}-1"

    def mutations(self):
        return [c for c in self.calls if c[0] in ("stop_with_savepoint", "start_taskmanager")]

    # SQL Gateway
    def execute_sql(self, statements, **_):
        self.batches.append(list(statements))
        return []

    def stop_job(self, name):
        """The job stops (as after stop-with-savepoint), without a record in `calls`."""
        self.jobs = [j for j in self.jobs if j.name != name]
