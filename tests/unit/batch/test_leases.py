"""LeaseManager on a real SQL store (tests/support/leases.py): releases free only the caller's rows,
held leases are renewed while the work runs, a lease taken over is noticed and fails the work,
deadlocks and lock wait timeouts are retried, and the release comes after the guarded work stopped."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pymysql
import pytest

from lakehouse.batch.leases import LeaseHeld, LeaseLost, LeaseManager
from lakehouse.core.errors import GateFailed
from tests.support.leases import SqliteLeaseStore, deadlock, lock_wait_timeout

DAY = "2026-11-23"
TTL = timedelta(hours=2)
T0 = datetime(2026, 11, 24, 1, 0, 0)


class Clock:
    """The wall clock LeaseManager stamps leases with (naive UTC), moved by the test."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def manager(store, clock=None, **kwargs) -> LeaseManager:
    kwargs.setdefault("sleep", lambda s: None)
    return LeaseManager(store, ttl=TTL, now=clock or Clock(), **kwargs)


def eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# ------------------------------------------------------------------------------ release: own rows only
def test_release_frees_only_the_callers_table_and_day():
    """Two mapped tasks of one run used to share a holder: one task's release freed the other's lease."""
    store = SqliteLeaseStore()
    leases = manager(store)
    leases.acquire(["dwd.a"], DAY, "table_maintenance/run")
    leases.acquire(["dwd.b"], DAY, "table_maintenance/run")
    leases.acquire(["dwd.a"], "2026-11-22", "table_maintenance/run")
    leases.acquire(["dwd.c"], DAY, "someone-else")
    assert leases.release("table_maintenance/run", DAY, tables=["dwd.a"]) == 1
    assert [(t, d, h) for t, d, h, _ in store.rows()] == [
        ("dwd.a", "2026-11-22", "table_maintenance/run"),
        ("dwd.b", DAY, "table_maintenance/run"),
        ("dwd.c", DAY, "someone-else"),
    ]
    assert leases.release("someone-else", DAY, tables=["dwd.a", "dwd.b"]) == 0  # holds neither
    assert leases.release("table_maintenance/run") == 2  # every lease of a holder, as before


def test_held_releases_exactly_what_it_took():
    store = SqliteLeaseStore()
    leases = manager(store)
    leases.acquire(["dwd.b"], DAY, "shared-holder")  # another mapped task, same holder string
    with leases.held(["dwd.a"], DAY, "shared-holder"):
        assert {r[0] for r in store.rows()} == {"dwd.a", "dwd.b"}
    assert [r[:3] for r in store.rows()] == [("dwd.b", DAY, "shared-holder")]


# ------------------------------------------------------------------------------ renewal while held
def test_held_leases_are_renewed_while_the_work_runs():
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=0.01)
    with leases.held(["dwd.a", "dwd.b"], DAY, "t1_daily/run") as lease:
        assert {r[3] for r in store.rows()} == {T0 + TTL}
        clock.t = T0 + timedelta(hours=1, minutes=50)  # a long day: the first TTL nearly over
        eventually(lambda: {r[3] for r in store.rows()} == {clock.t + TTL})
        clock.t = T0 + timedelta(hours=3)  # past the first TTL: still held, renewed again
        eventually(lambda: {r[3] for r in store.rows()} == {clock.t + TTL})
        assert not lease.lost and lease.renewals >= 2
        lease.check()
    assert store.rows() == []


def test_the_default_renewal_interval_is_a_third_of_the_ttl():
    assert LeaseManager(None, ttl=timedelta(hours=2)).renew_every == 2400
    assert LeaseManager(None).renew_every == 300
    assert LeaseManager(None, ttl=timedelta(minutes=3), renew_every=5).renew_every == 5


def test_renewal_extends_only_the_holders_own_rows():
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock)
    leases.acquire(["dwd.a"], DAY, "me")
    leases.acquire(["dwd.b"], DAY, "other")
    clock.t = T0 + timedelta(hours=1)
    assert leases.renew(["dwd.a", "dwd.b"], DAY, "me") == ["dwd.b"]  # not mine: reported, not extended
    assert {r[0]: (r[2], r[3]) for r in store.rows()} == {
        "dwd.a": ("me", clock.t + TTL),
        "dwd.b": ("other", T0 + TTL),
    }


def test_a_lease_taken_over_after_expiry_is_lost_and_fails_the_work():
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=3600)  # the renewal thread never gets to run
    committed = []
    with pytest.raises(LeaseLost) as exc:
        with leases.held(["dwd.a"], DAY, "t1_daily/run") as lease:
            committed.append("dwd.a")
            # The worker stalls past the TTL; a backfill takes the expired lease over.
            clock.t = T0 + TTL + timedelta(seconds=1)
            manager(store, clock).acquire(["dwd.a"], DAY, "t1_backfill/run/0")
            lease.renew()  # what the renewal thread does
            assert lease.lost and lease.lost_tables == ["dwd.a"]
            with pytest.raises(LeaseLost):
                lease.check()  # before committing anything more
            committed.append("dwd.b")  # (the work ignored the check: exit raises anyway)
    assert exc.value.dt == DAY and exc.value.holder == "t1_daily/run" and exc.value.tables == ["dwd.a"]
    assert exc.value.taken_by == {"dwd.a": ("t1_backfill/run/0", clock.t + TTL)}
    assert "dwd.a dt=2026-11-23 held by t1_daily/run was taken over by t1_backfill/run/0" in str(exc.value)
    assert isinstance(exc.value, GateFailed) and exc.value.retryable
    # The new holder's lease is not released by the run that lost it.
    assert [r[:3] for r in store.rows()] == [("dwd.a", DAY, "t1_backfill/run/0")]


def test_a_lease_lost_unnoticed_by_the_renewals_fails_at_exit():
    """The renewal thread may not have run since the takeover: the exit looks once more."""
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=3600)
    with pytest.raises(LeaseLost, match="taken over by other"):
        with leases.held(["dwd.a"], DAY, "me"):
            clock.t = T0 + TTL + timedelta(minutes=5)
            manager(store, clock).acquire(["dwd.a"], DAY, "other")
    assert [r[:3] for r in store.rows()] == [("dwd.a", DAY, "other")]


def test_a_lease_lost_during_failed_work_does_not_hide_the_works_error():
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=3600)
    with pytest.raises(RuntimeError, match="flink failed"):
        with leases.held(["dwd.a"], DAY, "me"):
            clock.t = T0 + TTL + timedelta(minutes=5)
            manager(store, clock).acquire(["dwd.a"], DAY, "other")
            raise RuntimeError("flink failed")


def test_an_expired_lease_nobody_took_is_still_the_holders():
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=3600)
    with leases.held(["dwd.a"], DAY, "me") as lease:
        clock.t = T0 + TTL + timedelta(minutes=5)
        lease.renew()
        assert not lease.lost and store.rows()[0][2:] == ("me", clock.t + TTL)


def test_a_failing_renewal_is_logged_and_tried_again(caplog):
    clock = Clock()
    store = SqliteLeaseStore()
    leases = manager(store, clock, renew_every=0.01, attempts=1)
    store.fail("UPDATE", pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"))
    with leases.held(["dwd.a"], DAY, "me") as lease:
        clock.t = T0 + timedelta(hours=1)
        eventually(lambda: store.rows()[0][3] == clock.t + TTL)
        assert not lease.lost
    assert "could not renew the leases of dt=2026-11-23 for me" in caplog.text


# ------------------------------------------------------------------------------ deadlocks
def test_deadlocks_and_lock_wait_timeouts_are_retried_with_a_short_backoff():
    store = SqliteLeaseStore()
    slept = []
    leases = manager(store, sleep=slept.append)
    store.fail("INSERT", deadlock(), lock_wait_timeout())
    leases.acquire(["dwd.a"], DAY, "me")
    assert [r[:3] for r in store.rows()] == [("dwd.a", DAY, "me")]
    assert len(slept) == 2 and all(0 < s <= 1 for s in slept)
    store.fail("UPDATE", deadlock())
    assert leases.renew(["dwd.a"], DAY, "me") == []
    store.fail("DELETE", lock_wait_timeout())
    assert leases.release("me", DAY, tables=["dwd.a"]) == 1 and store.rows() == []
    assert len(slept) == 4


def test_a_deadlock_that_persists_is_raised_after_a_few_attempts():
    store = SqliteLeaseStore()
    slept = []
    leases = manager(store, sleep=slept.append, attempts=3)
    store.fail("INSERT", deadlock(), deadlock(), deadlock(), deadlock())
    with pytest.raises(pymysql.err.OperationalError) as exc:
        leases.acquire(["dwd.a"], DAY, "me")
    assert exc.value.args[0] == 1213 and len(slept) == 2 and store.rows() == []


def test_a_held_lease_and_other_errors_are_not_retried():
    store = SqliteLeaseStore()
    slept = []
    leases = manager(store, sleep=slept.append)
    leases.acquire(["dwd.a"], DAY, "other")
    store.events.clear()
    with pytest.raises(LeaseHeld):
        leases.acquire(["dwd.a"], DAY, "me")
    assert [e[1] for e in store.events].count("INSERT") == 1 and slept == []
    store.fail("DELETE", pymysql.err.OperationalError(1045, "Access denied"))
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        leases.release("other")
    assert slept == []


# ------------------------------------------------------------------------------ release after the work stopped
class FakeFlinkCall:
    """A Flink statement call: the job runs, then finishes, or is cancelled when the call fails."""

    def __init__(self, events: list, *, fail_with: BaseException | None = None) -> None:
        self.events = events
        self.fail_with = fail_with

    def __call__(self) -> None:
        self.events.append("flink job running")
        eventually(lambda: any(e[:2] == ("sql", "UPDATE") for e in list(self.events)))  # renewed while it runs
        if self.fail_with is not None:
            self.events.append("flink job cancelled")  # FlinkHook cancels the job before raising
            raise self.fail_with
        self.events.append("flink job finished")


@pytest.mark.parametrize(
    "fail_with", [None, TimeoutError("no result within 3600 s"), KeyboardInterrupt()], ids=["ok", "timeout", "killed"]
)
def test_the_lease_is_released_after_the_guarded_flink_call_stopped(fail_with):
    events: list = []
    store = SqliteLeaseStore(events)
    leases = manager(store, renew_every=0.005)
    call = FakeFlinkCall(events, fail_with=fail_with)
    try:
        with leases.held(["dwd.a"], DAY, "me"):
            call()
    except BaseException as exc:  # noqa: BLE001 - the parametrised failure, checked below
        assert exc is fail_with
    else:
        assert fail_with is None
    stopped = events.index("flink job cancelled" if fail_with else "flink job finished")
    deletes = [i for i, e in enumerate(events) if e[:2] == ("sql", "DELETE")]
    release = deletes[-1]  # the first DELETE belongs to acquire (expired leases)
    assert events.index("flink job running") < stopped < release
    # Released by the caller's thread, and nothing renews after it.
    assert events[release][2] == threading.current_thread().name
    assert not any(e[:2] == ("sql", "UPDATE") for e in events[release:])
    assert any(e[:2] == ("sql", "UPDATE") and e[2] != events[release][2] for e in events[:release])
    assert store.rows() == []


def test_a_killed_workers_leases_block_other_runs_for_at_most_the_default_ttl():
    """The t1_kill drill: a worker killed with -9 never releases; with renewals while held the TTL
    is short (15 min), so an on-call backfill of the day waits minutes, not hours."""
    store, clock = SqliteLeaseStore(), Clock()
    LeaseManager(store, now=clock).acquire(["dwd.a"], DAY, "t1_daily/scheduled__dead/recompute_day")
    backfill = LeaseManager(store, now=clock, sleep=lambda s: None)
    clock.t = T0 + timedelta(minutes=14)
    with pytest.raises(LeaseHeld):
        backfill.acquire(["dwd.a"], DAY, "t1_backfill/manual__x/lane")
    clock.t = T0 + timedelta(minutes=15, seconds=1)
    backfill.acquire(["dwd.a"], DAY, "t1_backfill/manual__x/lane")
