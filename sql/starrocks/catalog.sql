{#- StarRocks external catalog over the Paimon warehouse the Flink jobs write (filesystem
    metastore: the warehouse directory is the catalog). Rendered by lakehouse.serving from the
    `paimon_default` connection: the warehouse URI and, for S3/MinIO, its endpoint and keys, all
    checked first (no quote, backslash or line break). Property names: StarRocks' Paimon catalog
    docs (CatalogParams, and StorageCredentialParams for an S3-compatible store such as MinIO). -#}
CREATE EXTERNAL CATALOG IF NOT EXISTS `{{ catalog }}`
COMMENT "Paimon warehouse of the lakehouse (read-only for StarRocks: Flink writes it)"
PROPERTIES (
  "type" = "paimon",
  "paimon.catalog.type" = "filesystem",
  "paimon.catalog.warehouse" = "{{ warehouse }}"
{%- if s3 %},
  "aws.s3.endpoint" = "{{ s3.endpoint }}",
  "aws.s3.enable_ssl" = "{{ s3.enable_ssl }}",
  "aws.s3.enable_path_style_access" = "{{ s3.enable_path_style_access }}",
  "aws.s3.access_key" = "{{ s3.access_key }}",
  "aws.s3.secret_key" = "{{ s3.secret_key }}"
{%- endif %}
)
