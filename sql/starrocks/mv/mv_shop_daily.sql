{#- Dashboard: order KPIs per shop and day, from dws.dws_shop_daily (same columns as
    mv_city_daily, per shop). Refreshed per published day, see mv_city_daily.sql. -#}
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
  gmv,
  subsidy_total,
  gmv - subsidy_total AS net_gmv,
  order_count,
  cancelled_orders,
  delivered_orders,
  gmv / NULLIF(order_count - cancelled_orders, 0) AS avg_order_value,
  cancelled_orders / NULLIF(order_count, 0) AS cancel_rate,
  avg_delivery_minutes
FROM {{ source('dws.dws_shop_daily') }}
