"""Streaming reads carry Paimon consumer ids, so that snapshot expiry never breaks a stopped reader.

What is checked here is what a submission sends (job_session_config, deploy_job) and what the
table DDLs declare; that Paimon then keeps the snapshots is tested on the real stack
(tests/integration/streaming/test_consumer_retention.py)."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import replace

import pytest

from lakehouse.core.errors import ConfigError
from lakehouse.core.registry import registry
from lakehouse.core.sql_files import declared_options, load_statements
from lakehouse.hooks.flink import JobStatus
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.streaming import deploy
from lakehouse.streaming.deploy import (
    CONSUMER_EXPIRATION_TIME,
    Deployment,
    consumer_options,
    deploy_job,
    job_session_config,
    render_job,
)

PAIMON_CONN = "paimon_consumer_ut"
CDC_CONN = "mysql_cdc_consumer_ut"
JOBS = sorted(registry().jobs)
READERS = sorted(name for name, job in registry().jobs.items() if job.streamed)
DURATION = re.compile(r"^(\d+) (s|min|h|d)$")
SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    m = DURATION.match(duration)
    assert m, f"{duration!r} is not '<n> s|min|h|d'"
    return int(m.group(1)) * SECONDS[m.group(2)]


def table_options(config: dict[str, str], table: str) -> dict[str, str]:
    """The per-table dynamic options of one table (Paimon's `paimon.<catalog>.<db>.<table>.<key>`)."""
    prefix = f"paimon.lakehouse.{table}."
    return {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}


@pytest.fixture
def hooks(monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PAIMON_CONN.upper()}",
        json.dumps({"conn_type": "paimon", "extra": {"warehouse": "file:///tmp/consumer-ut-warehouse"}}),
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{CDC_CONN.upper()}", "mysql://flink_cdc:pw@127.0.0.1:3306/delivery")
    return {"paimon": PaimonHook(PAIMON_CONN), "cdc": MySqlHook(CDC_CONN)}


@pytest.mark.parametrize("name", JOBS)
def test_the_registry_names_every_table_a_job_streams(hooks, name):
    """The consumer ids follow `streamed` (upstream minus lookup): it must be what the SQL reads."""
    job = registry().job(name)
    statements = render_job(job, **hooks)
    referenced = {
        f"{db}.{table}"
        for stmt in statements
        for db, table in re.findall(r"lakehouse\.`?([a-z_0-9]+)`?\.`?([a-z_0-9]+)`?", stmt)
        if db != "sys"
    }
    assert referenced - set(job.downstream) - set(job.lookup) == set(job.streamed), name


@pytest.mark.parametrize("name", READERS)
def test_every_streamed_paimon_table_is_read_with_the_pipelines_consumer_id(name):
    job = registry().job(name)
    config = job_session_config(job)
    for table in job.streamed:
        options = table_options(config, table)
        assert options == {
            "consumer-id": name,
            # at-least-once keeps the source Flink already has (exactly-once swaps it for another
            # operator, whose state an upgrade from an existing savepoint could not restore).
            "consumer.mode": "at-least-once",
            # the position to read from is the job's state (or its scan mode), never the consumer's
            "consumer.ignore-progress": "true",
            "consumer.expiration-time": CONSUMER_EXPIRATION_TIME,
        }, table
    for table in job.lookup:
        assert table_options(config, table) == {}, f"{name} looks {table} up; it does not stream it"
    for table in job.downstream:
        assert table_options(config, table) == {}, f"{name} writes {table}"


def test_jobs_that_stream_no_paimon_table_carry_no_consumer():
    for name in sorted(set(JOBS) - set(READERS)):
        assert not [k for k in job_session_config(registry().job(name)) if ".consumer" in k], name


def test_the_consumer_id_is_the_pipeline_name_with_its_prefix():
    job = replace(registry().job("dws_shop_hourly"), name="it_dws_shop_hourly")
    assert table_options(job_session_config(job), "dwd.dwd_order_fact")["consumer-id"] == "it_dws_shop_hourly"


def test_a_reset_submission_reads_from_its_snapshot_and_ignores_the_old_consumer_position():
    """Paimon starts a stateless reader at its consumer's position when it has one, before looking
    at scan.mode; a reset must read exactly from the snapshot it was given."""
    job = registry().job("dws_city_daily")
    config = job_session_config(job, read_from_snapshots={"dwd.dwd_order_fact": 42})
    options = table_options(config, "dwd.dwd_order_fact")
    assert options["scan.mode"] == "from-snapshot" and options["scan.snapshot-id"] == "42"
    assert options["consumer.ignore-progress"] == "true"
    assert options["consumer-id"] == "dws_city_daily"  # the reset job records its own position from then on


def test_consumer_options_refuse_a_name_paimon_could_not_use():
    with pytest.raises(ConfigError, match="consumer id"):
        consumer_options("pin-x-until-1", ["dwd.dwd_order_fact"])
    with pytest.raises(ConfigError, match="consumer id"):
        consumer_options("", ["dwd.dwd_order_fact"])


def test_deploy_job_submits_the_consumer_of_the_pipeline_it_starts(monkeypatch):
    submitted: list[dict] = []

    class Flink:
        def active_jobs_named(self, name):
            return []

        def execute_sql(self, statements, session_config):
            submitted.append(session_config)
            return [type("R", (), {"job_id": "a" * 32})()]

        def wait_for_job_state(self, job_id, states, timeout):
            return JobStatus(job_id=job_id, name="x", state="RUNNING", start_time_ms=0)

    monkeypatch.setattr(deploy, "render_job", lambda job, **_: ["INSERT INTO x SELECT 1"])
    d = deploy_job(
        "dws_shop_hourly",
        flink=Flink(),
        paimon=None,
        cdc=None,
        pipeline_name="blue_dws_shop_hourly",
        wait_for_checkpoint=False,
    )
    assert d == Deployment("blue_dws_shop_hourly", "a" * 32, False, None)
    assert table_options(submitted[0], "dwd.dwd_order_fact")["consumer-id"] == "blue_dws_shop_hourly"


@pytest.mark.parametrize("table", sorted({t for name in READERS for t in registry().job(name).streamed}))
def test_every_streamed_table_declares_the_consumer_expiration(table):
    """The writers expire abandoned consumers, and only with the option in the table's own options:
    the reader's dynamic option alone would let a consumer of a dropped pipeline hold snapshots forever."""
    spec = registry().table(table)
    create = [s for s in load_statements(spec.ddl, {"paimon": None}) if "CREATE TABLE" in s.upper()]
    assert declared_options(create[0]).get("consumer.expiration-time") == CONSUMER_EXPIRATION_TIME, spec.ddl


def test_the_consumer_expiration_outlasts_every_pin():
    """Pins (PaimonHook.pin_snapshot) are consumers too: the writers would delete a pin that outlives
    consumer.expiration-time before the maintenance run does."""
    longest_pin = inspect.signature(PaimonHook.pin_snapshot).parameters["ttl_s"].default
    assert seconds(CONSUMER_EXPIRATION_TIME) > longest_pin


def test_the_documented_guarantee_names_the_expiration_the_jobs_use():
    from lakehouse.core.paths import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "MAINTENANCE.md").read_text()
    assert f"| `consumer.expiration-time` | `{CONSUMER_EXPIRATION_TIME}` |" in doc
    words = {"1 d": "one day"}
    assert f"stopped for up to {words[CONSUMER_EXPIRATION_TIME]}" in doc
