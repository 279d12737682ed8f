#!/usr/bin/env bash
# Airflow 3 services of the local stack, as a deployment runs them: the api-server (UI + REST API +
# task execution API), the scheduler (LocalExecutor), the dag-processor and the triggerer (deferrable
# tasks, deadline alerts), on the metadata database AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names
# (scripts/env.sh: the stack's PostgreSQL, which `scripts/stack.sh postgres` starts). `make up` runs
# `start`, `make down` runs `stop`.
#
#   scripts/airflow_services.sh start | stop | status | restart
#
# Every command is idempotent. `start` migrates the metadata database (`airflow db migrate`) unless
# every service already runs, then starts the ones that do not. Each service runs in the background
# in its own process group; pid files live in $AIRFLOW_HOME/run (so two Airflow homes never mix), logs
# in $AIRFLOW_SERVICES_LOG_DIR (default $LAKEHOUSE_HOME/logs): airflow-api-server.log,
# airflow-scheduler.log, airflow-dag-processor.log, airflow-triggerer.log (task logs: $AIRFLOW_HOME/logs).
#
# Auth is on (SimpleAuthManager): user $AIRFLOW_ADMIN_USER with role ADMIN and password
# $AIRFLOW_ADMIN_PASSWORD (default admin/admin; the api-server listens on 127.0.0.1 only).
# A REST API token: curl -X POST http://127.0.0.1:8080/auth/token -H 'Content-Type: application/json' \
#                        -d '{"username": "admin", "password": "admin"}'
#
# Settings (environment, defaults in brackets):
#   AIRFLOW_API_SERVER_HOST [127.0.0.1]   AIRFLOW_API_SERVER_PORT [8080]
#   AIRFLOW_ADMIN_USER [admin]            AIRFLOW_ADMIN_PASSWORD [admin]
#   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN [the stack's Postgres, scripts/env.sh]
#   AIRFLOW_SERVICES_LOG_DIR [$LAKEHOUSE_HOME/logs]
#   AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT [8793]   (the scheduler serves running tasks' logs there)
#   AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT [8794]  (the triggerer serves its triggers' logs there)
#   AIRFLOW_SERVICES_START_TIMEOUT [120]  seconds to wait for the api-server to answer
# The tasks read the AIRFLOW_CONN_* connections of this environment (scripts/env.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"

die() { echo "airflow-services: ERROR: $*" >&2; exit 1; }
info() { echo "airflow-services: $*"; }

API_HOST="${AIRFLOW_API_SERVER_HOST:-127.0.0.1}"
API_PORT="${AIRFLOW_API_SERVER_PORT:-8080}"
ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"
ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:-admin}"
LOG_DIR="${AIRFLOW_SERVICES_LOG_DIR:-$STACK_LOGS}"
RUN_DIR="$AIRFLOW_HOME/run"
START_TIMEOUT="${AIRFLOW_SERVICES_START_TIMEOUT:-120}"
API_URL="http://$API_HOST:$API_PORT"
SERVICES=(api-server scheduler dag-processor triggerer)

# What every service needs to agree on. LocalExecutor (it also runs on SQLite in Airflow 3, as in
# `airflow standalone`, which the integration tests' own homes use); tasks report to the api-server's
# execution API, so its URL follows the port.
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-$ADMIN_USER:admin}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$API_URL/execution/}"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-8793}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-8794}"
DB_URL="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
AIRFLOW="$VENV/bin/airflow"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() {
  local port=$1 what=$2 who
  if port_open "$port"; then
    who=$(ss -ltnp "sport = :$port" 2>/dev/null | awk 'NR>1{print $NF}' | head -1)
    die "port $port (needed for $what) is already in use${who:+ by $who}. Stop that process, or choose another port: $3"
  fi
}

pid_of() { # the process-group leader of a service, if it is alive
  local f="$RUN_DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  rm -f "$f"
  return 1
}

api_healthy() { curl -fsS --max-time 3 "$API_URL/api/v2/monitor/health" >/dev/null 2>&1; }

all_running() { local svc; for svc in "${SERVICES[@]}"; do pid_of "$svc" >/dev/null || return 1; done; }

db_where() { # the metadata database without its password, for messages
  sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$DB_URL"
}

ensure_home() {
  mkdir -p "$AIRFLOW_HOME" "$RUN_DIR" "$LOG_DIR"
  [[ -x "$AIRFLOW" ]] || die "$AIRFLOW not found; run 'make install'"
  if [[ "$DB_URL" == postgresql* ]] && ! "$PYTHON" -c 'import psycopg2, asyncpg' >/dev/null 2>&1; then
    die "the PostgreSQL drivers (psycopg2, asyncpg) are missing from $VENV; run 'make install' (requirements.txt pins psycopg2-binary and asyncpg)"
  fi
  if ! all_running; then
    info "migrating the Airflow metadata database ($(db_where)); log $LOG_DIR/airflow-db-migrate.log"
    if ! "$AIRFLOW" db migrate >"$LOG_DIR/airflow-db-migrate.log" 2>&1; then
      tail -5 "$LOG_DIR/airflow-db-migrate.log" >&2
      local hint=""
      [[ "$DB_URL" != postgresql* ]] || hint=" Is PostgreSQL running? ('bash scripts/stack.sh postgres' starts the stack's)"
      die "airflow db migrate failed; see $LOG_DIR/airflow-db-migrate.log.$hint"
    fi
  fi
  # The pools that cap Flink batch work and GX validations (lakehouse.core.pools), sized from the
  # local cluster's slots; running it again resizes them.
  "$PYTHON" -m lakehouse.core.pools --apply --airflow "$AIRFLOW" --flink-slots "$FLINK_TM_SLOTS" >>"$LOG_DIR/airflow-pools.log" 2>&1 \
    || { tail -5 "$LOG_DIR/airflow-pools.log" >&2; die "creating the Airflow pools failed; see $LOG_DIR/airflow-pools.log"; }
  # The password of the admin user comes from the environment, not from a generated file.
  "$PYTHON" - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$ADMIN_USER" "$ADMIN_PASSWORD" <<'PY'
import json, os, sys
path, user, password = sys.argv[1:]
try:
    with open(path) as f:
        passwords = json.loads(f.read().strip() or "{}")
except FileNotFoundError:
    passwords = {}
if passwords.get(user) != password:
    passwords[user] = password
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(passwords) + "\n")
PY
}

launch() { # launch <service> <airflow args...>: own session/process group, pid file = group id
  local name=$1; shift
  local log="$LOG_DIR/airflow-$name.log"
  echo "==== $(date -u +%FT%TZ) starting airflow $* (AIRFLOW_HOME=$AIRFLOW_HOME)" >>"$log"
  setsid nohup "$AIRFLOW" "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  info "started $name (pid $!), log $log"
}

start() {
  ensure_home
  if ! pid_of api-server >/dev/null; then
    require_free_port "$API_PORT" "the Airflow api-server" "AIRFLOW_API_SERVER_PORT=<port> $0 start"
  fi
  if ! pid_of scheduler >/dev/null; then
    require_free_port "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" "the scheduler's task log server" \
      "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=<port> $0 start"
  fi
  if ! pid_of triggerer >/dev/null; then
    require_free_port "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" "the triggerer's log server" \
      "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=<port> $0 start"
  fi
  local svc
  for svc in "${SERVICES[@]}"; do
    if pid=$(pid_of "$svc"); then info "$svc already running (pid $pid)"; continue; fi
    case "$svc" in
      api-server) launch api-server api-server --host "$API_HOST" --port "$API_PORT" ;;
      scheduler) launch scheduler scheduler ;;
      dag-processor) launch dag-processor dag-processor ;;
      triggerer) launch triggerer triggerer ;;
    esac
  done
  local i
  for ((i = 0; i < START_TIMEOUT * 2; i++)); do
    api_healthy && break
    pid_of api-server >/dev/null || { tail -30 "$LOG_DIR/airflow-api-server.log" >&2; die "the api-server exited; see $LOG_DIR/airflow-api-server.log"; }
    sleep 0.5
  done
  api_healthy || die "the api-server did not answer on $API_URL within ${START_TIMEOUT} s; see $LOG_DIR/airflow-api-server.log"
  for svc in scheduler dag-processor triggerer; do
    pid_of "$svc" >/dev/null || { tail -30 "$LOG_DIR/airflow-$svc.log" >&2; die "$svc exited; see $LOG_DIR/airflow-$svc.log"; }
  done
  info "Airflow UI and REST API on $API_URL (login $ADMIN_USER), AIRFLOW_HOME=$AIRFLOW_HOME"
}

stop_one() {
  local svc=$1 pid i
  pid=$(pid_of "$svc") || { info "$svc not running"; return 0; }
  info "stopping $svc (process group $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 -- "-$pid" 2>/dev/null; then
    info "$svc did not stop within 30 s; killing process group $pid"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$svc.pid"
}

stop() {
  # The scheduler first, so it does not hand out work while the api-server goes away; the api-server
  # last, as running tasks and triggers report to it.
  local svc
  for svc in scheduler triggerer dag-processor api-server; do stop_one "$svc"; done
}

status() {
  local ok=0 svc pid where
  for svc in "${SERVICES[@]}"; do
    case "$svc" in
      api-server) where="$API_URL" ;;
      scheduler) where="task logs :$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" ;;
      triggerer) where="trigger logs :$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" ;;
      *) where="" ;;
    esac
    if pid=$(pid_of "$svc"); then
      if [[ "$svc" == api-server ]] && ! api_healthy; then
        printf '%-14s start %s (pid %s, not answering yet)\n' "$svc" "$where" "$pid"; ok=1
      else
        printf '%-14s up    %s%s(pid %s)\n' "$svc" "$where" "${where:+ }" "$pid"
      fi
    else
      printf '%-14s DOWN\n' "$svc"; ok=1
    fi
  done
  printf '%-14s %s on %s\n' "airflow home" "$AIRFLOW_HOME" "$(db_where)"
  printf '%-14s %s/airflow-{%s}.log; task logs %s/logs\n' "airflow logs" "$LOG_DIR" "$(IFS=,; echo "${SERVICES[*]}")" "$AIRFLOW_HOME"
  return $ok
}

case "${1:-status}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) die "usage: $0 start|stop|restart|status" ;;
esac
