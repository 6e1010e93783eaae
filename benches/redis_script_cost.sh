#!/usr/bin/env bash
# Server time per call (INFO commandstats, usec_per_call) of a bare `SET NX PX` and of Lua
# scripts built up to cachelock's fenced claim, on a redis-server of its own (loopback, no
# persistence), 200,000 calls each from `redis-benchmark -c 1` on fresh random keys (every
# claim wins). What it shows: the floor a fenced claim pays for being a script at all.
#
#   bash benches/redis_script_cost.sh          # needs redis-server, redis-cli, redis-benchmark
#
# The last claim row is the fenced claim script read from `cachelock/src/redis/scripts.rs`
# (`CLAIM`); the release rows after it weigh the release's `PUBLISH`.
set -euo pipefail

port=$((20000 + RANDOM % 20000))
dir=$(mktemp -d)
redis-server --port "$port" --save "" --appendonly no --dir "$dir" --daemonize yes \
    --pidfile "$dir/pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

calls=${CALLS:-200000}

# per_call NAME ARGS...: runs the command CALLS times, prints its server time per call.
per_call() {
    local name=$1 stat=$2
    shift 2
    redis-cli -p "$port" config resetstat >/dev/null
    redis-benchmark -p "$port" -n "$calls" -c 1 -r 100000000 -q "$@" >/dev/null
    local usec
    usec=$(redis-cli -p "$port" info commandstats | tr -d '\r' |
        sed -n "s/^cmdstat_$stat:.*usec_per_call=\([0-9.]*\).*/\1/p")
    printf '%-58s %6s us\n' "$name" "$usec"
    redis-cli -p "$port" flushall >/dev/null
}

script() {
    local name=$1 body=$2 sha
    sha=$(redis-cli -p "$port" script load "$body")
    per_call "$name" evalsha evalsha "$sha" 2 "k:__rand_int__" "c" token 10000
}

claim=$(bash "$(dirname "$0")/script_text.sh" claim)

echo "# redis-server $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p'), $calls calls each, $(nproc) cores"
per_call "SET key token NX PX 10000 (no script)" set set "k:__rand_int__" token NX PX 10000
script "script: return 1 (no command)" "return 1"
script "script: SET NX PX, return 1" \
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end return 1"
script "script: SET NX PX, TIME" \
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end local t = redis.call('TIME') return tonumber(t[1])"
script "script: SET NX PX, INCR counter" \
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end return redis.call('INCR', KEYS[2])"
script "cachelock's fenced claim (SET NX PX, TIME, SET GET counter)" "$claim"

# The release side. A release finds its key held, so each of these scripts first SETs the
# key, then releases it: compare the rows with each other (the first is the LIMIT's
# compare-and-delete, the second cachelock's release, which also wakes waiters with a
# PUBLISH, the third checks for listeners instead of publishing).
script "script: SET, then GET + DEL (compare-and-delete)" \
    "redis.call('SET', KEYS[1], ARGV[1]) if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end return 0"
script "script: SET, then GET + DEL + PUBLISH (cachelock's release)" \
    "redis.call('SET', KEYS[1], ARGV[1]) if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) redis.pcall('PUBLISH', 'cachelock:released', KEYS[1]) return 1 end return 0"
script "script: SET, then GET + DEL + PUBSUB NUMSUB (a check)" \
    "redis.call('SET', KEYS[1], ARGV[1]) if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) redis.pcall('PUBSUB', 'NUMSUB', 'cachelock:released') return 1 end return 0"
