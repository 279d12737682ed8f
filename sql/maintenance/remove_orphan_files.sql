{#- Remove files no snapshot, tag or changelog references and older than the threshold; younger
    files may belong to a write in flight (a checkpoint or a batch job not yet committed). -#}
CALL lakehouse.sys.remove_orphan_files(
  `table` => {{ table | sql_string }},
  older_than => {{ older_than | sql_string }},
  dry_run => {{ 'true' if dry_run else 'false' }}
)
