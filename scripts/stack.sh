#!/usr/bin/env bash
# Local lakehouse stack, no Docker: MariaDB (binlog on), a Flink session cluster from the
# PyFlink distribution plus the SQL Gateway, a Paimon warehouse on the local file system,
# PostgreSQL for Airflow's metadata database and the Airflow services (api-server, scheduler,
# dag-processor, triggerer; scripts/airflow_services.sh). Every command is idempotent.
#
#   scripts/stack.sh up | down | status | reset
#   scripts/stack.sh mariadb | flink | postgres | airflow       (start one service; airflow needs postgres)
#   scripts/stack.sh mariadb-down | flink-down | postgres-down | airflow-down
#                                                             (bench/faults.py stops MariaDB alone)
#
# `down` stops the Airflow services first (no task starts against a stopping cluster), then Flink,
# MariaDB and Postgres; `reset` does the same before it deletes $LAKEHOUSE_HOME.
#
# Everything lives under $LAKEHOUSE_HOME (default: <repo>/.stack). Ports and sizes come from
# the environment (see scripts/env.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"

die() { echo "stack: ERROR: $*" >&2; exit 1; }
info() { echo "stack: $*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port that is already taken by something that is not ours is a clear error, not a hang.
require_free_port() {
  local port=$1 what=$2
  if port_open "$port"; then
    local who
    who=$(ss -ltnp "sport = :$port" 2>/dev/null | awk 'NR>1{print $NF}' | head -1)
    die "port $port (needed for $what) is already in use${who:+ by $who}. Stop that process or set the port variable in scripts/env.sh."
  fi
}

wait_for() { # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

check_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH. Flink 2.2 needs Java 11 or 17 (Debian: apt-get install openjdk-17-jre-headless)."
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/{print $2}' | cut -d. -f1)
  [[ "$v" =~ ^(11|17|21)$ ]] || die "java $v found; Flink 2.2 runs on Java 11, 17 or 21."
}

# ---------------------------------------------------------------- MariaDB
mysql_root() { mariadb --protocol=socket -S "$MYSQL_SOCKET" -uroot "$@"; }

mariadb_running() { [[ -S "$MYSQL_SOCKET" ]] && mysql_root -e 'SELECT 1' >/dev/null 2>&1; }

mariadb_up() {
  command -v mariadbd >/dev/null 2>&1 || die "mariadbd not found. Run 'make install' (it installs Debian's mariadb-server) or: apt-get install -y mariadb-server"
  if mariadb_running; then info "MariaDB already running on port $MYSQL_PORT"; return; fi
  require_free_port "$MYSQL_PORT" "MariaDB"
  mkdir -p "$MYSQL_DATA" "$STACK_LOGS"
  cat > "$LAKEHOUSE_HOME/mariadb.cnf" <<CNF
[mariadbd]
datadir=$MYSQL_DATA
socket=$MYSQL_SOCKET
port=$MYSQL_PORT
bind-address=127.0.0.1
pid-file=$LAKEHOUSE_HOME/mariadb.pid
log-error=$STACK_LOGS/mariadb.err
# Binlog for change data capture: row-based, full row images, kept a week.
server-id=1
log-bin=$MYSQL_DATA/binlog
binlog-format=ROW
binlog-row-image=FULL
binlog-expire-logs-seconds=604800
# The CDC connector resumes from binlog file + position (MariaDB GTIDs are not understood
# by Flink CDC, FLINK-34807), so GTID strict mode is not needed; see docs/CDC_ON_MARIADB.md.
innodb-buffer-pool-size=512M
innodb-flush-log-at-trx-commit=2
max-connections=300
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
default-time-zone='+00:00'
CNF
  if [[ ! -d "$MYSQL_DATA/mysql" ]]; then
    info "initialising MariaDB data directory $MYSQL_DATA"
    mariadb-install-db --defaults-file="$LAKEHOUSE_HOME/mariadb.cnf" --user="$(id -un)" \
      --auth-root-authentication-method=socket >"$STACK_LOGS/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see $STACK_LOGS/mariadb-install.log"
  fi
  info "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  nohup mariadbd --defaults-file="$LAKEHOUSE_HOME/mariadb.cnf" --user="$(id -un)" >>"$STACK_LOGS/mariadb.out" 2>&1 &
  wait_for 60 "MariaDB" mariadb_running || die "MariaDB did not start within 60 s; see $STACK_LOGS/mariadb.err"
  # The application user owns the OLTP schema; the CDC user only reads the binlog.
  mysql_root <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;
CREATE DATABASE IF NOT EXISTS lakehouse_ops;
CREATE USER IF NOT EXISTS '$MYSQL_APP_USER'@'%' IDENTIFIED BY '$MYSQL_APP_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_APP_USER'@'localhost' IDENTIFIED BY '$MYSQL_APP_PASSWORD';
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_APP_USER'@'%';
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_APP_USER'@'localhost';
GRANT ALL PRIVILEGES ON lakehouse_ops.* TO '$MYSQL_APP_USER'@'%';
GRANT ALL PRIVILEGES ON lakehouse_ops.* TO '$MYSQL_APP_USER'@'localhost';
-- Integration tests create throw-away databases named it_*.
GRANT ALL PRIVILEGES ON \`it\\_%\`.* TO '$MYSQL_APP_USER'@'%';
GRANT ALL PRIVILEGES ON \`it\\_%\`.* TO '$MYSQL_APP_USER'@'localhost';
CREATE USER IF NOT EXISTS '$MYSQL_CDC_USER'@'%' IDENTIFIED BY '$MYSQL_CDC_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_CDC_USER'@'localhost' IDENTIFIED BY '$MYSQL_CDC_PASSWORD';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '$MYSQL_CDC_USER'@'%';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '$MYSQL_CDC_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

mariadb_down() {
  if [[ -f "$LAKEHOUSE_HOME/mariadb.pid" ]] && kill -0 "$(cat "$LAKEHOUSE_HOME/mariadb.pid")" 2>/dev/null; then
    info "stopping MariaDB"
    kill "$(cat "$LAKEHOUSE_HOME/mariadb.pid")"
    wait_for 60 "MariaDB stop" bash -c "! kill -0 $(cat "$LAKEHOUSE_HOME/mariadb.pid") 2>/dev/null" || die "MariaDB did not stop"
  fi
}

# ---------------------------------------------------------------- Flink
flink_dist() {
  local dist="$FLINK_DIST/pyflink"
  [[ -x "$dist/bin/start-cluster.sh" ]] || return 1
  echo "$dist"
}

# A FLINK_HOME of our own: the distribution's scripts and jars (from the apache-flink-libraries
# wheel), our config, and the connector jars from flink/pom.xml. The wheel is never modified.
flink_home_build() {
  local dist
  dist=$(flink_dist) || die "no Flink $FLINK_VERSION distribution in $FLINK_DIST. Run 'make install' (pip install --target of apache-flink-libraries==$FLINK_VERSION)."
  local jars=("$JARS_DIR"/*.jar)
  [[ -e "${jars[0]}" ]] || die "no connector jars in $JARS_DIR. Run 'make jars' (mvn -f flink/pom.xml)."
  rm -rf "$FLINK_HOME/bin" "$FLINK_HOME/lib" "$FLINK_HOME/opt" "$FLINK_HOME/conf"
  mkdir -p "$FLINK_HOME"/{lib,opt,conf,log,plugins}
  cp -r "$dist/bin" "$FLINK_HOME/bin"
  rm -f "$FLINK_HOME/bin/find_flink_home.py"
  for j in "$dist"/lib/*.jar; do ln -sf "$j" "$FLINK_HOME/lib/"; done
  for j in "$dist"/opt/*.jar; do ln -sf "$j" "$FLINK_HOME/opt/"; done
  for j in "$JARS_DIR"/*.jar; do
    case "$(basename "$j")" in
      flink-sql-gateway-*) ln -sf "$j" "$FLINK_HOME/opt/" ;;
      *) ln -sf "$j" "$FLINK_HOME/lib/" ;;
    esac
  done
  cp "$dist"/conf/log4j*.properties "$FLINK_HOME/conf/"
  echo localhost:"$FLINK_REST_PORT" > "$FLINK_HOME/conf/masters"
  echo localhost > "$FLINK_HOME/conf/workers"
  "$PYTHON" "$ROOT/scripts/render_flink_conf.py" > "$FLINK_HOME/conf/config.yaml"
}

flink_running() { curl -fsS --max-time 3 "http://127.0.0.1:$FLINK_REST_PORT/overview" >/dev/null 2>&1; }
gateway_running() { curl -fsS --max-time 3 "http://127.0.0.1:$SQL_GATEWAY_PORT/v1/info" >/dev/null 2>&1; }
flink_tm_registered() { curl -fsS --max-time 3 "http://127.0.0.1:$FLINK_REST_PORT/overview" | grep -q '"taskmanagers":[1-9]'; }

flink_tm_registered_count() {
  { curl -fsS --max-time 3 "http://127.0.0.1:$FLINK_REST_PORT/overview" 2>/dev/null || true; } \
    | grep -o '"taskmanagers":[0-9]*' | cut -d: -f2 || true
}

# ---- TaskManager processes of this stack
# A JobManager killed with -9 leaves its TaskManager running; starting the cluster beside it would
# add a second TaskManager (6 GB each), one more after every crash.

# Alive and not a zombie (a killed child not yet reaped by its parent counts as stopped).
pid_alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n "$s" && "$s" != Z* ]]; }
pid_gone() { ! pid_alive "$1"; }

ere_escape() { printf '%s' "$1" | sed 's/[].[\\*^$()+?{}|]/\\&/g'; }

# The pids (one a line, sorted) of the TaskManagers of this stack: those in Flink's pid file
# ($LAKEHOUSE_HOME/flink-<user>-taskexecutor.pid, env.pid.dir) that still run a TaskManagerRunner,
# and any TaskManagerRunner started with this stack's config directory (a pid file can be stale).
taskmanager_pids() {
  local f p
  {
    for f in "$LAKEHOUSE_HOME"/flink-*-taskexecutor.pid; do
      [[ -f "$f" ]] || continue
      while read -r p || [[ -n "$p" ]]; do
        if [[ "$p" =~ ^[0-9]+$ ]] && ps -ww -o args= -p "$p" 2>/dev/null | grep -q TaskManagerRunner; then echo "$p"; fi
      done <"$f"
    done
    pgrep -f "TaskManagerRunner --configDir $(ere_escape "$FLINK_CONF_DIR")( |\$)" 2>/dev/null || true
  } | while read -r p; do if pid_alive "$p"; then echo "$p"; fi; done | sort -nu
}

# Drop the pids that no longer run from Flink's TaskManager pid file (its `stop` takes the last line).
taskmanager_pid_file_prune() {
  local f p keep
  for f in "$LAKEHOUSE_HOME"/flink-*-taskexecutor.pid; do
    [[ -f "$f" ]] || continue
    keep=$(while read -r p || [[ -n "$p" ]]; do if pid_alive "$p"; then echo "$p"; fi; done <"$f")
    if [[ -n "$keep" ]]; then echo "$keep" >"$f"; else rm -f "$f"; fi
  done
}

# Called only when no JobManager answers on our REST port (and the port is free): every TaskManager
# of this stack is then an orphan. Stopped rather than reused: the new cluster's TaskManager is
# started from the config just rendered, and no doubt remains about which settings a TM runs with.
taskmanager_orphans_stop() {
  local pids p
  pids=$(taskmanager_pids)
  [[ -n "$pids" ]] || return 0
  for p in $pids; do
    info "stopping orphaned TaskManager (pid $p): its JobManager is gone, and a new cluster brings its own"
    kill "$p" 2>/dev/null || continue
    if ! wait_for 30 "TaskManager $p stop" pid_gone "$p"; then
      info "TaskManager (pid $p) still running 30 s after SIGTERM; sending SIGKILL"
      kill -9 "$p" 2>/dev/null || true
      wait_for 10 "TaskManager $p kill" pid_gone "$p" \
        || die "orphaned TaskManager (pid $p) survived SIGKILL; stop it by hand (kill -9 $p) and run 'make up' again."
    fi
  done
  taskmanager_pid_file_prune
}

# With a JobManager up: more TaskManager processes than registered ones (one may still be registering,
# e.g. just started by supervision), or more than the one this stack runs (conf/workers). Named, never
# killed here: which one to stop is the operator's call.
taskmanager_warning() {
  local pids n registered list
  pids=$(taskmanager_pids)
  n=$(echo "$pids" | grep -c . || true)
  list=$(echo "$pids" | paste -sd' ')
  registered=$(flink_tm_registered_count)
  registered=${registered:-0}
  if ((n > registered)); then
    echo "$n TaskManager process(es) (pid $list) but $registered registered with the JobManager: one still starting registers within seconds; otherwise stop the one not registered (kill <pid>) or restart the cluster ('make down && make up')"
  elif ((n > 1)); then
    echo "$n TaskManager processes (pid $list) where this stack runs one ($FLINK_TM_MEMORY each): restart the cluster ('make down && make up') to keep one"
  fi
}

flink_up() {
  check_java
  if flink_running; then
    info "Flink already running: http://127.0.0.1:$FLINK_REST_PORT"
    local warning
    warning=$(taskmanager_warning)
    [[ -z "$warning" ]] || info "WARNING: $warning"
  else
    require_free_port "$FLINK_REST_PORT" "the Flink JobManager REST API"
    require_free_port "$FLINK_RPC_PORT" "the Flink JobManager RPC"
    taskmanager_orphans_stop
    flink_home_build
    mkdir -p "$CHECKPOINT_DIR" "$SAVEPOINT_DIR" "$WAREHOUSE"
    info "starting Flink session cluster ($FLINK_TM_SLOTS slots, TM ${FLINK_TM_MEMORY}) on http://127.0.0.1:$FLINK_REST_PORT"
    "$FLINK_HOME/bin/start-cluster.sh" >"$STACK_LOGS/flink-start.log" 2>&1 || die "start-cluster.sh failed; see $STACK_LOGS/flink-start.log"
    wait_for 90 "Flink REST" flink_running || die "Flink JobManager did not answer within 90 s; see $FLINK_HOME/log/*standalonesession*.log"
    wait_for 90 "TaskManager" flink_tm_registered || die "no TaskManager registered within 90 s; see $FLINK_HOME/log/*taskexecutor*.log"
  fi
  if gateway_running; then
    info "SQL Gateway already running: http://127.0.0.1:$SQL_GATEWAY_PORT"
  else
    require_free_port "$SQL_GATEWAY_PORT" "the Flink SQL Gateway"
    info "starting Flink SQL Gateway on http://127.0.0.1:$SQL_GATEWAY_PORT"
    "$FLINK_HOME/bin/sql-gateway.sh" start -Dsql-gateway.endpoint.rest.address=127.0.0.1 \
      -Dsql-gateway.endpoint.rest.bind-address=127.0.0.1 -Dsql-gateway.endpoint.rest.port="$SQL_GATEWAY_PORT" \
      >"$STACK_LOGS/sql-gateway-start.log" 2>&1 || die "sql-gateway.sh failed; see $STACK_LOGS/sql-gateway-start.log"
    wait_for 90 "SQL Gateway" gateway_running || die "SQL Gateway did not answer within 90 s; see $FLINK_HOME/log/*sql-gateway*.log"
  fi
}

flink_down() {
  if [[ -x "$FLINK_HOME/bin/sql-gateway.sh" ]]; then
    "$FLINK_HOME/bin/sql-gateway.sh" stop >/dev/null 2>&1 || true
    "$FLINK_HOME/bin/stop-cluster.sh" >/dev/null 2>&1 || true
  fi
  # Stray processes from an earlier home (e.g. a removed .stack) are ours too.
  pkill -f "lakehouse.home=$LAKEHOUSE_HOME" 2>/dev/null || true
  wait_for 30 "Flink stop" bash -c "! curl -fsS --max-time 3 http://127.0.0.1:$FLINK_REST_PORT/overview" || true
  info "Flink stopped"
}

# ---------------------------------------------------------------- PostgreSQL
# Debian's `postgresql` server binaries (/usr/lib/postgresql/<version>/bin, not on PATH), the newest
# version installed, unless POSTGRES_BIN names the directory.
postgres_bindir() {
  local d
  if [[ -n "${POSTGRES_BIN:-}" ]]; then
    [[ -x "$POSTGRES_BIN/pg_ctl" ]] && echo "$POSTGRES_BIN"
    return
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n | tail -1)
  [[ -n "$d" && -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]] && echo "$d"
}

# Postgres refuses to run as root: as root the cluster belongs to the `postgres` system user the
# package creates (the data directory is chowned to it); otherwise to the user running this script.
postgres_os_user() { if [[ $(id -u) -eq 0 ]]; then echo "${POSTGRES_OS_USER:-postgres}"; else id -un; fi; }

as_postgres() { # as_postgres <command...>: run as the cluster's OS user, in a directory it can read
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u "$(postgres_os_user)" -- "$@"); else "$@"; fi
}

pg_superuser_psql() { # psql as the cluster's superuser over its unix socket (in the data directory)
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$POSTGRES_DATA" -p "$POSTGRES_PORT" -U postgres -d postgres "$@"
}

postgres_pid() { head -1 "$POSTGRES_DATA/postmaster.pid" 2>/dev/null; }

# Ours: the postmaster of $POSTGRES_DATA is alive and the port answers.
postgres_running() {
  local bin pid
  bin=$(postgres_bindir) || return 1
  pid=$(postgres_pid) && [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && "$bin/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" >/dev/null 2>&1
}

postgres_up() {
  PG_BIN=$(postgres_bindir) || die "PostgreSQL server binaries not found (/usr/lib/postgresql/<version>/bin). Run 'make install' (it installs Debian's postgresql) or: apt-get install -y postgresql"
  local owner
  owner=$(postgres_os_user)
  id "$owner" >/dev/null 2>&1 || die "OS user '$owner' (owner of the Postgres cluster; Postgres refuses to run as root) does not exist. Install Debian's postgresql (it creates it) or set POSTGRES_OS_USER."
  if postgres_running; then
    info "PostgreSQL already running on 127.0.0.1:$POSTGRES_PORT"
  else
    require_free_port "$POSTGRES_PORT" "PostgreSQL (Airflow's metadata database)"
    mkdir -p "$POSTGRES_DATA"
    if [[ $(id -u) -eq 0 ]]; then chown "$owner:" "$POSTGRES_DATA"; fi
    chmod 700 "$POSTGRES_DATA"
    as_postgres test -w "$POSTGRES_DATA" \
      || die "OS user '$owner' cannot reach $POSTGRES_DATA: every directory above it must be searchable by others (chmod o+x), or set LAKEHOUSE_HOME elsewhere."
    if [[ ! -f "$POSTGRES_DATA/PG_VERSION" ]]; then
      info "initialising PostgreSQL data directory $POSTGRES_DATA"
      as_postgres "$PG_BIN/initdb" -D "$POSTGRES_DATA" -U postgres -E UTF8 --locale=C \
        --auth-local=peer --auth-host=scram-sha-256 >"$STACK_LOGS/postgres-initdb.log" 2>&1 \
        || die "initdb failed; see $STACK_LOGS/postgres-initdb.log"
      echo "include_if_exists = 'lakehouse.conf'" | as_postgres tee -a "$POSTGRES_DATA/postgresql.conf" >/dev/null
    fi
    # Our settings, rewritten on every start (the port may have changed): TCP on 127.0.0.1 only, the
    # unix socket in the data directory (reachable by its owner only).
    as_postgres tee "$POSTGRES_DATA/lakehouse.conf" >/dev/null <<CONF
port = $POSTGRES_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$POSTGRES_DATA'
max_connections = 200
shared_buffers = 128MB
CONF
    touch "$STACK_LOGS/postgres.log"
    if [[ $(id -u) -eq 0 ]]; then chown "$owner:" "$STACK_LOGS/postgres.log"; fi
    info "starting PostgreSQL on 127.0.0.1:$POSTGRES_PORT (data $POSTGRES_DATA)"
    as_postgres "$PG_BIN/pg_ctl" -D "$POSTGRES_DATA" -l "$STACK_LOGS/postgres.log" -w -t 60 start \
      >"$STACK_LOGS/postgres-start.log" 2>&1 \
      || die "PostgreSQL did not start within 60 s; see $STACK_LOGS/postgres.log"
  fi
  # Airflow's role and database; the password follows the environment (psql quotes every value).
  pg_superuser_psql -v user="$POSTGRES_AIRFLOW_USER" -v pw="$POSTGRES_AIRFLOW_PASSWORD" \
    -v db="$POSTGRES_AIRFLOW_DB" >/dev/null 2>"$STACK_LOGS/postgres-setup.log" <<'SQL' \
    || die "could not create the Airflow role and database in PostgreSQL; see $STACK_LOGS/postgres-setup.log"
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user')
\gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', :'pw')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
}

postgres_down() {
  local bin
  bin=$(postgres_bindir) || return 0
  [[ -f "$POSTGRES_DATA/postmaster.pid" ]] || return 0
  info "stopping PostgreSQL"
  as_postgres "$bin/pg_ctl" -D "$POSTGRES_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
    || die "PostgreSQL did not stop within 60 s; see $STACK_LOGS/postgres.log"
}

# ---------------------------------------------------------------- Airflow
# The services (api-server, scheduler, dag-processor, triggerer) on the Postgres metadata database;
# scripts/airflow_services.sh migrates the database and starts what is not running.
airflow_up() { bash "$ROOT/scripts/airflow_services.sh" start; }
airflow_down() { bash "$ROOT/scripts/airflow_services.sh" stop; }

status() {
  local ok=0
  if mariadb_running; then
    printf '%-14s up    127.0.0.1:%s (db %s, pid %s)\n' mariadb "$MYSQL_PORT" "$MYSQL_DATABASE" "$(cat "$LAKEHOUSE_HOME/mariadb.pid" 2>/dev/null)"
  else printf '%-14s DOWN\n' mariadb; ok=1; fi
  if flink_running; then
    printf '%-14s up    http://127.0.0.1:%s  %s\n' flink "$FLINK_REST_PORT" "$(curl -fsS --max-time 3 "http://127.0.0.1:$FLINK_REST_PORT/overview" | "$PYTHON" -c 'import json,sys; o=json.load(sys.stdin); print("%s TM, %s/%s slots free, %s jobs running" % (o["taskmanagers"], o["slots-available"], o["slots-total"], o["jobs-running"]))')"
    local warning
    warning=$(taskmanager_warning)
    if [[ -n "$warning" ]]; then echo "taskmanager  WARNING $warning"; ok=1; fi
  else
    printf '%-14s DOWN\n' flink; ok=1
    local orphans
    orphans=$(taskmanager_pids | paste -sd' ')
    [[ -z "$orphans" ]] || echo "taskmanager  ORPHANED pid $orphans: its JobManager is gone; 'make up' stops it before starting the cluster (or: kill $orphans)"
  fi
  if gateway_running; then printf '%-14s up    http://127.0.0.1:%s\n' sql-gateway "$SQL_GATEWAY_PORT"; else printf '%-14s DOWN\n' sql-gateway; ok=1; fi
  if postgres_running; then
    printf '%-14s up    127.0.0.1:%s (db %s, pid %s)\n' postgres "$POSTGRES_PORT" "$POSTGRES_AIRFLOW_DB" "$(postgres_pid)"
  else printf '%-14s DOWN\n' postgres; ok=1; fi
  bash "$ROOT/scripts/airflow_services.sh" status || ok=1
  printf '%-14s %s\n' warehouse "$WAREHOUSE"
  return $ok
}

mkdir -p "$LAKEHOUSE_HOME" "$STACK_LOGS"
case "${1:-status}" in
  up) mariadb_up; flink_up; postgres_up; airflow_up; status ;;
  down) airflow_down; flink_down; mariadb_down; postgres_down ;;
  status) status ;;
  mariadb) mariadb_up ;;
  mariadb-down) mariadb_down ;;
  flink) flink_up ;;
  flink-down) flink_down ;;
  postgres) postgres_up ;;
  postgres-down) postgres_down ;;
  airflow) postgres_up; airflow_up ;;
  airflow-down) airflow_down ;;
  reset) airflow_down; flink_down; mariadb_down; postgres_down; info "removing $LAKEHOUSE_HOME"; rm -rf "$LAKEHOUSE_HOME" ;;
  *) die "usage: $0 up|down|status|reset (or one service: mariadb|flink|postgres|airflow, mariadb-down|flink-down|postgres-down|airflow-down)" ;;
esac
