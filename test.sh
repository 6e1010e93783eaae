#!/usr/bin/env bash
# Runs the whole test suite: every unit, integration, UI and doc test, all features.
#
#   ./test.sh            (extra arguments go to `cargo test`, e.g. ./test.sh memory)
#   ./test.sh --setup    (installs what is missing, runs nothing: `.ci/run` does this before
#                         clippy, which builds etcd's client and so needs protoc)
#
# The store tests run against real servers: redis-server (and redis-cli for the cluster),
# memcached and etcd are started by the tests themselves on free loopback ports; PostgreSQL
# and MariaDB get a fresh database per test, on the server given by
# CACHELOCK_TEST_POSTGRES_URL / CACHELOCK_TEST_MYSQL_URL, else the one on 127.0.0.1, else a
# private server the harness starts. etcd's client library is built with protoc. When one of
# those programs is missing, this script installs it with apt-get (as root, or through sudo);
# elsewhere it says in one line what to install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# program -> the Debian package that provides it
needed=(
  "redis-server:redis-server"
  "redis-cli:redis-tools"
  "memcached:memcached"
  "etcd:etcd-server"
  "protoc:protobuf-compiler"
  "google/protobuf/descriptor.proto:libprotobuf-dev"
  "psql:postgresql"
  "mariadb:mariadb-server"
)
have() {
  case "$1" in
    # The server binaries live outside PATH on Debian.
    psql) command -v psql >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ;;
    # protoc's well-known types (etcd's .proto files import them): a "recommends" of
    # protobuf-compiler, so absent after an install without recommends.
    google/protobuf/descriptor.proto) [ -f /usr/include/google/protobuf/descriptor.proto ] ;;
    mariadb) command -v mariadb >/dev/null && { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } ;;
    *) command -v "$1" >/dev/null ;;
  esac
}
missing=()
for pair in "${needed[@]}"; do
  have "${pair%%:*}" || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${missing[*]} with apt-get"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    echo "test.sh: installing ${missing[*]} with sudo apt-get"
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi
for pair in "${needed[@]}"; do
  if ! have "${pair%%:*}"; then
    echo "test.sh: ${pair%%:*} not found; install it (Debian/Ubuntu: apt-get install -y ${pair#*:}; macOS: brew install redis memcached etcd protobuf postgresql mariadb), or set REDIS_SERVER_BIN and friends" >&2
    exit 1
  fi
done

if [ "${1:-}" = "--setup" ]; then
  echo "test.sh: every program the tests need is here"
  exit 0
fi

exec cargo test --workspace --all-features "$@"
