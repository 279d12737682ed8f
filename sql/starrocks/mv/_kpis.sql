{#- Dashboard KPIs derived from a DWS order-metric row, shared by the daily views (one definition,
    as sql/models/_metrics.sql is for the DWS metrics themselves). -#}
{% macro order_kpis() -%}
  gmv,
  subsidy_total,
  gmv - subsidy_total AS net_gmv,
  order_count,
  cancelled_orders,
  delivered_orders,
  gmv / NULLIF(order_count - cancelled_orders, 0) AS avg_order_value,
  cancelled_orders / NULLIF(order_count, 0) AS cancel_rate,
  avg_delivery_minutes
{%- endmacro %}
