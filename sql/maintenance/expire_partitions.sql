{#- Drop partitions whose day is older than the retention (the partition value is the time). -#}
CALL lakehouse.sys.expire_partitions(
  `table` => '{{ table }}',
  expiration_time => '{{ retention_days }} d',
  timestamp_formatter => 'yyyy-MM-dd',
  expire_strategy => 'values-time'
)
