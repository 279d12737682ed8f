{#- Dashboard: order KPIs per city and day, from dws.dws_city_daily. `view` is the qualified view
    name; tables are named only through source() (lakehouse.serving, config/serving.yaml).
    REFRESH DEFERRED MANUAL: nothing is computed at creation nor on a schedule; the T+1 run
    refreshes the day it has just published (sql/starrocks/refresh.sql). Metric definitions
    (gmv and subsidies exclude cancelled orders): sql/models/_metrics.sql. -#}
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ view }}
COMMENT "Order KPIs per city and day (T+1, from dws.dws_city_daily)"
PARTITION BY str2date(dt, '%Y-%m-%d')
DISTRIBUTED BY HASH(city)
REFRESH DEFERRED MANUAL
PROPERTIES (
  "replication_num" = "{{ replication_num }}"
)
AS
SELECT
  dt,
  city,
  gmv,
  subsidy_total,
  gmv - subsidy_total AS net_gmv,
  order_count,
  cancelled_orders,
  delivered_orders,
  gmv / NULLIF(order_count - cancelled_orders, 0) AS avg_order_value,
  cancelled_orders / NULLIF(order_count, 0) AS cancel_rate,
  avg_delivery_minutes
FROM {{ source('dws.dws_city_daily') }}
