-- Streaming job: capture the binlog of the `delivery` OLTP database into the Paimon ODS
-- tables (sql/ddl/ods/*.sql). One job, one binlog reader per table, exactly-once: the CDC
-- source stores its binlog position in Flink checkpoints and Paimon commits on checkpoint.
--
-- Rendered with Jinja before submission: the mysql.* variables come from the `mysql_cdc` Airflow
-- connection, never from user input. Every value is written by the sql_string filter (a quote in
-- the password is doubled and stays inside its literal); numbers and names are validated first.
{% macro cdc_source(table, server_id) -%}
  'connector' = 'mysql-cdc',
  'hostname' = {{ mysql.host | sql_string }},
  'port' = {{ mysql.port | sql_int | sql_string }},
  'username' = {{ mysql.cdc_user | sql_string }},
  'password' = {{ mysql.cdc_password | sql_string }},
  'database-name' = {{ mysql.database | sql_identifier | sql_string }},
  'table-name' = {{ table | sql_identifier | sql_string }},
  'server-id' = {{ server_id | sql_int | sql_string }},
  'server-time-zone' = 'UTC',
  'scan.startup.mode' = 'initial',
  'scan.incremental.close-idle-reader.enabled' = 'true',
  'heartbeat.interval' = '5s',
  'jdbc.properties.useSSL' = 'false'
{%- endmacro %}

CREATE TEMPORARY TABLE cdc_orders (
  order_id BIGINT, user_id BIGINT, shop_id BIGINT, rider_id BIGINT, city STRING, status STRING,
  amount DECIMAL(12, 2), created_at TIMESTAMP(3), accepted_at TIMESTAMP(3),
  picked_up_at TIMESTAMP(3), delivered_at TIMESTAMP(3), cancelled_at TIMESTAMP(3),
  updated_at TIMESTAMP(3), binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (order_id) NOT ENFORCED
) WITH ({{ cdc_source('orders', mysql.server_id_base + 1) }});

CREATE TEMPORARY TABLE cdc_order_status_events (
  event_id BIGINT, order_id BIGINT, status STRING, rider_id BIGINT, event_time TIMESTAMP(3),
  binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (event_id) NOT ENFORCED
) WITH ({{ cdc_source('order_status_events', mysql.server_id_base + 2) }});

CREATE TEMPORARY TABLE cdc_order_subsidies (
  subsidy_id BIGINT, order_id BIGINT, payer STRING, amount DECIMAL(12, 2),
  created_at TIMESTAMP(3), updated_at TIMESTAMP(3),
  binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (subsidy_id) NOT ENFORCED
) WITH ({{ cdc_source('order_subsidies', mysql.server_id_base + 3) }});

CREATE TEMPORARY TABLE cdc_users (
  user_id BIGINT, name STRING, city STRING, phone STRING, created_at TIMESTAMP(3),
  updated_at TIMESTAMP(3), binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (user_id) NOT ENFORCED
) WITH ({{ cdc_source('users', mysql.server_id_base + 4) }});

CREATE TEMPORARY TABLE cdc_shops (
  shop_id BIGINT, name STRING, city STRING, category STRING, created_at TIMESTAMP(3),
  updated_at TIMESTAMP(3), binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (shop_id) NOT ENFORCED
) WITH ({{ cdc_source('shops', mysql.server_id_base + 5) }});

CREATE TEMPORARY TABLE cdc_riders (
  rider_id BIGINT, name STRING, city STRING, status STRING, updated_at TIMESTAMP(3),
  binlog_ts TIMESTAMP_LTZ(3) METADATA FROM 'op_ts' VIRTUAL,
  PRIMARY KEY (rider_id) NOT ENFORCED
) WITH ({{ cdc_source('riders', mysql.server_id_base + 6) }});

EXECUTE STATEMENT SET
BEGIN
  INSERT INTO lakehouse.ods.ods_orders
  SELECT order_id, user_id, shop_id, rider_id, city, status, amount, created_at, accepted_at,
         picked_up_at, delivered_at, cancelled_at, updated_at, binlog_ts,
         DATE_FORMAT(created_at, 'yyyy-MM-dd') AS dt
  FROM cdc_orders;

  INSERT INTO lakehouse.ods.ods_order_status_events
  SELECT event_id, order_id, status, rider_id, event_time, binlog_ts,
         DATE_FORMAT(event_time, 'yyyy-MM-dd') AS dt
  FROM cdc_order_status_events;

  INSERT INTO lakehouse.ods.ods_order_subsidies
  SELECT subsidy_id, order_id, payer, amount, created_at, updated_at, binlog_ts,
         DATE_FORMAT(created_at, 'yyyy-MM-dd') AS dt
  FROM cdc_order_subsidies;

  INSERT INTO lakehouse.ods.ods_users
  SELECT user_id, name, city, phone, created_at, updated_at, binlog_ts FROM cdc_users;

  INSERT INTO lakehouse.ods.ods_shops
  SELECT shop_id, name, city, category, created_at, updated_at, binlog_ts FROM cdc_shops;

  INSERT INTO lakehouse.ods.ods_riders
  SELECT rider_id, name, city, status, updated_at, binlog_ts FROM cdc_riders;
END;
