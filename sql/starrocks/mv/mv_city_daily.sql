{#- Dashboard: order KPIs per city and day, from dws.dws_city_daily. `view` is the qualified view
    name; tables are named only through source() (lakehouse.serving, config/serving.yaml).
    REFRESH DEFERRED MANUAL: nothing is computed at creation nor on a schedule; the T+1 run
    refreshes the day it has just published (sql/starrocks/refresh.sql). Metric definitions
    (gmv and subsidies exclude cancelled orders): sql/models/_metrics.sql. -#}
{% from 'starrocks/mv/_kpis.sql' import order_kpis -%}
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
  {{ order_kpis() }}
FROM {{ source('dws.dws_city_daily') }}
