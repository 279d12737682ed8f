{#- Model of dws.dws_shop_hourly: order metrics per shop and hour of order creation.
    Metric definitions: sql/models/_metrics.sql. -#}
{% from 'models/_metrics.sql' import order_metrics, dwd_source with context -%}
SELECT
  shop_id,
  order_hour,
  {{ order_metrics() }},
  dt
FROM {{ dwd_source() }}
GROUP BY dt, order_hour, shop_id
