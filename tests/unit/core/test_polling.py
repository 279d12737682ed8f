"""lakehouse.core.polling.wait_until with a fake clock: nothing sleeps."""

from __future__ import annotations

import pytest

from lakehouse.core.errors import ExternalServiceError
from lakehouse.core.polling import WaitTimeout, wait_until


class FakeClock:
    """A clock that only moves when the code under test sleeps (or a check takes time)."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def checks(*values, clock=None, cost=0.0):
    """A check returning `values` one after the other; each call takes `cost` seconds of `clock`."""
    it = iter(values)
    calls = []

    def check():
        calls.append(clock.now if clock else None)
        if clock:
            clock.now += cost
        return next(it)

    return check, calls


def test_returns_the_first_truthy_value_without_sleeping_when_it_is_there_at_once():
    clock = FakeClock()
    check, calls = checks({"state": "RUNNING"}, clock=clock)
    assert wait_until(check, timeout=10, interval=1, what="x", clock=clock, sleep=clock.sleep) == {"state": "RUNNING"}
    assert clock.sleeps == [] and len(calls) == 1


def test_polls_every_interval_until_truthy():
    clock = FakeClock()
    check, calls = checks(None, 0, [], "done", clock=clock)
    assert wait_until(check, timeout=10, interval=2, what="x", clock=clock, sleep=clock.sleep) == "done"
    assert clock.sleeps == [2, 2, 2]
    assert calls == [1000, 1002, 1004, 1006]


def test_times_out_with_wait_timeout_naming_what_and_how_long():
    clock = FakeClock()
    check, calls = checks(*[None] * 100, clock=clock)
    with pytest.raises(WaitTimeout) as exc:
        wait_until(check, timeout=5, interval=2, what="job abc to be RUNNING", clock=clock, sleep=clock.sleep)
    assert str(exc.value) == "timed out after 5 s waiting for job abc to be RUNNING"
    assert (exc.value.what, exc.value.timeout) == ("job abc to be RUNNING", 5)
    assert isinstance(exc.value, ExternalServiceError) and exc.value.retryable
    # The last wait is cut short: the last check runs at the deadline, not after it.
    assert clock.sleeps == [2, 2, 1]
    assert calls == [1000, 1002, 1004, 1005]


def test_timeout_zero_checks_once():
    clock = FakeClock()
    check, calls = checks(None, "never reached", clock=clock)
    with pytest.raises(WaitTimeout):
        wait_until(check, timeout=0, interval=1, what="x", clock=clock, sleep=clock.sleep)
    assert len(calls) == 1 and clock.sleeps == []


def test_a_slow_check_does_not_make_the_wait_longer_than_the_timeout():
    clock = FakeClock()
    check, calls = checks(*[None] * 100, clock=clock, cost=3)
    with pytest.raises(WaitTimeout):
        wait_until(check, timeout=10, interval=2, what="x", clock=clock, sleep=clock.sleep)
    assert calls == [1000, 1005, 1010]  # check 3 s + sleep 2 s; the third check ends past the deadline
    assert clock.sleeps == [2, 2]


def test_error_factory_replaces_wait_timeout():
    class JobError(Exception):
        pass

    clock = FakeClock()
    seen = []

    def check():
        seen.append("CREATED")
        return None

    with pytest.raises(JobError, match="still CREATED after 3 s"):
        wait_until(
            check,
            timeout=3,
            interval=1,
            what="x",
            clock=clock,
            sleep=clock.sleep,
            error=lambda: JobError(f"still {seen[-1]} after 3 s"),
        )


def test_an_exception_from_the_check_stops_the_wait_at_once():
    clock = FakeClock()

    def check():
        raise RuntimeError("job FAILED")

    with pytest.raises(RuntimeError, match="job FAILED"):
        wait_until(check, timeout=60, interval=1, what="x", clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match=r"wait_until\(x\): interval must be > 0 seconds, got 0"):
        wait_until(lambda: True, timeout=1, interval=0, what="x")


# ------------------------------------------------------------------------------ callers
def test_acquire_waiting_retries_then_raises_the_last_lease_held(monkeypatch):
    """LeaseManager.acquire_waiting keeps its contract: LeaseHeld (naming the holder) at the timeout."""
    import functools

    from lakehouse.batch import leases

    clock = FakeClock()
    monkeypatch.setattr(leases, "wait_until", functools.partial(wait_until, clock=clock, sleep=clock.sleep))
    manager = leases.LeaseManager(mysql=None)
    attempts = []

    def acquire(tables, dt, holder):
        attempts.append(clock.now)
        raise leases.LeaseHeld(f"held by run-{len(attempts)}", dt="2026-11-24", holders={})

    monkeypatch.setattr(manager, "acquire", acquire)
    with pytest.raises(leases.LeaseHeld, match="held by run-4"):
        manager.acquire_waiting(["dwd.x"], "2026-01-01", "me", timeout=25, poll=10)
    assert attempts == [1000, 1010, 1020, 1025]

    monkeypatch.setattr(manager, "acquire", lambda tables, dt, holder: ["lease"])
    assert manager.acquire_waiting(["dwd.x"], "2026-01-01", "me", timeout=25, poll=10) == ["lease"]
