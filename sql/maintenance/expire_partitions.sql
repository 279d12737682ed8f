{#- Drop partitions whose day is older than the retention (the partition value is the time). -#}
CALL lakehouse.sys.expire_partitions(
  `table` => {{ table | sql_string }},
  expiration_time => {{ ((retention_days | sql_int) ~ ' d') | sql_string }},
  timestamp_formatter => 'yyyy-MM-dd',
  expire_strategy => 'values-time'
)
