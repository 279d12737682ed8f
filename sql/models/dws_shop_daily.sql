{#- Model of dws.dws_shop_daily: order metrics per shop and day.
    Metric definitions: sql/models/_metrics.sql. -#}
{% from 'models/_metrics.sql' import order_metrics, dwd_source with context -%}
SELECT
  shop_id,
  {{ order_metrics() }},
  dt
FROM {{ dwd_source() }}
GROUP BY dt, shop_id
