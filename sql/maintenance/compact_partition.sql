{#- Full compaction of one closed partition: every bucket rewritten into as few files as its
    target file size allows. Values are validated by lakehouse.maintenance before rendering. -#}
CALL lakehouse.sys.compact(
  `table` => {{ table | sql_string }},
  partitions => {{ (partition_column ~ '=' ~ dt) | sql_string }},
  compact_strategy => 'full'
)
