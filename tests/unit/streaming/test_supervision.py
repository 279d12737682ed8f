"""Supervisor decisions against a fake Flink cluster and a REAL Paimon deployment history.

Flink is replaced by `FakeFlink` (only the methods the Supervisor calls; every mutating call is
recorded). The deployment history is a real pypaimon warehouse in tmp_path, read back with a
separate PaimonHook so the tests see what on-call would see in ops.streaming_deployments.
`deploy_job` and `job_sql_hash` are replaced so no SQL Gateway or MySQL is needed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.core.errors import BadRequest, ExternalServiceError
from lakehouse.core.registry import registry
from lakehouse.hooks.flink import CheckpointInfo, FlinkJobError, FlinkUnavailableError, JobStatus
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.streaming import supervision
from lakehouse.streaming.deploy import Deployment
from lakehouse.streaming.supervision import (
    DEPLOYMENTS_TABLE,
    CheckpointsUnreadable,
    DeploymentHistory,
    DeploymentRecord,
    RestorePoint,
    StreamingJobUnhealthy,
    Supervisor,
    latest_retained_checkpoint,
)
from tests.support.flink import NOW, FakeFlinkCluster  # NOW: the Supervisor's clock in these tests

CONN_ID = "paimon_ut"
JOB = "dws_shop_hourly"  # checkpoint_max_age 2min in config/streaming_jobs.yaml
MAX_AGE = 120
OLD_ID = "0" * 31 + "a"
RUNNING_ID = "b" * 32
ROOT = "java.io.IOException: No space left on device"
TRACE = (
    "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n"
    "\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(X.java:1)\n"
    f"Caused by: {ROOT}\n"
    "\tat org.apache.paimon.fs.local.LocalFileIO.newOutputStream(LocalFileIO.java:2)\n"
)


# ---------------------------------------------------------------------------- fakes
class FakeDeployer:
    """Stands in for lakehouse.streaming.deploy.deploy_job: records the call, starts a RUNNING job."""

    fail_restore_with: str | None = None  # the Flink error of a submission that restores state

    def __init__(self, flink: FakeFlinkCluster):
        self.flink = flink
        self.calls: list[dict] = []
        self.fail_with: dict[str, Exception] = {}  # job name -> what its submission raises

    def __call__(self, job_name, **kwargs):
        job_id = f"{len(self.calls) + 1:032x}"
        self.calls.append({"job_name": job_name, "restore_from": None, **kwargs})
        assert kwargs["flink"] is self.flink
        if job_name in self.fail_with:
            raise self.fail_with[job_name]
        if kwargs.get("restore_from") and self.fail_restore_with:
            raise FlinkJobError(self.fail_restore_with)
        self.flink.add_job(job_id, kwargs["pipeline_name"] or job_name)
        return Deployment(kwargs["pipeline_name"] or job_name, job_id, False, kwargs.get("restore_from"))


class Env:
    def __init__(self, tmp_path, monkeypatch):
        self.tmp_path = tmp_path
        self.checkpoints = tmp_path / "checkpoints"
        self.checkpoints.mkdir()
        self.flink = FakeFlinkCluster(f"file://{self.checkpoints}")
        self.deployer = FakeDeployer(self.flink)
        self.hash = "hash-1"
        self.hashed: list[str] = []
        monkeypatch.setattr(supervision, "deploy_job", self.deployer)
        monkeypatch.setattr(supervision, "job_sql_hash", self._hash)
        self.paimon = PaimonHook(CONN_ID)
        self.history = DeploymentHistory(PaimonHook(CONN_ID))

    def _hash(self, job, *, paimon, cdc):
        assert paimon is self.paimon
        self.hashed.append(job.name)
        return self.hash

    def supervisor(self, **kwargs) -> Supervisor:
        kwargs.setdefault("now", lambda: NOW)
        return Supervisor(flink=self.flink, paimon=self.paimon, cdc=object(), reg=registry(), **kwargs)

    def seed(self, action, *, minutes_ago, job_name=JOB, **fields):
        at = datetime.fromtimestamp(NOW, tz=UTC) - timedelta(minutes=minutes_ago)
        self.history.record(DeploymentRecord(at, job_name, action, **fields))

    def rows(self):
        """ops.streaming_deployments as stored, oldest first (read with a fresh hook)."""
        hook = PaimonHook(CONN_ID)
        if not hook.table_exists(DEPLOYMENTS_TABLE):
            return []
        rows = sorted(hook.read_arrow(DEPLOYMENTS_TABLE).to_pylist(), key=lambda r: r["event_time"])
        return [
            (r["job_name"], r["action"], r["job_id"], r["sql_hash"], r["restored_from"], r["savepoint_path"])
            for r in rows
        ]

    def checkpoint(self, job_id, number, *, complete=True, mtime=None):
        d = self.checkpoints / job_id / f"chk-{number}"
        d.mkdir(parents=True)
        if complete:
            (d / "_metadata").write_bytes(b"\x00meta")
            if mtime is not None:
                os.utime(d / "_metadata", (mtime, mtime))
        return f"file://{d}"


@pytest.fixture
def env(tmp_path, monkeypatch):
    wh = tmp_path / "warehouse"
    wh.mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_PAIMON_UT", json.dumps({"conn_type": "paimon", "extra": {"warehouse": str(wh)}}))
    return Env(tmp_path, monkeypatch)


# ---------------------------------------------------------------------------- deployment history
def test_history_round_trip_filter_and_hash_of(env):
    env.seed("DEPLOY", minutes_ago=30, job_id=OLD_ID, sql_hash="h-old")
    env.seed("DEPLOY", minutes_ago=20, job_name="dws_city_daily", job_id="c" * 32, sql_hash="h-city")
    env.seed(
        "UPGRADE",
        minutes_ago=10,
        job_id=RUNNING_ID,
        sql_hash="h-new",
        restored_from="file:///sp/1",
        savepoint_path="file:///sp/1",
        detail="sql hash h-old -> h-new",
    )
    env.seed("START_TASKMANAGER", minutes_ago=5, job_id=RUNNING_ID)  # no hash: must not hide the UPGRADE hash

    history = DeploymentHistory(PaimonHook(CONN_ID))
    records = history.records(JOB)
    assert [r.action for r in records] == ["DEPLOY", "UPGRADE", "START_TASKMANAGER"]
    assert records[1] == DeploymentRecord(
        datetime.fromtimestamp(NOW, tz=UTC) - timedelta(minutes=10),
        JOB,
        "UPGRADE",
        RUNNING_ID,
        "h-new",
        "file:///sp/1",
        "file:///sp/1",
        "sql hash h-old -> h-new",
    )
    assert len(history.records()) == 4
    assert history.last(JOB).action == "START_TASKMANAGER"
    assert history.last("dws_city_daily").job_id == "c" * 32
    assert history.last("dws_city_hourly") is None
    assert history.hash_of(JOB, RUNNING_ID) == "h-new"
    assert history.hash_of(JOB, OLD_ID) == "h-old"
    assert history.hash_of(JOB, "c" * 32) is None  # another job's id


def test_history_refuses_unknown_action(env):
    with pytest.raises(BadRequest, match="unknown action REDEPLOY; one of DEPLOY, "):
        env.history.record(DeploymentRecord(datetime.now(UTC), JOB, "REDEPLOY"))


# ---------------------------------------------------------------------------- retained checkpoints
def test_latest_retained_checkpoint_skips_unfinished(env):
    env.checkpoint(OLD_ID, 3, mtime=NOW - 100)
    chk7 = env.checkpoint(OLD_ID, 7, mtime=NOW - 50)
    env.checkpoint(OLD_ID, 9, complete=False)
    env.checkpoint(OLD_ID, 11, complete=False)
    (env.checkpoints / OLD_ID / "shared").mkdir()
    (env.checkpoints / OLD_ID / "chk-12").write_text("a file, not a checkpoint directory")

    point = latest_retained_checkpoint(env.flink, OLD_ID)
    assert point == RestorePoint(path=chk7, kind="checkpoint", taken_at=pytest.approx(NOW - 50))
    assert point.path == f"file://{env.checkpoints}/{OLD_ID}/chk-7"


def test_latest_retained_checkpoint_none_cases(env):
    assert latest_retained_checkpoint(env.flink, OLD_ID) is None  # no directory for the job
    env.checkpoint(OLD_ID, 4, complete=False)
    assert latest_retained_checkpoint(env.flink, OLD_ID) is None  # only an unfinished one
    env.checkpoint(OLD_ID, 2)
    env.flink.config = {}
    assert latest_retained_checkpoint(env.flink, OLD_ID) is None  # cluster has no checkpoint dir


def test_latest_retained_checkpoint_falls_back_to_execution_checkpointing_dir(env):
    chk = env.checkpoint(OLD_ID, 5)
    env.flink.config = {"execution.checkpointing.dir": f"file://{env.checkpoints}/"}
    assert latest_retained_checkpoint(env.flink, OLD_ID).path == chk


def test_unreadable_checkpoint_folder_is_an_error_naming_it(env):
    """Not "no restore point": that would start a job with history from nothing."""
    (env.checkpoints / OLD_ID).write_text("a file where the job's folder should be: listing it fails")
    folder = f"file://{env.checkpoints}/{OLD_ID}"

    with pytest.raises(CheckpointsUnreadable) as exc:
        latest_retained_checkpoint(env.flink, OLD_ID)
    assert isinstance(exc.value, ExternalServiceError) and exc.value.retryable
    assert exc.value.path == folder
    message = str(exc.value)
    assert message.startswith(f"cannot list the retained checkpoints of job {OLD_ID} in {folder}: ")
    assert "Not a directory" in message  # the file system's own reason
    assert "nothing was started" in message


def test_job_with_history_is_not_started_when_its_checkpoints_cannot_be_read(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")
    (env.checkpoints / OLD_ID).write_text("unreadable")

    with pytest.raises(CheckpointsUnreadable, match=f"in file://{env.checkpoints}/{OLD_ID}: "):
        env.supervisor().supervise(JOB)
    assert env.deployer.calls == []
    assert [r[1] for r in env.rows()] == ["DEPLOY"]


@pytest.mark.parametrize(
    "name, also",
    [
        (JOB, ""),
        (
            "dwd_order_fact",
            " (it also restarts, without state: dws_shop_hourly, dws_shop_daily, dws_city_hourly, dws_city_daily)",
        ),
    ],
)
def test_job_with_history_and_no_restore_point_fails_naming_the_remedy(env, name, also):
    """Its retained checkpoints are gone (say, the bucket was emptied): a start from nothing would
    read its whole input again, so only on-call decides, through the operations DAG."""
    env.seed("DEPLOY", minutes_ago=60, job_name=name, job_id=OLD_ID, sql_hash="hash-1")

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise(name)
    assert str(exc.value) == (
        f"{name} is not running and has no savepoint or retained checkpoint to restore (the last job, {OLD_ID}, "
        f"left no complete checkpoint in file://{env.checkpoints}/{OLD_ID}); it ran before, so starting it without "
        "state would read its whole input again. Run streaming_operations with start_from_savepoint and a "
        f"savepoint_path, or with restart_without_state for {name}{also}"
    )
    assert exc.value.job == name
    assert env.deployer.calls == []
    assert [r[1] for r in env.rows()] == ["DEPLOY"]


# ---------------------------------------------------------------------------- job not running
def test_the_schedule_never_deploys_a_job_nobody_deployed(env):
    """streaming_supervision (deploy_new=False) on a stack where streaming_deploy never ran (a fresh
    start, CI running its own pipelines): it used to deploy all eight demo jobs by itself."""
    result = env.supervisor().supervise(JOB, deploy_new=False)

    assert (result.action, result.job_id) == ("NOT_DEPLOYED", None)
    assert "streaming_deploy" in result.detail
    assert env.deployer.calls == [] and env.rows() == [] and env.flink.mutations() == []


def test_the_schedule_restores_a_job_that_was_deployed(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")
    chk = env.checkpoint(OLD_ID, 7)
    result = env.supervisor().supervise(JOB, deploy_new=False)
    assert result.action == "RESTORE" and env.deployer.calls[0]["restore_from"] == chk


def test_not_running_without_history_deploys_fresh(env):
    result = env.supervisor().supervise(JOB)

    assert result.action == "DEPLOY"
    assert result.job_name == JOB
    assert len(env.deployer.calls) == 1
    call = env.deployer.calls[0]
    assert call["job_name"] == JOB and call["pipeline_name"] == JOB
    assert call["restore_from"] is None and call["allow_non_restored_state"] is False
    assert result.job_id == f"{1:032x}"
    assert env.rows() == [(JOB, "DEPLOY", result.job_id, "hash-1", None, None)]
    assert env.flink.mutations() == []


def test_not_running_restores_newest_complete_retained_checkpoint(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")
    env.checkpoint(OLD_ID, 6)
    chk7 = env.checkpoint(OLD_ID, 7)
    env.checkpoint(OLD_ID, 9, complete=False)  # the job died while taking it

    result = env.supervisor().supervise(JOB)

    assert result.action == "RESTORE"
    assert result.detail == "from checkpoint"
    assert chk7.endswith(f"/{OLD_ID}/chk-7")
    assert env.deployer.calls[0]["restore_from"] == chk7
    assert env.deployer.calls[0]["allow_non_restored_state"] is False
    assert env.rows() == [
        (JOB, "DEPLOY", OLD_ID, "hash-1", None, None),
        (JOB, "RESTORE", result.job_id, "hash-1", chk7, None),
    ]


def test_not_running_restores_savepoint_of_last_upgrade_when_no_checkpoint(env):
    env.seed(
        "UPGRADE",
        minutes_ago=60,
        job_id=OLD_ID,
        sql_hash="hash-1",
        restored_from="file:///savepoints/sp-1",
        savepoint_path="file:///savepoints/sp-1",
    )

    result = env.supervisor().supervise(JOB)

    assert (result.action, result.detail) == ("RESTORE", "from savepoint")
    assert env.deployer.calls[0]["restore_from"] == "file:///savepoints/sp-1"
    assert env.rows()[-1] == (JOB, "RESTORE", result.job_id, "hash-1", "file:///savepoints/sp-1", None)


@pytest.mark.parametrize("checkpoint_offset_s, expected", [(+600, "checkpoint"), (-600, "savepoint")])
def test_restore_point_is_the_newest_of_savepoint_and_checkpoint(env, checkpoint_offset_s, expected):
    stop_minutes_ago = 30
    stopped_at = NOW - stop_minutes_ago * 60
    env.seed("DEPLOY", minutes_ago=120, job_id=OLD_ID, sql_hash="hash-1")
    env.seed(
        "STOP",
        minutes_ago=stop_minutes_ago,
        job_id=OLD_ID,
        sql_hash="hash-1",
        savepoint_path="file:///savepoints/sp-stop",
    )
    chk = env.checkpoint(OLD_ID, 21, mtime=stopped_at + checkpoint_offset_s)
    sup = env.supervisor()

    point = sup.restore_point(registry().job(JOB))
    if expected == "checkpoint":
        assert point == RestorePoint(chk, "checkpoint", pytest.approx(stopped_at + 600))
    else:
        assert point == RestorePoint("file:///savepoints/sp-stop", "savepoint", pytest.approx(stopped_at))

    # An operator start without a path uses that same point.
    result = sup.start(JOB, savepoint_path=None)
    assert result.action == "START"
    assert env.deployer.calls[0]["restore_from"] == point.path
    assert env.rows()[-1] == (JOB, "START", result.job_id, "hash-1", point.path, point.path)


def test_job_stopped_by_operator_stays_stopped(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")
    env.seed("STOP", minutes_ago=10, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/sp-9")
    env.checkpoint(OLD_ID, 3)  # would be restorable, but the operator wants it stopped

    result = env.supervisor().supervise(JOB)

    assert result.action == "STOPPED"
    assert result.job_id is None
    assert "file:///savepoints/sp-9" in result.detail and "operations DAG" in result.detail
    assert env.deployer.calls == []
    assert [r[1] for r in env.rows()] == ["DEPLOY", "STOP"]


# ---------------------------------------------------------------------------- running
def test_running_job_never_recorded_is_adopted_then_ok(env):
    env.flink.add_job(RUNNING_ID, JOB)
    env.hash = "hash-adopt"
    sup = env.supervisor()

    first = sup.supervise(JOB)
    assert (first.action, first.job_id) == ("ADOPT", RUNNING_ID)
    assert env.rows() == [(JOB, "ADOPT", RUNNING_ID, "hash-adopt", None, None)]

    second = sup.supervise(JOB)
    assert (second.action, second.job_id) == ("OK", RUNNING_ID)
    assert len(env.rows()) == 1  # OK records nothing
    assert env.deployer.calls == [] and env.flink.mutations() == []


def test_changed_hash_upgrades_through_a_savepoint(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, JOB)
    env.hash = "hash-new"

    result = env.supervisor().supervise(JOB)

    savepoint = f"file:///savepoints/savepoint-{RUNNING_ID[:6]}-1"
    assert result.action == "UPGRADE"
    assert result.detail == "sql hash hash-old -> hash-new"
    assert env.flink.mutations() == [("stop_with_savepoint", RUNNING_ID)]
    assert len(env.deployer.calls) == 1
    call = env.deployer.calls[0]
    assert call["restore_from"] == savepoint and call["allow_non_restored_state"] is True
    assert result.job_id != RUNNING_ID
    assert env.rows() == [
        (JOB, "DEPLOY", RUNNING_ID, "hash-old", None, None),
        (JOB, "STOP_FOR_UPGRADE", RUNNING_ID, "hash-old", None, savepoint),
        (JOB, "UPGRADE", result.job_id, "hash-new", savepoint, savepoint),
    ]
    # The upgraded job is now the recorded one: the next round is OK, not another upgrade.
    assert env.supervisor().supervise(JOB).action == "OK"
    assert env.flink.mutations() == [("stop_with_savepoint", RUNNING_ID)]


def test_same_hash_with_fresh_checkpoints_is_ok(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB)
    env.flink.checkpoint_info[RUNNING_ID] = CheckpointInfo(50, None, int((NOW - MAX_AGE + 5) * 1000), 50, 2, "x")

    assert env.supervisor().supervise(JOB).action == "OK"
    assert len(env.rows()) == 1


# ---------------------------------------------------------------------------- recovering
def test_tasks_waiting_without_taskmanager_starts_one(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, "RUNNING", all_tasks_running=False, since_s=NOW - 600)
    env.flink.tm_count = 0

    result = env.supervisor().supervise(JOB)

    assert (result.action, result.job_id) == ("START_TASKMANAGER", RUNNING_ID)
    assert env.flink.mutations() == [("start_taskmanager",)]
    assert env.rows()[-1] == (JOB, "START_TASKMANAGER", RUNNING_ID, None, None, None)
    assert env.deployer.calls == []


def test_no_taskmanager_and_no_way_to_start_one_is_unhealthy(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, "RESTARTING", all_tasks_running=False, since_s=NOW - 5)
    env.flink.tm_count = 0
    env.flink.tm_startable = False

    with pytest.raises(StreamingJobUnhealthy, match="taskmanager_start_command") as exc:
        env.supervisor().supervise(JOB)
    assert f"{JOB} is RESTARTING and the cluster has no TaskManager" in str(exc.value)
    assert env.flink.mutations() == [("start_taskmanager",)]
    assert len(env.rows()) == 1


def test_restarting_longer_than_checkpoint_max_age_is_unhealthy_with_root_cause(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, "RESTARTING", all_tasks_running=False, since_s=NOW - 300)
    env.flink.exceptions[RUNNING_ID] = TRACE

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise(JOB)
    message = str(exc.value)
    assert message.startswith(f"{JOB} ({RUNNING_ID}) has been RESTARTING for 300 s: {ROOT}\n")
    assert (exc.value.job, exc.value.job_id) == (JOB, RUNNING_ID)
    assert "Recovery is suppressed" in message  # the full trace follows
    assert env.flink.mutations() == [] and env.deployer.calls == []


def test_restarting_briefly_is_waiting(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, "RESTARTING", all_tasks_running=False, since_s=NOW - MAX_AGE + 20)
    env.flink.exceptions[RUNNING_ID] = TRACE

    result = env.supervisor().supervise(JOB)

    assert (result.action, result.job_id, result.detail) == ("WAITING", RUNNING_ID, "RESTARTING for 100 s")
    assert env.flink.mutations() == [] and env.deployer.calls == []
    assert len(env.rows()) == 1


def test_running_with_tasks_waiting_for_slots_uses_state_time_then_start_time(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, "RUNNING", all_tasks_running=False, since_s=NOW - 30)
    assert env.supervisor().supervise(JOB).detail == "RUNNING with tasks not yet running for 30 s"

    # Without a state timestamp the start time counts (here an hour ago: unhealthy).
    env.flink.details[RUNNING_ID] = JobStatus(RUNNING_ID, JOB, "RUNNING", int((NOW - 3600) * 1000), None, False)
    with pytest.raises(
        StreamingJobUnhealthy, match="RUNNING with tasks not yet running for 3600 s: no exception recorded"
    ):
        env.supervisor().supervise(JOB)


# ---------------------------------------------------------------------------- checkpoints
def test_stale_checkpoints_are_unhealthy_with_details(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB)
    env.flink.checkpoint_info[RUNNING_ID] = CheckpointInfo(
        41, "file:///chk/41", int((NOW - 600) * 1000), 41, 3, "Checkpoint expired before completing."
    )
    env.flink.exceptions[RUNNING_ID] = TRACE

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise(JOB)
    message = str(exc.value)
    assert message.startswith(
        f"{JOB} ({RUNNING_ID}): last completed checkpoint #41 is 600 s old (limit 120 s); "
        "3 checkpoints failed, latest failure: Checkpoint expired before completing."
    )
    assert f"\njob exception: {TRACE}" in message
    assert (exc.value.job, exc.value.job_id) == (JOB, RUNNING_ID)
    assert env.flink.mutations() == [] and env.deployer.calls == []


def test_no_checkpoint_since_start_is_unhealthy(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB, started_s=NOW - 500)
    env.flink.checkpoint_info[RUNNING_ID] = CheckpointInfo(None, None, None, 0, 0, None)

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise(JOB)
    assert str(exc.value) == (
        f"{JOB} ({RUNNING_ID}): no checkpoint completed in the 500 s since it started (limit 120 s); "
        "0 checkpoints failed, latest failure: none"
    )


def test_two_active_instances_are_unhealthy(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-1")
    env.flink.add_job(RUNNING_ID, JOB)
    env.flink.add_job("e" * 32, JOB)

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise(JOB)
    assert str(exc.value) == f"{JOB} runs 2 times ({RUNNING_ID}, {'e' * 32}): cancel all but one"
    assert (exc.value.job, exc.value.job_id) == (JOB, None)
    assert not any(c[0] == "job_status" for c in env.flink.calls)
    assert env.deployer.calls == [] and len(env.rows()) == 1


# ---------------------------------------------------------------------------- pipeline prefix
def test_pipeline_prefix_names_flink_jobs_and_history(env):
    # History of the unprefixed pipeline (a STOP) must not affect the prefixed copy.
    env.seed("STOP", minutes_ago=10, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/x")
    env.flink.add_job(RUNNING_ID, JOB)  # the unprefixed job runs; the prefixed one does not
    sup = env.supervisor(pipeline_prefix="it_")

    result = sup.supervise(JOB)

    assert result.action == "DEPLOY" and result.job_name == JOB
    assert ("active_jobs_named", f"it_{JOB}") in env.flink.calls
    assert ("active_jobs_named", JOB) not in env.flink.calls
    call = env.deployer.calls[0]
    assert (call["job_name"], call["pipeline_name"], call["restore_from"]) == (JOB, f"it_{JOB}", None)
    assert env.rows()[-1] == (f"it_{JOB}", "DEPLOY", result.job_id, "hash-1", None, None)

    # The deployed copy runs as it_<job>; the next round finds and checks it.
    assert sup.supervise(JOB).action == "OK"
    sup.stop(JOB)
    assert env.flink.mutations() == [("stop_with_savepoint", result.job_id)]
    assert env.rows()[-1][:3] == (f"it_{JOB}", "STOP", result.job_id)
    assert [j.job_id for j in env.flink.jobs] == [RUNNING_ID]  # the unprefixed job was untouched


# ---------------------------------------------------------------------------- on-call stop / start
def test_stop_records_savepoint_and_hash(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-7")
    env.flink.add_job(RUNNING_ID, JOB)

    result = env.supervisor().stop(JOB)

    savepoint = f"file:///savepoints/savepoint-{RUNNING_ID[:6]}-1"
    assert (result.action, result.job_id, result.detail) == ("STOP", RUNNING_ID, savepoint)
    assert env.flink.mutations() == [("stop_with_savepoint", RUNNING_ID)]
    assert env.rows()[-1] == (JOB, "STOP", RUNNING_ID, "hash-7", None, savepoint)
    # Supervision now leaves it stopped.
    assert env.supervisor().supervise(JOB).action == "STOPPED"
    assert env.deployer.calls == []


def test_stop_when_not_running_is_refused(env):
    with pytest.raises(BadRequest, match=f"{JOB} is not running; nothing to stop"):
        env.supervisor().stop(JOB)
    assert env.flink.mutations() == [] and env.rows() == []


def test_start_refuses_a_running_job(env):
    env.flink.add_job(RUNNING_ID, JOB)
    with pytest.raises(BadRequest, match="already running; stop it first"):
        env.supervisor().start(JOB, savepoint_path="file:///savepoints/sp")
    assert env.deployer.calls == []


def test_start_without_known_restore_point_or_path_is_refused(env):
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")  # no checkpoint on disk
    with pytest.raises(BadRequest, match=f"no savepoint or retained checkpoint known for {JOB}; pass savepoint_path"):
        env.supervisor().start(JOB, savepoint_path=None)
    assert env.deployer.calls == []
    assert [r[1] for r in env.rows()] == ["DEPLOY"]


def test_start_from_given_savepoint(env):
    env.seed("STOP", minutes_ago=5, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/newer")
    result = env.supervisor().start(JOB, savepoint_path="s3://bucket/savepoints/chosen")

    assert result.action == "START"
    assert env.deployer.calls[0]["restore_from"] == "s3://bucket/savepoints/chosen"
    assert env.rows()[-1] == (
        JOB,
        "START",
        result.job_id,
        "hash-1",
        "s3://bucket/savepoints/chosen",
        "s3://bucket/savepoints/chosen",
    )


def test_start_without_state_records_reset(env):
    env.seed("STOP", minutes_ago=5, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/sp")
    env.checkpoint(OLD_ID, 4)

    [result] = env.supervisor().reset(JOB)  # a DWS job: nothing downstream to reset with it

    assert result.action == "RESET"
    call = env.deployer.calls[0]
    assert call["restore_from"] is None and call["allow_non_restored_state"] is False
    assert env.rows()[-1] == (JOB, "RESET", result.job_id, "hash-1", None, None)


def test_state_from_before_an_operator_reset_is_never_restored(env):
    """A savepoint taken before RESET must not come back; the reset job's own checkpoint may."""
    env.seed("STOP", minutes_ago=90, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/before-reset")
    env.seed("RESET", minutes_ago=60, job_id="reset-job", sql_hash="hash-1")
    sup = env.supervisor()
    assert sup.restore_point(registry().job(JOB)) is None
    chk = env.checkpoint("reset-job", 3, mtime=NOW - 1800)
    assert sup.restore_point(registry().job(JOB)).path == chk


# ---------------------------------------------------------------------------- reset with cascade
ORDER_DWS = ["dws_shop_hourly", "dws_shop_daily", "dws_city_hourly", "dws_city_daily"]


def test_reset_of_dwd_restarts_the_dws_jobs_on_the_replay_only(env, monkeypatch):
    every = ["ods_delivery_cdc", "dwd_order_fact", *ORDER_DWS, "dws_shop_traffic_hourly"]
    for n, name in enumerate(every):
        env.flink.add_job(f"{n:032x}", name)
    sup = env.supervisor()

    real_latest = sup.paimon.latest_snapshot

    def latest_snapshot(table):
        if table.startswith("ops."):  # the deployment history itself
            return real_latest(table)
        env.flink.calls.append(("latest_snapshot", table))
        return type("S", (), {"snapshot_id": 41})()

    monkeypatch.setattr(sup.paimon, "latest_snapshot", latest_snapshot)
    results = sup.reset("dwd_order_fact")

    # Downstream stopped first, DWD last; the mark is read only when no writer commits any more.
    stops = [c for c in env.flink.calls if c[0] in ("stop_with_savepoint", "latest_snapshot")]
    assert stops == [("stop_with_savepoint", f"{every.index(n):032x}") for n in reversed(ORDER_DWS)] + [
        ("stop_with_savepoint", f"{1:032x}"),
        ("latest_snapshot", "dwd.dwd_order_fact"),
    ]
    # DWD starts without state and re-reads ODS whole; each DWS job reads DWD from the next snapshot.
    calls = [(c["job_name"], c["restore_from"], c["read_from_snapshots"]) for c in env.deployer.calls]
    assert calls == [("dwd_order_fact", None, None)] + [(n, None, {"dwd.dwd_order_fact": 42}) for n in ORDER_DWS]
    assert [(r.job_name, r.action) for r in results] == [("dwd_order_fact", "RESET")] + [
        (n, "RESET") for n in ORDER_DWS
    ]
    assert (
        "reset with dwd_order_fact, whose output is replayed: reads dwd.dwd_order_fact from snapshot 42"
        in results[1].detail
    )
    # The jobs outside the cascade keep running untouched.
    running = {j.name for j in env.flink.jobs}
    assert {"ods_delivery_cdc", "dws_shop_traffic_hourly"} <= running
    actions = [(r[0], r[1]) for r in env.rows()]
    assert actions.count(("dwd_order_fact", "STOP_FOR_RESET")) == 1 and actions.count(("dws_city_daily", "RESET")) == 1
    assert ("dwd_order_fact", "STOP") not in actions  # not an operator's stop


def test_reset_of_a_job_without_replay_restarts_it_alone(env):
    env.flink.add_job(OLD_ID, "ods_user_events")
    env.flink.add_job(RUNNING_ID, "dws_shop_traffic_hourly")
    results = env.supervisor().reset("ods_user_events")
    assert [(r.job_name, r.action) for r in results] == [("ods_user_events", "RESET")]
    assert [c["job_name"] for c in env.deployer.calls] == ["ods_user_events"]
    assert ("stop_with_savepoint", RUNNING_ID) not in env.flink.calls


UNMAPPED = (
    "org.apache.flink.runtime.client.JobInitializationException: Could not start the JobMaster.\n"
    "Caused by: java.lang.IllegalStateException: Failed to rollback to checkpoint/savepoint. Cannot map "
    "checkpoint/savepoint state for operator 9dd6 to the new program, because the operator is not available "
    "in the new program."
)


def test_upgrade_of_a_job_with_a_reset_cascade_must_restore_all_its_state(env):
    """Unclaimed state dropped from DWD could be a source's: it would re-read ODS into the DWS changelog."""
    env.seed("DEPLOY", minutes_ago=60, job_name="dwd_order_fact", job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, "dwd_order_fact")
    env.hash = "hash-new"
    assert env.supervisor().supervise("dwd_order_fact").action == "UPGRADE"
    assert env.deployer.calls[0]["allow_non_restored_state"] is False


def test_failed_restore_of_dwd_fails_and_names_the_reset_with_its_cascade(env):
    env.seed("DEPLOY", minutes_ago=60, job_name="dwd_order_fact", job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, "dwd_order_fact")
    env.hash = "hash-new"
    env.deployer.fail_restore_with = UNMAPPED
    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().supervise("dwd_order_fact")
    message = str(exc.value)
    assert message.startswith(
        "dwd_order_fact could not restore from file:///savepoints/savepoint-bbbbbb-1: "
        "java.lang.IllegalStateException: Failed to rollback"
    )
    assert (
        "run streaming_operations with restart_without_state for dwd_order_fact (it also restarts, without "
        "state: dws_shop_hourly, dws_shop_daily, dws_city_hourly, dws_city_daily)"
    ) in message
    assert len(env.deployer.calls) == 1  # no start without state behind on-call's back
    assert exc.value.job == "dwd_order_fact"


def test_failed_restore_of_a_dws_job_restarts_it_without_state(env):
    """on_restore_failure: reset: its input (DWD) is read whole again and upserted over its table."""
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, JOB)
    env.hash = "hash-new"
    env.deployer.fail_restore_with = UNMAPPED
    result = env.supervisor().supervise(JOB)
    assert result.action == "RESET" and "restarted without state" in result.detail
    assert [c["restore_from"] for c in env.deployer.calls] == [f"file:///savepoints/savepoint-{RUNNING_ID[:6]}-1", None]


# ---------------------------------------------------------------------------- failures half-way
def test_failed_upgrade_redeploy_is_retried_on_every_run_until_the_job_runs(env):
    """The upgrade's stop is not an operator's: the job should run, so supervision is not green."""
    env.seed("DEPLOY", minutes_ago=60, job_name="dwd_order_fact", job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, "dwd_order_fact")
    env.hash = "hash-new"
    env.deployer.fail_restore_with = UNMAPPED
    savepoint = f"file:///savepoints/savepoint-{RUNNING_ID[:6]}-1"
    sup = env.supervisor()

    with pytest.raises(StreamingJobUnhealthy):
        sup.supervise("dwd_order_fact")
    assert env.rows()[-1] == ("dwd_order_fact", "STOP_FOR_UPGRADE", RUNNING_ID, "hash-old", None, savepoint)

    for _ in range(2):  # every run tries the upgrade again, and fails while it cannot restore
        with pytest.raises(StreamingJobUnhealthy, match=f"dwd_order_fact could not restore from {savepoint}: "):
            sup.supervise("dwd_order_fact")
    assert [(c["restore_from"], c["allow_non_restored_state"]) for c in env.deployer.calls] == [(savepoint, False)] * 3
    assert [r[1] for r in env.rows()] == ["DEPLOY", "STOP_FOR_UPGRADE"]

    env.deployer.fail_restore_with = None  # say, the SQL change was reverted to a compatible one
    result = sup.supervise("dwd_order_fact")
    assert (result.action, result.detail) == ("UPGRADE", "sql hash hash-old -> hash-new (resumed)")
    assert env.rows()[-1] == ("dwd_order_fact", "UPGRADE", result.job_id, "hash-new", savepoint, savepoint)
    assert sup.supervise("dwd_order_fact").action == "OK"


def test_upgrade_interrupted_by_an_outage_is_resumed_like_the_upgrade(env):
    """A DWS job (replay-safe) resumes with the upgrade's own settings, not as a plain restore."""
    env.seed("DEPLOY", minutes_ago=60, job_id=RUNNING_ID, sql_hash="hash-old")
    env.flink.add_job(RUNNING_ID, JOB)
    env.hash = "hash-new"
    env.deployer.fail_with[JOB] = FlinkUnavailableError("the SQL Gateway does not answer")
    sup = env.supervisor()
    with pytest.raises(FlinkUnavailableError):
        sup.supervise(JOB)

    del env.deployer.fail_with[JOB]
    result = sup.supervise(JOB)
    savepoint = f"file:///savepoints/savepoint-{RUNNING_ID[:6]}-1"
    assert result.action == "UPGRADE"
    assert [(c["restore_from"], c["allow_non_restored_state"]) for c in env.deployer.calls] == [(savepoint, True)] * 2


def test_half_done_reset_fails_supervision_of_the_jobs_it_stopped_naming_the_reset(env, monkeypatch):
    """They were stopped with a savepoint before DWD replayed its output: restoring that savepoint
    would count the replay twice, and starting them without state here would read DWD whole."""
    every = ["dwd_order_fact", *ORDER_DWS]
    ids = {name: f"{n + 100:032x}" for n, name in enumerate(every)}
    for name in every:
        env.seed("DEPLOY", minutes_ago=60, job_name=name, job_id=ids[name], sql_hash="hash-1")
        env.flink.add_job(ids[name], name)
        env.checkpoint(ids[name], 5)  # restorable, and must not be restored
    sup = env.supervisor()
    real_latest = sup.paimon.latest_snapshot
    monkeypatch.setattr(
        sup.paimon,
        "latest_snapshot",
        lambda table: real_latest(table) if table.startswith("ops.") else type("S", (), {"snapshot_id": 41})(),
    )
    env.deployer.fail_with["dws_shop_daily"] = FlinkUnavailableError("the SQL Gateway does not answer")

    with pytest.raises(FlinkUnavailableError):
        sup.reset("dwd_order_fact")
    assert [c["job_name"] for c in env.deployer.calls] == ["dwd_order_fact", "dws_shop_hourly", "dws_shop_daily"]

    unfinished = ["dws_shop_daily", "dws_city_hourly", "dws_city_daily"]
    for name in unfinished:
        last = sup.history.last(name)
        assert (last.action, last.job_id, last.savepoint_path) == (
            "STOP_FOR_RESET",
            ids[name],
            f"file:///savepoints/savepoint-{ids[name][:6]}-1",
        )
        with pytest.raises(StreamingJobUnhealthy) as exc:
            sup.supervise(name)
        message = str(exc.value)
        assert message.startswith(f"{name} was stopped at ")
        assert "for a restart without state of dwd_order_fact, which did not finish" in message
        assert "its savepoint predates the replay" in message
        assert message.endswith(
            "Run streaming_operations with restart_without_state for dwd_order_fact again (it also restarts, without "
            "state: dws_shop_hourly, dws_shop_daily, dws_city_hourly, dws_city_daily)"
        )
        assert exc.value.job == name
        with pytest.raises(BadRequest, match="restart_without_state for dwd_order_fact again"):
            sup.start(name, savepoint_path=f"file:///savepoints/savepoint-{ids[name][:6]}-1")
    assert len(env.deployer.calls) == 3  # nothing restored, nothing started without state

    # Running the reset again finishes it: every job of the cascade reads DWD's new replay.
    del env.deployer.fail_with["dws_shop_daily"]
    results = sup.reset("dwd_order_fact")
    assert [(r.job_name, r.action) for r in results] == [(name, "RESET") for name in every]
    for name in every:
        assert sup.supervise(name).action == "OK"


def test_reset_marks_the_cascade_jobs_that_were_not_running(env, monkeypatch):
    """An operator-stopped DWS job is part of the reset too: if the reset stops half-way, its
    old savepoint must not come back either."""
    env.seed(
        "STOP",
        minutes_ago=30,
        job_name="dws_city_daily",
        job_id=OLD_ID,
        sql_hash="hash-1",
        savepoint_path="file:///sp/op",
    )
    env.flink.add_job(RUNNING_ID, "dwd_order_fact")
    sup = env.supervisor()
    monkeypatch.setattr(sup.paimon, "latest_snapshot", lambda table: None)
    env.deployer.fail_with["dwd_order_fact"] = FlinkUnavailableError("the SQL Gateway does not answer")

    with pytest.raises(FlinkUnavailableError):
        sup.reset("dwd_order_fact")
    last = sup.history.last("dws_city_daily")
    assert (last.action, last.job_id, last.savepoint_path) == ("STOP_FOR_RESET", None, None)
    with pytest.raises(StreamingJobUnhealthy, match="restart_without_state for dwd_order_fact again"):
        sup.supervise("dws_city_daily")


FILE_NOT_FOUND = (
    "org.apache.flink.runtime.client.JobInitializationException: Could not start the JobMaster.\n"
    "Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory "
    "'file:/savepoints/sp-typo' on file system 'file'."
)


@pytest.mark.parametrize("path", ["file:///savepoints/sp-typo", None])
def test_operator_start_that_cannot_restore_never_resets(env, path):
    """A DWS job (on_restore_failure: reset): only supervision's own restores may reset it."""
    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="hash-1")
    env.seed("STOP", minutes_ago=10, job_id=OLD_ID, sql_hash="hash-1", savepoint_path="file:///savepoints/sp-9")
    env.deployer.fail_restore_with = FILE_NOT_FOUND
    tried = path or "file:///savepoints/sp-9"

    with pytest.raises(StreamingJobUnhealthy) as exc:
        env.supervisor().start(JOB, savepoint_path=path)
    message = str(exc.value)
    assert message.startswith(
        f"{JOB} could not restore from {tried}: java.io.FileNotFoundException: Cannot find checkpoint or savepoint"
    )
    assert "Nothing was reset: the job stays stopped." in message
    assert [c["restore_from"] for c in env.deployer.calls] == [tried]  # no start without state
    assert [r[1] for r in env.rows()] == ["DEPLOY", "STOP"]
    assert env.supervisor().supervise(JOB).action == "STOPPED"  # still the operator's stop


# --------------------------------------------------------------- operational DAGs before the first deploy
def test_a_table_nobody_deployed_is_skipped_by_the_operational_dags(env):
    """A fresh stack before streaming_deploy: freshness, DQ checks and maintenance failed (and
    alerted) on every run for tables that were never created."""
    from lakehouse.streaming.supervision import not_deployed_yet

    reason = not_deployed_yet("dwd.dwd_order_fact", paimon=env.paimon, reg=registry())
    assert reason and "streaming_deploy" in reason


def test_a_missing_table_whose_writer_was_deployed_is_not_skipped(env):
    """The table was lost after its job ran: the check must run and fail, never be skipped."""
    from lakehouse.streaming.supervision import not_deployed_yet

    env.seed("DEPLOY", minutes_ago=60, job_name="dwd_order_fact", job_id=OLD_ID, sql_hash="h")
    assert not_deployed_yet("dwd.dwd_order_fact", paimon=env.paimon, reg=registry()) is None


def test_an_existing_table_is_never_skipped(env):
    from lakehouse.streaming.supervision import not_deployed_yet

    env.seed("DEPLOY", minutes_ago=60, job_id=OLD_ID, sql_hash="h")  # creates ops.streaming_deployments
    assert not_deployed_yet("ops.streaming_deployments", paimon=env.paimon) is None
