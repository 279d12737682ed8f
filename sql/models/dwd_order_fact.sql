{#- Model of dwd.dwd_order_fact: one row per valid order, enriched and flattened.
    Used by the streaming job (sql/dwd/dwd_order_fact.sql, mode=streaming) and by the T+1
    recomputation (mode=batch, dt=<day>): one definition of the business logic.

    - shop and user attributes come from the ODS dimensions (a lookup join when streaming, so
      dimension state is not kept in Flink; a plain join in batch);
    - subsidies are split by payer and summed per order (a subsidy deleted at the source is
      retracted);
    - the status history is folded into the order's milestone times and delivery_minutes;
    - rows that cannot be valid are left out: non-positive amounts, unknown statuses. -#}
SELECT
  o.order_id,
  o.user_id,
  o.shop_id,
  sh.name AS shop_name,
  sh.category AS shop_category,
  o.city,
  u.city AS user_city,
  o.rider_id,
  o.status,
  o.amount,
  CAST(COALESCE(s.platform_subsidy, 0) AS DECIMAL(12, 2)) AS platform_subsidy,
  CAST(COALESCE(s.shop_subsidy, 0) AS DECIMAL(12, 2)) AS shop_subsidy,
  o.created_at,
  o.accepted_at,
  o.picked_up_at,
  o.delivered_at,
  o.cancelled_at,
  CAST(TIMESTAMPDIFF(SECOND, o.created_at, o.delivered_at) AS DOUBLE) / 60 AS delivery_minutes,
  CAST(HOUR(o.created_at) AS INT) AS order_hour,
  o.updated_at,
  o.dt
FROM
{%- if mode == 'streaming' %}
  (SELECT *, PROCTIME() AS proc_time FROM lakehouse.ods.ods_orders) AS o
  LEFT JOIN lakehouse.ods.ods_shops FOR SYSTEM_TIME AS OF o.proc_time AS sh ON o.shop_id = sh.shop_id
  LEFT JOIN lakehouse.ods.ods_users FOR SYSTEM_TIME AS OF o.proc_time AS u ON o.user_id = u.user_id
{%- else %}
  (SELECT * FROM lakehouse.ods.ods_orders WHERE dt = {{ dt | sql_string }}) AS o
  LEFT JOIN lakehouse.ods.ods_shops AS sh ON o.shop_id = sh.shop_id
  LEFT JOIN lakehouse.ods.ods_users AS u ON o.user_id = u.user_id
{%- endif %}
  LEFT JOIN (
    SELECT
      order_id,
      SUM(CASE WHEN payer = 'PLATFORM' THEN amount ELSE 0 END) AS platform_subsidy,
      SUM(CASE WHEN payer = 'SHOP' THEN amount ELSE 0 END) AS shop_subsidy
    FROM lakehouse.ods.ods_order_subsidies
    {%- if mode == 'batch' %}
    WHERE dt >= {{ dt | sql_string }}  -- a subsidy is never older than its order
    {%- endif %}
    GROUP BY order_id
  ) AS s ON o.order_id = s.order_id
WHERE o.amount > 0
  AND o.status IN ('CREATED', 'ACCEPTED', 'PICKED_UP', 'DELIVERED', 'CANCELLED')
