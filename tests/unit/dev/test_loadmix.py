"""The load generator's plan, without a database: who writes which keys, and every order's lifecycle."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from lakehouse.core.errors import BadRequest
from lakehouse.dev.lifecycles import VALID_PATHS
from lakehouse.dev.loadmix import TICK_SECONDS, Dimensions, Mix, Partition, Planner, Schedule

DIMS = Dimensions(max_user=2000, max_shop=300, max_rider=400)
BASE = datetime(2026, 11, 20, 10, 0)


@pytest.mark.parametrize("writers", [1, 2, 3, 4])
def test_writers_take_every_new_id_once_each_from_its_own_residue_class(writers):
    schedule = Schedule(rate=137.0, first_order_id=1001)
    taken: dict[int, int] = {}
    for k in range(writers):
        partition = Partition(k, writers)
        # Ticks taken one at a time and several at once (a writer catching up) give the same ids.
        ids = [i for tick in range(50) for i in partition.new_ids(schedule, tick, tick)]
        assert ids == list(partition.new_ids(schedule, 0, 9)) + list(partition.new_ids(schedule, 10, 49))
        for i in ids:
            assert i % writers == k and i not in taken
            taken[i] = k
    assert sorted(taken) == list(range(1001, 1001 + schedule.owed(49)))
    assert schedule.owed(49) == int(137.0 * 50 * TICK_SECONDS)


def test_a_bounded_run_stops_at_max_orders():
    schedule = Schedule(rate=1000.0, first_order_id=1, max_orders=250)
    assert [schedule.owed(t) for t in (-1, 0, 1, 2, 3)] == [0, 100, 200, 250, 250]
    assert not schedule.complete(1) and schedule.complete(2)
    ids = [i for k in range(3) for i in Partition(k, 3).new_ids(schedule, 0, 10)]
    assert sorted(ids) == list(range(1, 251))


@pytest.mark.parametrize("writers", [1, 3, 7])
def test_dimension_keys_are_split_among_writers(writers):
    seen = []
    for k in range(writers):
        p = Partition(k, writers)
        keys = [p.key(i) for i in range(p.key_count(60))]
        assert all(1 <= key <= 60 and key % writers == k for key in keys)
        seen += keys
    assert sorted(seen) == list(range(1, 61))
    assert Partition(3, 4).key_count(2) == 0  # more writers than keys: this one updates none


def test_wrong_partition_and_mix_are_refused():
    with pytest.raises(BadRequest):
        Partition(2, 2)
    with pytest.raises(BadRequest):
        Mix(cancel_ratio=1.0)
    with pytest.raises(BadRequest):
        Mix(step_seconds=(3.0, 1.0))
    with pytest.raises(BadRequest):
        Mix(subsidy_ratio=1.5)


def planner(rate=500.0, writer=0, writers=1, seed=1, first_order_id=1):
    return Planner(
        mix=Mix(),
        schedule=Schedule(rate, first_order_id),
        partition=Partition(writer, writers),
        dims=DIMS,
        rng=random.Random(seed),
    )


def run_ticks(p: Planner, ticks: int, start: datetime = BASE, step: int = 1):
    batches = []
    tick = 0
    while tick < ticks:
        last = min(ticks - 1, tick + step - 1)
        batches.append(p.plan(last, start + timedelta(seconds=last * TICK_SECONDS, microseconds=123)))
        tick = last + 1
    return batches


def histories(batches):
    """order id -> [(status, time, rider, batch index)] in the order the events are written."""
    out = defaultdict(list)
    for n, batch in enumerate(batches):
        for order_id, status, rider, ts in batch.events():
            out[order_id].append((status, ts, rider, n))
    return out


@pytest.mark.parametrize("step", [1, 7])  # one tick per transaction, or catching up seven at once
def test_every_order_goes_through_a_valid_lifecycle_in_rising_time(step):
    p = planner(rate=500.0, writer=1, writers=2)
    batches = run_ticks(p, 300, step=step)
    hist = histories(batches)
    assert len(hist) == 500 * 30 // 2
    paths = defaultdict(int)
    for order_id, events in hist.items():
        assert order_id % 2 == 1
        path = ">".join(e[0] for e in events)
        assert path in VALID_PATHS, (order_id, path)
        paths[path] += 1
        times = [e[1] for e in events]
        assert times == sorted(set(times)), (order_id, times)  # strictly rising
        assert all(t.microsecond % 1000 == 0 for t in times)  # as DATETIME(3) stores them
        batch_of = [e[3] for e in events]
        assert batch_of == sorted(set(batch_of))  # one change per order per transaction, in order
        for status, _, rider, _ in events:
            assert (rider is not None) == (status == "ACCEPTED")
            assert rider is None or 1 <= rider <= DIMS.max_rider
    # 30 s of 1-6 s steps: every path occurs, most orders are delivered.
    assert set(paths) == VALID_PATHS
    assert paths["CREATED>ACCEPTED>PICKED_UP>DELIVERED"] > len(hist) / 2
    # What the order rows get is what the events say.
    for batch in batches:
        for (status, ts), rows in batch.advances.items():
            for row in rows:
                order_id = row[0] if status == "ACCEPTED" else row
                assert (status, ts) in [(e[0], e[1]) for e in hist[order_id]]


def test_clawbacks_delete_subsidies_committed_earlier():
    p = planner(rate=2000.0, seed=3)
    batches = run_ticks(p, 100)
    subsidised_in = {}
    claws = 0
    for n, batch in enumerate(batches):
        for order_id, *_ in batch.subsidies:
            subsidised_in[order_id] = n
        for order_id in batch.clawbacks:
            assert subsidised_in[order_id] < n
            claws += 1
        for user, phone in batch.users:
            assert 1 <= user <= DIMS.max_user and len(phone) == 11
        assert all(1 <= r <= DIMS.max_rider and s in ("ONLINE", "BUSY", "OFFLINE") for r, s in batch.riders)
    assert claws > 0


def test_orders_of_an_earlier_run_move_on_and_their_times_never_go_back():
    """A backdated clock started again (tests load one day in bursts) is behind the orders' last changes."""
    p = planner(rate=10.0, writer=0, writers=2, first_order_id=100)
    later = BASE + timedelta(hours=1)
    resumed = p.resume(
        [(10, "CREATED", later), (11, "ACCEPTED", later), (12, "PICKED_UP", later), (14, "DELIVERED", later)]
    )
    assert resumed == 2  # 11 belongs to the other writer, 14 is closed
    batches = run_ticks(p, 200)
    hist = histories(batches)
    assert [e[0] for e in hist[12]] == ["DELIVERED"] and hist[12][0][1] == later + timedelta(milliseconds=1)
    assert [e[0] for e in hist[10]][0] in ("ACCEPTED", "CANCELLED")
    times = [e[1] for e in hist[10]]
    assert times[0] == later + timedelta(milliseconds=1) and times == sorted(set(times))
    assert 11 not in hist
    assert sum(b.resumed_advances for b in batches) == len(hist[10]) + len(hist[12])


def test_the_plan_is_reproducible_from_the_seed():
    a = [b.events() for b in run_ticks(planner(seed=9), 50)]
    b = [b.events() for b in run_ticks(planner(seed=9), 50)]
    c = [b.events() for b in run_ticks(planner(seed=10), 50)]
    assert a == b and a != c
