"""Helpers shared by the integration tests."""
from __future__ import annotations

import time

from lakehouse.supervision import Supervisor
from lakehouse.truth import DWS_GRAINS, compare_dws

PREFIX = "it_"
ORDER_JOBS = ["ods_delivery_cdc", "dwd_order_fact", "dws_shop_hourly", "dws_shop_daily", "dws_city_hourly", "dws_city_daily"]


def wait_dws_equals_truth(env, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        diffs = [compare_dws(t, mysql=env.mysql, paimon=env.paimon) for t in DWS_GRAINS]
        if all(d.equal for d in diffs) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert all(d.equal for d in diffs), "\n".join(d.summary() for d in diffs)
    return diffs


def supervise_until(sup: Supervisor, jobs, *, want=("OK",), timeout=240):
    """Run supervision rounds (as the DAG does every 2 minutes) until every job reports `want`."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[str]] = {j: [] for j in jobs}
    while True:
        results = {j: sup.supervise(j) for j in jobs}
        for j, r in results.items():
            seen[j].append(r.action)
        if all(r.action in want for r in results.values()):
            return seen
        assert time.monotonic() < deadline, f"supervision did not settle: {seen}"
        time.sleep(5)
