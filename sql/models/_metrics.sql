{#- Metric definitions shared by every DWS model (streaming and T+1 batch alike): change a
    definition here and every table, in both modes, follows. Input rows are dwd_order_fact. -#}
{% macro order_metrics() -%}
  CAST(SUM(CASE WHEN status <> 'CANCELLED' THEN amount ELSE 0 END) AS DECIMAL(18, 2)) AS gmv,
  COUNT(*) AS order_count,
  CAST(SUM(CASE WHEN status <> 'CANCELLED' THEN platform_subsidy + shop_subsidy ELSE 0 END) AS DECIMAL(18, 2)) AS subsidy_total,
  SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled_orders,
  SUM(CASE WHEN status = 'DELIVERED' THEN 1 ELSE 0 END) AS delivered_orders,
  AVG(delivery_minutes) AS avg_delivery_minutes
{%- endmacro %}

{#- The source of a DWS model: the DWD fact, limited to one day in batch mode. -#}
{% macro dwd_source() -%}
  lakehouse.dwd.dwd_order_fact{% if mode == 'batch' %} WHERE dt = '{{ dt }}'{% endif %}
{%- endmacro %}
