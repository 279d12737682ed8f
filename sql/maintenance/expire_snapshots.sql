{#- Snapshot expiry. Paimon keeps, whatever these numbers say: snapshots a consumer id (a streaming
    reader, or a pin of a running backfill or check) still needs, and the files of tagged snapshots. -#}
CALL lakehouse.sys.expire_snapshots(
  `table` => {{ table | sql_string }},
  retain_max => {{ retain_max | sql_int }},
  retain_min => {{ retain_min | sql_int }},
  older_than => {{ older_than | sql_string }},
  max_deletes => {{ max_deletes | sql_int }}
)
