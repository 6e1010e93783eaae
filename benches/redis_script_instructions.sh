#!/usr/bin/env bash
# Instructions redis-server executes per call (callgrind), for a bare `SET NX PX`, the steps
# a fenced claim script is built of, cachelock's fenced claim, and the release scripts (read
# from cachelock/src/redis/scripts.rs). Unlike server time, instruction counts repeat from run to
# run whatever else the machine does: use this to compare two versions of a script.
#
#   bash benches/redis_script_instructions.sh   # needs valgrind, redis-server, redis-cli, redis-benchmark
#
# Each row is its own redis-server under callgrind (loopback, no persistence): 2,000 calls to
# warm up, counters zeroed, then CALLS calls (default 10,000) from `redis-benchmark -c 1` on
# fresh random keys (every claim wins), counters dumped. The count covers the whole server
# (event loop, reading the request, writing the reply), not only the command. A release
# needs a held key, so each release row is one script that sets the key, then releases it:
# compare it with the row that only sets it. Counts repeat to within 1 %; a row far off the
# others' pattern (seen once: the claim at 40,000) is a run to repeat.
set -euo pipefail

calls=${CALLS:-10000}
claim=$(bash "$(dirname "$0")/script_text.sh" claim)
release=$(bash "$(dirname "$0")/script_text.sh" release)

# row NAME [SCRIPT [NUMKEYS KEY ARGS...]]: without SCRIPT, a bare SET NX PX; the script's
# keys and arguments default to a claim's (lock key, counter key, token, TTL).
row() {
    local name=$1 body=${2:-} port dir pid sha args total
    shift $(($# < 2 ? $# : 2))
    local script_args=("$@")
    [ ${#script_args[@]} -gt 0 ] || script_args=(2 "k:__rand_int__" "c" token 10000)
    port=$((20000 + RANDOM % 20000))
    dir=$(mktemp -d)
    valgrind --tool=callgrind --callgrind-out-file="$dir/out.%p" redis-server --port "$port" \
        --save "" --appendonly no --dir "$dir" >/dev/null 2>&1 &
    pid=$!
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.2; done
    if [ -z "$body" ]; then
        args=(set "k:__rand_int__" token NX PX 10000)
    else
        sha=$(redis-cli -p "$port" script load "$body")
        args=(evalsha "$sha" "${script_args[@]}")
    fi
    redis-benchmark -p "$port" -n 2000 -c 1 -r 100000000 -q "${args[@]}" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    # The server may take the zeroing only when a request wakes it: wake it before the count.
    redis-cli -p "$port" ping >/dev/null
    redis-benchmark -p "$port" -n "$calls" -c 1 -r 100000000 -q "${args[@]}" >/dev/null
    callgrind_control -d "$pid" >/dev/null 2>&1
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$pid" 2>/dev/null || true
    total=$(grep -h '^totals:' "$dir"/out.*.1 | awk '{s += $2} END {print s}')
    printf '%-52s %8.0f instructions/call\n' "$name" "$((total / calls))"
    rm -rf "$dir"
}

setnx="if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end"
echo "# redis-server $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p'), $calls calls each, callgrind"
row "SET key token NX PX 10000 (no script)"
row "script: SET NX PX, return 1" "$setnx return 1"
row "script: SET NX PX, TIME" "$setnx local t = redis.call('TIME') return 1"
row "script: SET NX PX, INCR counter" "$setnx return redis.call('INCR', KEYS[2])"
row "script: SET NX PX, SET counter <16 digits> GET" \
    "$setnx local o = redis.pcall('SET', KEYS[2], '1796000000000000', 'GET') return 1"
row "script: SET NX PX, TIME, SET counter GET (the calls alone)" \
    "$setnx local t = redis.call('TIME') local o = redis.pcall('SET', KEYS[2], '1796000000000000', 'GET') return 1"
row "cachelock's fenced claim" "$claim"

# Releases: ARGV[1] the token, ARGV[2] the whole value a claim of this process stores.
token=0123456789abcdef0123456789abcdef
value="$token|12345|worker-host-1|"
held="redis.call('SET', KEYS[1], ARGV[2], 'PX', 10000)"
labelled="redis.call('SET', KEYS[1], ARGV[2] .. 'nightly', 'PX', 10000)"
limit_release="if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
row "script: SET key, return 1" "$held return 1" 1 "k:__rand_int__" "$token" "$value"
row "script: SET key, the LIMIT's compare-and-delete" \
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', 10000) $limit_release" 1 "k:__rand_int__" "$token" "$value"
row "script: SET key, cachelock's release" "$held $release" 1 "k:__rand_int__" "$token" "$value"
row "script: SET key with a label, cachelock's release" "$labelled $release" \
    1 "k:__rand_int__" "$token" "$value"
