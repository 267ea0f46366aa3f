#!/usr/bin/env bash
# rollup-drain.sh: how fast sextant-rollup drains a metrics backlog. With rollup stopped,
# XADDs N entries (real JS-SDK ExportMetricsServiceRequests, 100 cumulative sums + 100
# histograms each, distinct bodies: bench/rollup-drain.mjs) straight into the metrics
# stream, starts rollup and times until N new ledger rows exist. Prints points/s and the
# CPU seconds rollup and PostgreSQL used meanwhile. The time includes rollup's start.
#
#   SEXTANT_HOME=/tmp/stack SEXTANT_BIN=bin bench/rollup-drain.sh [N]   (default 200)
#
# Needs a running stack (scripts/stack.sh up), redis-cli, psql and tests/e2e/node_modules.
set -euo pipefail
N=${1:-200}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
H=${SEXTANT_HOME:?set SEXTANT_HOME to the stack dir}
conf() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$H/sextant.conf"; }
SOCK=$(conf redis_socket)
PREFIX=$(conf redis_prefix)
PROJECT=$(awk -F= '$1 == "SEXTANT_PROJECT_ID" { print $2 }' "$H/demo.env")
PGINFO=$(grep '^pg_conninfo ' "$H/sextant.conf" | cut -d' ' -f2-)
RESP=$(mktemp)
trap 'rm -f "$RESP"' EXIT
psq() { psql "$PGINFO" -At -c "$1"; }
PG_DATA=$(awk -F= '$1 == "PG_DATA" { print $2 }' "$H/stack.env")
pgcpu() { # CPU ticks of this stack's postmaster and its children (ended backends not counted)
    local t=0 p f pm
    pm=$(head -1 "$PG_DATA/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do read -r -a f <"/proc/$p/stat" 2>/dev/null && t=$((t + f[13] + f[14])); done
    echo $t
}
node "$REPO/bench/rollup-drain.mjs" "$N" "$PREFIX:stream:metrics" "$RESP" "$PROJECT" >/dev/null
"$REPO/scripts/stack.sh" stop rollup >/dev/null
redis-cli -s "$SOCK" --pipe <"$RESP" >/dev/null
before=$(psq "SELECT count(*) FROM persist_ledger WHERE stream = 'metrics'")
pg0=$(pgcpu)
t0=$(date +%s.%N)
"$REPO/scripts/stack.sh" start rollup >/dev/null
pid=$(cat "$H/run/rollup.pid")
until [[ $(($(psq "SELECT count(*) FROM persist_ledger WHERE stream = 'metrics'") - before)) -ge $N ]]; do sleep 0.1; done
t1=$(date +%s.%N)
read -r -a f <"/proc/$pid/stat"
awk -v n="$N" -v el="$(echo "$t1 - $t0" | bc -l)" -v r="$((f[13] + f[14]))" -v pg="$(($(pgcpu) - pg0))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%d entries, %d points in %.2f s: %.0f points/s; CPU s: rollup %.2f, postgres %.2f\n", n, n * 200, el, n * 200 / el, r / hz, pg / hz }'
