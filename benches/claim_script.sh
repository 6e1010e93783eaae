#!/usr/bin/env bash
# Prints the fenced claim script exactly as cachelock sends it: `CLAIM` in
# cachelock/src/redis/scripts.rs is its first `r"` block, the `bump_fence!` macro's block and
# `return fence`. Used by redis_script_cost.sh and redis_script_instructions.sh.
set -euo pipefail
claim=$(awk '
/^macro_rules! bump_fence/ {inmac=1; next}
inmac && /^        r"$/ {grab=1; next}
inmac && grab && /^"$/ {grab=0; inmac=0; next}
grab {body = body $0 "\n"}
/^pub\(crate\) const CLAIM: &str = concat!\($/ {inclaim=1; next}
inclaim && /^    r"$/ {hgrab=1; next}
inclaim && hgrab && /^",$/ {hgrab=0; inclaim=0; next}
hgrab {head = head $0 "\n"}
END {printf "%s%sreturn fence\n", head, body}
' "$(dirname "$0")/../cachelock/src/redis/scripts.rs")
case $claim in
*"redis.call('TIME')"*"return fence"*) printf '%s\n' "$claim" ;;
*) echo "could not read CLAIM from cachelock/src/redis/scripts.rs" >&2; exit 1 ;;
esac
