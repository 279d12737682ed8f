-- The Paimon catalog every Flink session opens first. Rendered from the `paimon_default`
-- Airflow connection: the warehouse path or URI, then every other catalog option of the
-- connection (for an s3:// warehouse: s3.endpoint, s3.access-key, s3.secret-key,
-- s3.path.style.access, read by the paimon-s3 jar; docs/OBJECT_STORAGE.md). A local warehouse
-- has no other option and renders to 'type' + 'warehouse' only. Values are quoted by the
-- sql_string filter (a quote in a key is doubled; lakehouse.core.sql_files).
CREATE CATALOG lakehouse WITH (
  'type' = 'paimon',
  'warehouse' = {{ paimon.warehouse_uri | sql_string }}
{%- for name, value in paimon.catalog_options %},
  {{ name | sql_string }} = {{ value | sql_string }}
{%- endfor %}
)
