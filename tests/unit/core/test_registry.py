"""The registry: the project's real config, and load_registry's errors on broken config dirs."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil

import pytest
import yaml

from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import CONFIG_DIR, EXPECTATIONS_DIR, SQL_DIR
from lakehouse.core.registry import (
    Registry,
    RegistryError,
    StreamingJobSpec,
    TableSpec,
    check_lineage,
    load_registry,
    parse_duration,
    registry,
    sql_lineage,
)


# ---------------------------------------------------------------------------- the real config
def test_real_config_loads():
    reg = load_registry(CONFIG_DIR)
    assert len(reg.tables) == 13
    assert len(reg.jobs) == 8
    assert {layer: len(reg.tables_in_layer(layer)) for layer in ("ods", "dwd", "dws")} == {"ods": 7, "dwd": 1, "dws": 5}
    assert registry() is registry()  # loaded once per process
    assert registry().tables.keys() == reg.tables.keys() and registry().jobs.keys() == reg.jobs.keys()


def test_real_jobs_reference_registered_tables_and_existing_sql():
    reg = registry()
    for job in reg.jobs.values():
        assert job.downstream, f"{job.name} writes nothing"
        for table in job.downstream:
            assert table in reg.tables, f"{job.name}: {table}"
        for ref in job.upstream:
            assert ref.startswith("mysql:") or ref in reg.tables, f"{job.name}: {ref}"
        assert (SQL_DIR / job.sql).is_file(), job.sql


def test_real_dwd_and_dws_tables_have_model_files():
    reg = registry()
    modelled = [t for t in reg.tables.values() if t.layer in ("dwd", "dws")]
    assert len(modelled) == 6
    for table in modelled:
        assert table.model, f"{table.name} has no model"
        assert (SQL_DIR / table.model).is_file(), table.model
    for table in reg.tables.values():
        assert (SQL_DIR / table.ddl).is_file(), table.ddl


def test_real_config_values():
    reg = registry()
    orders = reg.table("ods.ods_orders")
    assert orders == TableSpec(
        name="ods.ods_orders",
        layer="ods",
        ddl="ddl/ods/ods_orders.sql",
        primary_key=("order_id",),
        partition="dt",
        source="orders",
        freshness_column="updated_at",
        freshness_sla_s=120,
        model=None,
        source_change_column="updated_at",
        source_day_column="created_at",
        totals=(),
        statuses=("CREATED", "ACCEPTED", "PICKED_UP", "DELIVERED", "CANCELLED"),
    )
    assert (orders.database, orders.table) == ("ods", "ods_orders")
    assert reg.table("dws.dws_shop_hourly").freshness_sla_s == 300
    assert reg.table("ods.ods_shops").freshness_sla_s is None
    assert sorted(t.source for t in reg.mirrored_tables()) == [
        "order_status_events",
        "order_subsidies",
        "orders",
        "riders",
        "shops",
        "users",
    ]
    dwd = reg.job("dwd_order_fact")
    assert (dwd.checkpoint_interval, dwd.checkpoint_max_age_s, dwd.state_ttl) == ("5s", 120, "36h")
    assert reg.job("ods_user_events").vars == {
        "events": {"rows_per_second": 200, "max_user_id": 2000, "max_shop_id": 300}
    }


def test_unknown_table_and_job_list_the_valid_names():
    reg = registry()
    with pytest.raises(RegistryError) as exc:
        reg.table("nope")
    assert str(exc.value) == "unknown table 'nope'; registered tables: " + ", ".join(sorted(reg.tables))
    assert "ods.ods_orders" in str(exc.value) and "dws.dws_shop_traffic_hourly" in str(exc.value)
    with pytest.raises(
        RegistryError, match=r"unknown streaming job 'nope'; registered jobs: dwd_order_fact, dws_city_daily"
    ):
        reg.job("nope")


# ---------------------------------------------------------------------------- parse_duration
@pytest.mark.parametrize(
    "text, seconds",
    [("10s", 10), ("2min", 120), ("36h", 129600), ("500ms", 0.5), ("0s", 0), (" 5 s ", 5), ("90 min", 5400)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, "here") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10 parsecs", "10m", "1.5h", "h", "", "10", "-5s", "2 hours", 10])
def test_parse_duration_rejects(text):
    with pytest.raises(RegistryError) as exc:
        parse_duration(text, "jobs.yaml: x")
    assert str(exc.value) == f"jobs.yaml: x: {text!r} is not a duration like '10s', '2min' or '36h'"


# ---------------------------------------------------------------------------- broken config dirs
BASE_TABLES = {
    "ods.ods_orders": {
        "layer": "ods",
        "ddl": "ddl/ods/ods_orders.sql",
        "primary_key": ["order_id"],
        "partition": "dt",
        "source": {"table": "orders", "change_column": "updated_at", "day_column": "created_at"},
        "freshness_column": "updated_at",
        "freshness_sla": "2min",
    },
    "dwd.dwd_order_fact": {
        "layer": "dwd",
        "ddl": "ddl/dwd/dwd_order_fact.sql",
        "model": "models/dwd_order_fact.sql",
        "primary_key": ["order_id"],
        "partition": "dt",
    },
}
BASE_JOBS = {
    "dwd_order_fact": {
        "sql": "dwd/dwd_order_fact.sql",
        "description": "fact",
        "parallelism": 2,
        "checkpoint_interval": "5s",
        "checkpoint_max_age": "3min",
        "state_ttl": "36h",
        "upstream": ["mysql:orders", "ods.ods_orders"],
        "downstream": ["dwd.dwd_order_fact"],
    },
}


def write_config(directory, tables=None, jobs=None):
    (directory / "tables.yaml").write_text(yaml.safe_dump({"tables": BASE_TABLES if tables is None else tables}))
    (directory / "streaming_jobs.yaml").write_text(yaml.safe_dump({"jobs": BASE_JOBS if jobs is None else jobs}))
    return directory


def tables_with(name="ods.ods_orders", **changes):
    tables = copy.deepcopy(BASE_TABLES)
    tables.setdefault(name, copy.deepcopy(BASE_TABLES["ods.ods_orders"])).update(changes)
    return tables


def jobs_with(**changes):
    jobs = copy.deepcopy(BASE_JOBS)
    jobs["dwd_order_fact"].update(changes)
    return jobs


def load_error(tmp_path, tables=None, jobs=None) -> str:
    with pytest.raises(RegistryError) as exc:
        load_registry(write_config(tmp_path, tables, jobs))
    return str(exc.value)


def test_base_temp_config_is_valid(tmp_path):
    reg = load_registry(write_config(tmp_path))
    assert isinstance(reg, Registry)
    assert set(reg.tables) == {"ods.ods_orders", "dwd.dwd_order_fact"}
    assert reg.job("dwd_order_fact") == StreamingJobSpec(
        name="dwd_order_fact",
        sql="dwd/dwd_order_fact.sql",
        description="fact",
        parallelism=2,
        checkpoint_interval="5s",
        upstream=("mysql:orders", "ods.ods_orders"),
        downstream=("dwd.dwd_order_fact",),
        checkpoint_max_age_s=180,
        state_ttl="36h",
    )


def test_job_defaults(tmp_path):
    jobs = {"minimal": {"sql": "dwd/dwd_order_fact.sql"}}
    job = load_registry(write_config(tmp_path, jobs=jobs)).job("minimal")
    assert (job.parallelism, job.checkpoint_interval, job.checkpoint_max_age_s, job.state_ttl) == (1, "10s", 120, None)
    assert (job.upstream, job.downstream, job.vars, job.description) == ((), (), {}, "")


@pytest.mark.parametrize("name", ["ods_orders", "ODS.orders", "ods.orders.v2", "ods.1orders", "ods.ods-orders"])
def test_bad_table_name(tmp_path, name):
    message = load_error(tmp_path, tables={name: BASE_TABLES["ods.ods_orders"]}, jobs={})
    assert message == f"tables.yaml: {name}: table names are <database>.<table> in lower snake case"


@pytest.mark.parametrize("layer", ["ads", "ODS", None])
def test_bad_layer(tmp_path, layer):
    message = load_error(tmp_path, tables=tables_with(layer=layer))
    assert message == "tables.yaml: ods.ods_orders: layer must be ods, dwd or dws"


def test_missing_ddl_file(tmp_path):
    message = load_error(tmp_path, tables=tables_with("ods.ods_refunds", ddl="ddl/ods/ods_refunds.sql"))
    assert message == "tables.yaml: ods.ods_refunds: SQL file sql/ddl/ods/ods_refunds.sql does not exist"


def test_missing_model_file(tmp_path):
    tables = copy.deepcopy(BASE_TABLES)
    tables["dwd.dwd_order_fact"]["model"] = "models/dwd_order_facts.sql"
    message = load_error(tmp_path, tables=tables)
    assert message == "tables.yaml: dwd.dwd_order_fact: SQL file sql/models/dwd_order_facts.sql does not exist"


def test_missing_job_sql_file(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(sql="dwd/nope.sql"))
    assert message == "streaming_jobs.yaml: dwd_order_fact: SQL file sql/dwd/nope.sql does not exist"


def test_job_with_unknown_downstream_table(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(downstream=["dwd.dwd_order_fact", "dwd.dwd_orders"]))
    assert message == "streaming_jobs.yaml: dwd_order_fact: downstream table 'dwd.dwd_orders' is not in tables.yaml"


def test_job_with_unknown_upstream(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(upstream=["ods.ods_users"]))
    assert message == (
        "streaming_jobs.yaml: dwd_order_fact: upstream 'ods.ods_users' is neither mysql:<table> nor a registered table"
    )


def test_bad_job_name(tmp_path):
    message = load_error(tmp_path, jobs={"Dwd-Order-Fact": BASE_JOBS["dwd_order_fact"]})
    assert message == "streaming_jobs.yaml: Dwd-Order-Fact: job names are lower snake case"


def test_bad_duration_in_tables(tmp_path):
    message = load_error(tmp_path, tables=tables_with(freshness_sla="10 parsecs"))
    assert message == ("tables.yaml: ods.ods_orders: '10 parsecs' is not a duration like '10s', '2min' or '36h'")


@pytest.mark.parametrize("field", ["checkpoint_interval", "checkpoint_max_age", "state_ttl"])
def test_bad_duration_in_jobs(tmp_path, field):
    message = load_error(tmp_path, jobs=jobs_with(**{field: "10 parsecs"}))
    assert message == (
        "streaming_jobs.yaml: dwd_order_fact: '10 parsecs' is not a duration like '10s', '2min' or '36h'"
    )


def test_unreadable_or_malformed_files(tmp_path):
    write_config(tmp_path)
    (tmp_path / "tables.yaml").write_text("tables: [unclosed\n")
    with pytest.raises(RegistryError, match=r"cannot read .*tables\.yaml"):
        load_registry(tmp_path)
    (tmp_path / "tables.yaml").write_text("- just\n- a list\n")
    with pytest.raises(RegistryError, match=r"tables\.yaml must be a mapping"):
        load_registry(tmp_path)
    (tmp_path / "tables.yaml").unlink()
    with pytest.raises(RegistryError, match=r"cannot read .*tables\.yaml"):
        load_registry(tmp_path)


def test_entry_that_is_not_a_mapping_is_a_registry_error(tmp_path):
    from lakehouse.core.registry import RegistryError, load_registry

    (tmp_path / "tables.yaml").write_text("tables:\n  ods.x:\n")
    (tmp_path / "streaming_jobs.yaml").write_text("jobs: {}\n")
    with pytest.raises(RegistryError, match=r"tables.yaml: ods.x: expected a mapping"):
        load_registry(tmp_path)


def test_partitioned_inputs_are_what_a_day_recomputation_reads():
    reg = registry()
    assert [t.name for t in reg.partitioned_inputs("dwd.dwd_order_fact")] == [
        "ods.ods_order_subsidies",
        "ods.ods_orders",
    ]
    assert [t.name for t in reg.partitioned_inputs("dws.dws_city_daily")] == ["dwd.dwd_order_fact"]
    assert reg.partitioned_inputs("ods.ods_shops") == []  # unpartitioned: nothing is recomputed per day


# ---------------------------------------------------------------------------- restart-without-state cascade
ORDER_DWS = ["dws_shop_hourly", "dws_shop_daily", "dws_city_hourly", "dws_city_daily"]


def cascade_of(job):
    return [(c.name, tables) for c, tables in registry().reset_cascade(job)]


def test_changelog_producers_as_the_ddl_declares_them():
    reg = registry()
    assert reg.table("ods.ods_orders").changelog_producer == "input"
    assert reg.table("dwd.dwd_order_fact").changelog_producer == "input"
    assert reg.table("dws.dws_city_daily").changelog_producer == "lookup"
    assert not reg.table("dwd.dwd_order_fact").changelog_is_idempotent
    assert reg.table("dws.dws_city_daily").changelog_is_idempotent


def test_reset_of_dwd_cascades_to_the_order_dws_jobs():
    assert cascade_of("dwd_order_fact") == [(name, ("dwd.dwd_order_fact",)) for name in ORDER_DWS]


def test_reset_of_the_cdc_job_cascades_through_dwd_streamed_tables_only():
    # DWD streams orders and subsidies; shops and users are looked up, not replayed into its state.
    assert cascade_of("ods_delivery_cdc") == [("dwd_order_fact", ("ods.ods_orders", "ods.ods_order_subsidies"))] + [
        (name, ("dwd.dwd_order_fact",)) for name in ORDER_DWS
    ]


@pytest.mark.parametrize("job", ["ods_user_events", "dws_city_daily", "dws_shop_traffic_hourly"])
def test_no_cascade_from_a_generator_or_into_lookup_changelog_tables(job):
    assert cascade_of(job) == []


def test_lookup_tables_must_be_upstream(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(lookup=["ods.ods_shops"]))
    assert "dwd_order_fact: lookup tables ['ods.ods_shops'] are not in its upstream" in message


def test_reset_replays_must_be_a_boolean(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(reset_replays="no"))
    assert "dwd_order_fact: reset_replays must be true or false, got 'no'" in message


# ---------------------------------------------------------------------------- typed entries: unknown keys, types
def real_config_with(tmp_path, filename, old, new):
    """A copy of the real config dir with the first `old` in `filename` replaced by `new`."""
    directory = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, directory)
    text = (directory / filename).read_text()
    assert old in text, f"{old!r} is not in {filename}"
    (directory / filename).write_text(text.replace(old, new, 1))
    return directory


def test_registry_error_is_a_config_error():
    assert issubclass(RegistryError, ConfigError)


def test_typo_in_tables_yaml_names_the_file_the_key_and_the_allowed_keys(tmp_path):
    config = real_config_with(tmp_path, "tables.yaml", "    freshness_sla: 2min\n", "    freshnes_sla: 2min\n")
    with pytest.raises(RegistryError) as exc:
        load_registry(config)
    assert str(exc.value) == (
        "tables.yaml: ods.ods_orders: freshnes_sla: unknown key; allowed: ddl, freshness_column, freshness_sla, "
        "layer, model, partition, primary_key, source, statuses, totals"
    )


def test_typo_in_streaming_jobs_yaml_names_the_file_the_key_and_the_allowed_keys(tmp_path):
    config = real_config_with(tmp_path, "streaming_jobs.yaml", "    parallelism: 1\n", "    paralellism: 4\n")
    with pytest.raises(RegistryError) as exc:
        load_registry(config)
    assert str(exc.value) == (
        "streaming_jobs.yaml: ods_delivery_cdc: paralellism: unknown key; allowed: checkpoint_interval, "
        "checkpoint_max_age, description, downstream, lookup, on_restore_failure, parallelism, reset_replays, "
        "sql, state_ttl, upstream, vars"
    )


def test_typo_in_a_source_block_lists_the_source_keys(tmp_path):
    config = real_config_with(
        tmp_path, "tables.yaml", "      change_column: updated_at\n", "      changed: updated_at\n"
    )
    message = str(pytest.raises(RegistryError, load_registry, config).value)
    assert (
        "tables.yaml: ods.ods_orders: source.changed: unknown key; allowed: change_column, day_column, table" in message
    )
    assert "tables.yaml: ods.ods_orders: source.change_column: Field required" in message


def test_typo_at_the_top_of_a_file(tmp_path):
    config = real_config_with(tmp_path, "streaming_jobs.yaml", "\njobs:\n", "\njob:\n")
    assert str(pytest.raises(RegistryError, load_registry, config).value) == (
        "streaming_jobs.yaml: job: unknown key; allowed: jobs"
    )


@pytest.mark.parametrize("value", [0, -1, "4", 1.5, True])
def test_parallelism_is_a_whole_number_of_at_least_one(tmp_path, value):
    message = load_error(tmp_path, jobs=jobs_with(parallelism=value))
    assert (
        message
        == f"streaming_jobs.yaml: dwd_order_fact: parallelism must be a whole number of at least 1, got {value!r}"
    )


def test_on_restore_failure_is_fail_or_reset(tmp_path):
    message = load_error(tmp_path, jobs=jobs_with(on_restore_failure="restart"))
    assert message == "streaming_jobs.yaml: dwd_order_fact: on_restore_failure must be fail or reset, got 'restart'"


def test_on_restore_failure_reset_is_refused_for_a_job_with_a_reset_cascade(tmp_path):
    """Restarted without state on a failed restore, an ODS writer would replay into DWD's state unconfirmed."""
    jobs = copy.deepcopy(BASE_JOBS)
    jobs["ods_orders_cdc"] = {
        "sql": "ods/ods_delivery_cdc.sql",
        "on_restore_failure": "reset",
        "upstream": ["mysql:orders"],
        "downstream": ["ods.ods_orders"],
    }
    message = load_error(tmp_path, jobs=jobs)
    assert message == (
        "streaming_jobs.yaml: ods_orders_cdc: on_restore_failure: reset would restart it without state on any "
        "failed restore, and its replayed output would be counted twice by its reset cascade (dwd_order_fact), "
        "which restarts without state only through streaming_operations restart_without_state; "
        "set on_restore_failure: fail"
    )
    jobs["ods_orders_cdc"]["on_restore_failure"] = "fail"
    assert load_registry(write_config(tmp_path, jobs=jobs)).job("ods_orders_cdc").on_restore_failure == "fail"


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"primary_key": ["Order_ID"]},
            "tables.yaml: ods.ods_orders: primary_key.0: 'Order_ID' is not a lower snake case name",
        ),
        ({"totals": ["amount", "amount"]}, "tables.yaml: ods.ods_orders: totals: ['amount'] listed twice"),
        (
            {"statuses": ["CREATED", "it's done"]},
            'tables.yaml: ods.ods_orders: statuses.1: "it\'s done" is not a status in upper snake case',
        ),
        ({"freshness_sla": 120}, "tables.yaml: ods.ods_orders: 120 is not a duration like '10s', '2min' or '36h'"),
        ({"ddl": None}, "tables.yaml: ods.ods_orders: ddl: Input should be a valid string"),
    ],
)
def test_table_entry_types(tmp_path, change, expected):
    assert load_error(tmp_path, tables=tables_with(**change)) == expected


def test_source_block_dates_partitioned_rows(tmp_path):
    no_day = {"table": "orders", "change_column": "updated_at"}
    message = load_error(tmp_path, tables=tables_with(source=no_day))
    assert message == (
        "tables.yaml: ods.ods_orders: source.day_column is required: name the column of orders whose "
        "day is the row's dt partition"
    )
    tables = tables_with(source={**no_day, "day_column": "created_at"})
    del tables["ods.ods_orders"]["partition"]
    message = load_error(tmp_path, tables=tables)
    assert message == (
        "tables.yaml: ods.ods_orders: source.day_column is only for partitioned tables: remove it or add partition"
    )


# ---------------------------------------------------------------------------- table facts
def test_real_table_facts():
    reg = registry()
    assert {t.name: t.totals for t in reg.tables.values() if t.totals} == {
        "dwd.dwd_order_fact": ("amount", "platform_subsidy", "shop_subsidy"),
        "dws.dws_shop_hourly": ("gmv", "order_count", "subsidy_total"),
        "dws.dws_shop_daily": ("gmv", "order_count", "subsidy_total"),
        "dws.dws_city_hourly": ("gmv", "order_count", "subsidy_total"),
        "dws.dws_city_daily": ("gmv", "order_count", "subsidy_total"),
        "dws.dws_shop_traffic_hourly": ("pv",),
    }
    assert {t.name: (t.source, t.source_day_column) for t in reg.mirrored_tables() if t.source_day_column} == {
        "ods.ods_orders": ("orders", "created_at"),
        "ods.ods_order_status_events": ("order_status_events", "event_time"),
        "ods.ods_order_subsidies": ("order_subsidies", "created_at"),
    }
    assert {t.source: t.source_change_column for t in reg.mirrored_tables()} == {
        "orders": "updated_at",
        "order_status_events": "event_time",
        "order_subsidies": "updated_at",
        "users": "updated_at",
        "shops": "updated_at",
        "riders": "updated_at",
    }
    assert [t.name for t in reg.tables.values() if t.statuses] == ["ods.ods_orders"]
    assert [j.name for j in reg.writers("ods.ods_orders")] == ["ods_delivery_cdc"]


def test_statuses_written_out_elsewhere_agree_with_the_registry():
    """The DWD model and the expectation suites spell the statuses out; they must be the registry's."""
    statuses = list(registry().table("ods.ods_orders").statuses)
    model = (SQL_DIR / "models" / "dwd_order_fact.sql").read_text()
    in_list = re.search(r"o\.status IN \(([^)]*)\)", model).group(1)
    assert [s.strip().strip("'") for s in in_list.split(",")] == statuses
    for suite in ("ods.ods_orders", "dwd.dwd_order_fact"):
        expectations = json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text())["expectations"]
        value_sets = [
            e["kwargs"]["value_set"]
            for e in expectations
            if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "status"
        ]
        assert value_sets == [statuses], suite


# ---------------------------------------------------------------------------- lineage: declared vs the SQL
def test_real_lineage_matches_the_sql():
    check_lineage(registry())  # raises on any difference
    assert sql_lineage("ods/ods_delivery_cdc.sql").reads == {
        "mysql:orders",
        "mysql:order_status_events",
        "mysql:order_subsidies",
        "mysql:users",
        "mysql:shops",
        "mysql:riders",
    }
    dwd = sql_lineage("dwd/dwd_order_fact.sql")  # through {% include %}
    assert dwd.lookups == {"ods.ods_shops", "ods.ods_users"} and dwd.writes == {"dwd.dwd_order_fact"}
    assert sql_lineage("dws/dws_city_daily.sql").reads == {"dwd.dwd_order_fact"}  # through {% from ... import %}


def with_job(**changes) -> Registry:
    reg = registry()
    job = dataclasses.replace(reg.job("dwd_order_fact"), **changes)
    return Registry(tables=reg.tables, jobs={**reg.jobs, job.name: job})


def test_lineage_mismatch_of_upstream_names_the_job_the_file_and_the_difference():
    reg = with_job(upstream=("ods.ods_orders", "ods.ods_shops", "ods.ods_users", "ods.ods_riders"))
    with pytest.raises(RegistryError) as exc:
        check_lineage(reg)
    assert str(exc.value) == (
        "streaming_jobs.yaml: dwd_order_fact: upstream does not match its SQL: sql/dwd/dwd_order_fact.sql reads "
        "['ods.ods_order_subsidies'], not in its upstream; its upstream lists ['ods.ods_riders'], which "
        "sql/dwd/dwd_order_fact.sql does not read\nfix the job's entry in streaming_jobs.yaml or its SQL"
    )


def test_lineage_mismatch_of_lookup_and_downstream():
    reg = with_job(lookup=("ods.ods_shops",), downstream=("dwd.dwd_order_fact", "dws.dws_city_daily"))
    message = str(pytest.raises(RegistryError, check_lineage, reg).value)
    assert (
        "dwd_order_fact: lookup does not match its SQL: sql/dwd/dwd_order_fact.sql looks up ['ods.ods_users'], "
        "not in its lookup"
    ) in message
    assert (
        "dwd_order_fact: downstream does not match its SQL: its downstream lists ['dws.dws_city_daily'], which "
        "sql/dwd/dwd_order_fact.sql does not write"
    ) in message


def test_lineage_follows_includes_and_imports_and_skips_comments(tmp_path, monkeypatch):
    import lakehouse.core.registry as registry_module

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "_macros.sql").write_text(
        "{% macro source() %}lakehouse.ods.ods_a{% endmacro %}\n"
        "{% macro cdc(table) %}'connector' = 'mysql-cdc', 'table-name' = '{{ table }}', 'port' = '{{ mysql.port + 1 }}'"
        "{% endmacro %}\n"
    )
    (tmp_path / "models" / "m.sql").write_text(
        "{% import 'models/_macros.sql' as m %}SELECT * FROM {{ m.source() }}\n"
        "JOIN lakehouse.ods.ods_b FOR SYSTEM_TIME AS OF proc AS b ON true"
    )
    (tmp_path / "job.sql").write_text(
        "{% from 'models/_macros.sql' import cdc %}\n"
        "-- reads lakehouse.ods.ods_commented_out\n"
        "CREATE TEMPORARY TABLE src (id BIGINT) WITH ({{ cdc('orders') }});\n"
        "INSERT INTO lakehouse.dwd.dwd_x\n{% include 'models/m.sql' %};\n"
        "INSERT INTO `lakehouse`.`ods`.`ods_c` SELECT * FROM src;\n"
    )
    monkeypatch.setattr(registry_module, "SQL_DIR", tmp_path)
    lineage = sql_lineage("job.sql")
    assert lineage.reads == {"ods.ods_a", "ods.ods_b", "mysql:orders"}
    assert lineage.lookups == {"ods.ods_b"}
    assert lineage.writes == {"dwd.dwd_x", "ods.ods_c"}


def test_code_reads_the_table_facts_from_the_registry_with_the_values_it_had():
    from lakehouse.batch.recompute import total_columns
    from lakehouse.batch.t1 import day_sources
    from lakehouse.dev.truth import DWS_GRAINS, dws_truth_sql, key_columns, valid_orders
    from lakehouse.quality.audit import day_inputs
    from lakehouse.quality.parameters import ods_day_sources

    assert [(t.name, t.source, t.source_change_column) for t in day_sources()] == [
        ("ods.ods_orders", "orders", "updated_at"),
        ("ods.ods_order_subsidies", "order_subsidies", "updated_at"),
    ]
    assert [w.name for t in day_sources() for w in registry().writers(t.name)] == ["ods_delivery_cdc"] * 2
    assert ods_day_sources() == {
        "ods.ods_orders": ("orders", "created_at"),
        "ods.ods_order_status_events": ("order_status_events", "event_time"),
        "ods.ods_order_subsidies": ("order_subsidies", "created_at"),
    }
    assert day_inputs() == [
        "ods.ods_orders",
        "ods.ods_order_status_events",
        "ods.ods_order_subsidies",
        "ods.ods_user_events",
    ]
    assert total_columns("dws.dws_city_daily") == ("gmv", "order_count", "subsidy_total")
    assert total_columns("ops.not_registered") == ()
    assert (
        valid_orders() == "o.amount > 0 AND o.status IN ('CREATED', 'ACCEPTED', 'PICKED_UP', 'DELIVERED', 'CANCELLED')"
    )
    assert {t: key_columns(t) for t in DWS_GRAINS} == {
        "dws.dws_shop_hourly": ("order_hour", "shop_id"),
        "dws.dws_shop_daily": ("shop_id",),
        "dws.dws_city_hourly": ("order_hour", "city"),
        "dws.dws_city_daily": ("city",),
    }
    assert "'%Y-%m-%d') AS dt, HOUR(o.created_at), o.shop_id," in dws_truth_sql("dws.dws_shop_hourly")


def test_runtime_code_does_not_import_the_dev_package():
    for module in ("batch/t1.py", "batch/recompute.py", "quality/parameters.py", "quality/audit.py"):
        text = (SQL_DIR.parent / "plugins" / "lakehouse" / module).read_text()
        assert "lakehouse.dev" not in text, module
