# Shared settings for the local stack; sourced by scripts/*.sh and the Makefile.
# Every value can be overridden from the environment.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export LAKEHOUSE_HOME="${LAKEHOUSE_HOME:-$ROOT/.stack}"
export VENV="${VENV:-$ROOT/.venv}"
export PYTHON="${PYTHON:-$VENV/bin/python}"
export STACK_LOGS="$LAKEHOUSE_HOME/logs"
export JARS_DIR="${JARS_DIR:-$LAKEHOUSE_HOME/jars}"

export MYSQL_PORT="${MYSQL_PORT:-3306}"
export MYSQL_DATA="$LAKEHOUSE_HOME/mariadb"
export MYSQL_SOCKET="$LAKEHOUSE_HOME/mariadb.sock"
export MYSQL_DATABASE="${MYSQL_DATABASE:-delivery}"
export MYSQL_APP_USER="${MYSQL_APP_USER:-app}"
export MYSQL_APP_PASSWORD="${MYSQL_APP_PASSWORD:-app}"
export MYSQL_CDC_USER="${MYSQL_CDC_USER:-flink_cdc}"
export MYSQL_CDC_PASSWORD="${MYSQL_CDC_PASSWORD:-flink_cdc}"

export FLINK_VERSION="${FLINK_VERSION:-1.20.3}"
export FLINK_DIST="$LAKEHOUSE_HOME/flink-dist"
export FLINK_HOME="$LAKEHOUSE_HOME/flink"
export FLINK_CONF_DIR="$FLINK_HOME/conf"
export FLINK_REST_PORT="${FLINK_REST_PORT:-8081}"
export FLINK_RPC_PORT="${FLINK_RPC_PORT:-6123}"
export SQL_GATEWAY_PORT="${SQL_GATEWAY_PORT:-8083}"
export FLINK_TM_SLOTS="${FLINK_TM_SLOTS:-32}"
export FLINK_TM_MEMORY="${FLINK_TM_MEMORY:-8g}"
export FLINK_JM_MEMORY="${FLINK_JM_MEMORY:-1600m}"
export CHECKPOINT_DIR="$LAKEHOUSE_HOME/checkpoints"
export SAVEPOINT_DIR="$LAKEHOUSE_HOME/savepoints"
export WAREHOUSE="${WAREHOUSE:-$LAKEHOUSE_HOME/warehouse}"

# PostgreSQL for Airflow's metadata database: Debian's server binaries, our own cluster under
# $LAKEHOUSE_HOME/postgres on its own port (never the system's 5432), started by scripts/stack.sh.
export POSTGRES_PORT="${POSTGRES_PORT:-5433}"
export POSTGRES_DATA="$LAKEHOUSE_HOME/postgres"
export POSTGRES_AIRFLOW_DB="${POSTGRES_AIRFLOW_DB:-airflow}"
export POSTGRES_AIRFLOW_USER="${POSTGRES_AIRFLOW_USER:-airflow}"
export POSTGRES_AIRFLOW_PASSWORD="${POSTGRES_AIRFLOW_PASSWORD:-airflow-local}"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$LAKEHOUSE_HOME/airflow}"
# The metadata database: the stack's Postgres (psycopg2; Airflow derives its async URL, asyncpg).
# Tests and tools with an Airflow home of their own set their own (e.g. sqlite:///<home>/airflow.db).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://$POSTGRES_AIRFLOW_USER:$POSTGRES_AIRFLOW_PASSWORD@127.0.0.1:$POSTGRES_PORT/$POSTGRES_AIRFLOW_DB}"
# The api-server (UI, REST API, task execution API) and its login (SimpleAuthManager); see docs/AIRFLOW.md.
export AIRFLOW_API_SERVER_HOST="${AIRFLOW_API_SERVER_HOST:-127.0.0.1}"
export AIRFLOW_API_SERVER_PORT="${AIRFLOW_API_SERVER_PORT:-8080}"
export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"
export AIRFLOW_ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:-admin}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE="${AIRFLOW__CORE__UNIT_TEST_MODE:-False}"
export PYTHONPATH="$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"

# Airflow connections for the hooks, in URI form; a deployment sets its own.
# taskmanager_start_command: how supervision restarts a lost TaskManager of this standalone cluster.
_flink_conn_default="{\"conn_type\": \"flink\", \"host\": \"127.0.0.1\", \"port\": $FLINK_REST_PORT, \"extra\": {\"sql_gateway_port\": $SQL_GATEWAY_PORT, \"taskmanager_start_command\": \"$FLINK_HOME/bin/taskmanager.sh start\"}}"
# The JSON default lives in a variable: a literal `}` inside ${VAR:-...} would end the expansion early.
export AIRFLOW_CONN_FLINK_DEFAULT="${AIRFLOW_CONN_FLINK_DEFAULT:-$_flink_conn_default}"
export AIRFLOW_CONN_MYSQL_SOURCE="${AIRFLOW_CONN_MYSQL_SOURCE:-mysql://$MYSQL_APP_USER:$MYSQL_APP_PASSWORD@127.0.0.1:$MYSQL_PORT/$MYSQL_DATABASE}"
export AIRFLOW_CONN_MYSQL_CDC="${AIRFLOW_CONN_MYSQL_CDC:-mysql://$MYSQL_CDC_USER:$MYSQL_CDC_PASSWORD@127.0.0.1:$MYSQL_PORT/$MYSQL_DATABASE?server_id_base=5400}"
# Leases of the T+1 and backfill runs (lakehouse.batch.leases): any MySQL database the workers share.
export AIRFLOW_CONN_LAKEHOUSE_OPS="${AIRFLOW_CONN_LAKEHOUSE_OPS:-mysql://$MYSQL_APP_USER:$MYSQL_APP_PASSWORD@127.0.0.1:$MYSQL_PORT/lakehouse_ops}"
export AIRFLOW_CONN_PAIMON_DEFAULT="${AIRFLOW_CONN_PAIMON_DEFAULT:-paimon://?warehouse=$WAREHOUSE}"

# Alerts (docs/ALERTS.md): every alert is a row of the Paimon table ops.alerts (read it with
# `python -m lakehouse.alerts.history`). Locally that is all; add webhook and/or smtp here, with the
# AIRFLOW_CONN_ALERTS_WEBHOOK / AIRFLOW_CONN_ALERTS_SMTP connections, to send them as well.
export LAKEHOUSE_ALERT_DESTINATIONS="${LAKEHOUSE_ALERT_DESTINATIONS:-table}"
