{#- Model of dws.dws_city_daily: order metrics per city and day.
    Metric definitions: sql/models/_metrics.sql. -#}
{% from 'models/_metrics.sql' import order_metrics, dwd_source with context -%}
SELECT
  city,
  {{ order_metrics() }},
  dt
FROM {{ dwd_source() }}
GROUP BY dt, city
