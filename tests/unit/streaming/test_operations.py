"""On-call operations: request validation (nothing touched on a bad request) and dispatch."""

from __future__ import annotations

import pytest

from lakehouse.core.registry import registry
from lakehouse.streaming.operations import (
    ACTIONS,
    InvalidOperationRequest,
    OperationRequest,
    run_operation,
    validate_operation,
)
from lakehouse.streaming.supervision import SupervisionResult
from tests.support.flink import FakeFlinkCluster

JOB = "dwd_order_fact"


def _problem(params) -> str:
    with pytest.raises(InvalidOperationRequest) as exc:
        validate_operation(params)
    message = str(exc.value)
    assert message.startswith("Nothing was changed. Fix the request: ")
    assert message == "Nothing was changed. Fix the request: " + "; ".join(exc.value.problems)
    return message


# ---------------------------------------------------------------------------- validation
def test_unknown_job_names_the_registered_ones():
    message = _problem({"job": "dwd_orders", "action": "stop_with_savepoint"})
    assert "job 'dwd_orders' is not a registered streaming job" in message
    for name in registry().jobs:
        assert name in message
    assert "action" not in message.split("Fix the request: ", 1)[1]  # the valid action is not blamed


def test_missing_job_is_reported():
    assert "job '' is not a registered streaming job" in _problem({"action": "stop_with_savepoint"})


def test_unknown_action_lists_the_valid_ones():
    message = _problem({"job": JOB, "action": "restart"})
    assert "action 'restart' must be one of stop_with_savepoint, start_from_savepoint, restart_without_state" in message
    assert "is not a registered streaming job" not in message


@pytest.mark.parametrize("path", ["/data/savepoints/sp-1", "savepoint-1", "ftp://host/sp", "file://", "file:///a b"])
def test_malformed_savepoint_path(path):
    message = _problem({"job": JOB, "action": "start_from_savepoint", "savepoint_path": path})
    assert f"savepoint_path {path.strip()!r} must be a URI such as file:///... or s3://bucket/..." in message
    assert "only used with start_from_savepoint" not in message


@pytest.mark.parametrize("action", ["stop_with_savepoint", "restart_without_state"])
def test_savepoint_path_with_another_action(action):
    message = _problem({"job": JOB, "action": action, "savepoint_path": "s3://bucket/sp-1", "confirm": JOB})
    assert "savepoint_path is only used with start_from_savepoint; leave it empty" in message
    assert "must be a URI" not in message


@pytest.mark.parametrize("confirm", [None, "", "yes", "dws_shop_daily", JOB.upper()])
def test_restart_without_state_needs_the_job_name_as_confirmation(confirm):
    message = _problem({"job": JOB, "action": "restart_without_state", "confirm": confirm})
    assert f"restart_without_state discards the job's state: type the job name {JOB!r} in confirm" in message


def test_several_problems_are_reported_together():
    message = _problem({"job": "nope", "action": "stop_with_savepoint", "savepoint_path": "/tmp/sp"})
    problems = message.split("Fix the request: ", 1)[1]
    assert problems.startswith("job 'nope' is not a registered streaming job")
    assert "; savepoint_path '/tmp/sp' must be a URI such as file:///... or s3://bucket/..." in problems
    assert problems.endswith("; savepoint_path is only used with start_from_savepoint; leave it empty")

    message = _problem({"job": JOB, "action": "wipe", "savepoint_path": "s3://b/sp"})
    assert "action 'wipe' must be one of" in message
    assert "savepoint_path is only used with start_from_savepoint" in message


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"job": JOB, "action": "stop_with_savepoint"}, OperationRequest(JOB, "stop_with_savepoint", None)),
        (
            {"job": f"  {JOB} ", "action": " stop_with_savepoint ", "savepoint_path": "  "},
            OperationRequest(JOB, "stop_with_savepoint", None),
        ),
        (
            {"job": JOB, "action": "start_from_savepoint", "savepoint_path": None},
            OperationRequest(JOB, "start_from_savepoint", None),
        ),
        (
            {"job": JOB, "action": "start_from_savepoint", "savepoint_path": "s3://bucket/chk/abc/chk-7"},
            OperationRequest(JOB, "start_from_savepoint", "s3://bucket/chk/abc/chk-7"),
        ),
        (
            {"job": JOB, "action": "restart_without_state", "confirm": f" {JOB}"},
            OperationRequest(
                JOB,
                "restart_without_state",
                None,
                ["dws_shop_hourly", "dws_shop_daily", "dws_city_hourly", "dws_city_daily"],
            ),
        ),
        (
            {"job": "dws_city_daily", "action": "restart_without_state", "confirm": "dws_city_daily"},
            OperationRequest("dws_city_daily", "restart_without_state", None, []),
        ),
    ],
)
def test_valid_requests(params, expected):
    assert validate_operation(params) == expected


def test_existing_local_savepoint_path_is_accepted(tmp_path):
    savepoint = tmp_path / "savepoint-ab12-1"
    savepoint.mkdir()
    request = validate_operation(
        {"job": JOB, "action": "start_from_savepoint", "savepoint_path": f" file://{savepoint} "}
    )
    assert request == OperationRequest(JOB, "start_from_savepoint", f"file://{savepoint}")
    # Flink also takes the savepoint's _metadata file itself.
    (savepoint / "_metadata").write_bytes(b"meta")
    assert (
        validate_operation(
            {"job": JOB, "action": "start_from_savepoint", "savepoint_path": f"file://{savepoint}/_metadata"}
        ).savepoint_path
        == f"file://{savepoint}/_metadata"
    )


def test_missing_local_savepoint_path_is_refused_before_anything_is_touched(tmp_path):
    missing = f"file://{tmp_path}/savepoint-typo"
    message = _problem({"job": JOB, "action": "start_from_savepoint", "savepoint_path": missing})
    assert f"savepoint_path {missing!r} does not exist" in message
    assert "must be a URI" not in message


def test_remote_savepoint_paths_are_not_checked_here():
    """Only Flink can read s3:// (its own file system and credentials): a wrong one fails the start."""
    path = "s3://bucket/savepoints/nowhere"
    assert (
        validate_operation({"job": JOB, "action": "start_from_savepoint", "savepoint_path": path}).savepoint_path
        == path
    )


def test_actions_are_the_three_documented_ones():
    assert ACTIONS == ("stop_with_savepoint", "start_from_savepoint", "restart_without_state")


# ---------------------------------------------------------------------------- dispatch
class FakeSupervisor:
    """Records stop/start calls in order; `stop` makes the pipeline inactive like the real one."""

    def __init__(self, running=(), prefix=""):
        self.prefix = prefix
        self.flink = FakeFlinkCluster()
        for i, j in enumerate(running):
            self.flink.add_job(f"{i:032x}", prefix + j)
        self.reg = registry()
        self.calls: list[tuple] = []

    def pipeline(self, job):
        return self.prefix + job.name

    def stop(self, job_name):
        self.calls.append(("stop", job_name))
        self.flink.stop_job(self.prefix + job_name)
        return SupervisionResult(job_name, "STOP", "id", "file:///sp")

    def start(self, job_name, *, savepoint_path):
        self.calls.append(("start", job_name, savepoint_path))
        return SupervisionResult(job_name, "START", "new")

    def reset(self, job_name):
        self.calls.append(("reset", job_name))
        return [SupervisionResult(job_name, "RESET", "new")]


def test_stop_dispatches_to_supervisor_stop():
    sup = FakeSupervisor(running=[JOB])
    [result] = run_operation(OperationRequest(JOB, "stop_with_savepoint"), supervisor=sup)
    assert sup.calls == [("stop", JOB)]
    assert result.action == "STOP"


def test_start_from_savepoint_passes_the_path():
    sup = FakeSupervisor()
    [result] = run_operation(OperationRequest(JOB, "start_from_savepoint", "s3://b/sp-3"), supervisor=sup)
    assert sup.calls == [("start", JOB, "s3://b/sp-3")]
    assert result.action == "START"


def test_start_from_savepoint_without_path_lets_the_supervisor_pick():
    sup = FakeSupervisor()
    run_operation(OperationRequest(JOB, "start_from_savepoint"), supervisor=sup)
    assert sup.calls == [("start", JOB, None)]


def test_restart_without_state_goes_through_the_supervisor_reset():
    """Supervisor.reset stops what runs and restarts the cascade (tests/unit/streaming/test_supervision.py)."""
    sup = FakeSupervisor(running=[JOB], prefix="it_")
    [result] = run_operation(OperationRequest(JOB, "restart_without_state"), supervisor=sup)
    assert sup.calls == [("reset", JOB)]
    assert result.action == "RESET"
