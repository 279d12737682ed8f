"""Table maintenance: compaction, snapshot/tag/partition expiry and orphan-file removal, measured.

Paimon's own procedures do the work (`sys.compact`, `sys.expire_snapshots`, `sys.expire_partitions`,
`sys.delete_tag`, `sys.remove_orphan_files`), run through Flink's SQL Gateway: pypaimon has none
of them. What to do to each table, and when, is the policy in config/maintenance.yaml. Each run
measures every table before and after (snapshots, data files, bytes, small files, partitions),
keeps the figures in the Paimon table ops.maintenance_metrics, and alerts when small files keep
growing.

Readers are never broken:
- snapshot expiry keeps what a consumer id still needs (every streaming job, for up to a day after
  its last checkpoint: lakehouse.streaming.deploy.consumer_options; pins of running backfills and
  checks, see PaimonHook.pin_snapshot) and the files of tagged snapshots;
- compaction only touches closed days, under the same partition lease the T+1 recomputation takes;
- orphan removal only deletes files older than a threshold longer than any write.
"""
