{#- Dashboard: order KPIs per shop and day, from dws.dws_shop_daily (same columns as
    mv_city_daily, per shop). Refreshed per published day, see mv_city_daily.sql. -#}
{% from 'starrocks/mv/_kpis.sql' import order_kpis -%}
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ view }}
COMMENT "Order KPIs per shop and day (T+1, from dws.dws_shop_daily)"
PARTITION BY str2date(dt, '%Y-%m-%d')
DISTRIBUTED BY HASH(shop_id)
REFRESH DEFERRED MANUAL
PROPERTIES (
  "replication_num" = "{{ replication_num }}"
)
AS
SELECT
  dt,
  shop_id,
  {{ order_kpis() }}
FROM {{ source('dws.dws_shop_daily') }}
