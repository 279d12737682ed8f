{#- Metric definitions shared by every DWS model (streaming and T+1 batch alike): change a
    definition here and every table, in both modes, follows. Input rows are dwd_order_fact. -#}
{% macro order_metrics() -%}
  CAST(SUM(CASE WHEN status <> 'CANCELLED' THEN amount ELSE 0 END) AS DECIMAL(18, 2)) AS gmv,
  COUNT(*) AS order_count,
  CAST(SUM(CASE WHEN status <> 'CANCELLED' THEN platform_subsidy + shop_subsidy ELSE 0 END) AS DECIMAL(18, 2)) AS subsidy_total,
  SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled_orders,
  SUM(CASE WHEN status = 'DELIVERED' THEN 1 ELSE 0 END) AS delivered_orders,
  -- The average from exact integer seconds, not AVG over doubles: a sum of doubles depends on
  -- the order of the rows, and a recomputation must give the same bits every time.
  CASE WHEN COUNT(delivery_minutes) = 0 THEN CAST(NULL AS DOUBLE)
       ELSE CAST(SUM(CAST(ROUND(delivery_minutes * 60, 0) AS BIGINT)) AS DOUBLE) / COUNT(delivery_minutes) / 60
  END AS avg_delivery_minutes
{%- endmacro %}

{#- The source of a DWS model: the DWD fact, limited to one day in batch mode. -#}
{% macro dwd_source() -%}
  lakehouse.dwd.dwd_order_fact{% if mode == 'batch' %} WHERE dt = {{ dt | sql_string }}{% endif %}
{%- endmacro %}
