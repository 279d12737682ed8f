-- Streaming job: the user-behaviour event stream into ods.ods_user_events.
-- Locally Flink's datagen connector stands in for the app's click stream (in production this
-- source is a Kafka topic; only this file changes). Users and shops are drawn from the ids the
-- OLTP reference data uses, so traffic joins with orders.
CREATE TEMPORARY TABLE app_events (
  user_id    BIGINT,
  shop_id    BIGINT,
  type_code  INT
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = {{ events.rows_per_second | sql_int | sql_string }},
  'fields.user_id.min' = '1',
  'fields.user_id.max' = {{ events.max_user_id | sql_int | sql_string }},
  'fields.shop_id.min' = '1',
  'fields.shop_id.max' = {{ events.max_shop_id | sql_int | sql_string }},
  'fields.type_code.min' = '0',
  'fields.type_code.max' = '9'
);

INSERT INTO lakehouse.ods.ods_user_events
SELECT
  UUID() AS event_id,
  user_id,
  shop_id,
  CASE WHEN type_code < 6 THEN 'SHOP_VIEW' WHEN type_code < 9 THEN 'ITEM_VIEW' ELSE 'ADD_TO_CART' END AS event_type,
  event_time,
  DATE_FORMAT(event_time, 'yyyy-MM-dd') AS dt
FROM (SELECT *, CAST(LOCALTIMESTAMP AS TIMESTAMP(3)) AS event_time FROM app_events);
