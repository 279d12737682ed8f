"""Existing tables against their DDL: options are altered to what the DDL declares, layout options fail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lakehouse.core.errors import ConfigError
from lakehouse.core.registry import registry
from lakehouse.core.sql_files import declared_options, load_statements
from lakehouse.streaming import deploy as streaming
from lakehouse.streaming.deploy import TableDriftError, create_tables, option_drift
from tests.support.flink import FakeFlinkCluster

CONTEXT = {"paimon": SimpleNamespace(warehouse_uri="file:///tmp/w", catalog_options=[])}


class FakePaimon:
    """Tables as they exist: name -> options."""

    def __init__(self, options: dict[str, dict[str, str]]):
        self.options = options

    def get_table(self, name):
        return SimpleNamespace(table_schema=SimpleNamespace(options=dict(self.options[name])))


def ddl_options(table) -> dict[str, str]:
    create = [s for s in load_statements(table.ddl, CONTEXT) if s.lstrip().upper().startswith("CREATE TABLE")]
    assert len(create) == 1, table.ddl
    return declared_options(create[0])


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(streaming, "catalog_statements", lambda paimon: ["CREATE CATALOG lakehouse"])
    monkeypatch.setattr(streaming, "sql_context", lambda **_: CONTEXT)


def test_every_registered_ddl_declares_its_options():
    for table in registry().tables.values():
        options = ddl_options(table)
        assert options, f"{table.name}: no WITH options parsed from {table.ddl}"
        if table.primary_key and not table.name.startswith("ops."):
            assert "bucket" in options, table.name
    assert ddl_options(registry().table("dwd.dwd_order_fact"))["changelog-producer"] == "input"


def test_quoted_values_and_drift():
    stmt = "CREATE TABLE t (a INT) WITH (\n 'k' = 'it''s', 'bucket' = '2'\n)"
    assert declared_options(stmt) == {"k": "it's", "bucket": "2"}
    assert option_drift({"k": "1", "bucket": "2"}, {"bucket": "2", "extra": "x"}) == {"k": (None, "1")}


def test_existing_table_with_an_old_option_is_altered_to_the_ddl():
    tables = [registry().table("dwd.dwd_order_fact"), registry().table("ods.ods_orders")]
    actual = {t.name: ddl_options(t) for t in tables}
    actual["dwd.dwd_order_fact"]["changelog-producer"] = "lookup"  # created before the design changed
    flink = FakeFlinkCluster()
    create_tables(tables, flink=flink, paimon=FakePaimon(actual))
    assert len(flink.batches) == 2
    assert flink.batches[1][1:] == ["ALTER TABLE lakehouse.`dwd`.`dwd_order_fact` SET ('changelog-producer' = 'input')"]


def test_tables_as_declared_are_left_alone():
    tables = list(registry().tables.values())
    flink = FakeFlinkCluster()
    create_tables(tables, flink=flink, paimon=FakePaimon({t.name: ddl_options(t) for t in tables}))
    assert len(flink.batches) == 1  # the CREATE ... IF NOT EXISTS batch only


def test_a_changed_bucket_count_fails_and_alters_nothing():
    tables = [registry().table("dwd.dwd_order_fact")]
    actual = {"dwd.dwd_order_fact": {**ddl_options(tables[0]), "bucket": "4", "changelog-producer": "lookup"}}
    flink = FakeFlinkCluster()
    with pytest.raises(TableDriftError, match=r"dwd.dwd_order_fact: 'bucket' is '4', the DDL says '2'") as exc:
        create_tables(tables, flink=flink, paimon=FakePaimon(actual))
    assert exc.value.drift == ["dwd.dwd_order_fact: 'bucket' is '4', the DDL says '2'"]
    assert len(flink.batches) == 1  # no ALTER


def test_a_job_whose_sql_submits_no_job_is_a_config_error(monkeypatch):
    class NoJobFlink(FakeFlinkCluster):
        def active_jobs_named(self, name):
            return []

    monkeypatch.setattr(streaming, "render_job", lambda job, paimon, cdc: ["CREATE TEMPORARY VIEW v AS SELECT 1"])
    job = registry().job("dwd_order_fact")
    with pytest.raises(
        ConfigError, match=rf"^{job.sql} submitted no job: it must end with an INSERT or a statement set$"
    ):
        streaming.deploy_job(job.name, flink=NoJobFlink(), paimon=object(), cdc=object())
