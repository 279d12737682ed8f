"""Freshness is lag, on the real stack: a quiet source is fresh, a stopped job is stale within one check.

A throw-away order pipeline (CDC -> DWD -> dws_shop_hourly, pipelines `itf_*`) in this module's own
database and warehouse (`isolated_env`):

- once everything is applied and the source goes quiet, every ODS mirror, DWD and the DWS table
  have lag 0 and pass their SLA, also checked an hour later (the soak's false alarm: ods_users
  "stale" because its newest change was 646 s old while ODS held it);
- the CDC job stopped and one change written at the source: ods_users lags by the wall-clock time
  since that change, and one check once it is older than the SLA fails naming the table and the
  lag, while DWS (whose input has nothing new) stays fresh;
- a DWS job stopped while orders keep coming: the table lags behind DWD by the time since the
  first DWD snapshot the job has not consumed, and one check past the SLA fails the same way.

The SLAs are shortened to a few seconds (`with_sla`) so a check fails after seconds of real time
rather than the minutes of config/tables.yaml; the lag measured is the real one.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from lakehouse.core.polling import WaitTimeout, wait_until
from lakehouse.core.registry import registry
from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.quality.freshness import FreshnessSlaMissed, check_sla, table_freshness
from lakehouse.streaming.deploy import create_tables
from lakehouse.streaming.supervision import Supervisor
from tests.integration.helpers import supervise_until

pytestmark = pytest.mark.integration

PREFIX = "itf_"  # not it_ (the session's shared pipelines), itx_ (test_cdc_ods) nor itr_ (consumer retention)
JOBS = ["ods_delivery_cdc", "dwd_order_fact", "dws_shop_hourly"]
USERS, DWD, DWS = "ods.ods_users", "dwd.dwd_order_fact", "dws.dws_shop_hourly"
SHORT_SLA = 5.0  # seconds


def checked_tables() -> list[str]:
    """What this pipeline writes: every ODS mirror, DWD and one DWS table."""
    return [t.name for t in registry().mirrored_tables()] + [DWD, DWS]


def freshness(env, table: str, *, at: float | None = None):
    return table_freshness(env.paimon, registry().table(table), mysql=env.mysql, prefix=PREFIX, now=at)


def with_sla(table: str, seconds: float):
    return replace(registry().table(table), freshness_sla_s=seconds)


def wait_caught_up(env, tables: list[str], timeout: float = 180) -> dict:
    """Until every table has lag 0 behind its source or inputs; the lags at the deadline otherwise."""
    last: dict[str, float | None] = {}

    def caught_up():
        last.update({t: freshness(env, t).lag_s for t in tables})
        return dict(last) if all(lag == 0 for lag in last.values()) else None

    try:
        return wait_until(caught_up, timeout=timeout, interval=3, what=f"{tables} to catch up")
    except WaitTimeout:
        pytest.fail(f"not caught up after {timeout:.0f} s: {last}")


def stale_lag(exc: FreshnessSlaMissed) -> float:
    m = re.search(r" is stale: (\d+) s behind ", str(exc))
    assert m, str(exc)
    return float(m.group(1))


@pytest.fixture(scope="module")
def pipeline(isolated_env):
    env = isolated_env
    reg = registry()
    create_tables(list(reg.tables.values()), flink=env.flink, paimon=env.paimon)
    LoadGenerator(env.mysql, rate=50, seed=81).run(duration_s=3)
    sup = Supervisor(flink=env.flink, paimon=env.paimon, cdc=env.cdc, reg=reg, pipeline_prefix=PREFIX)
    env.job_names.extend(PREFIX + j for j in JOBS)
    supervise_until(sup, JOBS)
    LoadGenerator(env.mysql, rate=50, seed=82).run(duration_s=3)  # through the binlog, not only the snapshot
    return sup


def test_a_quiet_source_is_fresh_however_old_its_last_change(isolated_env, pipeline):
    env = isolated_env
    wait_caught_up(env, checked_tables())
    an_hour_later = time.time() + 3600
    newest_user_change = env.mysql.get_first("SELECT UNIX_TIMESTAMP(MAX(updated_at)) FROM users")[0]
    assert an_hour_later - float(newest_user_change) > registry().table(USERS).freshness_sla_s
    for table in checked_tables():
        f = check_sla(env.paimon, registry().table(table), mysql=env.mysql, prefix=PREFIX, now=an_hour_later)
        assert (f.lag_s, f.behind_since) == (0, None), f.describe()
        assert f.measure == ("source" if table.startswith("ods.") else "inputs")


def test_a_stopped_cdc_job_is_stale_within_one_check(isolated_env, pipeline):
    env, sup = isolated_env, pipeline
    wait_caught_up(env, checked_tables())
    sup.stop("ods_delivery_cdc")
    try:
        with env.mysql.cursor() as cur:  # updated_at: the server's clock (UTC), ON UPDATE CURRENT_TIMESTAMP(3)
            cur.execute("UPDATE users SET phone = %s WHERE user_id = %s", ("13900000001", 1))
        f = freshness(env, USERS)
        assert f.behind_since is not None and f.lag_s is not None, f.describe()
        time.sleep(SHORT_SLA + 2)

        with pytest.raises(FreshnessSlaMissed) as exc:  # one check, once the change is older than the SLA
            check_sla(env.paimon, with_sla(USERS, SHORT_SLA), mysql=env.mysql, prefix=PREFIX)
        assert exc.value.table == USERS
        assert str(exc.value).startswith(f"{USERS} is stale: ")
        assert "behind its source users" in str(exc.value) and "ods_delivery_cdc" in str(exc.value)
        assert stale_lag(exc.value) >= SHORT_SLA + 1
        assert stale_lag(exc.value) >= f.lag_s  # it grows with the clock, the pipeline being stuck
        # The layers below have applied everything their inputs hold: fresh (per hop; ODS is the stuck one).
        assert freshness(env, DWS).lag_s == 0
    finally:
        assert sup.start("ods_delivery_cdc", savepoint_path=None).action == "START"
    wait_caught_up(env, [USERS])
    supervise_until(sup, JOBS)


def test_a_stopped_dws_job_is_stale_within_one_check(isolated_env, pipeline):
    env, sup = isolated_env, pipeline
    wait_caught_up(env, [DWD, DWS])
    sup.stop("dws_shop_hourly")
    try:
        LoadGenerator(env.mysql, rate=20, seed=83).run(duration_s=2)
        # DWD commits the new orders; the stopped job's consumer stays where it was.
        behind = wait_until(
            lambda: freshness(env, DWS).behind_since, timeout=120, interval=2, what="DWD to commit what DWS lacks"
        )
        time.sleep(max(0.0, behind.timestamp() + SHORT_SLA + 2 - time.time()))

        with pytest.raises(FreshnessSlaMissed) as exc:
            check_sla(env.paimon, with_sla(DWS, SHORT_SLA), prefix=PREFIX)
        assert exc.value.table == DWS
        assert "behind its input dwd.dwd_order_fact" in str(exc.value)
        assert "streaming job dws_shop_hourly" in str(exc.value)
        assert stale_lag(exc.value) >= SHORT_SLA + 1
        # DWD, whose job runs, keeps up with ODS: within its own SLA.
        check_sla(env.paimon, registry().table(DWD), prefix=PREFIX)
    finally:
        assert sup.start("dws_shop_hourly", savepoint_path=None).action == "START"
    wait_caught_up(env, [DWS])
    supervise_until(sup, JOBS)
