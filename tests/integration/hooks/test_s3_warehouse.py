"""The Paimon warehouse on S3-compatible object storage, with the real Flink cluster.

An S3 server (moto, in this process, on 127.0.0.1: the TaskManager runs on this machine too)
holds the warehouse; a `paimon` connection points at it with endpoint, keys and path-style
requests, as a MinIO deployment does. Nothing else changes: the catalog statement is the one
every job renders (lakehouse.core.flink_sql.catalog_statements), sent through the SQL Gateway.

- Flink creates the catalog, a database and a primary-key table on S3, and writes it in batch
  mode (an insert, then an upsert); pypaimon (PaimonHook) reads Flink's rows, snapshots and files;
- a tag made by pypaimon on S3 is read back by Flink.

Needs the paimon-s3 jar on the cluster's class path (flink/pom.xml; docs/OBJECT_STORAGE.md).
"""

from __future__ import annotations

import os

import pytest

from lakehouse.core.flink_sql import catalog_statements
from lakehouse.hooks.flink import FlinkHook
from lakehouse.hooks.paimon import PaimonHook
from tests.integration.helpers import PREFIX
from tests.support.s3_server import moto_s3

pytestmark = pytest.mark.integration

CONN_ID = "it_s3_paimon"
TABLE = "it_s3.orders"
BATCH = {
    "execution.runtime-mode": "batch",
    "table.dml-sync": "true",
    "parallelism.default": "1",
    "pipeline.name": f"{PREFIX}s3_warehouse",
}


@pytest.fixture(scope="module")
def s3_env(stack):
    """moto's S3 server with a fresh bucket, the `it_s3_paimon` connection on it, and the hooks."""
    os.environ.setdefault(
        "AIRFLOW_CONN_FLINK_DEFAULT",
        f"flink://127.0.0.1:{os.environ.get('FLINK_REST_PORT', 8081)}/"
        f"?sql_gateway_port={os.environ.get('SQL_GATEWAY_PORT', 8083)}",
    )
    var = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    with moto_s3() as s3:
        os.environ[var] = s3.connection_json("warehouse")
        try:
            yield s3, FlinkHook(), PaimonHook(CONN_ID)
        finally:
            os.environ.pop(var, None)


def rows(data) -> list[tuple]:
    return sorted(map(tuple, zip(*(data.column(c).to_pylist() for c in data.column_names), strict=True)))


@pytest.fixture(scope="module")
def flink_written(s3_env):
    """it_s3.orders created and written by Flink on S3: snapshot 1 inserts three orders, snapshot 2
    upserts order 2."""
    s3, flink, paimon = s3_env
    catalog = catalog_statements(paimon)
    assert "'s3.endpoint'" in catalog[0] and "'s3.secret-key'" in catalog[0]
    flink.execute_sql(
        catalog
        + [
            "CREATE DATABASE IF NOT EXISTS lakehouse.it_s3",
            "CREATE TABLE IF NOT EXISTS lakehouse.it_s3.orders (order_id BIGINT, dt STRING, status STRING, "
            "PRIMARY KEY (dt, order_id) NOT ENFORCED) PARTITIONED BY (dt) WITH ('bucket' = '2')",
        ]
    )
    flink.execute_sql(
        catalog
        + [
            "INSERT INTO lakehouse.it_s3.orders VALUES (1, '2026-11-24', 'new'), (2, '2026-11-25', 'new'), "
            "(3, '2026-11-25', 'new')"
        ],
        session_config=BATCH,
    )
    flink.execute_sql(
        catalog + ["INSERT INTO lakehouse.it_s3.orders VALUES (2, '2026-11-25', 'paid')"], session_config=BATCH
    )
    return s3_env


def test_flink_writes_the_s3_warehouse_and_pypaimon_reads_it(flink_written):
    s3, _, paimon = flink_written
    assert rows(paimon.read_arrow(TABLE)) == [
        (1, "2026-11-24", "new"),
        (2, "2026-11-25", "paid"),
        (3, "2026-11-25", "new"),
    ]
    assert rows(paimon.read_arrow(TABLE, snapshot_id=1, partition={"dt": "2026-11-25"})) == [
        (2, "2026-11-25", "new"),
        (3, "2026-11-25", "new"),
    ]
    snapshots = paimon.list_snapshots(TABLE)
    assert [s.snapshot_id for s in snapshots] == [1, 2]
    assert [s.commit_kind for s in snapshots] == ["APPEND", "APPEND"]
    # The files are objects in the bucket, under the connection's warehouse path.
    keys = s3.keys("warehouse/it_s3.db/orders/")
    assert "warehouse/it_s3.db/orders/snapshot/snapshot-2" in keys
    data_keys = [k for k in keys if k.endswith(".parquet") or k.endswith(".orc")]
    assert {f.name for f in paimon.data_files(TABLE)} <= {k.rsplit("/", 1)[-1] for k in data_keys}
    assert any("/dt=2026-11-24/" in k for k in data_keys) and any("/dt=2026-11-25/" in k for k in data_keys)


def test_a_pypaimon_tag_on_s3_is_read_by_flink(flink_written):
    _, flink, paimon = flink_written
    paimon.create_tag(TABLE, "it-s3-first", snapshot_id=1)
    assert "it-s3-first" in paimon.list_tags(TABLE)
    [*_, tagged] = flink.execute_sql(
        catalog_statements(paimon)
        + [
            "SELECT order_id, status FROM lakehouse.it_s3.orders /*+ OPTIONS('scan.tag-name' = 'it-s3-first') */ "
            "WHERE dt = '2026-11-25'"
        ],
        session_config=BATCH,
    )
    assert sorted(map(tuple, tagged.rows)) == [(2, "new"), (3, "new")]
    [*_, latest] = flink.execute_sql(
        catalog_statements(paimon) + ["SELECT order_id, status FROM lakehouse.it_s3.orders WHERE dt = '2026-11-25'"],
        session_config=BATCH,
    )
    assert sorted(map(tuple, latest.rows)) == [(2, "paid"), (3, "new")]
