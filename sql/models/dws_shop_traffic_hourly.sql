{#- Model of dws.dws_shop_traffic_hourly: page views and unique visitors per shop and hour,
    from the append-only ods.ods_user_events. -#}
SELECT
  shop_id,
  CAST(HOUR(event_time) AS INT) AS event_hour,
  COUNT(*) AS pv,
  COUNT(DISTINCT user_id) AS uv,
  dt
FROM lakehouse.ods.ods_user_events
{%- if mode == 'batch' %}
WHERE dt = {{ dt | sql_string }}
{%- endif %}
GROUP BY dt, HOUR(event_time), shop_id
