-- ODS mirror of delivery.orders, kept by the CDC job sql/ods/ods_delivery_cdc.sql.
-- Partitioned by the order's creation day so that T+1 jobs read exactly one day.
-- changelog-producer=input: the binlog already is a complete changelog, so streaming readers
-- downstream get updates and deletes without Paimon having to derive them.
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_orders (
  order_id      BIGINT         NOT NULL,
  user_id       BIGINT         NOT NULL,
  shop_id       BIGINT         NOT NULL,
  rider_id      BIGINT,
  city          STRING         NOT NULL,
  status        STRING         NOT NULL,
  amount        DECIMAL(12, 2) NOT NULL,
  created_at    TIMESTAMP(3)   NOT NULL,
  accepted_at   TIMESTAMP(3),
  picked_up_at  TIMESTAMP(3),
  delivered_at  TIMESTAMP(3),
  cancelled_at  TIMESTAMP(3),
  updated_at    TIMESTAMP(3)   NOT NULL,
  binlog_ts     TIMESTAMP_LTZ(3),
  dt            STRING         NOT NULL,
  PRIMARY KEY (dt, order_id) NOT ENFORCED
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  -- Streaming readers are Paimon consumers (lakehouse.streaming.deploy.consumer_options); this
  -- writer of the table deletes a consumer a day after its last checkpoint (docs/MAINTENANCE.md).
  'consumer.expiration-time' = '1 d',
  'bucket' = '2',
  'changelog-producer' = 'input',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
