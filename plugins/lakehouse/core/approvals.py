"""Human approval of destructive operations, in the Airflow UI (Airflow 3.1+ human-in-the-loop).

`ApprovalGate` is the standard provider's `ApprovalOperator` (options Approve / Reject) that first
describes what is about to happen, from the XCom of the task that prepared it:

- `streaming_operations`, action `restart_without_state`: the job and every job its cascade resets
  (`describe_restart`);
- `t1_backfill` with writes: the dry-run report of every partition it will overwrite, with its
  current rows and totals (`describe_backfill`).

When the describer returns None there is nothing destructive to approve (a stop, a start, a dry
run) and the gate is skipped without asking. Otherwise the task waits (deferred, on the triggerer)
in the UI's **Required actions** until someone answers:

- Approve: the operation runs;
- Reject: the tasks after the gate are skipped, nothing is done, the run ends;
- no answer within `response_timeout`: the gate fails with `ApprovalTimedOut` and the run fails;
  nothing was done. The gate is never retried (a retry would ask again, unseen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from airflow.providers.standard.operators.hitl import ApprovalOperator

from lakehouse.core.errors import GateFailed


class ApprovalTimedOut(GateFailed):
    """Nobody approved a destructive operation in time; nothing was done. `what` names it."""

    def __init__(self, message: str, *, what: str, timeout: timedelta):
        super().__init__(message)
        self.what = what
        self.timeout = timeout


@dataclass(frozen=True)
class Approval:
    subject: str  # the headline in the UI's Required actions
    body: str  # Markdown: what will happen


class ApprovalGate(ApprovalOperator):
    """Ask for approval of `what`, described by `describe(<XCom of from_task>)`; skipped when that is None."""

    ui_color: ClassVar[str] = "#fde68a"

    def __init__(
        self,
        *,
        what: str,
        from_task: str,
        describe: Callable[[Any], Approval | None],
        response_timeout: timedelta,
        **kwargs: Any,
    ) -> None:
        kwargs["retries"] = 0  # whatever default_args say: a retry would ask again, after the timeout
        super().__init__(
            subject=f"Approve {what}",  # replaced by the description when the task runs
            response_timeout=response_timeout,
            **kwargs,
        )
        self.what = what
        self.from_task = from_task
        self.describe = describe

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        approval = self.describe(context["ti"].xcom_pull(task_ids=self.from_task))
        if approval is None:
            raise AirflowSkipException(f"nothing destructive to approve: {self.what} is not asked for")
        self.subject, self.body = approval.subject, approval.body
        self.log.info("Waiting up to %s for approval (UI: Required actions): %s", self.response_timeout, self.subject)
        return super().execute(context)

    def process_trigger_event_error(self, event: dict[str, Any]) -> None:
        if event.get("error_type") == "timeout":
            raise ApprovalTimedOut(
                f"No one approved {self.what} within {self.response_timeout}: nothing was done. "
                "Trigger the run again and approve it under Required actions (or reject it) in time.",
                what=self.what,
                timeout=self.response_timeout,
            )
        super().process_trigger_event_error(event)


# ------------------------------------------------------------------------------------ descriptions
def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def describe_restart(request: dict | None) -> Approval | None:
    """The approval of a `streaming_operations` request (validate_request's XCom): only a restart
    without state needs one; it lists the job and every job its cascade resets."""
    if not request or request.get("action") != "restart_without_state":
        return None
    from lakehouse.core.registry import registry

    reg = registry()
    job = request["job"]
    cascade = reg.reset_cascade(job)
    writes = ", ".join(f"`{t}`" for t in reg.job(job).downstream) or "its sinks"
    rows = [
        (
            f"`{job}` (asked for)",
            f"stopped with a savepoint (kept for the record), then started with no state: its sources are "
            f"read again from the beginning and it writes its whole output again into {writes}",
        )
    ]
    rows += [
        (
            f"`{spec.name}`",
            "restarted without state with it, reading "
            + ", ".join(f"`{t}`" for t in tables)
            + " from the first snapshot the restart writes, so nothing is counted twice",
        )
        for spec, tables in cascade
    ]
    also = [spec.name for spec, _ in cascade]
    subject = f"Restart {job} without state" + (f" (and {len(also)} jobs downstream)" if also else "")
    body = "\n\n".join(
        [
            f"**{subject}.** The jobs' state (source offsets, aggregates) is discarded; they are stopped "
            "and started in this order, upstream first:",
            _md_table(("job", "what happens"), rows),
            "Every other job keeps running untouched. Until every restarted job has caught up, the "
            "tables they write show partial figures. **Reject** (or no answer before the timeout): "
            "nothing is stopped or started.",
        ]
    )
    return Approval(subject=subject, body=body)


def describe_backfill(preview: dict | None) -> Approval | None:
    """The approval of a `t1_backfill` request with writes (the preview task's XCom: the request
    and the dry-run rows of every partition); None for a dry run."""
    if not preview or preview.get("dry_run", True):
        return None
    rows = preview.get("rows") or []
    days = sorted({r["dt"] for r in rows})
    tables = sorted({r["table"] for r in rows})
    span = days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}" if days else "no day"
    subject = f"Overwrite {len(rows)} partitions: {len(tables)} tables x {len(days)} days ({span})"
    table = _md_table(
        ("dt", "table", "rows now", "totals now", "snapshot now"),
        [
            (r["dt"], r["table"], r["before"]["rows"], r["before"]["totals"] or "-", r["before"]["snapshot_id"])
            for r in rows
        ],
    )
    body = "\n\n".join(
        [
            f"**{subject}.** Each partition below is rebuilt from ODS with `INSERT OVERWRITE` (this is "
            "the dry run's report: what each holds now). Published `t1-<day>` tags are not moved. "
            f"Up to {preview.get('parallel_days', 1)} days are rebuilt at a time.",
            table,
            "**Reject** (or no answer before the timeout): nothing is written.",
        ]
    )
    return Approval(subject=subject, body=body)
