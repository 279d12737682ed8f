{#- Model of dws.dws_city_hourly: order metrics per city and hour of order creation.
    Metric definitions: sql/models/_metrics.sql. -#}
{% from 'models/_metrics.sql' import order_metrics, dwd_source with context -%}
SELECT
  city,
  order_hour,
  {{ order_metrics() }},
  dt
FROM {{ dwd_source() }}
GROUP BY dt, order_hour, city
