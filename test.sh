#!/usr/bin/env bash
# Runs the whole test suite: every unit, integration, UI and doc test, all features.
#
#   ./test.sh            (extra arguments go to `cargo test`, e.g. ./test.sh memory)
#
# The Redis tests start their own redis-server processes on free loopback ports, so they
# need the redis-server and redis-cli binaries (not a running server). When those are
# missing this script installs them with apt-get (as root, or through sudo); elsewhere it
# says in one line what to install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing redis-server and redis-tools with apt-get"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    echo "test.sh: installing redis-server and redis-tools with sudo apt-get"
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
  fi
fi
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "test.sh: redis-server/redis-cli not found; install them (Debian/Ubuntu: apt-get install -y redis-server redis-tools; macOS: brew install redis), or set REDIS_SERVER_BIN" >&2
  exit 1
fi

exec cargo test --workspace --all-features "$@"
