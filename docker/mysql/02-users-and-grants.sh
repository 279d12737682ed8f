#!/bin/bash
# MySQL init script for docker-compose.yml, mounted into /docker-entrypoint-initdb.d/. The
# mysql image runs it once, on the first start with an empty data volume, after
# 01-delivery_schema.sql (sql/mysql/delivery_schema.sql, loaded into $MYSQL_DATABASE).
#
# Creates the two users and the control plane's database (scripts/stack.sh does the same on MariaDB):
#   $MYSQL_APP_USER      owns the OLTP schema (Airflow's `mysql_source` connection, load generator)
#                        and the ops database (Airflow's `lakehouse_ops` connection)
#   $MYSQL_CDC_USER      reads the binlog for Flink CDC (Airflow's `mysql_cdc` connection)
#   $MYSQL_OPS_DATABASE  the partition leases of T+1, backfills and maintenance
#                        (lakehouse.batch.leases creates its table there)
# Names and passwords come from the container environment (docker-compose.yml, from .env).
#
# Both users authenticate with mysql_native_password: the CDC source connects with
# useSSL=false, and caching_sha2_password (MySQL 8's default) needs TLS or RSA key retrieval
# for a first login, which the binlog client does not do. MySQL 8.0 still ships the plugin;
# MySQL 8.4 disables it by default, so moving to 8.4 needs TLS for these users instead.
#
# The entrypoint executes this file if it is executable and sources it otherwise, so it neither
# sets -u nor exits on success.
set -eo pipefail

# A shell value as a MySQL single-quoted string literal: backslashes and quotes doubled.
lakehouse_sql_string() {
  local s=${1//\\/\\\\}
  s=${s//\'/\'\'}
  printf "'%s'" "$s"
}

: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is not set}"
: "${MYSQL_DATABASE:?MYSQL_DATABASE is not set}"
: "${MYSQL_OPS_DATABASE:?MYSQL_OPS_DATABASE is not set}"
: "${MYSQL_APP_USER:?MYSQL_APP_USER is not set}"
: "${MYSQL_APP_PASSWORD:?MYSQL_APP_PASSWORD is not set}"
: "${MYSQL_CDC_USER:?MYSQL_CDC_USER is not set}"
: "${MYSQL_CDC_PASSWORD:?MYSQL_CDC_PASSWORD is not set}"
for var in MYSQL_DATABASE MYSQL_OPS_DATABASE; do
  if [[ ! "${!var}" =~ ^[A-Za-z0-9_]+$ ]]; then
    echo "02-users-and-grants.sh: $var must be letters, digits and _ only, got '${!var}'; change it in .env" >&2
    false
  fi
done

echo "02-users-and-grants.sh: creating users $MYSQL_APP_USER (owner of $MYSQL_DATABASE and $MYSQL_OPS_DATABASE) and $MYSQL_CDC_USER (binlog reader)"
# The entrypoint's temporary server listens on the socket only; root has its password by now.
MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_OPS_DATABASE\`;
CREATE USER IF NOT EXISTS $(lakehouse_sql_string "$MYSQL_APP_USER")@'%'
  IDENTIFIED WITH mysql_native_password BY $(lakehouse_sql_string "$MYSQL_APP_PASSWORD");
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO $(lakehouse_sql_string "$MYSQL_APP_USER")@'%';
GRANT ALL PRIVILEGES ON \`$MYSQL_OPS_DATABASE\`.* TO $(lakehouse_sql_string "$MYSQL_APP_USER")@'%';
CREATE USER IF NOT EXISTS $(lakehouse_sql_string "$MYSQL_CDC_USER")@'%'
  IDENTIFIED WITH mysql_native_password BY $(lakehouse_sql_string "$MYSQL_CDC_PASSWORD");
-- What the Flink CDC MySQL connector needs: SELECT for the snapshot, REPLICATION SLAVE and
-- REPLICATION CLIENT for the binlog, SHOW DATABASES and RELOAD for table discovery and locks.
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.*
  TO $(lakehouse_sql_string "$MYSQL_CDC_USER")@'%';
FLUSH PRIVILEGES;
SQL
