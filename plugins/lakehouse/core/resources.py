"""The hooks a task works with, wired in one place (what Dagster calls resources).

DAG tasks (and the command-line entry points) take their hooks from `resources()` and pass them
to the library, which never builds a hook itself:

    @task
    def recompute_day(dt: str, run_id=None) -> dict:
        from lakehouse.core.resources import resources

        r = resources()
        result = run_day(dt, ..., flink=r.flink, paimon=r.paimon, leases=LeaseManager(r.ops))

So which connection each role uses is decided here, once, and a test or a second deployment
(say the integration stack's `it_*` connections) wires other ones with `resources(paimon_conn_id=...)`.

`Resources` is a frozen container of connection ids; each hook is built on first use and then kept
(one hook per role and container), and the hook modules are imported only then: importing this
module is cheap, like a DAG file's parse must be. Building a hook reads no connection yet either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.hooks.starrocks import StarRocksHook

# The Airflow connections of the control plane (scripts/env.sh defines them locally).
FLINK_CONN_ID = "flink_default"  # JobManager REST + SQL Gateway
PAIMON_CONN_ID = "paimon_default"  # the Paimon warehouse
MYSQL_SOURCE_CONN_ID = "mysql_source"  # the OLTP source database (reads: day completeness, audits)
CDC_CONN_ID = "mysql_cdc"  # the same database as the binlog reader's user (rendered into the CDC job's SQL)
OPS_CONN_ID = "lakehouse_ops"  # the control plane's own MySQL database (partition leases)
STARROCKS_CONN_ID = "starrocks_default"  # StarRocks serving, where it is deployed


@dataclass(frozen=True)
class Resources:
    """The hooks of one task, by role, each built from its connection id on first use."""

    flink_conn_id: str = FLINK_CONN_ID
    paimon_conn_id: str = PAIMON_CONN_ID
    mysql_source_conn_id: str = MYSQL_SOURCE_CONN_ID
    cdc_conn_id: str = CDC_CONN_ID
    ops_conn_id: str = OPS_CONN_ID
    starrocks_conn_id: str = STARROCKS_CONN_ID

    @cached_property
    def flink(self) -> FlinkHook:
        from lakehouse.hooks.flink import FlinkHook

        return FlinkHook(self.flink_conn_id)

    @cached_property
    def paimon(self) -> PaimonHook:
        from lakehouse.hooks.paimon import PaimonHook

        return PaimonHook(self.paimon_conn_id)

    @cached_property
    def mysql_source(self) -> MySqlHook:
        from lakehouse.hooks.mysql import MySqlHook

        return MySqlHook(self.mysql_source_conn_id)

    @cached_property
    def cdc(self) -> MySqlHook:
        from lakehouse.hooks.mysql import MySqlHook

        return MySqlHook(self.cdc_conn_id)

    @cached_property
    def ops(self) -> MySqlHook:
        from lakehouse.hooks.mysql import MySqlHook

        return MySqlHook(self.ops_conn_id)

    @cached_property
    def starrocks(self) -> StarRocksHook:
        from lakehouse.hooks.starrocks import StarRocksHook

        return StarRocksHook(self.starrocks_conn_id)


def resources(**conn_ids: str) -> Resources:
    """The hooks of a task: the default connections, or others by role (`paimon_conn_id="it_paimon"`)."""
    return Resources(**conn_ids)
