-- DWS: order metrics per shop and day (model: sql/models/dws_shop_daily.sql).
CREATE TABLE IF NOT EXISTS lakehouse.dws.dws_shop_daily (
  shop_id               BIGINT         NOT NULL,
  gmv                   DECIMAL(18, 2) NOT NULL,
  order_count           BIGINT         NOT NULL,
  subsidy_total         DECIMAL(18, 2) NOT NULL,
  cancelled_orders      BIGINT         NOT NULL,
  delivered_orders      BIGINT         NOT NULL,
  avg_delivery_minutes  DOUBLE,
  dt                    STRING         NOT NULL,
  PRIMARY KEY (dt, shop_id) NOT ENFORCED
) PARTITIONED BY (dt) WITH (
  'continuous.discovery-interval' = '2s',
  'bucket' = '1',
  'changelog-producer' = 'lookup',
  'partition.timestamp-formatter' = 'yyyy-MM-dd',
  'partition.timestamp-pattern' = '$dt'
)
