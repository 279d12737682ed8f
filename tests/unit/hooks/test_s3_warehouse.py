"""A Paimon warehouse on S3-compatible object storage, from the `paimon` connection alone.

pypaimon through PaimonHook against moto's S3 server (a real HTTP server on 127.0.0.1): create,
write, read, snapshots, tags. The Flink side is the catalog statement rendered for the same
connection: its options, and the secret masked in what FlinkHook logs. (Flink itself on the S3
warehouse: tests/integration/hooks/test_s3_warehouse.py.)
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pytest

from lakehouse.core.errors import ConfigError
from lakehouse.core.flink_sql import catalog_statements
from lakehouse.hooks.flink import FlinkSqlError
from lakehouse.hooks.paimon import PaimonHook
from tests.support.flink_rest import make_hook
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, moto_s3

CONN_ID = "paimon_s3_test"
SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("dt", pa.string(), nullable=False),
        pa.field("rows_written", pa.int64()),
    ]
)


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as server:
        yield server


@pytest.fixture
def s3_conn(s3, monkeypatch, request):
    """The `paimon_s3_test` connection on a warehouse of its own in the moto bucket."""
    path = f"wh-{request.node.name[:40]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.connection_json(path))
    return path


def set_conn(monkeypatch, **extra) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "paimon", "extra": extra}))


def rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


# ---------------------------------------------------------------------------------- pypaimon on S3
def test_create_write_read_snapshots_and_tags_on_s3(s3, s3_conn):
    hook = PaimonHook(CONN_ID)
    assert hook.warehouse_uri == f"s3://{s3.bucket}/{s3_conn}"
    table = "ops.s3_runs"
    hook.ensure_ops_table(table, SCHEMA, partition_keys=["dt"])
    assert hook.table_exists(table) and hook.latest_snapshot(table) is None

    first = hook.append_rows(
        table,
        pa.Table.from_pylist(
            [
                {"run_id": "a", "dt": "2026-11-24", "rows_written": 10},
                {"run_id": "b", "dt": "2026-11-25", "rows_written": 20},
            ],
            schema=SCHEMA,
        ),
    )
    hook.create_tag(table, "t1-2026-11-24")
    second = hook.append_rows(
        table, pa.Table.from_pylist([{"run_id": "c", "dt": "2026-11-25", "rows_written": 30}], schema=SCHEMA)
    )
    assert (first, second) == (1, 2)

    # Everything went to the bucket, under the warehouse path: nothing local.
    keys = s3.keys(f"{s3_conn}/ops.db/s3_runs/")
    assert f"{s3_conn}/ops.db/s3_runs/snapshot/snapshot-2" in keys
    assert f"{s3_conn}/ops.db/s3_runs/tag/tag-t1-2026-11-24" in keys
    assert any("/dt=2026-11-25/" in k and k.endswith(".parquet") for k in keys)

    # A second hook (another task) reads the same warehouse from the connection alone.
    reader = PaimonHook(CONN_ID)
    assert rows(reader.read_arrow(table)) == [("a", "2026-11-24", 10), ("b", "2026-11-25", 20), ("c", "2026-11-25", 30)]
    assert rows(reader.read_arrow(table, partition={"dt": "2026-11-25"}, columns=["run_id"])) == [("b",), ("c",)]
    assert rows(reader.read_arrow(table, snapshot_id=1)) == [("a", "2026-11-24", 10), ("b", "2026-11-25", 20)]
    assert rows(reader.read_arrow(table, tag="t1-2026-11-24")) == rows(reader.read_arrow(table, snapshot_id=1))
    assert [s.snapshot_id for s in reader.list_snapshots(table)] == [1, 2]
    assert reader.snapshot_ids(table) == [1, 2]
    assert reader.list_tags(table) == ["t1-2026-11-24"]
    assert {f.partition["dt"] for f in reader.data_files(table)} == {"2026-11-24", "2026-11-25"}


def test_primary_key_table_merges_on_s3(s3, s3_conn):
    """A table shaped like the Flink-written ones (primary key, fixed buckets), written by pypaimon."""
    from pypaimon import Schema

    hook = PaimonHook(CONN_ID)
    hook.catalog.create_database("ods", True)
    hook.catalog.create_table(
        "ods.s3_orders",
        Schema.from_pyarrow_schema(
            SCHEMA, partition_keys=["dt"], primary_keys=["dt", "run_id"], options={"bucket": "1"}
        ),
        False,
    )
    table = hook.get_table("ods.s3_orders")
    for batch in ([("a", 1), ("b", 1)], [("a", 2)]):
        write_builder = table.new_batch_write_builder()
        write, commit = write_builder.new_write(), write_builder.new_commit()
        write.write_arrow(
            pa.Table.from_pylist(
                [{"run_id": r, "dt": "2026-11-25", "rows_written": n} for r, n in batch], schema=SCHEMA
            )
        )
        commit.commit(write.prepare_commit())
        write.close()
        commit.close()
    assert rows(hook.read_arrow("ods.s3_orders")) == [("a", "2026-11-25", 2), ("b", "2026-11-25", 1)]
    assert hook.commits_to_partition("ods.s3_orders", {"dt": "2026-11-25"}, after_snapshot_id=None) == [1, 2]
    assert hook.table_exists("ods.nothing") is False


def test_a_missing_bucket_is_an_error_not_a_local_fallback(s3, monkeypatch):
    set_conn(monkeypatch, **{**s3.connection_extra(), "warehouse": "s3://no-such-bucket/wh"})
    with pytest.raises(OSError, match="no-such-bucket"):
        PaimonHook(CONN_ID).ensure_ops_table("ops.x", SCHEMA)


# ---------------------------------------------------------------------------------- options per engine
def test_options_for_flink_and_for_pypaimon_from_one_connection(s3, s3_conn):
    hook = PaimonHook(CONN_ID)
    expected_s3 = {
        "s3.access-key": ACCESS_KEY,
        "s3.endpoint": s3.endpoint,
        "s3.path.style.access": "true",
        "s3.secret-key": SECRET_KEY,
    }
    assert hook.flink_catalog_options == expected_s3
    assert list(hook.flink_catalog_options) == sorted(expected_s3)  # a stable statement, a stable job hash
    assert hook.pypaimon_options == {
        "warehouse": f"s3://{s3.bucket}/{s3_conn}",
        **expected_s3,
        # pypaimon's own names (pypaimon.common.options.config.S3Options), mirrored
        "fs.s3.endpoint": s3.endpoint,
        "fs.s3.accessKeyId": ACCESS_KEY,
        "fs.s3.accessKeySecret": SECRET_KEY,
    }
    assert hook.catalog_options == {"warehouse": f"s3://{s3.bucket}/{s3_conn}", **expected_s3}


def test_pypaimon_spelling_of_the_s3_options_reaches_flink_too(monkeypatch):
    set_conn(
        monkeypatch,
        warehouse="s3://lake/wh",
        **{
            "fs.s3.endpoint": "http://minio:9000",
            "fs.s3.accessKeyId": "minio",
            "fs.s3.accessKeySecret": "minio-secret",
            "s3.path.style.access": "true",
            "fs.s3.region": "us-east-1",
        },
    )
    assert PaimonHook(CONN_ID).flink_catalog_options == {
        "fs.s3.region": "us-east-1",
        "s3.access-key": "minio",
        "s3.endpoint": "http://minio:9000",
        "s3.path.style.access": "true",
        "s3.secret-key": "minio-secret",
    }


def test_a_local_warehouse_is_unchanged(monkeypatch, tmp_path):
    set_conn(monkeypatch, warehouse=str(tmp_path))
    hook = PaimonHook(CONN_ID)
    assert hook.flink_catalog_options == {}
    assert hook.pypaimon_options == hook.catalog_options == {"warehouse": str(tmp_path)}
    # byte for byte the statement of before: the SQL hash of running jobs does not change
    assert catalog_statements(hook) == [
        f"CREATE CATALOG lakehouse WITH (\n  'type' = 'paimon',\n  'warehouse' = 'file://{tmp_path}'\n)"
    ]


@pytest.mark.parametrize(
    "extra", [{"s3.access-key": "minio"}, {"s3.secret-key": "minio-secret"}, {"fs.s3.accessKeyId": "minio"}]
)
def test_half_of_the_credentials_is_refused(monkeypatch, extra):
    set_conn(monkeypatch, warehouse="s3://lake/wh", **{"s3.endpoint": "http://minio:9000", **extra})
    with pytest.raises(
        ConfigError, match=rf"connection '{CONN_ID}' sets only one of 's3.access-key' and 's3.secret-key'"
    ):
        PaimonHook(CONN_ID).catalog_options


# ---------------------------------------------------------------------------------- Flink's catalog statement
def test_catalog_statement_for_s3_carries_endpoint_keys_and_path_style(s3, s3_conn):
    [statement] = catalog_statements(PaimonHook(CONN_ID))
    assert statement == (
        "CREATE CATALOG lakehouse WITH (\n"
        "  'type' = 'paimon',\n"
        f"  'warehouse' = 's3://{s3.bucket}/{s3_conn}',\n"
        f"  's3.access-key' = '{ACCESS_KEY}',\n"
        f"  's3.endpoint' = '{s3.endpoint}',\n"
        "  's3.path.style.access' = 'true',\n"
        f"  's3.secret-key' = '{SECRET_KEY}'\n"
        ")"
    )


def test_quotes_in_an_option_are_escaped(monkeypatch):
    set_conn(monkeypatch, warehouse="s3://lake/wh", **{"s3.access-key": "minio", "s3.secret-key": "it's'; DROP"})
    [statement] = catalog_statements(PaimonHook(CONN_ID))
    assert "'s3.secret-key' = 'it''s''; DROP'" in statement
    from lakehouse.core.sql_files import split_statements

    assert split_statements(statement + ";") == [statement]  # still one statement


def test_secret_key_is_masked_in_what_flink_hook_logs(s3, s3_conn, fake_flink, hook_log, caplog):  # noqa: F811
    statements = catalog_statements(PaimonHook(CONN_ID)) + ["CREATE DATABASE IF NOT EXISTS lakehouse.ods"]
    make_hook(hook_log).execute_sql(statements)
    assert fake_flink.submitted_statements() == statements  # Flink gets the real key
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Flink SQL> CREATE CATALOG")]
    assert len(logged) == 1
    assert "'s3.secret-key' = '****'" in logged[0]
    assert "'s3.access-key' = '****'" in logged[0] and s3.endpoint in logged[0]
    assert SECRET_KEY not in caplog.text and ACCESS_KEY not in caplog.text


def test_secret_key_is_masked_in_flink_errors():
    """Flink's own error may list the catalog options ('key'='value', one a line)."""
    statement = f"CREATE CATALOG lakehouse WITH ('type' = 'paimon', 's3.secret-key' = '{SECRET_KEY}')"
    flink_error = (
        "org.apache.flink.table.api.ValidationException: Unable to create catalog 'lakehouse'.\n\n"
        f"Catalog options are:\n's3.secret-key'='{SECRET_KEY}'\n's3.session-token'='tok-123456'\n'type'='paimon'"
    )
    text = str(FlinkSqlError(statement, flink_error))
    assert SECRET_KEY not in text and "tok-123456" not in text
    assert "'s3.secret-key'='****'" in text and "'type'='paimon'" in text


def test_airflow_masks_the_secret_key_of_the_connection(s3, s3_conn):
    """In task logs Airflow redacts the value of an extra whose name says 'secret', wherever it appears."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    PaimonHook(CONN_ID).catalog_options  # reading the connection registers its secrets
    redacted = _secrets_masker().redact(f"anything quoting {SECRET_KEY} at all")
    assert SECRET_KEY not in redacted


def test_hook_logs_no_secret_when_reading(s3, s3_conn, caplog):
    caplog.set_level(logging.DEBUG)
    hook = PaimonHook(CONN_ID)
    hook.ensure_ops_table("ops.quiet", SCHEMA)
    hook.read_arrow("ops.quiet")
    assert SECRET_KEY not in caplog.text
