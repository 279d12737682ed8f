"""Paimon hook: read tables, partitions and snapshots, list snapshots and tags, create tags.

Backed by pypaimon's catalog. The connection (default `paimon_default`) carries the warehouse
in its extras (`warehouse`: a local path, `file://` or `s3://` URI) plus any other catalog
option. One connection serves both engines: for an S3-compatible store (MinIO) the extras
`s3.endpoint`, `s3.access-key`, `s3.secret-key` and `s3.path.style.access` are read under these
names by Flink's Paimon catalog (paimon-s3, Hadoop S3A) and by pypaimon 2.1 (pyarrow's S3
file system) alike; `flink_catalog_options` and `pypaimon_options` are what each engine gets
(docs/OBJECT_STORAGE.md).

Flink owns every table a Flink job writes, and pypaimon commits do not coordinate with Flink's
committer. So the hook writes only tags and the control plane's own `ops.*` tables (deployment
history, run reports), which no Flink job touches: `append_rows` refuses any other database.

Errors (lakehouse.core.errors): a connection without a usable warehouse is a `ConfigError`; a
wrong call (a pin holder that is not a name, a write outside `ops`, a partition key the table does
not have) a `BadRequest`; a missing table is `PaimonTableNotFound`, a missing snapshot or tag a
`PaimonError` (both `ExternalServiceError`s). pypaimon's own catalog exceptions are recognised by
their types (pypaimon.catalog.catalog_exception), never by their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from lakehouse.core.errors import BadRequest, ConfigError, ExternalServiceError
from lakehouse.core.resources import PAIMON_CONN_ID
from lakehouse.hooks._base import get_connection

if TYPE_CHECKING:
    import pyarrow as pa


OPS_DATABASE = "ops"

# pypaimon 2.1's own spellings of the S3 options (pypaimon.common.options.config.S3Options) ->
# the names Paimon's Java S3 file system (paimon-s3) reads. pypaimon reads both spellings, Flink
# only the second: a connection written either way works for both engines.
_PYPAIMON_S3_TO_PAIMON = {
    "fs.s3.endpoint": "s3.endpoint",
    "fs.s3.accessKeyId": "s3.access-key",
    "fs.s3.accessKeySecret": "s3.secret-key",
}
# Extras the hook itself turns into catalog options (Flink's catalog 'type' is always 'paimon').
_NOT_PASSED_TO_FLINK = frozenset({"warehouse", "type"})


class PaimonError(ExternalServiceError):
    """A table, snapshot or tag is missing, or the warehouse cannot be read."""


class PaimonTableNotFound(PaimonError):
    """The warehouse has no such table (or no such database): pypaimon's TableNotExistException or
    DatabaseNotExistException, with the table and the warehouse named."""

    def __init__(self, identifier: str, warehouse: str):
        super().__init__(f"Paimon table {identifier} does not exist in {warehouse}")
        self.identifier = identifier
        self.warehouse = warehouse


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    commit_time: datetime
    commit_kind: str
    total_record_count: int | None
    watermark: int | None
    delta_record_count: int | None = None  # records this commit added (before merging by key)
    changelog_record_count: int | None = None


PIN_PREFIX = "pin-"
_PIN_HOLDER = re.compile(r"^[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)*$")
_PIN_ID = re.compile(r"^pin-(.+)-until-(\d+)$")
PIN_HOLDER_MAX = 120


def pin_holder_name(text: str) -> str:
    """`text` (a run id, a lease holder) as a pin holder, which becomes part of a consumer id and so
    of a file name: letters, digits, '_' and '.', with single '-' between them.

    Any run of other characters becomes '_', repeated '-' one, leading and trailing '-' go. When
    anything had to change, or the name is longer than PIN_HOLDER_MAX, it is cut and a short hash
    of `text` appended, so different runs never share a holder (`a:b` and `a+b` do not)."""
    import hashlib

    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_.-]+", "_", text)).strip("-") or "_"
    if name == text and len(name) <= PIN_HOLDER_MAX:
        return name
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return f"{name[: PIN_HOLDER_MAX - len(digest) - 1].rstrip('-')}_{digest}"


@dataclass(frozen=True)
class DataFile:
    name: str
    partition: dict
    bucket: int
    size: int
    level: int
    rows: int


@dataclass
class DeltaStats:
    snapshot_id: int
    commit_kind: str
    added_files: int = 0
    added_bytes: int = 0
    deleted_files: int = 0
    deleted_bytes: int = 0


class PaimonHook(BaseHook):
    """Reads Paimon tables through pypaimon's catalog."""

    conn_name_attr = "paimon_conn_id"
    default_conn_name = PAIMON_CONN_ID
    conn_type = "paimon"
    hook_name = "Apache Paimon (pypaimon)"

    def __init__(self, paimon_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paimon_conn_id = paimon_conn_id

    @cached_property
    def catalog_options(self) -> dict[str, str]:
        conn = get_connection(self.paimon_conn_id, example="paimon://?warehouse=/data/warehouse")
        options = {k: str(v) for k, v in conn.extra_dejson.items()}
        if not options.get("warehouse"):
            raise ConfigError(f"connection '{self.paimon_conn_id}' has no 'warehouse' extra (a path or URI).")
        # Paimon's S3 file system in Flink is only used with both keys; with one of them Flink
        # would silently fall back to its own file systems while pypaimon used the key.
        has_key = any(k in options for k in ("s3.access-key", "fs.s3.accessKeyId"))
        has_secret = any(k in options for k in ("s3.secret-key", "fs.s3.accessKeySecret"))
        if has_key != has_secret:
            raise ConfigError(
                f"connection '{self.paimon_conn_id}' sets only one of 's3.access-key' and 's3.secret-key': "
                "give both, or neither to use the machine's AWS credentials"
            )
        return options

    @property
    def warehouse_uri(self) -> str:
        """The warehouse as a URI Flink's Paimon catalog understands (`file:///...` for a path)."""
        wh = self.catalog_options["warehouse"]
        return wh if "://" in wh else "file://" + wh

    @property
    def flink_catalog_options(self) -> dict[str, str]:
        """Options of Flink's `CREATE CATALOG ... WITH (...)` besides 'type' and 'warehouse',
        sorted by name: every other extra of the connection, pypaimon-only S3 names translated.

        Empty for a local warehouse, so its catalog statement stays `type` + `warehouse`. For an
        s3:// warehouse these carry the endpoint and keys to Paimon's S3 file system (the
        paimon-s3 jar on the cluster); FlinkHook masks the secret in what it logs.
        """
        options = {k: v for k, v in self.catalog_options.items() if k not in _NOT_PASSED_TO_FLINK}
        for pypaimon_key, paimon_key in _PYPAIMON_S3_TO_PAIMON.items():
            if pypaimon_key in options:
                value = options.pop(pypaimon_key)
                options.setdefault(paimon_key, value)
        return dict(sorted(options.items()))

    @property
    def pypaimon_options(self) -> dict[str, str]:
        """The options pypaimon's catalog is created with: the connection's extras, plus pypaimon's
        own `fs.s3.*` names for the S3 endpoint and keys (the pyarrow file IO reads either
        spelling; other pypaimon readers only the `fs.s3.*` one). Unchanged for a local warehouse."""
        options = dict(self.catalog_options)
        for pypaimon_key, paimon_key in _PYPAIMON_S3_TO_PAIMON.items():
            if paimon_key in options:
                options.setdefault(pypaimon_key, options[paimon_key])
        return options

    @cached_property
    def catalog(self):
        from pypaimon import CatalogFactory

        return CatalogFactory.create(self.pypaimon_options)

    def get_table(self, identifier: str):
        """A table by `database.table`; a missing one (or one in a missing database) raises
        PaimonTableNotFound naming it and the warehouse."""
        from pypaimon.catalog.catalog_exception import DatabaseNotExistException, TableNotExistException

        try:
            return self.catalog.get_table(identifier)
        except (TableNotExistException, DatabaseNotExistException) as exc:
            raise PaimonTableNotFound(identifier, self.catalog_options["warehouse"]) from exc

    def table_exists(self, identifier: str) -> bool:
        """Whether the table exists; a misconfigured connection or an unreadable warehouse raises."""
        try:
            self.get_table(identifier)
        except PaimonTableNotFound:
            return False
        return True

    # ------------------------------------------------------------------ reads
    def read_arrow(
        self,
        identifier: str,
        *,
        partition: Mapping[str, str] | None = None,
        snapshot_id: int | None = None,
        tag: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Read a table (merged view of primary-key tables), optionally one partition, at a snapshot or tag."""
        table = self.get_table(identifier)
        if snapshot_id is not None and tag is not None:
            raise BadRequest("pass snapshot_id or tag, not both")
        if snapshot_id is not None:
            if table.snapshot_manager().get_snapshot_by_id(snapshot_id) is None:
                raise PaimonError(f"{identifier} has no snapshot {snapshot_id} (expired or never written)")
            table = table.copy({"scan.snapshot-id": str(snapshot_id)})
        elif tag is not None:
            if tag not in table.list_tags():
                raise PaimonError(f"{identifier} has no tag {tag!r}")
            table = table.copy({"scan.tag-name": tag})
        builder = table.new_read_builder()
        if partition:  # before the projection: the predicate builder only knows the projected fields
            pb = builder.new_predicate_builder()
            preds = [pb.equal(k, v) for k, v in partition.items()]
            builder = builder.with_filter(preds[0] if len(preds) == 1 else pb.and_predicates(preds))
        if columns:
            builder = builder.with_projection(list(columns))
        splits = builder.new_scan().plan().splits()
        return builder.new_read().to_arrow(splits)

    # ------------------------------------------------------------------ snapshots and tags
    def latest_snapshot(self, identifier: str) -> SnapshotInfo | None:
        snap = self.get_table(identifier).snapshot_manager().get_latest_snapshot()
        return _snapshot_info(snap) if snap else None

    def get_snapshot(self, identifier: str, snapshot_id: int) -> SnapshotInfo | None:
        """One snapshot, or None when it never existed or has expired."""
        snap = self.get_table(identifier).snapshot_manager().get_snapshot_by_id(snapshot_id)
        return _snapshot_info(snap) if snap else None

    def list_snapshots(self, identifier: str) -> list[SnapshotInfo]:
        """The snapshots still on storage, oldest first (expired ones are gone from the listing)."""
        return [_snapshot_info(s) for s in self.get_table(identifier).snapshot_manager().list_snapshots()]

    def snapshot_ids(self, identifier: str) -> list[int]:
        """Ids of the snapshots on storage, from the directory listing alone (no snapshot file read)."""
        manager = self.get_table(identifier).snapshot_manager()
        if not manager.file_io.exists(manager.snapshot_dir):
            return []
        names = (
            info.path.rstrip("/").rsplit("/", 1)[-1] for info in manager.file_io.list_status(manager.snapshot_dir) or []
        )
        return sorted(int(n[len("snapshot-") :]) for n in names if n.startswith("snapshot-") and n[9:].isdigit())

    def commits_to_partition(
        self,
        identifier: str,
        partition: dict[str, str],
        *,
        after_snapshot_id: int | None,
        kinds: Sequence[str] = ("APPEND", "OVERWRITE"),
    ) -> list[int]:
        """Snapshots after `after_snapshot_id` whose commit wrote files into `partition`, oldest first.

        A snapshot's delta manifests name the partition of every file it added or deleted, so this
        reads metadata only, no data. COMPACT commits rewrite files without changing content and
        are left out by default.
        """
        from pypaimon.manifest.manifest_file_manager import ManifestFileManager
        from pypaimon.manifest.manifest_list_manager import ManifestListManager

        table = self.get_table(identifier)
        keys = list(table.partition_keys)
        unknown = set(partition) - set(keys)
        if unknown:
            raise BadRequest(f"{identifier} is not partitioned by {sorted(unknown)} (partition keys: {keys})")
        snapshots, lists, files = table.snapshot_manager(), ManifestListManager(table), ManifestFileManager(table)
        latest = snapshots.get_latest_snapshot()
        found = []
        for sid in range((after_snapshot_id or 0) + 1, (latest.id + 1) if latest else 0):
            snap = snapshots.get_snapshot_by_id(sid)
            if snap is None or str(snap.commit_kind) not in kinds:
                continue
            for meta in lists.read_delta(snap):
                if any(
                    all(
                        str(dict(zip(keys, e.partition.values, strict=True)).get(k)) == str(v)
                        for k, v in partition.items()
                    )
                    for e in files.read(meta.file_name)
                ):
                    found.append(sid)
                    break
        return found

    def data_files(self, identifier: str, *, snapshot_id: int | None = None) -> list[DataFile]:
        """Every data file the latest (or given) snapshot reads, with its partition, bucket and size."""
        table = self.get_table(identifier)
        if snapshot_id is not None:
            table = table.copy({"scan.snapshot-id": str(snapshot_id)})
        if table.snapshot_manager().get_latest_snapshot() is None:
            return []
        keys = list(table.partition_keys)
        seen: dict[str, DataFile] = {}
        for split in table.new_read_builder().new_scan().plan().splits():
            partition = {k: str(v) for k, v in zip(keys, split.partition.values, strict=True)} if keys else {}
            for f in split.files:
                seen[f.file_name] = DataFile(f.file_name, partition, split.bucket, f.file_size, f.level, f.row_count)
        return list(seen.values())

    def snapshot_delta(self, identifier: str, snapshot_id: int) -> DeltaStats:
        """Files and bytes one commit added and deleted (its delta manifests; metadata only)."""
        from pypaimon.manifest.manifest_file_manager import ManifestFileManager
        from pypaimon.manifest.manifest_list_manager import ManifestListManager

        table = self.get_table(identifier)
        snap = table.snapshot_manager().get_snapshot_by_id(snapshot_id)
        if snap is None:
            raise PaimonError(f"{identifier} has no snapshot {snapshot_id} (expired or never written)")
        stats = DeltaStats(snapshot_id, str(snap.commit_kind))
        files = ManifestFileManager(table)
        for meta in ManifestListManager(table).read_delta(snap):
            for entry in files.read(meta.file_name):
                if entry.kind == 0:
                    stats.added_files += 1
                    stats.added_bytes += entry.file.file_size
                else:
                    stats.deleted_files += 1
                    stats.deleted_bytes += entry.file.file_size
        return stats

    # ------------------------------------------------------------------ consumers and pins
    def consumers(self, identifier: str) -> dict[str, int]:
        """Consumer id -> the next snapshot it will read. Snapshot expiry keeps every snapshot from
        the smallest of these on (Paimon's ConsumerManager, in the writers' and the procedures')."""
        return self.get_table(identifier).consumer_manager().consumers()

    def pin_snapshot(self, identifier: str, snapshot_id: int, *, holder: str, ttl_s: float = 6 * 3600) -> str:
        """Keep `snapshot_id` and every later snapshot from expiry while `holder` reads it.

        A pin is a Paimon consumer (metadata, not a commit): every expiry honours it, the writers'
        automatic one included. Its id carries its end time, so a crashed holder's pin is removed
        by the maintenance DAG once it has passed (expire_pins). A holder names one reader (say the
        day and the DAG run: `pin_holder_name` makes a run id a valid holder), so that unpinning
        removes that reader's pins and nobody else's. Returns the consumer id."""
        from pypaimon.consumer.consumer import Consumer

        if not _PIN_HOLDER.match(holder):
            raise BadRequest(f"pin holder {holder!r} must match {_PIN_HOLDER.pattern}")
        until = int(datetime.now(UTC).timestamp() + ttl_s)
        consumer_id = f"{PIN_PREFIX}{holder}-until-{until}"
        self.get_table(identifier).consumer_manager().reset_consumer(consumer_id, Consumer(int(snapshot_id)))
        return consumer_id

    def unpin(self, identifier: str, *, holder: str) -> int:
        """Remove the holder's pins, exactly this holder's (not those of a holder whose name merely
        starts like it); returns how many there were."""
        manager = self.get_table(identifier).consumer_manager()
        ids = [c for c in manager.consumers() if (m := _PIN_ID.match(c)) and m.group(1) == holder]
        for consumer_id in ids:
            manager.delete_consumer(consumer_id)
        return len(ids)

    def pins(self, identifier: str) -> dict[str, tuple[int, datetime]]:
        """Pin consumer id -> (pinned snapshot, end time)."""
        out = {}
        for consumer_id, next_snapshot in self.consumers(identifier).items():
            m = _PIN_ID.match(consumer_id)
            if m:
                out[consumer_id] = (next_snapshot, datetime.fromtimestamp(int(m.group(2)), tz=UTC))
        return out

    def expire_pins(self, identifier: str, *, now: datetime | None = None) -> list[str]:
        """Remove pins whose end time has passed (their holder crashed or forgot to unpin)."""
        now = now or datetime.now(UTC)
        manager = self.get_table(identifier).consumer_manager()
        gone = [c for c, (_, until) in self.pins(identifier).items() if until < now]
        for consumer_id in gone:
            manager.delete_consumer(consumer_id)
        return gone

    def list_tags(self, identifier: str) -> list[str]:
        return sorted(self.get_table(identifier).list_tags())

    def create_tag(self, identifier: str, tag: str, *, snapshot_id: int | None = None) -> None:
        """Tag a snapshot (the latest by default). Tagging is metadata only: it writes no data."""
        self.get_table(identifier).create_tag(tag, snapshot_id=snapshot_id)

    # ------------------------------------------------------------------ ops tables (Python-owned)
    def ensure_ops_table(self, identifier: str, schema: pa.Schema, *, partition_keys: Sequence[str] = ()) -> None:
        """Create an append-only table in the `ops` database if it does not exist."""
        from pypaimon import Schema

        self._check_ops(identifier)
        self.catalog.create_database(OPS_DATABASE, True)
        self.catalog.create_table(
            identifier,
            Schema.from_pyarrow_schema(schema, partition_keys=list(partition_keys) or None, options={"bucket": "-1"}),
            True,
        )

    def append_rows(self, identifier: str, rows: pa.Table) -> int | None:
        """Append rows to an `ops.*` table in one commit; returns the new snapshot id."""
        self._check_ops(identifier)
        table = self.get_table(identifier)
        builder = table.new_batch_write_builder()
        write, commit = builder.new_write(), builder.new_commit()
        try:
            write.write_arrow(rows)
            commit.commit(write.prepare_commit())
        finally:
            write.close()
            commit.close()
        latest = self.latest_snapshot(identifier)
        return latest.snapshot_id if latest else None

    @staticmethod
    def _check_ops(identifier: str) -> None:
        if not identifier.startswith(OPS_DATABASE + "."):
            raise BadRequest(
                f"refusing to write {identifier} from Python: only {OPS_DATABASE}.* tables are Python-owned; "
                "Flink owns every other table"
            )


def _snapshot_info(snap) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=snap.id,
        commit_time=datetime.fromtimestamp(snap.time_millis / 1000, tz=UTC),
        commit_kind=str(snap.commit_kind),
        total_record_count=getattr(snap, "total_record_count", None),
        watermark=getattr(snap, "watermark", None),
        delta_record_count=getattr(snap, "delta_record_count", None),
        changelog_record_count=getattr(snap, "changelog_record_count", None),
    )
