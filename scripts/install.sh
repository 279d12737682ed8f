#!/usr/bin/env bash
# Installs what the local stack needs, skipping what is already there:
#   1. Debian's mariadb-server and postgresql (need root; CI and these machines run as root); neither
#      package starts a system server: stack.sh runs our own under .stack/. Also Debian's chromium and
#      chromium-driver: the browser tests of the Airflow UI (tests/integration/ui) drive them headless
#   2. the Python environment .venv from requirements.txt + constraints.txt, and the development
#      tools (ruff, pre-commit) from requirements-dev.txt + constraints.txt
#   3. the Flink distribution: jars from the apache-flink-libraries wheel, bin/ and conf/ from
#      the apache-flink wheel (unpacked, not installed: its Python side is not needed)
#   4. connector jars from Maven Central (flink/pom.xml)
# Usage: install.sh [all|python]. `python` installs step 2 only (what `make lint` and
# `make test-unit` need: no root, apt, Java, Maven or Flink); `all`, the default, does every step.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
die() { echo "install: ERROR: $*" >&2; exit 1; }
info() { echo "install: $*"; }
what="${1:-all}"
[[ "$what" == all || "$what" == python ]] || die "unknown argument '$what'. Usage: scripts/install.sh [all|python]"
mkdir -p "$LAKEHOUSE_HOME" "$STACK_LOGS"

if [[ "$what" == all ]]; then
  command -v java >/dev/null 2>&1 || die "java not found. Install a JDK 11/17 (Debian: apt-get install -y openjdk-17-jdk-headless)."
  command -v mvn >/dev/null 2>&1 || die "mvn not found. Install Maven (Debian: apt-get install -y maven)."
fi

# 1. MariaDB, PostgreSQL and Chromium ---------------------------------------------------------
pg_server_installed() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }
apt_packages=()
if [[ "$what" == all ]]; then
  command -v mariadbd >/dev/null 2>&1 || apt_packages+=(mariadb-server mariadb-client)
  pg_server_installed || apt_packages+=(postgresql)
  # /usr/bin/chromium and /usr/bin/chromedriver (the same Chromium version), for Selenium; no browser
  # is ever downloaded from elsewhere.
  [[ -x /usr/bin/chromium ]] || apt_packages+=(chromium)
  [[ -x /usr/bin/chromedriver ]] || apt_packages+=(chromium-driver)
fi
if [[ ${#apt_packages[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "${apt_packages[*]} missing and installing needs root: sudo apt-get install -y ${apt_packages[*]}"
  info "installing ${apt_packages[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$STACK_LOGS/apt.log" 2>&1 || die "apt-get update failed; see $STACK_LOGS/apt.log"
  # A policy-rc.d that says "no" keeps the packages from starting system-wide servers on ports 3306
  # and 5432 (and Debian's postgresql from creating its cluster's service): stack.sh runs our own,
  # with our settings, under .stack/.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get install -y -q "${apt_packages[@]}" >>"$STACK_LOGS/apt.log" 2>&1 || die "apt-get install ${apt_packages[*]} failed; see $STACK_LOGS/apt.log"
  [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
fi

# 2. Python ----------------------------------------------------------------------------------
stamp="$VENV/.requirements.sha"
want=$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  py=${PYTHON_BIN:-python3.11}
  command -v "$py" >/dev/null 2>&1 || py=python3
  "$py" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null || die "Python 3.11 is required (found $("$py" --version 2>&1)). Set PYTHON_BIN."
  info "creating $VENV (pip install -r requirements.txt -c constraints.txt; a few minutes)"
  [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >"$STACK_LOGS/pip.log" 2>&1
  "$VENV/bin/pip" install -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt" >>"$STACK_LOGS/pip.log" 2>&1 \
    || die "pip install failed; see $STACK_LOGS/pip.log"
  echo "$want" > "$stamp"
fi
# The development tools, with their own stamp: a change to requirements-dev.txt reinstalls them only.
dev_stamp="$VENV/.requirements-dev.sha"
want=$(cat "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
if [[ "$(cat "$dev_stamp" 2>/dev/null)" != "$want" ]]; then
  info "installing the development tools (pip install -r requirements-dev.txt -c constraints.txt)"
  "$VENV/bin/pip" install -r "$ROOT/requirements-dev.txt" -c "$ROOT/constraints.txt" >>"$STACK_LOGS/pip.log" 2>&1 \
    || die "pip install of the development tools failed; see $STACK_LOGS/pip.log"
  echo "$want" > "$dev_stamp"
fi
if [[ "$what" == python ]]; then
  info "ready: $("$VENV/bin/python" --version) in $VENV"
  exit 0
fi

# 3. Flink distribution ----------------------------------------------------------------------
if [[ ! -x "$FLINK_DIST/pyflink/bin/start-cluster.sh" ]] || [[ ! -f "$FLINK_DIST/pyflink/lib/flink-dist-$FLINK_VERSION.jar" ]]; then
  info "fetching the Flink $FLINK_VERSION distribution from PyPI"
  rm -rf "$FLINK_DIST" && mkdir -p "$FLINK_DIST"
  "$VENV/bin/pip" install -q --no-deps --target "$FLINK_DIST" "apache-flink-libraries==$FLINK_VERSION" >>"$STACK_LOGS/pip.log" 2>&1 \
    || die "could not fetch apache-flink-libraries==$FLINK_VERSION; see $STACK_LOGS/pip.log"
  tmp=$(mktemp -d)
  "$VENV/bin/pip" download -q --no-deps -d "$tmp" "apache-flink==$FLINK_VERSION" >>"$STACK_LOGS/pip.log" 2>&1 \
    || die "could not fetch apache-flink==$FLINK_VERSION; see $STACK_LOGS/pip.log"
  (cd "$FLINK_DIST" && "$VENV/bin/python" -m zipfile -e "$tmp"/apache_flink-*.whl "$tmp/whl" \
    && cp -r "$tmp/whl/pyflink/bin" "$tmp/whl/pyflink/conf" pyflink/)
  chmod +x "$FLINK_DIST"/pyflink/bin/*
  rm -rf "$tmp"
fi

# 4. Connector jars --------------------------------------------------------------------------
# Every dependency of flink/pom.xml, none listed here: a change to the pom changes the stamp, so
# an existing install fetches again. Fetched beside the old set and swapped in, so a failed mvn
# leaves the jars a running cluster uses in place.
jar_stamp="$JARS_DIR/.pom.sha"
want=$(sha256sum "$ROOT/flink/pom.xml" | cut -c1-16)
if [[ "$(cat "$jar_stamp" 2>/dev/null)" != "$want" ]]; then
  info "fetching connector jars with Maven (flink/pom.xml)"
  rm -rf "$JARS_DIR.new"
  mvn -q -B -f "$ROOT/flink/pom.xml" dependency:copy-dependencies -DexcludeTransitive=true \
    -DoutputDirectory="$JARS_DIR.new" >"$STACK_LOGS/mvn.log" 2>&1 || die "mvn could not fetch the jars; see $STACK_LOGS/mvn.log"
  echo "$want" > "$JARS_DIR.new/.pom.sha"
  rm -rf "$JARS_DIR" && mv "$JARS_DIR.new" "$JARS_DIR"
  # stack.sh links the jars into Flink's lib/ when it starts the cluster: a running one keeps the old set.
  if curl -fsS --max-time 3 "http://127.0.0.1:$FLINK_REST_PORT/overview" >/dev/null 2>&1; then
    info "Flink is running with the connector jars of before: restart it to load the new ones (make down && make up)"
  fi
fi
info "ready: $(ls "$JARS_DIR"/*.jar | wc -l) connector jars, Flink $FLINK_VERSION, $("$VENV/bin/python" --version)"
