"""StarRocks serving without a StarRocks: the hook on a stand-in for pymysql.connect, and the
serving SQL (catalog, database, materialized views, refreshes) rendered from the registry.

StarRocks cannot run on the development machines (no Docker; not in Debian or PyPI), so what it
does with these statements is not tested here; see docs/SERVING.md."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pymysql
import pytest

from lakehouse.core.errors import BadRequest, ExternalServiceError
from lakehouse.core.registry import registry
from lakehouse.hooks._base import MissingConnectionError
from lakehouse.hooks.mysql import MySqlHook, MySqlUnavailableError
from lakehouse.hooks.starrocks import StarRocksHook, StarRocksUnavailableError
from lakehouse.serving import config as serving_config_mod
from lakehouse.serving import refresh as serving_refresh
from lakehouse.serving import render as serving_render
from lakehouse.serving.config import MaterializedView, ServingConfig, ServingError
from tests.support.pymysql import FakeConn

ENV = "AIRFLOW_CONN_STARROCKS_DEFAULT"
CONN = json.dumps(
    {"conn_type": "starrocks", "host": "sr-fe.internal", "port": 9030, "login": "lakehouse", "password": "Pw-Secret-7"}
)
MINIO = {
    "warehouse": "s3://lakehouse/warehouse",
    "s3.endpoint": "http://minio:9000",
    "s3.region": "us-east-1",
    "s3.path.style.access": "true",
    "s3.access-key": "lakehouse",
    "s3.secret-key": "S3-Secret-42",
}


def _starrocks_rows(views: list[str]):
    def rows_for(sql: str, parameters) -> list[tuple]:
        if "information_schema.materialized_views" in sql:
            return [(name,) for name in views]
        return [("a",), ("b",)] if sql.startswith("SELECT") else []

    return rows_for


def _refused() -> Exception:
    return pymysql.err.ProgrammingError(1064, "Getting analyzing error. Detail message: boom.")


@pytest.fixture
def connect(monkeypatch):
    """pymysql.connect replaced: records its keyword arguments, returns one FakeConn."""
    monkeypatch.setenv(ENV, CONN)
    calls: list[dict] = []
    conn = FakeConn(rows_for=_starrocks_rows(list(serving_config_mod.serving_config().views)), error=_refused)

    def fake_connect(**kwargs):
        calls.append(kwargs)
        return conn

    monkeypatch.setattr(pymysql, "connect", fake_connect)
    return SimpleNamespace(calls=calls, conn=conn)


def fake_paimon(options=None, conn_id="paimon_default"):
    return SimpleNamespace(catalog_options=dict(MINIO if options is None else options), paimon_conn_id=conn_id)


# ------------------------------------------------------------------------------------------- hook
def test_starrocks_hook_is_the_mysql_hook_with_starrocks_defaults():
    assert issubclass(StarRocksHook, MySqlHook)
    assert issubclass(StarRocksUnavailableError, MySqlUnavailableError)
    hook = StarRocksHook()
    assert hook.starrocks_conn_id == "starrocks_default" and hook.conn_name_attr == "starrocks_conn_id"


def test_missing_connection_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(MissingConnectionError) as exc:
        StarRocksHook().get_records("SELECT 1")
    msg = str(exc.value)
    assert "Airflow connection 'starrocks_default' is not defined" in msg
    assert f"{ENV}='" in msg and '"port": 9030' in msg


def test_connection_params_default_to_the_fe_query_port(monkeypatch):
    monkeypatch.setenv(ENV, "starrocks://lakehouse:s3cr%40t@sr-fe")
    params = StarRocksHook().connection_params()
    assert (params["host"], params["port"], params["user"], params["password"]) == (
        "sr-fe",
        9030,
        "lakehouse",
        "s3cr@t",
    )
    assert params["database"] is None


def test_connects_lazily_in_autocommit_and_never_sends_commit(connect):
    hook = StarRocksHook()
    assert connect.calls == [], "the hook must not connect before it is used"
    assert hook.get_records("SELECT x FROM t WHERE d = %s", ("2026-11-24",)) == [("a",), ("b",)]
    assert len(connect.calls) == 1
    kwargs = connect.calls[0]
    assert (kwargs["host"], kwargs["port"], kwargs["user"], kwargs["password"]) == (
        "sr-fe.internal",
        9030,
        "lakehouse",
        "Pw-Secret-7",
    )
    assert kwargs["autocommit"] is True, "StarRocks DDL and refreshes are not transactional"
    assert connect.conn.events == [
        ("execute", "SELECT x FROM t WHERE d = %s", ("2026-11-24",)),
        "cursor.close",
        "close",
    ]
    assert hook.get_first("SELECT 1") == ("a",)


def test_run_script_stops_at_the_first_failure_without_rollback(connect):
    connect.conn.fail_on = "fail"
    with pytest.raises(pymysql.err.ProgrammingError):
        StarRocksHook().run_script(["CREATE DATABASE a", "fail here", "CREATE DATABASE b"])
    assert connect.conn.executed() == ["CREATE DATABASE a", "fail here"]
    assert "rollback" not in connect.conn.events and "commit" not in connect.conn.events
    assert connect.conn.events[-1] == "close"


def test_unreachable_starrocks_is_a_clear_error_without_the_password(monkeypatch):
    monkeypatch.setenv(ENV, CONN)

    def refuse(**kwargs):
        raise pymysql.err.OperationalError(
            2003, "Can't connect to MySQL server on 'sr-fe.internal' ([Errno 111] refused)"
        )

    monkeypatch.setattr(pymysql, "connect", refuse)
    with pytest.raises(StarRocksUnavailableError) as exc:
        StarRocksHook().get_records("SELECT 1")
    msg = str(exc.value)
    assert "cannot connect to StarRocks at sr-fe.internal:9030 as 'lakehouse' (connection 'starrocks_default')" in msg
    assert "docs/SERVING.md" in msg and "Pw-Secret-7" not in msg


def test_mysql_hook_keeps_its_own_defaults(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TEST", "mysql://app:app@db")
    assert MySqlHook("mysql_test").connection_params()["port"] == 3306
    assert MySqlHook.transactional and not StarRocksHook.transactional


def test_serving_configured_follows_the_connection(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert serving_config_mod.serving_configured() is False
    monkeypatch.setenv(ENV, CONN)
    assert serving_config_mod.serving_configured() is True


# ------------------------------------------------------------------------------ the configuration
def test_serving_config_names_registered_dws_tables_only():
    config = serving_config_mod.serving_config()
    reg = registry()
    assert config.views, "config/serving.yaml serves nothing"
    for view in config.views.values():
        for table in view.tables:
            spec = reg.table(table)
            assert spec.layer == "dws" and spec.partition == "dt", table
    served = {t for v in config.views.values() for t in v.tables}
    assert {"dws.dws_city_daily", "dws.dws_shop_daily", "dws.dws_shop_hourly"} <= served


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tables": ["dwd.dwd_order_fact"]}, "views are built on DWS tables partitioned by dt"),
        ({"tables": ["dws.nope"]}, "unknown table 'dws.nope'; registered tables:"),
        ({"tables": []}, "serving.yaml: materialized_views.mv_x.tables: must list the registered DWS tables"),
        ({"tables": "dws.dws_city_daily"}, "mv_x.tables: must list the registered DWS tables"),
        ({"sql": "models/dws_city_daily.sql"}, "mv_x.sql: must be a file under sql/starrocks/"),
        ({"sql": "starrocks/mv/missing.sql"}, "mv_x.sql: SQL file not found"),
        ({"sql": "starrocks/../models/dws_city_daily.sql"}, "mv_x.sql: must be a file under sql/starrocks/"),
        (
            {"descripton": "x"},
            "serving.yaml: materialized_views.mv_x.descripton: unknown key; allowed: description, sql, tables",
        ),
    ],
)
def test_load_serving_refuses_bad_views(tmp_path, change, message):
    spec = {"sql": "starrocks/mv/mv_city_daily.sql", "tables": ["dws.dws_city_daily"], **change}
    path = tmp_path / "serving.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"catalog": "c", "database": "d", "materialized_views": {"mv_x": spec}}))
    with pytest.raises(ServingError, match=re.escape(message)):
        serving_config_mod.load_serving(path)


@pytest.mark.parametrize(
    "top, message",
    [
        ({"catalog": "Bad-Name"}, "catalog: must be a lower snake case identifier (got 'Bad-Name')"),
        ({"database": "x; DROP"}, "database: must be a lower snake case identifier"),
        ({"replication_num": 0}, "replication_num: must be an integer >= 1 (got 0)"),
        ({"replication_num": "1"}, "replication_num: must be an integer >= 1 (got '1')"),
        ({"materialized_views": {}}, "materialized_views: must map view names to their settings"),
        (
            {
                "materialized_views": {
                    "MV-X": {"sql": "starrocks/mv/mv_city_daily.sql", "tables": ["dws.dws_city_daily"]}
                }
            },
            "materialized_views.MV-X.[key]: must be a lower snake case identifier",
        ),
    ],
)
def test_load_serving_refuses_bad_names(tmp_path, top, message):
    import yaml

    data = {
        "catalog": "c",
        "database": "d",
        "replication_num": 1,
        "materialized_views": {"mv_x": {"sql": "starrocks/mv/mv_city_daily.sql", "tables": ["dws.dws_city_daily"]}},
    }
    path = tmp_path / "serving.yaml"
    path.write_text(yaml.safe_dump({**data, **top}))
    with pytest.raises(ServingError, match=re.escape(message)):
        serving_config_mod.load_serving(path)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "replication_num: 1",
            "replicaton_num: 1",
            "serving.yaml: replicaton_num: unknown key; "
            "allowed: catalog, database, materialized_views, replication_num",
        ),
        (
            "    tables: [dws.dws_shop_daily]",
            "    table: [dws.dws_shop_daily]",
            "serving.yaml: materialized_views.mv_shop_daily.table: unknown key; allowed: description, sql, tables",
        ),
    ],
)
def test_a_typo_in_the_real_file_fails_naming_file_key_and_allowed_keys(tmp_path, old, new, message):
    from lakehouse.core.errors import ConfigError
    from lakehouse.core.paths import CONFIG_DIR

    text = (CONFIG_DIR / "serving.yaml").read_text()
    assert text.count(old) == 1
    path = tmp_path / "serving.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(ServingError) as exc:
        serving_config_mod.load_serving(path)
    assert message in str(exc.value).splitlines()
    assert isinstance(exc.value, ConfigError)


# --------------------------------------------------------------------------- materialized views
QUALIFIED = re.compile(r"`([a-z][a-z0-9_]*)`\.`([a-z][a-z0-9_]*)`\.`([a-z][a-z0-9_]*)`")


@pytest.mark.parametrize("name", sorted(serving_config_mod.serving_config().views))
def test_every_view_reads_only_its_registered_dws_tables(name):
    config = serving_config_mod.serving_config()
    view = config.views[name]
    statement = serving_render.view_statement(view)
    reads = serving_render.check_reads(
        statement, {t: "`{}`.`{}`.`{}`".format(config.catalog, *t.split(".")) for t in view.tables}, where=name
    )
    referenced = {f"{db}.{table}" for catalog, db, table in QUALIFIED.findall(statement) if catalog == config.catalog}
    assert referenced == set(view.tables), f"{name} reads {referenced}, config/serving.yaml says {view.tables}"
    assert all(QUALIFIED.fullmatch(r) for r in reads), f"{name} reads an unqualified name: {reads}"
    for table in referenced:
        spec = registry().table(table)
        assert spec.layer == "dws", f"{name} reads {table}, a {spec.layer} table"


@pytest.mark.parametrize("name", sorted(serving_config_mod.serving_config().views))
def test_views_are_manual_partitioned_by_day_in_the_serving_database(name):
    config = serving_config_mod.serving_config()
    statement = serving_render.view_statement(config.views[name])
    assert statement.startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{config.database}`.`{name}`")
    assert re.search(r"\bREFRESH DEFERRED MANUAL\b", statement), "views refresh after each T+1 publish only"
    assert "PARTITION BY str2date(dt, '%Y-%m-%d')" in statement
    assert f'"replication_num" = "{config.replication_num}"' in statement
    assert re.search(r"(?m)^\s*(o\.)?dt( AS dt)?,$", statement), "the partition column dt must be selected"
    assert "{{" not in statement and "{%" not in statement


def test_source_refuses_a_table_the_view_does_not_declare():
    config = serving_config_mod.serving_config()
    view = MaterializedView(
        name="mv_shop_hourly", sql="starrocks/mv/mv_shop_hourly.sql", tables=("dws.dws_shop_hourly",)
    )
    with pytest.raises(ServingError, match=r"source\('dws.dws_shop_traffic_hourly'\) is not among the tables"):
        serving_render.view_statement(view, config=config)


def test_a_declared_table_the_view_never_reads_is_refused():
    config = serving_config_mod.serving_config()
    view = MaterializedView(
        name="mv_city_daily", sql="starrocks/mv/mv_city_daily.sql", tables=("dws.dws_city_daily", "dws.dws_shop_daily")
    )
    with pytest.raises(ServingError, match="never reads dws.dws_shop_daily"):
        serving_render.view_statement(view, config=config)


def test_check_reads_refuses_tables_named_without_source():
    sources = {"dws.dws_city_daily": "`c`.`dws`.`dws_city_daily`"}
    ok = 'SELECT 1 AS x FROM `c`.`dws`.`dws_city_daily` COMMENT "from ods.ods_orders"'
    assert serving_render.check_reads(ok, sources, where="t") == ["`c`.`dws`.`dws_city_daily`"]
    for bad in (
        "SELECT * FROM `c`.`dws`.`dws_city_daily` JOIN ods.ods_orders ON 1 = 1",
        "SELECT * FROM dws.dws_city_daily",
        "SELECT * FROM (SELECT 1) AS s",
    ):
        with pytest.raises(ServingError):
            serving_render.check_reads(bad, sources, where="t")


# ---------------------------------------------------------------------------- catalog and setup
def test_setup_statements_catalog_then_database_then_views():
    config = serving_config_mod.serving_config()
    statements = serving_render.setup_statements(paimon=fake_paimon())
    assert len(statements) == 2 + len(config.views)
    catalog, database, *views = statements
    assert catalog.startswith(f"CREATE EXTERNAL CATALOG IF NOT EXISTS `{config.catalog}`")
    properties = dict(re.findall(r'"([a-z0-9._]+)"\s*=\s*"([^"]*)"', catalog))
    assert properties == {
        "type": "paimon",
        "paimon.catalog.type": "filesystem",
        "paimon.catalog.warehouse": "s3://lakehouse/warehouse",
        "aws.s3.endpoint": "http://minio:9000",
        "aws.s3.enable_ssl": "false",
        "aws.s3.enable_path_style_access": "true",
        "aws.s3.access_key": "lakehouse",
        "aws.s3.secret_key": "S3-Secret-42",
    }
    assert database == f"CREATE DATABASE IF NOT EXISTS `{config.database}`"
    assert [v.split("`")[3] for v in views] == list(config.views)
    redacted = serving_render.redact(catalog)
    assert "S3-Secret-42" not in redacted and '"aws.s3.secret_key" = "***"' in redacted
    assert all(serving_render.redact(v) == v for v in views)


def test_local_warehouse_gets_no_s3_properties():
    catalog = serving_render.setup_statements(paimon=fake_paimon({"warehouse": "/data/warehouse"}))[0]
    assert '"paimon.catalog.warehouse" = "file:///data/warehouse"' in catalog
    assert "aws.s3" not in catalog


def test_https_endpoint_enables_ssl():
    catalog = serving_render.setup_statements(paimon=fake_paimon({**MINIO, "s3.endpoint": "https://s3.example.com"}))[0]
    assert '"aws.s3.enable_ssl" = "true"' in catalog


@pytest.mark.parametrize(
    "options, message",
    [
        ({**MINIO, "s3.secret-key": 'x" , "type" = "hive'}, "s3.secret-key is empty or contains a quote"),
        ({**MINIO, "s3.secret-key": ""}, "has S3 options but not s3.secret-key"),
        ({**MINIO, "s3.endpoint": "minio:9000"}, "is not an http(s) URL"),
        ({**MINIO, "s3.path.style.access": "yes"}, "must be true or false"),
        ({"warehouse": ""}, "has no 'warehouse' extra"),
        ({"warehouse": "s3://bucket/a b"}, "contains whitespace"),
    ],
)
def test_catalog_options_are_checked_before_rendering(options, message):
    with pytest.raises(ServingError, match=re.escape(message)) as exc:
        serving_render.setup_statements(paimon=fake_paimon(options))
    assert "S3-Secret-42" not in str(exc.value)


def test_setup_serving_runs_each_statement_and_reports_failures_without_secrets(connect):
    done = serving_refresh.setup_serving(starrocks=StarRocksHook(), paimon=fake_paimon())
    config = serving_config_mod.serving_config()
    assert done == [
        f"catalog {config.catalog}",
        f"database {config.database}",
        *(f"materialized view {config.database}.{name}" for name in config.views),
    ]
    executed = connect.conn.executed()
    assert executed[0].startswith("CREATE EXTERNAL CATALOG") and executed[1].startswith("CREATE DATABASE")
    assert len(executed) == len(done)

    connect.conn.events.clear()
    connect.conn.fail_on = "CREATE EXTERNAL CATALOG"
    with pytest.raises(ExternalServiceError) as exc:
        serving_refresh.setup_serving(starrocks=StarRocksHook(), paimon=fake_paimon())
    assert "refused to create catalog" in str(exc.value) and "boom" in str(exc.value)
    assert "S3-Secret-42" not in str(exc.value)
    assert len(connect.conn.executed()) == 1, "nothing runs after a failed statement"


# ------------------------------------------------------------------------------------- refreshes
def test_refresh_statements_refresh_the_published_day_of_the_views_on_those_tables():
    config = serving_config_mod.serving_config()
    planned = serving_render.refresh_statements(
        "2026-11-24", ["dws.dws_shop_traffic_hourly", "dwd.dwd_order_fact", "dws.dws_city_daily"]
    )
    views = [view for view, _ in planned]
    assert views == [f"{config.database}.mv_city_daily", f"{config.database}.mv_shop_hourly"]
    for view, statement in planned:
        db, name = view.split(".")
        assert statement == (
            f"REFRESH MATERIALIZED VIEW `{db}`.`{name}`\n"
            'PARTITION START ("2026-11-24") END ("2026-11-25")\nFORCE\nWITH SYNC MODE'
        )


@pytest.mark.parametrize(
    "dt, start, end",
    [
        ("2026-11-30", "2026-11-30", "2026-12-01"),
        ("2026-12-31", "2026-12-31", "2027-01-01"),
        ("2028-02-28", "2028-02-28", "2028-02-29"),
        (" 2026-11-24 ", "2026-11-24", "2026-11-25"),
    ],
)
def test_refresh_range_is_one_calendar_day(dt, start, end):
    ((_, statement),) = serving_render.refresh_statements(dt, ["dws.dws_city_daily"])
    assert f'PARTITION START ("{start}") END ("{end}")' in statement


def test_tables_without_a_view_refresh_nothing():
    assert serving_render.refresh_statements("2026-11-24", ["dwd.dwd_order_fact", "ods.ods_orders"]) == []


@pytest.mark.parametrize(
    "dt", ["2026-13-01", "2026-02-30", "20261124", "yesterday", "2026-11-24'); DROP DATABASE x; --", ""]
)
def test_bad_dt_is_refused_before_starrocks_is_touched(connect, dt):
    with pytest.raises(BadRequest, match=r"^dt .* is not a (date in the form YYYY-MM-DD|calendar day)$"):
        serving_refresh.refresh_after_publish(dt, ["dws.dws_city_daily"], starrocks=StarRocksHook())
    assert connect.calls == []


def test_unknown_table_is_refused_with_the_registered_names():
    with pytest.raises(BadRequest, match=r"unknown table 'dws.dws_nope'; registered tables: .*dws.dws_city_daily"):
        serving_render.refresh_statements("2026-11-24", ["dws.dws_nope"])


def test_refresh_after_publish_runs_the_refreshes_and_returns_them(connect):
    config = serving_config_mod.serving_config()
    refreshed = serving_refresh.refresh_after_publish(
        "2026-11-24", [registry().table("dws.dws_shop_daily"), "dws.dws_shop_hourly"], starrocks=StarRocksHook()
    )
    assert refreshed == [f"{config.database}.mv_shop_daily", f"{config.database}.mv_shop_hourly"]
    executed = connect.conn.executed()
    assert "information_schema.materialized_views" in executed[0]
    assert connect.conn.events[0] == ("execute", executed[0], (config.database,)), "the database name is bound"
    assert [s.split("\n", 1)[0] for s in executed[1:]] == [
        f"REFRESH MATERIALIZED VIEW `{config.database}`.`mv_shop_daily`",
        f"REFRESH MATERIALIZED VIEW `{config.database}`.`mv_shop_hourly`",
    ]


def test_refresh_after_publish_without_views_to_refresh_does_not_connect(connect):
    assert serving_refresh.refresh_after_publish("2026-11-24", ["dwd.dwd_order_fact"], starrocks=StarRocksHook()) == []
    assert connect.calls == []


def test_refresh_after_publish_names_missing_views_and_refreshes_nothing(connect):
    connect.conn.rows_for = _starrocks_rows(["mv_shop_daily"])
    with pytest.raises(
        ServingError, match=r"mv_city_daily do not exist in StarRocks: create them with .*setup_serving"
    ):
        serving_refresh.refresh_after_publish(
            "2026-11-24", ["dws.dws_city_daily", "dws.dws_shop_daily"], starrocks=StarRocksHook()
        )
    assert not [s for s in connect.conn.executed() if s.startswith("REFRESH")]


def test_failed_refresh_fails_the_call(connect):
    connect.conn.fail_on = "REFRESH"
    with pytest.raises(ExternalServiceError, match=r"refused to refresh .*mv_city_daily for 2026-11-24: .*boom"):
        serving_refresh.refresh_after_publish("2026-11-24", ["dws.dws_city_daily"], starrocks=StarRocksHook())


def test_a_missing_connection_fails_a_caller_that_did_not_check_serving_configured(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(MissingConnectionError):
        serving_refresh.refresh_after_publish("2026-11-24", ["dws.dws_city_daily"], starrocks=StarRocksHook())


def test_views_reading_keeps_config_order():
    config = ServingConfig(
        catalog="c",
        database="d",
        replication_num=1,
        views={
            "b": MaterializedView("b", "starrocks/mv/mv_city_daily.sql", ("dws.dws_city_daily",)),
            "a": MaterializedView("a", "starrocks/mv/mv_shop_daily.sql", ("dws.dws_shop_daily",)),
        },
    )
    assert [v.name for v in config.views_reading(["dws.dws_shop_daily", "dws.dws_city_daily"])] == ["b", "a"]
