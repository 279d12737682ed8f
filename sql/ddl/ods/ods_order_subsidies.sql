-- ODS mirror of delivery.order_subsidies, partitioned by the day the subsidy was granted.
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_order_subsidies (
  subsidy_id  BIGINT         NOT NULL,
  order_id    BIGINT         NOT NULL,
  payer       STRING         NOT NULL,
  amount      DECIMAL(12, 2) NOT NULL,
  created_at  TIMESTAMP(3)   NOT NULL,
  updated_at  TIMESTAMP(3)   NOT NULL,
  binlog_ts   TIMESTAMP_LTZ(3),
  dt          STRING         NOT NULL,
  PRIMARY KEY (dt, subsidy_id) NOT ENFORCED
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  -- Streaming readers are Paimon consumers (lakehouse.streaming.deploy.consumer_options); this
  -- writer of the table deletes a consumer a day after its last checkpoint (docs/MAINTENANCE.md).
  'consumer.expiration-time' = '1 d',
  'bucket' = '1',
  'changelog-producer' = 'input',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
