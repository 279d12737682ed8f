"""Waiting for something to happen: the one polling loop of the project.

    status = wait_until(lambda: job_is_running(job_id), timeout=120, interval=1, what=f"job {job_id} to run")

`wait_until` calls `check` until it returns something truthy and returns that value. The check
runs at once, then every `interval` seconds; the last wait is cut short so the last check runs at
the deadline, never later (so a wait never takes more than `timeout` plus one check). When the
deadline passes without a truthy value it raises:

- `error()` when the caller passes an `error` factory: for waits whose callers expect their own
  exception class and message (say `FlinkJobError("... still CREATED after 120 s")`; the factory
  may read what the last check saw);
- otherwise `WaitTimeout`, an `ExternalServiceError` (the thing waited for is an external system
  that did not get there in time; retryable) that names what was awaited and for how long.

A check that raises stops the wait with its exception (a job that failed instead of starting
fails at once, not at the timeout). A caller that wants the last result rather than an error
(say "the diffs at the deadline, equal or not") catches `WaitTimeout` and uses what its check kept.

`clock` and `sleep` are injectable so unit tests run without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lakehouse.core.errors import ExternalServiceError

T = TypeVar("T")


class WaitTimeout(ExternalServiceError):
    """What was awaited did not happen within the timeout (carries `what` and `timeout`)."""

    def __init__(self, what: str, timeout: float):
        self.what = what
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    what: str,
    error: Callable[[], BaseException] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call `check` until it returns a truthy value and return it; raise at the deadline.

    `timeout` and `interval` are seconds (`timeout=0`: check once). At the deadline raises
    `error()` if given, else `WaitTimeout(what, timeout)`."""
    if interval <= 0:
        raise ValueError(f"wait_until({what}): interval must be > 0 seconds, got {interval}")
    deadline = clock() + max(0.0, timeout)
    while True:
        value = check()
        if value:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            if error is not None:
                raise error()
            raise WaitTimeout(what, timeout)
        sleep(min(interval, remaining))
