-- ODS user-behaviour events (app page views, shop views, add-to-cart): an append-only table,
-- no primary key. Written by the streaming job sql/ods/ods_user_events.sql.
CREATE TABLE IF NOT EXISTS lakehouse.ods.ods_user_events (
  event_id    STRING        NOT NULL,
  user_id     BIGINT        NOT NULL,
  shop_id     BIGINT        NOT NULL,
  event_type  STRING        NOT NULL,
  event_time  TIMESTAMP(3)  NOT NULL,
  dt          STRING        NOT NULL
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  -- Streaming readers are Paimon consumers (lakehouse.streaming.deploy.consumer_options); this
  -- writer of the table deletes a consumer a day after its last checkpoint (docs/MAINTENANCE.md).
  'consumer.expiration-time' = '1 d',
  'bucket' = '-1',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
