"""PaimonHook against real pypaimon warehouses in tmp_path (no mocks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakehouse.core.errors import BadRequest, ConfigError
from lakehouse.hooks._base import MissingConnectionError
from lakehouse.hooks.paimon import PaimonError, PaimonHook, PaimonTableNotFound, pin_holder_name

CONN_ID = "paimon_test"
TABLE = "ods.orders"
SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("dt", pa.string(), nullable=False),
        pa.field("status", pa.string()),
    ]
)


def set_conn(monkeypatch, **extra) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "paimon", "extra": extra}))


def _write(table, rows: list[dict]) -> None:
    wb = table.new_batch_write_builder()
    write, commit = wb.new_write(), wb.new_commit()
    try:
        write.write_arrow(pa.Table.from_pylist(rows, schema=SCHEMA))
        commit.commit(write.prepare_commit())
    finally:
        write.close()
        commit.close()


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    """An empty warehouse with an `ods` database, wired to the `paimon_test` connection."""
    from pypaimon import CatalogFactory

    wh = tmp_path / "warehouse"
    wh.mkdir()
    catalog = CatalogFactory.create({"warehouse": str(wh)})
    catalog.create_database("ods", False)
    set_conn(monkeypatch, warehouse=str(wh))
    return catalog, wh


@pytest.fixture
def orders(warehouse):
    """ods.orders, a primary-key table partitioned by dt, with two snapshots:
    1: {1: new @2024-01-01, 2: new @2024-01-02}; 2: upserts order 1 -> paid and adds order 3."""
    from pypaimon import Schema

    catalog, wh = warehouse
    catalog.create_table(
        TABLE,
        Schema.from_pyarrow_schema(
            SCHEMA, partition_keys=["dt"], primary_keys=["dt", "order_id"], options={"bucket": "1"}
        ),
        False,
    )
    table = catalog.get_table(TABLE)
    before = datetime.now(UTC)
    _write(
        table,
        [{"order_id": 1, "dt": "2024-01-01", "status": "new"}, {"order_id": 2, "dt": "2024-01-02", "status": "new"}],
    )
    _write(
        table,
        [{"order_id": 1, "dt": "2024-01-01", "status": "paid"}, {"order_id": 3, "dt": "2024-01-02", "status": "new"}],
    )
    return wh, before, datetime.now(UTC)


def rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


# ---------------------------------------------------------------------------------- connection
def test_missing_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PAIMON_NOPE", raising=False)
    with pytest.raises(MissingConnectionError, match=r"AIRFLOW_CONN_PAIMON_NOPE='paimon://\?warehouse="):
        PaimonHook("paimon_nope").catalog_options


def test_connection_without_warehouse(monkeypatch):
    set_conn(monkeypatch, **{"s3.endpoint": "http://127.0.0.1:9000"})
    with pytest.raises(ConfigError, match=rf"connection '{CONN_ID}' has no 'warehouse' extra"):
        PaimonHook(CONN_ID).catalog_options


@pytest.mark.parametrize(
    "warehouse, uri",
    [
        ("/data/warehouse", "file:///data/warehouse"),
        ("file:///data/warehouse", "file:///data/warehouse"),
        ("s3://lake/warehouse", "s3://lake/warehouse"),
    ],
)
def test_warehouse_uri(monkeypatch, warehouse, uri):
    set_conn(monkeypatch, warehouse=warehouse, **{"s3.endpoint": "http://127.0.0.1:9000"})
    hook = PaimonHook(CONN_ID)
    assert hook.warehouse_uri == uri
    assert hook.catalog_options == {"warehouse": warehouse, "s3.endpoint": "http://127.0.0.1:9000"}


# ---------------------------------------------------------------------------------- tables
def test_missing_table_in_empty_warehouse(warehouse):
    _, wh = warehouse
    hook = PaimonHook(CONN_ID)
    with pytest.raises(PaimonTableNotFound) as exc:
        hook.get_table("ods.nothing")
    assert str(exc.value) == f"Paimon table ods.nothing does not exist in {wh}"
    assert (exc.value.identifier, exc.value.warehouse) == ("ods.nothing", str(wh))
    assert type(exc.value.__cause__).__name__ == "TableNotExistException"  # pypaimon's, recognised by its type
    with pytest.raises(PaimonTableNotFound, match=r"Paimon table nodb\.orders does not exist"):
        hook.get_table("nodb.orders")
    assert hook.table_exists("ods.nothing") is False


def test_read_merged_view(orders):
    hook = PaimonHook(CONN_ID)
    assert hook.table_exists(TABLE) is True
    assert rows(hook.read_arrow(TABLE)) == [
        (1, "2024-01-01", "paid"),
        (2, "2024-01-02", "new"),
        (3, "2024-01-02", "new"),
    ]


def test_read_partition_and_columns(orders):
    hook = PaimonHook(CONN_ID)
    assert rows(hook.read_arrow(TABLE, partition={"dt": "2024-01-02"})) == [
        (2, "2024-01-02", "new"),
        (3, "2024-01-02", "new"),
    ]
    assert rows(hook.read_arrow(TABLE, partition={"dt": "2024-01-01"})) == [(1, "2024-01-01", "paid")]
    assert hook.read_arrow(TABLE, partition={"dt": "2099-01-01"}).num_rows == 0
    projected = hook.read_arrow(TABLE, partition={"dt": "2024-01-02"}, columns=["order_id"])
    assert projected.column_names == ["order_id"]
    assert sorted(projected.column("order_id").to_pylist()) == [2, 3]


def test_read_with_two_partition_keys(warehouse):
    from pypaimon import Schema

    catalog, _ = warehouse
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("dt", pa.string(), nullable=False),
            pa.field("city", pa.string(), nullable=False),
        ]
    )
    catalog.create_table("ods.by_city", Schema.from_pyarrow_schema(schema, partition_keys=["dt", "city"]), False)
    table = catalog.get_table("ods.by_city")
    wb = table.new_batch_write_builder()
    write, commit = wb.new_write(), wb.new_commit()
    write.write_arrow(
        pa.Table.from_pylist(
            [
                {"id": 1, "dt": "2024-01-01", "city": "Berlin"},
                {"id": 2, "dt": "2024-01-01", "city": "Paris"},
                {"id": 3, "dt": "2024-01-02", "city": "Berlin"},
            ],
            schema=schema,
        )
    )
    commit.commit(write.prepare_commit())
    write.close()
    commit.close()
    hook = PaimonHook(CONN_ID)
    assert rows(hook.read_arrow("ods.by_city", partition={"dt": "2024-01-01", "city": "Berlin"})) == [
        (1, "2024-01-01", "Berlin")
    ]
    got = hook.read_arrow("ods.by_city", partition={"dt": "2024-01-01", "city": "Paris"}, columns=["id"])
    assert got.to_pylist() == [{"id": 2}]


def test_snapshots(orders):
    _, before, after = orders
    hook = PaimonHook(CONN_ID)
    latest = hook.latest_snapshot(TABLE)
    assert latest.snapshot_id == 2
    assert latest.commit_kind == "APPEND"
    assert latest.total_record_count == 4  # records in data files, before merging
    assert before - timedelta(seconds=1) <= latest.commit_time <= after + timedelta(seconds=1)
    assert latest.commit_time.tzinfo == UTC
    snaps = hook.list_snapshots(TABLE)
    assert [s.snapshot_id for s in snaps] == [1, 2]
    assert snaps[-1] == latest
    assert snaps[0].commit_time <= snaps[1].commit_time


def test_list_snapshots_skips_expired(orders):
    wh, _, _ = orders
    (wh / "ods.db" / "orders" / "snapshot" / "snapshot-1").unlink()  # what snapshot expiry does
    assert [s.snapshot_id for s in PaimonHook(CONN_ID).list_snapshots(TABLE)] == [2]


def test_empty_table_has_no_snapshots(warehouse):
    from pypaimon import Schema

    catalog, _ = warehouse
    catalog.create_table("ods.empty", Schema.from_pyarrow_schema(SCHEMA, primary_keys=["order_id", "dt"]), False)
    hook = PaimonHook(CONN_ID)
    assert hook.latest_snapshot("ods.empty") is None
    assert hook.list_snapshots("ods.empty") == []
    assert hook.list_tags("ods.empty") == []


def test_read_at_snapshot(orders):
    hook = PaimonHook(CONN_ID)
    assert rows(hook.read_arrow(TABLE, snapshot_id=1)) == [(1, "2024-01-01", "new"), (2, "2024-01-02", "new")]
    assert rows(hook.read_arrow(TABLE, snapshot_id=1, partition={"dt": "2024-01-02"})) == [(2, "2024-01-02", "new")]


def test_tags(orders):
    hook = PaimonHook(CONN_ID)
    assert hook.list_tags(TABLE) == []
    hook.create_tag(TABLE, "z_latest")
    hook.create_tag(TABLE, "a_first", snapshot_id=1)
    assert hook.list_tags(TABLE) == ["a_first", "z_latest"]
    assert rows(hook.read_arrow(TABLE, tag="a_first")) == [(1, "2024-01-01", "new"), (2, "2024-01-02", "new")]
    assert rows(hook.read_arrow(TABLE, tag="z_latest")) == [
        (1, "2024-01-01", "paid"),
        (2, "2024-01-02", "new"),
        (3, "2024-01-02", "new"),
    ]


def test_missing_snapshot_or_tag(orders):
    hook = PaimonHook(CONN_ID)
    with pytest.raises(PaimonError, match=r"^ods\.orders has no snapshot 3 \(expired or never written\)$"):
        hook.read_arrow(TABLE, snapshot_id=3)
    with pytest.raises(PaimonError, match=r"^ods\.orders has no tag 'release-1'$"):
        hook.read_arrow(TABLE, tag="release-1")
    with pytest.raises(BadRequest, match="snapshot_id or tag, not both"):
        hook.read_arrow(TABLE, snapshot_id=1, tag="x")


def test_commits_to_partition_names_the_snapshots_that_wrote_it(orders):
    hook = PaimonHook(CONN_ID)
    table = hook.get_table(TABLE)
    _write(table, [{"order_id": 4, "dt": "2024-01-03", "status": "new"}])  # snapshot 3: another day only
    assert hook.commits_to_partition(TABLE, {"dt": "2024-01-01"}, after_snapshot_id=None) == [1, 2]
    assert hook.commits_to_partition(TABLE, {"dt": "2024-01-01"}, after_snapshot_id=1) == [2]
    assert hook.commits_to_partition(TABLE, {"dt": "2024-01-03"}, after_snapshot_id=0) == [3]
    assert hook.commits_to_partition(TABLE, {"dt": "2024-01-02"}, after_snapshot_id=2) == []
    assert hook.commits_to_partition(TABLE, {"dt": "2024-01-01"}, after_snapshot_id=None, kinds=("OVERWRITE",)) == []
    assert hook.get_snapshot(TABLE, 3).snapshot_id == 3 and hook.get_snapshot(TABLE, 99) is None
    with pytest.raises(BadRequest, match=r"not partitioned by \['city'\]"):
        hook.commits_to_partition(TABLE, {"city": "x"}, after_snapshot_id=None)


def test_pins_are_consumers_that_lapse(orders):
    hook = PaimonHook(CONN_ID)
    consumer_id = hook.pin_snapshot(TABLE, 1, holder="t1-2024-01-01", ttl_s=60)
    assert hook.consumers(TABLE) == {consumer_id: 1}  # what Paimon's expiry honours
    ((pinned, until),) = hook.pins(TABLE).values()
    assert pinned == 1 and 50 < (until - datetime.now(UTC)).total_seconds() <= 60
    assert hook.expire_pins(TABLE) == []
    assert hook.expire_pins(TABLE, now=datetime.now(UTC) + timedelta(minutes=2)) == [consumer_id]
    assert hook.consumers(TABLE) == {}
    hook.pin_snapshot(TABLE, 2, holder="t1-2024-01-01")
    assert hook.unpin(TABLE, holder="t1-2024-01-01") == 1 and hook.pins(TABLE) == {}
    with pytest.raises(BadRequest, match="pin holder"):
        hook.pin_snapshot(TABLE, 2, holder="../escape")


def test_unpin_removes_exactly_its_holders_pins(orders):
    """Not every consumer id that starts like the holder's: only the holder's own pins go."""
    hook = PaimonHook(CONN_ID)
    mine = [
        hook.pin_snapshot(TABLE, 1, holder="t1-2024-01-01-run_a"),
        hook.pin_snapshot(TABLE, 2, holder="t1-2024-01-01-run_a", ttl_s=60),
    ]
    others = {
        hook.pin_snapshot(TABLE, 1, holder="t1-2024-01-01-run_a-until-1"),  # starts with mine's id prefix
        hook.pin_snapshot(TABLE, 1, holder="t1-2024-01-01-run_b"),
        hook.pin_snapshot(TABLE, 1, holder="t1-2024-01-01"),
    }
    assert set(mine) < set(hook.pins(TABLE))
    assert hook.unpin(TABLE, holder="t1-2024-01-01-run_a") == 2
    assert set(hook.pins(TABLE)) == others
    assert hook.unpin(TABLE, holder="t1-2024-01-01-run_a") == 0


RUN_IDS = [
    "t1_daily/scheduled__2026-11-24T00:00:00+00:00",
    "t1_backfill/manual__2026-11-24T10:11:12.123456+00:00/3",
    "t1_backfill/manual__2026-11-24T10:11:12.123456+00:00/13",
    "backfill__2026-11-24T00:00:00+00:00",
    "--odd--run--",
    "ünïcode run",
    "x" * 300,
]


def test_pin_holder_names_follow_the_consumer_id_rules_and_stay_distinct(orders):
    hook = PaimonHook(CONN_ID)
    names = [pin_holder_name(run_id) for run_id in RUN_IDS]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= 120
        consumer_id = hook.pin_snapshot(TABLE, 1, holder=name)  # accepted as a holder
        assert hook.unpin(TABLE, holder=name) == 1, consumer_id
    assert pin_holder_name("t1-2026-11-23") == "t1-2026-11-23"  # a valid name stays as it is
    assert pin_holder_name("a:b") != pin_holder_name("a+b") != pin_holder_name("a_b")
    assert pin_holder_name(RUN_IDS[0]).startswith("t1_daily_scheduled__2026-11-24T00_00_00_00_00")
    # Lapsed pins of such holders are still found and removed.
    hook.pin_snapshot(TABLE, 1, holder=names[1], ttl_s=1)
    assert hook.expire_pins(TABLE, now=datetime.now(UTC) + timedelta(minutes=1)) != []
    assert hook.pins(TABLE) == {}


def test_data_files_and_snapshot_delta(orders):
    hook = PaimonHook(CONN_ID)
    files = hook.data_files(TABLE)
    assert {tuple(f.partition.items()) for f in files} == {(("dt", "2024-01-01"),), (("dt", "2024-01-02"),)}
    assert all(f.size > 0 for f in files) and sum(f.rows for f in files) == 4
    assert len(hook.data_files(TABLE, snapshot_id=1)) == 2
    delta = hook.snapshot_delta(TABLE, 2)
    assert (delta.commit_kind, delta.added_files, delta.deleted_files) == ("APPEND", 2, 0)
    assert delta.added_bytes == sum(f.size for f in files) - sum(f.size for f in hook.data_files(TABLE, snapshot_id=1))
    assert hook.snapshot_ids(TABLE) == [1, 2]
