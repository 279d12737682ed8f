{#- Snapshot expiry. Paimon keeps, whatever these numbers say: snapshots a consumer id (a streaming
    reader, or a pin of a running backfill or check) still needs, and the files of tagged snapshots. -#}
CALL lakehouse.sys.expire_snapshots(
  `table` => '{{ table }}',
  retain_max => {{ retain_max }},
  retain_min => {{ retain_min }},
  older_than => '{{ older_than }}',
  max_deletes => {{ max_deletes }}
)
