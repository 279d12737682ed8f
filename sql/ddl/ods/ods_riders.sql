-- ODS mirror of delivery.riders (a dimension: small, not partitioned).
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_riders (
  rider_id    BIGINT        NOT NULL,
  name        STRING        NOT NULL,
  city        STRING        NOT NULL,
  status      STRING        NOT NULL,
  updated_at  TIMESTAMP(3)  NOT NULL,
  binlog_ts   TIMESTAMP_LTZ(3),
  PRIMARY KEY (rider_id) NOT ENFORCED
) WITH (
  'continuous.discovery-interval' = '2s',
  'bucket' = '1',
  'changelog-producer' = 'input'
)
