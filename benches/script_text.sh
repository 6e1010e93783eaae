#!/usr/bin/env bash
# Prints one of cachelock's Redis scripts exactly as cachelock sends it, read from
# cachelock/src/redis/scripts.rs:
#
#   bash benches/script_text.sh claim     # `CLAIM`: its first `r"` block, the `bump_fence!`
#                                         # macro's block and `return fence`
#   bash benches/script_text.sh release   # `RELEASE`: its `GET` line and the
#                                         # `release_if_owner!` macro's block
#
# Used by redis_script_cost.sh and redis_script_instructions.sh.
set -euo pipefail
scripts="$(dirname "$0")/../cachelock/src/redis/scripts.rs"

# The body of `macro_rules! NAME`: the lines between its `        r"` and `"`.
macro_body() {
    awk -v name="$1" '
    $0 ~ "^macro_rules! " name " " {inmac=1; next}
    inmac && /^        r"$/ {grab=1; next}
    inmac && grab && /^"$/ {exit}
    grab {print}
    ' "$scripts"
}

case ${1:-} in
claim)
    head=$(awk '
    /^pub\(crate\) const CLAIM: &str = concat!\($/ {inclaim=1; next}
    inclaim && /^    r"$/ {grab=1; next}
    inclaim && grab && /^",$/ {exit}
    grab {print}
    ' "$scripts")
    text=$(printf '%s\n%s\nreturn fence\n' "$head" "$(macro_body bump_fence)")
    check="redis.call('TIME')"
    ;;
release)
    text=$(printf "local value = redis.pcall('GET', KEYS[1])\n%s\n" "$(macro_body release_if_owner)")
    check="PUBLISH"
    ;;
*)
    echo "usage: bash benches/script_text.sh claim|release" >&2
    exit 2
    ;;
esac
case $text in
*"$check"*"return"*) printf '%s\n' "$text" ;;
*) echo "could not read the $1 script from cachelock/src/redis/scripts.rs" >&2; exit 1 ;;
esac
