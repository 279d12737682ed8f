-- DWS traffic insight: page views and unique visitors per shop and hour
-- (model: sql/models/dws_shop_traffic_hourly.sql).
CREATE TABLE IF NOT EXISTS lakehouse.dws.dws_shop_traffic_hourly (
  shop_id     BIGINT  NOT NULL,
  event_hour  INT     NOT NULL,
  pv          BIGINT  NOT NULL,
  uv          BIGINT  NOT NULL,
  dt          STRING  NOT NULL,
  PRIMARY KEY (dt, event_hour, shop_id) NOT ENFORCED
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  'bucket' = '1',
  'changelog-producer' = 'lookup',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
