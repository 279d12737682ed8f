"""On-call operations on one streaming job, with the request validated before anything is touched."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lakehouse.core.errors import BadRequest
from lakehouse.core.registry import registry
from lakehouse.streaming.supervision import SupervisionResult, Supervisor

ACTIONS = ("stop_with_savepoint", "start_from_savepoint", "restart_without_state")
_PATH = re.compile(r"^(file|s3|s3a|oss|hdfs)://\S+$")


class InvalidOperationRequest(BadRequest):
    """The operations form was filled in wrongly; nothing was changed. `problems` lists each mistake."""

    def __init__(self, problems: list[str]):
        super().__init__("Nothing was changed. Fix the request: " + "; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class OperationRequest:
    job: str
    action: str
    savepoint_path: str | None = None
    # restart_without_state: the downstream jobs restarted without state with it (Registry.reset_cascade)
    also_reset: list[str] = field(default_factory=list)


def validate_operation(params: Mapping[str, Any]) -> OperationRequest:
    job = str(params.get("job") or "").strip()
    action = str(params.get("action") or "").strip()
    path = str(params.get("savepoint_path") or "").strip() or None
    confirm = str(params.get("confirm") or "").strip()
    problems = []
    if job not in registry().jobs:
        problems.append(f"job {job!r} is not a registered streaming job ({', '.join(sorted(registry().jobs))})")
    if action not in ACTIONS:
        problems.append(f"action {action!r} must be one of {', '.join(ACTIONS)}")
    if path and not _PATH.match(path):
        problems.append(f"savepoint_path {path!r} must be a URI such as file:///... or s3://bucket/...")
    elif path and path.startswith("file://") and not Path(unquote(path[len("file://") :])).exists():
        # Checked here, before anything is stopped or started; a remote path is Flink's to read.
        problems.append(
            f"savepoint_path {path!r} does not exist: give the savepoint's folder (or its _metadata file) as Flink "
            "recorded it (the stop's result or ops.streaming_deployments.savepoint_path)"
        )
    if path and action != "start_from_savepoint":
        problems.append("savepoint_path is only used with start_from_savepoint; leave it empty")
    if action == "restart_without_state" and confirm != job:
        problems.append(f"restart_without_state discards the job's state: type the job name {job!r} in confirm")
    if problems:
        raise InvalidOperationRequest(problems)
    also = [c.name for c, _ in registry().reset_cascade(job)] if action == "restart_without_state" else []
    return OperationRequest(job=job, action=action, savepoint_path=path, also_reset=also)


def run_operation(request: OperationRequest, *, supervisor: Supervisor) -> list[SupervisionResult]:
    """Carry out a validated request with `supervisor`; one result per job started or stopped.

    `start_from_savepoint` never discards state: a savepoint that cannot be restored fails with
    Flink's reason and the job stays stopped (only `restart_without_state`, confirmed, resets)."""
    if request.action == "stop_with_savepoint":
        return [supervisor.stop(request.job)]
    if request.action == "start_from_savepoint":
        return [supervisor.start(request.job, savepoint_path=request.savepoint_path)]
    return supervisor.reset(request.job)
