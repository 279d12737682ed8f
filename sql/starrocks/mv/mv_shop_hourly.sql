{#- Dashboard: orders per shop and hour next to that hour's traffic (page views, unique
    visitors), from dws.dws_shop_hourly joined with dws.dws_shop_traffic_hourly on the same day,
    hour and shop. Driven by the orders: an hour with visits but no order is not here (it is in
    the traffic table, queryable through the catalog). The partition column comes from
    dws_shop_hourly; the join on dt limits the traffic table to the same day when one day is
    refreshed. Refreshed per published day, see mv_city_daily.sql. -#}
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ view }}
COMMENT "Orders and traffic per shop and hour (T+1, from dws.dws_shop_hourly and dws.dws_shop_traffic_hourly)"
PARTITION BY str2date(dt, '%Y-%m-%d')
DISTRIBUTED BY HASH(shop_id)
REFRESH DEFERRED MANUAL
PROPERTIES (
  "replication_num" = "{{ replication_num }}"
)
AS
SELECT
  o.dt AS dt,
  o.shop_id AS shop_id,
  o.order_hour AS order_hour,
  o.gmv AS gmv,
  o.subsidy_total AS subsidy_total,
  o.order_count AS order_count,
  o.cancelled_orders AS cancelled_orders,
  o.delivered_orders AS delivered_orders,
  t.pv AS pv,
  t.uv AS uv,
  o.order_count / NULLIF(t.uv, 0) AS orders_per_visitor
FROM {{ source('dws.dws_shop_hourly') }} AS o
LEFT JOIN {{ source('dws.dws_shop_traffic_hourly') }} AS t
  ON t.dt = o.dt AND t.event_hour = o.order_hour AND t.shop_id = o.shop_id
