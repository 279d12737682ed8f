-- ODS mirror of delivery.order_status_events (append-only at the source), partitioned by the
-- day of the event.
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_order_status_events (
  event_id    BIGINT        NOT NULL,
  order_id    BIGINT        NOT NULL,
  status      STRING        NOT NULL,
  rider_id    BIGINT,
  event_time  TIMESTAMP(3)  NOT NULL,
  binlog_ts   TIMESTAMP_LTZ(3),
  dt          STRING        NOT NULL,
  PRIMARY KEY (dt, event_id) NOT ENFORCED
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  'bucket' = '2',
  'changelog-producer' = 'input',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
