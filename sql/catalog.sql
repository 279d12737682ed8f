-- The Paimon catalog every Flink session opens first. Rendered from the `paimon_default`
-- Airflow connection (warehouse path or URI).
CREATE CATALOG lakehouse WITH (
  'type' = 'paimon',
  'warehouse' = '{{ paimon.warehouse_uri }}'
)
