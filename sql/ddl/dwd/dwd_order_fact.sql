-- DWD order fact: one row per valid order (model: sql/models/dwd_order_fact.sql).
-- changelog-producer=input: the changelog the DWS jobs stream from is the DWD job's own output
-- (the lookup join passes ODS's -U/+U through, the subsidy join retracts), so their aggregation
-- state sees every change exactly once whatever the table holds. Not `lookup`: it derives the
-- changelog by comparing each write with the table's content, and a T+1 INSERT OVERWRITE of a
-- past day changes that content behind the streaming job's back: a late change the overwrite
-- already holds would then produce no changelog, and the DWS state would miss it for good.
-- (Streaming readers skip OVERWRITE snapshots: the recomputation never reaches the DWS jobs.)
CREATE TABLE IF NOT EXISTS lakehouse.dwd.dwd_order_fact (
  order_id          BIGINT         NOT NULL,
  user_id           BIGINT         NOT NULL,
  shop_id           BIGINT         NOT NULL,
  shop_name         STRING,
  shop_category     STRING,
  city              STRING         NOT NULL,
  user_city         STRING,
  rider_id          BIGINT,
  status            STRING         NOT NULL,
  amount            DECIMAL(12, 2) NOT NULL,
  platform_subsidy  DECIMAL(12, 2) NOT NULL,
  shop_subsidy      DECIMAL(12, 2) NOT NULL,
  created_at        TIMESTAMP(3)   NOT NULL,
  accepted_at       TIMESTAMP(3),
  picked_up_at      TIMESTAMP(3),
  delivered_at      TIMESTAMP(3),
  cancelled_at      TIMESTAMP(3),
  delivery_minutes  DOUBLE,
  order_hour        INT            NOT NULL,
  updated_at        TIMESTAMP(3)   NOT NULL,
  dt                STRING         NOT NULL,
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
