{#- Full compaction of one closed partition: every bucket rewritten into as few files as its
    target file size allows. Values are validated by lakehouse.maintenance before rendering. -#}
CALL lakehouse.sys.compact(
  `table` => '{{ table }}',
  partitions => '{{ partition_column }}={{ dt }}',
  compact_strategy => 'full'
)
