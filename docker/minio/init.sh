#!/bin/sh
# One-shot of docker-compose.yml (minio-init), with the mc bundled in the MinIO image. As MinIO's
# root it creates (all idempotent):
#   - the warehouse bucket $MINIO_BUCKET (Paimon warehouse, Flink checkpoints and savepoints);
#   - the user $MINIO_WAREHOUSE_USER with the policy `lakehouse-warehouse`: read, write, list and
#     delete objects in that bucket, nothing else (no other bucket, no administration). Flink,
#     Airflow (pypaimon) and StarRocks use this user; the root keys stay with MinIO and this script.
# Running it again (every `docker compose up`) sets the user's password from .env: that is how
# it is rotated.
set -eu

: "${MINIO_ROOT_USER:?MINIO_ROOT_USER is not set}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD is not set}"
: "${MINIO_BUCKET:?MINIO_BUCKET is not set}"
: "${MINIO_WAREHOUSE_USER:?MINIO_WAREHOUSE_USER is not set}"
: "${MINIO_WAREHOUSE_PASSWORD:?MINIO_WAREHOUSE_PASSWORD is not set}"
if [ "$MINIO_WAREHOUSE_USER" = "$MINIO_ROOT_USER" ]; then
  echo "minio-init: MINIO_WAREHOUSE_USER must differ from MINIO_ROOT_USER (the scoped user is not root); change it in .env" >&2
  exit 1
fi
# S3 bucket names: lower-case letters, digits, '-' and '.', 3 to 63 characters. (The image is
# minimal: shell built-ins and mc only, no grep or mktemp.)
case "$MINIO_BUCKET" in
  *[!a-z0-9.-]* | [.-]* | *[.-]) bucket_ok=no ;;
  *) bucket_ok=yes ;;
esac
if [ "$bucket_ok" = no ] || [ "${#MINIO_BUCKET}" -lt 3 ] || [ "${#MINIO_BUCKET}" -gt 63 ]; then
  echo "minio-init: MINIO_BUCKET '$MINIO_BUCKET' is not a valid bucket name (a-z, 0-9, '.', '-'; 3 to 63); change it in .env" >&2
  exit 1
fi

mc alias set lakehouse http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "lakehouse/$MINIO_BUCKET"

policy="${TMPDIR:-/tmp}/lakehouse-warehouse.json"
printf '%s\n' \
  '{' \
  '  "Version": "2012-10-17",' \
  '  "Statement": [' \
  '    {' \
  '      "Effect": "Allow",' \
  '      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],' \
  "      \"Resource\": [\"arn:aws:s3:::$MINIO_BUCKET\"]" \
  '    },' \
  '    {' \
  '      "Effect": "Allow",' \
  '      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],' \
  "      \"Resource\": [\"arn:aws:s3:::$MINIO_BUCKET/*\"]" \
  '    }' \
  '  ]' \
  '}' >"$policy"
mc admin policy create lakehouse lakehouse-warehouse "$policy"
mc admin user add lakehouse "$MINIO_WAREHOUSE_USER" "$MINIO_WAREHOUSE_PASSWORD"
# Attaching a policy the user has already is an error to mc: attach only when it is missing.
case "$(mc admin user info lakehouse "$MINIO_WAREHOUSE_USER")" in
  *lakehouse-warehouse*) echo "policy lakehouse-warehouse is attached to $MINIO_WAREHOUSE_USER already" ;;
  *) mc admin policy attach lakehouse lakehouse-warehouse --user "$MINIO_WAREHOUSE_USER" ;;
esac
echo "bucket $MINIO_BUCKET and its user $MINIO_WAREHOUSE_USER are ready"
