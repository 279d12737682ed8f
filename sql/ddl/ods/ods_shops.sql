-- ODS mirror of delivery.shops (a dimension: small, not partitioned).
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_shops (
  shop_id     BIGINT        NOT NULL,
  name        STRING        NOT NULL,
  city        STRING        NOT NULL,
  category    STRING        NOT NULL,
  created_at  TIMESTAMP(3)  NOT NULL,
  updated_at  TIMESTAMP(3)  NOT NULL,
  binlog_ts   TIMESTAMP_LTZ(3),
  PRIMARY KEY (shop_id) NOT ENFORCED
) WITH (
  'continuous.discovery-interval' = '2s',
  'bucket' = '1',
  'changelog-producer' = 'input'
)
