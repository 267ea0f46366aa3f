#!/usr/bin/env bash
# bench.sh: `make bench`: runs a throwaway Sextant stack under load and prints the performance table.
#
# Phases (about 7 minutes in all; 4 with BENCH_QUERIES=0), every load aimed at 127.0.0.1 only:
#   copy     raw PostgreSQL COPY ceiling for the fixture's span rows (build/bench/copyrate)
#   e2e      60 s of load at BENCH_E2E_RATE spans/s, then waits for sextant-persist to go
#            quiet: persisted spans/s, backlog at the end of the load, rows in PostgreSQL
#            versus spans accepted
#   sat65    the ingest tier at saturation, 65 spans per request (BENCH_CONNECTIONS
#            connections), persist paused and the stream allowed to hold the burst
#   sat520   the same with 520 spans per request
#   latency  65 spans per request at 50% of the sustained end-to-end rate, with persist
#            running: p50/p99 below saturation
#   logs     (BENCH_QUERIES=1) BENCH_SIGNAL_SECONDS of logs-proto.bin requests at saturation
#            (new trace ids per request), persist running: accepted and persisted logs/s
#   metrics  the same with metrics-1-proto.bin to /v1/metrics: accepted data points/s
#   queries  (BENCH_QUERIES=1) realistic volume COPYed straight into PostgreSQL by
#            build/bench/seed (spans in traces of 10 with their traces rows, logs with varied
#            words) and 100 metric series x 24 h of minutes (SQL), then sequential API
#            requests through nginx (build/bench/apiq): trace list, trace by id, log search,
#            metric query p50/p99
#   sse      BENCH_SSE_STREAMS (1000) concurrent live streams through nginx on one sextant-sse
#            process (bench/sse-clients.mjs), one log record posted every 1/BENCH_SSE_RATE s
#            for BENCH_SSE_SECONDS: ingest-to-client latency p50/p95/p99 over every
#            delivery, and sextant-sse's RSS with the streams open. BENCH_SSE_ONLY=1 runs
#            only this phase (a minute instead of seven)
#   RSS      VmRSS / VmHWM of every program, sampled each second during the load phases
#   page     (BENCH_QUERIES=1, after the queries) the dashboard's first page on that volume: headless Chromium
#            (tests/e2e/pageload.mjs) logs in, then opens the project overview in a fresh
#            context (empty cache) BENCH_PAGE_SAMPLES times; skipped without chromium,
#            tests/e2e/node_modules or web/dist
# Between load phases the stream is left to drain for BENCH_DRAIN_WAIT seconds; a backlog
# still there then is discarded (persist stopped, stream deleted, persist started) so the
# next phase starts clean; the table says when that happened.
#
# Environment (all optional):
#   SEXTANT_BIN           programs to run (default: bin/)
#   BENCH_DIR             loadgen and copyrate (default: build/bench/)
#   BENCH_HOME            stack directory (default: a new temp dir, removed at the end)
#   BENCH_KEEP=1          keep the stack directory (logs, data) after the run
#   BENCH_SAT_SECONDS     length of each saturation run (20)
#   BENCH_LAT_SECONDS     length of the latency run (15)
#   BENCH_E2E_SECONDS     length of the end-to-end load (60)
#   BENCH_E2E_RATE        spans/s offered during the end-to-end run (60000)
#   BENCH_E2E_DRAIN_MAX   seconds to wait for persist after the end-to-end load (60)
#   BENCH_DRAIN_WAIT      seconds to let the stream drain between phases (10)
#   BENCH_CONNECTIONS     concurrent connections for the saturation runs (24)
#   BENCH_COPY_ROWS       rows for the COPY ceiling (200000)
#   BENCH_QUERIES         1 runs the query phase, 0 skips it (1)
#   BENCH_SIGNAL_SECONDS  length of the logs and metrics saturation runs (15)
#   BENCH_FULL=1          seed the issue's volume: 10,000,000 spans and 1,000,000 logs
#   BENCH_SEED_SPANS      spans to seed otherwise (2000000)
#   BENCH_SEED_LOGS       logs to seed otherwise (1000000)
#   BENCH_QUERY_SAMPLES   sequential requests per query (200)
#   BENCH_QUERY_MAX_S     at most this many seconds of requests per query (20)
#   BENCH_FIXTURE         the OTLP request body (../shared/otlp-fixtures/traces-proto.bin, else
#                         the copy in tests/fixtures/otlp)
#   BENCH_PAGE_SAMPLES    first-page loads timed in the page phase (10)
# Figures never decide the exit status: it is nonzero only when the run itself failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath -m "${SEXTANT_BIN:-$REPO/bin}")
TOOLS=$(realpath -m "${BENCH_DIR:-$REPO/build/bench}")
SAT_S=${BENCH_SAT_SECONDS:-20}
LAT_S=${BENCH_LAT_SECONDS:-15}
E2E_S=${BENCH_E2E_SECONDS:-60}
E2E_RATE=${BENCH_E2E_RATE:-60000}
E2E_DRAIN_MAX=${BENCH_E2E_DRAIN_MAX:-60}
DRAIN_WAIT=${BENCH_DRAIN_WAIT:-10}
CONNS=${BENCH_CONNECTIONS:-24}
COPY_ROWS=${BENCH_COPY_ROWS:-200000}
FIXTURE=${BENCH_FIXTURE:-}
QUERIES=${BENCH_QUERIES:-1}
if [[ ${BENCH_FULL:-0} == 1 ]]; then
    SEED_SPANS=10000000 SEED_LOGS=1000000
else
    SEED_SPANS=${BENCH_SEED_SPANS:-2000000} SEED_LOGS=${BENCH_SEED_LOGS:-1000000}
fi
Q_SAMPLES=${BENCH_QUERY_SAMPLES:-200}
SIG_S=${BENCH_SIGNAL_SECONDS:-15}
Q_MAX_S=${BENCH_QUERY_MAX_S:-20}
if [[ -z $FIXTURE ]]; then
    for f in "$REPO/../shared/otlp-fixtures/traces-proto.bin" "$REPO/tests/fixtures/otlp/traces-proto.bin"; do
        [[ -r $f ]] && { FIXTURE=$f; break; }
    done
fi

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

for t in loadgen copyrate seed apiq; do
    [[ -x $TOOLS/$t ]] || die "$TOOLS/$t not found: run make bench (or make bench-bins)"
done
for p in sextant-ingest sextant-api sextant-sse sextant-persist sextant-rollup sextantctl; do
    [[ -x $BIN/$p ]] || die "$BIN/$p not found: run make (or set SEXTANT_BIN)"
done
[[ -r $FIXTURE ]] || die "fixture traces-proto.bin not found: set BENCH_FIXTURE"
command -v redis-cli >/dev/null || die "redis-cli not found (run make deps)"

PGBIN=$(pg_config --bindir 2>/dev/null || true)
if [[ ! -x $PGBIN/psql ]]; then
    for d in /usr/lib/postgresql/*/bin; do [[ -x $d/psql ]] && PGBIN=$d; done
fi
[[ -x $PGBIN/psql ]] || die "psql not found (run make deps)"

# ---------------------------------------------------------------------------- stack

OWN_HOME=0
if [[ -n ${BENCH_HOME:-} ]]; then
    H=$(realpath -m "$BENCH_HOME")
    mkdir -p "$H"
else
    H=$(mktemp -d /tmp/sx-bench.XXXXXX)
    OWN_HOME=1
fi
chmod 0755 "$H" # the postgres user keeps its data inside the stack dir
OUT=$H/bench
mkdir -p "$OUT"
SAMPLER_PID=""
STACK_STARTED=0

# A snapshot of the programs: a rebuild of bin/ during the run must not swap the binaries
# under a restarted service.
mkdir -p "$H/bin"
for p in sextant-ingest sextant-api sextant-sse sextant-persist sextant-rollup sextantctl; do
    cp "$BIN/$p" "$H/bin/$p"
done
RUN_BIN=$H/bin

stack() { SEXTANT_HOME=$H SEXTANT_PORT=$PORT SEXTANT_BIN=$RUN_BIN "$REPO/scripts/stack.sh" "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SAMPLER_PID ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    if [[ $STACK_STARTED == 1 ]]; then
        say "stopping the stack"
        if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 || $OWN_HOME == 0 ]]; then
            stack down >>"$OUT/stack.log" 2>&1 || true
        else
            stack destroy >>"$OUT/stack.log" 2>&1 || true
        fi
    fi
    if [[ $OWN_HOME == 1 && ${BENCH_KEEP:-0} != 1 && $rc == 0 ]]; then
        rm -rf "$H"
    elif [[ $rc != 0 || ${BENCH_KEEP:-0} == 1 ]]; then
        say "stack directory kept: $H (logs in $H/log, bench output in $OUT)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1 (nothing answers a connect there).
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (: <>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            printf '%s' "$p"
            return 0
        fi
    done
    die "no free port found"
}
PORT=$(free_port)

say "starting a stack in $H on 127.0.0.1:$PORT"
STACK_STARTED=1
stack up >"$OUT/stack.log" 2>&1 || { tail -n 30 "$OUT/stack.log" >&2; die "stack.sh up failed"; }

envval() { sed -n "s/^$1=//p" "$H/demo.env" | head -n 1; }
URL="$(envval SEXTANT_OTLP_ENDPOINT)/v1/traces"
KEY=$(envval SEXTANT_INGEST_KEY)
API="$(envval SEXTANT_URL)/api/v1/projects/$(envval SEXTANT_PROJECT)"
TOKEN=$(envval SEXTANT_TOKEN)
CA=$(envval SEXTANT_CA)
PROJECT_ID=$(envval SEXTANT_PROJECT_ID)
CONF=$H/sextant.conf
confline() { sed -n "s/^$1[[:space:]]\{1,\}//p" "$CONF" | tail -n 1; }
REDIS_SOCK=$(confline redis_socket)
PREFIX=$(confline redis_prefix)
PREFIX=${PREFIX:-sx}
PG_CONNINFO=$(confline pg_conninfo)
STREAM=$PREFIX:stream:spans
GROUP=persist
[[ -n $KEY && -n $REDIS_SOCK && -n $PG_CONNINFO && -n $PROJECT_ID ]] || die "cannot read $H/demo.env or $CONF"

rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }
psqlq() { "$PGBIN/psql" "$PG_CONNINFO" -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
now_ms() { date +%s%3N; }

# jget JSON KEY: a number or string field of loadgen's/copyrate's one-line JSON.
jget() { sed -n 's/.*"'"$2"'":"\{0,1\}\([^",}]*\).*/\1/p' <<<"$1"; }
# calc EXPR: floating point arithmetic, printed with the given printf format.
calc() { awk "BEGIN { printf \"${2:-%.0f}\", ($1) }"; }

written() { local v; v=$(rcli GET "$PREFIX:persist:spans_written"); printf '%s' "${v:-0}"; }
last_write() { local v; v=$(rcli GET "$PREFIX:persist:last_write"); printf '%s' "${v:-0}"; }
xlen() { rcli XLEN "$STREAM"; }
# group_field NAME: lag or pending of the persist group (XINFO GROUPS), 0 when absent.
group_field() {
    rcli XINFO GROUPS "$STREAM" 2>/dev/null |
        awk -v g="$GROUP" -v f="$1" 'prev == "name" { cur = $0 } prev == f && cur == g { v = $0 } { prev = $0 }
            END { print (v == "" ? 0 : v) }'
}
backlog() { printf 'xlen %s, lag %s, pending %s' "$(xlen)" "$(group_field lag)" "$(group_field pending)"; }

# ---------------------------------------------------------------------------- RSS sampler

pidfile() { head -n 1 "$1" 2>/dev/null || true; }
kids() { ps --ppid "$1" -o pid= 2>/dev/null | tr -d ' ' || true; }
PG_DATA=$(sed -n 's/^PG_DATA=//p' "$H/stack.env" | head -n 1)
PG_DATA=${PG_DATA//\'/}

# group_pids NAME: the processes of one program (nginx: workers; postgres: all of them).
group_pids() {
    local m
    case $1 in
    nginx)
        m=$(pidfile "$H/run/nginx.pid")
        [[ -n $m ]] && kids "$m" ;;
    postgres)
        m=$(pidfile "$PG_DATA/postmaster.pid")
        [[ -n $m ]] && { printf '%s\n' "$m"; kids "$m"; } ;;
    loadgen) pidfile "$OUT/loadgen.pid" ;;
    *) pidfile "$H/run/$1.pid" ;;
    esac
}

GROUPS_SAMPLED="ingest nginx redis persist postgres api rollup sse loadgen"
# Once a second, one line per program: phase ms name rss_kb_sum hwm_kb_max nprocs cpu_ticks,
# and one for the whole machine ("all": busy ticks of every CPU, from /proc/stat); the
# stream's state goes to stream.txt: phase ms xlen lag pending spans_written.
sampler() {
    local g p rss hwm n t phase ms r h c line
    while :; do
        phase=$(cat "$OUT/phase" 2>/dev/null || echo idle)
        ms=$(now_ms)
        for g in $GROUPS_SAMPLED; do
            rss=0 hwm=0 n=0 t=0
            for p in $(group_pids "$g"); do
                read -r r h < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r + 0, h + 0 }' \
                    "/proc/$p/status" 2>/dev/null || echo "0 0")
                line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
                line=${line##*) }
                # fields after the command: state is 1st, utime 12th, stime 13th
                c=$(awk '{ print $12 + $13 }' <<<"$line")
                rss=$((rss + r)) t=$((t + c)) n=$((n + 1))
                ((h > hwm)) && hwm=$h
            done
            printf '%s %s %s %s %s %s %s\n' "$phase" "$ms" "$g" "$rss" "$hwm" "$n" "$t"
        done >>"$OUT/rss.txt"
        awk -v p="$phase" -v ms="$ms" '$1 == "cpu" { print p, ms, "all", 0, 0, 0, $2 + $3 + $4 + $7 + $8 + $9; exit }' \
            /proc/stat >>"$OUT/rss.txt"
        printf '%s %s %s %s %s %s\n' "$phase" "$ms" "$(xlen)" "$(group_field lag)" "$(group_field pending)" \
            "$(written)" >>"$OUT/stream.txt"
        sleep 1
    done
}
phase() { printf '%s\n' "$1" >"$OUT/phase"; }
phase idle
sampler &
SAMPLER_PID=$!

# ---------------------------------------------------------------------------- helpers

# loadgen NAME ARGS...: runs one load, keeps its JSON in $OUT/NAME.json and prints it.
loadgen() {
    local name=$1 out
    shift
    phase "$name"
    "$TOOLS/loadgen" --url "$URL" --key "$KEY" --cacert "$CA" --fixture "$FIXTURE" --json "$@" \
        >"$OUT/$name.out" 2>>"$OUT/loadgen.err" &
    printf '%s\n' "$!" >"$OUT/loadgen.pid"
    wait "$!" || { tail -n 5 "$OUT/loadgen.err" >&2; die "loadgen $name failed"; }
    rm -f "$OUT/loadgen.pid"
    phase idle
    out=$(<"$OUT/$name.out")
    printf '%s\n' "$out" >"$OUT/$name.json"
    printf '%s' "$out"
}

describe() {
    local j=$1
    say "  $(jget "$j" spans_per_s | xargs printf '%.0f') spans/s accepted, $(jget "$j" req_per_s) req/s," \
        "p50 $(jget "$j" p50_ms) ms, p99 $(jget "$j" p99_ms) ms, max $(jget "$j" max_ms) ms;" \
        "200: $(jget "$j" ok), 503: $(jget "$j" rejected_503), 429: $(jget "$j" rejected_429)," \
        "other: $(jget "$j" other), errors: $(jget "$j" errors)"
}

DISCARDED=""
# settle PHASE: lets persist drain; discards what is left after DRAIN_WAIT seconds.
settle() {
    local i lag pend n
    for ((i = 0; i < DRAIN_WAIT * 2; i++)); do
        lag=$(group_field lag) pend=$(group_field pending)
        [[ $lag == 0 && $pend == 0 ]] && return 0
        sleep 0.5
    done
    lag=$(group_field lag) pend=$(group_field pending)
    [[ $lag == 0 && $pend == 0 ]] && return 0
    n=$(xlen)
    say "  backlog after $1 not drained in ${DRAIN_WAIT}s ($(backlog)): discarding it"
    DISCARDED="${DISCARDED:+$DISCARDED, }$1 $n"
    stack stop persist >>"$OUT/stack.log" 2>&1
    rcli DEL "$STREAM" >/dev/null
    stack start persist >>"$OUT/stack.log" 2>&1
    sleep 0.5
}

# rows_of JSON [TABLE]: spans (or error_events) in PostgreSQL whose trace id carries one
# of that run's counters.
rows_of() {
    local j=$1 table=${2:-spans} base n lo hi
    base=$(jget "$j" trace_base) n=$(jget "$j" requests)
    lo=$(printf '%016x' "$base")
    hi=$(printf '%016x' "$((base + n))")
    psqlq "SELECT count(*) FROM $table WHERE project_id = $PROJECT_ID
             AND trace_id >= '\\x${lo}0000000000000000'::bytea AND trace_id < '\\x${hi}0000000000000000'::bytea"
}

# ---------------------------------------------------------------------------- phases

# ---- live streams (sextant-sse)
SSE_STREAMS=${BENCH_SSE_STREAMS:-1000}
SSE_S=${BENCH_SSE_SECONDS:-20}
SSE_RATE=${BENCH_SSE_RATE:-5}
SSE_J=""
sse_phase() {
    local plan
    command -v node >/dev/null || { say "sse: node not found: phase skipped"; return 0; }
    say "sse: $SSE_STREAMS live streams, $SSE_RATE log records/s for ${SSE_S}s"
    plan=$(printf '{"streamUrl":"%s/stream","token":"%s","ingestUrl":"%s/v1/logs","key":"%s","ca":"%s","streams":%s,"seconds":%s,"rate":%s}' \
        "$API" "$TOKEN" "${URL%/v1/traces}" "$KEY" "$CA" "$SSE_STREAMS" "$SSE_S" "$SSE_RATE")
    phase sse
    SSE_J=$(node "$REPO/bench/sse-clients.mjs" "$plan" 2>>"$OUT/sse.err" | tail -n 1) ||
        { tail -n 5 "$OUT/sse.err" >&2; die "bench/sse-clients.mjs failed"; }
    phase idle
    printf '%s\n' "$SSE_J" >"$OUT/sse.json"
}
# sse_rows: the phase's lines of the table.
sse_rows() {
    [[ -n $SSE_J ]] || return 0
    printf '| live streams: %s concurrent on one sextant-sse (opened in %s ms), 1 log record every %s ms for %s s: ingest-to-client latency over every delivery | p99 < 1 s | p50 %s ms, p95 %s ms, p99 %s ms (max %s ms; %s of %s deliveries, %s gaps) | %s |\n' \
        "$(jget "$SSE_J" streams)" "$(jget "$SSE_J" openMs)" "$(calc "1000 / $SSE_RATE")" "$SSE_S" "$(jget "$SSE_J" p50)" \
        "$(jget "$SSE_J" p95)" "$(jget "$SSE_J" p99)" "$(jget "$SSE_J" max)" "$(fmt "$(jget "$SSE_J" received)")" \
        "$(fmt "$(jget "$SSE_J" expected)")" "$(jget "$SSE_J" gaps)" "$(yes_no "$(jget "$SSE_J" p99) < 1000")"
    printf '| sextant-sse RSS with %s streams open (one thread each, sse_threads 1100): peak VmRSS | - | %s MB | - |\n' \
        "$(jget "$SSE_J" streams)" "$(rss_peak sse)"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $(calc "$(cut -d' ' -f1 /proc/loadavg) > 0.5 * $(nproc)" %d) == 1 ]]; then
    say "warning: load average $LOAD_START on $(nproc) CPUs before the run: other work shares the machine"
fi

if [[ ${BENCH_SSE_ONLY:-0} != 1 ]]; then # every phase but sse
say "copy: PostgreSQL COPY ceiling, $COPY_ROWS rows"
phase copy
COPY_J=$("$TOOLS/copyrate" --conninfo "$PG_CONNINFO" --rows "$COPY_ROWS" --fixture "$FIXTURE" --json) ||
    die "copyrate failed"
phase idle
say "  COPY $(jget "$COPY_J" rows_per_s) rows/s"

say "warm-up: 2 s"
W=$(loadgen warmup --body-spans 65 --connections 4 --duration 2)
[[ $(jget "$W" ok) -gt 0 ]] || { describe "$W"; die "no request was accepted (see $H/log/)"; }
settle warmup

# ---- end to end
E2E_REQ_RATE=$(calc "$E2E_RATE / 65" %.1f)
say "e2e: ${E2E_S}s at $E2E_RATE spans/s ($E2E_REQ_RATE req/s of 65 spans), then waiting for persist"
W0=$(written)
T0=$(now_ms)
E2E_J=$(loadgen e2e --body-spans 65 --connections 32 --duration "$E2E_S" --rate "$E2E_REQ_RATE")
T1=$(now_ms)
describe "$E2E_J"
BACKLOG_END="$(backlog)"
say "  backlog at the end of the load: $BACKLOG_END"
# Quiet: spans_written unchanged for 3 s, or the drain limit reached.
phase e2e-drain
prev=-1 still=0 deadline=$(($(date +%s) + E2E_DRAIN_MAX)) E2E_COMPLETE=1
while :; do
    w=$(written)
    if [[ $w == "$prev" ]]; then
        still=$((still + 1))
        ((still >= 6)) && break
    else
        still=0 prev=$w
    fi
    if (($(date +%s) >= deadline)); then
        E2E_COMPLETE=0
        say "  persist still writing after ${E2E_DRAIN_MAX}s ($(backlog))"
        break
    fi
    sleep 0.5
done
phase idle
W1=$(written)
LW=$(last_write)
E2E_ACCEPTED=$(jget "$E2E_J" accepted_spans)
E2E_WRITTEN=$((W1 - W0))
((LW > T0)) || LW=$T1
E2E_SECS=$(calc "($LW - $T0) / 1000.0" %.1f)
PERSIST_RATE=$(calc "$E2E_WRITTEN / (($LW - $T0) / 1000.0)")
E2E_ROWS=$(rows_of "$E2E_J")
# The fixture's exception span events (7 of its 65 spans) become error events in the
# same transactions: error events processed per second over the same window.
E2E_ERR_ROWS=$(rows_of "$E2E_J" error_events)
ERR_RATE=$(calc "$E2E_ERR_ROWS / (($LW - $T0) / 1000.0)")
say "  persisted $E2E_WRITTEN spans in $E2E_SECS s: $PERSIST_RATE spans/s;" \
    "accepted $E2E_ACCEPTED, rows in PostgreSQL $E2E_ROWS; $E2E_ERR_ROWS error events: $ERR_RATE/s"
settle e2e

# ---- saturation of the ingest tier (nginx, sextant-ingest, Redis)
# PostgreSQL and sextant-persist share these 2 cores and drain far slower than
# ingest accepts, so with persist running these phases would measure the
# machine's end-to-end rate again (that is the e2e phase above). A burst is
# what the stream is for: persist is paused and the stream may hold the whole
# phase (SAT_HIGH_WATER entries; a later config line wins), then it is dropped.
SAT_HIGH_WATER=${BENCH_SAT_HIGH_WATER:-100000}
stack stop persist >>"$OUT/stack.log" 2>&1
printf '\n# bench: saturation phases (removed afterwards)\nstream_high_water %s\n' "$SAT_HIGH_WATER" >>"$H/sextant.conf"
stack restart ingest >>"$OUT/stack.log" 2>&1
drop_stream() { rcli DEL "$STREAM" >/dev/null; }
drop_stream

say "sat65: ${SAT_S}s, 65 spans/request, $CONNS connections, persist paused"
SAT65_J=$(loadgen sat65 --body-spans 65 --connections "$CONNS" --duration "$SAT_S")
describe "$SAT65_J"
SAT65_BACKLOG="$(backlog)"
drop_stream

say "sat520: ${SAT_S}s, 520 spans/request, $CONNS connections, persist paused"
SAT520_J=$(loadgen sat520 --body-spans 520 --connections "$CONNS" --duration "$SAT_S")
describe "$SAT520_J"
SAT520_BACKLOG="$(backlog)"
drop_stream

sed -i '/^# bench: saturation phases/,$d' "$H/sextant.conf"
stack restart ingest >>"$OUT/stack.log" 2>&1
stack start persist >>"$OUT/stack.log" 2>&1
sleep 0.5

# ---- latency below saturation
# Half the sustained end-to-end rate (spans/s persisted), in requests of 65 spans.
LAT_RATE=$(calc "$PERSIST_RATE / 65 * 0.5" %.1f)
[[ $(calc "$LAT_RATE >= 1" %d) == 1 ]] || LAT_RATE=1
say "latency: ${LAT_S}s at $LAT_RATE req/s (50% of the sustained end-to-end rate), 16 connections"
LAT_J=$(loadgen latency --body-spans 65 --connections 16 --duration "$LAT_S" --rate "$LAT_RATE")
describe "$LAT_J"

# ---- query latency with realistic volume
# apiq NAME URLFILE: sequential GETs; keeps the JSON in $OUT/NAME.json and prints it.
apiq() {
    local out
    phase "q-$1"
    out=$("$TOOLS/apiq" --urls "$2" --token "$TOKEN" --cacert "$CA" --samples "$Q_SAMPLES" \
        --max-seconds "$Q_MAX_S" --name "$1" 2>>"$OUT/apiq.err") || say "  apiq $1: not every answer was a 200 (see $OUT/apiq.err)"
    phase idle
    printf '%s\n' "$out" >"$OUT/$1.json"
    say "  $1: p50 $(jget "$out" p50_ms) ms, p99 $(jget "$out" p99_ms) ms, max $(jget "$out" max_ms) ms" \
        "($(jget "$out" samples) requests, $(jget "$out" avg_bytes) bytes each)"
    printf '%s' "$out"
}
if [[ $QUERIES == 1 ]]; then
    FIXDIR=$(dirname "$FIXTURE")
    BASE_URL=${URL%/v1/traces}
    lwritten() { local v; v=$(rcli GET "$PREFIX:persist:logs_written"); printf '%s' "${v:-0}"; }
    say "logs: ${SIG_S}s of $FIXDIR/logs-proto.bin at saturation, $CONNS connections, persist running"
    LW0=$(lwritten)
    T0=$(now_ms)
    LOGS_J=$(loadgen logs --signal logs --url "$BASE_URL/v1/logs" --fixture "$FIXDIR/logs-proto.bin" \
        --connections "$CONNS" --duration "$SIG_S")
    describe "$LOGS_J"
    # persisted: logs_written growth until it stays still for 2 s (at most 30 s after the load)
    phase logs-drain
    prev=-1 still=0 lt=$(now_ms) deadline=$(($(date +%s) + 30))
    while (($(date +%s) < deadline)); do
        w=$(lwritten)
        if [[ $w == "$prev" ]]; then
            still=$((still + 1))
            ((still >= 4)) && break
        else
            still=0 prev=$w lt=$(now_ms)
        fi
        sleep 0.5
    done
    phase idle
    LOGS_WRITTEN=$(($(lwritten) - LW0))
    LOGS_PERSIST_RATE=$(calc "$LOGS_WRITTEN / (($lt - $T0) / 1000.0)")
    LOGS_ROWS=$(psqlq "SELECT count(*) FROM logs WHERE project_id = $PROJECT_ID")
    say "  persisted $LOGS_WRITTEN logs: $LOGS_PERSIST_RATE logs/s from the load's start to the last write"
    say "metrics: ${SIG_S}s of $FIXDIR/metrics-1-proto.bin at saturation, $CONNS connections, persist and rollup running"
    MET_J=$(loadgen metrics --signal metrics --url "$BASE_URL/v1/metrics" --fixture "$FIXDIR/metrics-1-proto.bin" \
        --connections "$CONNS" --duration "$SIG_S")
    describe "$MET_J"
    MET_XLEN=$(rcli XLEN "$PREFIX:stream:metrics")
    sleep 2

    say "queries: seeding $SEED_SPANS spans and $SEED_LOGS logs by COPY (BENCH_FULL=${BENCH_FULL:-0})"
    phase seed
    T0=$(now_ms)
    SEED_J=$("$TOOLS/seed" --conninfo "$PG_CONNINFO" --project "$PROJECT_ID" --spans "$SEED_SPANS" \
        --logs "$SEED_LOGS" 2>>"$OUT/seed.err") || { tail -n 5 "$OUT/seed.err" >&2; die "seed failed"; }
    # 100 series of one metric, one point a minute for 24 h
    psqlq "INSERT INTO metric_series (project_id, name, type, unit, temporality, monotonic, attributes, attrs_hash)
           SELECT $PROJECT_ID, 'bench.requests', 'sum', '1', 'delta', true,
                  json_build_object('route', '/r' || i, 'resource.service.name', 'svc' || (i % 8)),
                  substring(sha256(('bench.requests/' || i)::bytea) for 16)
           FROM generate_series(1, 100) i ON CONFLICT DO NOTHING;
           INSERT INTO metric_points_1m (project_id, series_id, bucket_start_ns, count, sum, min, max, last)
           SELECT $PROJECT_ID, s.id, ((extract(epoch from now())::bigint / 60 - m) * 60) * 1000000000,
                  6, 60 + (m % 17), 5, 15, 10
           FROM metric_series s, generate_series(1, 1440) m
           WHERE s.project_id = $PROJECT_ID AND s.name = 'bench.requests' ON CONFLICT DO NOTHING;
           ANALYZE spans; ANALYZE traces; ANALYZE logs; ANALYZE metric_series; ANALYZE metric_points_1m;"
    SEED_SECS=$(calc "($(now_ms) - $T0) / 1000.0" %.1f)
    phase idle
    N_SPANS=$(psqlq "SELECT count(*) FROM spans WHERE project_id = $PROJECT_ID")
    N_TRACES=$(psqlq "SELECT count(*) FROM traces WHERE project_id = $PROJECT_ID")
    N_LOGS=$(psqlq "SELECT count(*) FROM logs WHERE project_id = $PROJECT_ID")
    RARE=$(jget "$SEED_J" rare_word)
    N_RARE=$(psqlq "SELECT count(*) FROM logs WHERE project_id = $PROJECT_ID AND search @@ websearch_to_tsquery('simple', '$RARE')")
    N_COMMON=$(psqlq "SELECT count(*) FROM logs WHERE project_id = $PROJECT_ID AND search @@ websearch_to_tsquery('simple', 'request')")
    N_POINTS=$(psqlq "SELECT count(*) FROM metric_points_1m p JOIN metric_series s ON s.id = p.series_id
                      WHERE s.project_id = $PROJECT_ID AND s.name = 'bench.requests'")
    say "  seeded in $SEED_SECS s; the project now holds $N_SPANS spans, $N_TRACES traces, $N_LOGS logs" \
        "($N_RARE with '$RARE', $N_COMMON with 'request'), $N_POINTS metric points"
    Q=$OUT/urls
    mkdir -p "$Q"
    printf '%s/traces\n' "$API" >"$Q/traces"
    printf '%s/traces?service=payments-worker\n' "$API" >"$Q/traces-svc"
    psqlq "SELECT encode(trace_id, 'hex') FROM traces WHERE project_id = $PROJECT_ID ORDER BY random() LIMIT 200" |
        sed "s|^|$API/traces/|" >"$Q/trace-id"
    printf '%s/logs?q=%s\n' "$API" "$RARE" >"$Q/logs-rare"
    printf '%s/logs?q=request\n' "$API" >"$Q/logs-common"
    printf '%s/logs?q=%%22request%%20user%%22\n' "$API" >"$Q/logs-phrase"
    printf '%s/logs?q=request%%20-user\n' "$API" >"$Q/logs-excl"
    printf '%s/logs?q=1234\n' "$API" >"$Q/logs-mid"
    printf '%s/logs?severity=FATAL\n' "$API" >"$Q/logs-fatal"
    printf '%s/logs?service=payments-worker\n' "$API" >"$Q/logs-svc"
    printf '%s/traces?service=nosuch-service\n' "$API" >"$Q/traces-svc-none"
    printf '%s/traces?status=error\n' "$API" >"$Q/traces-err"
    printf '%s/traces?minDuration=400\n' "$API" >"$Q/traces-dur"
    printf '%s/metrics/query?name=bench.requests&agg=sum&timeRange=24h&groupBy=route\n' "$API" >"$Q/metrics-100"
    printf '%s/metrics/query?name=bench.requests&agg=sum&timeRange=24h\n' "$API" >"$Q/metrics-sum"
    say "queries: $Q_SAMPLES sequential requests each (at most ${Q_MAX_S}s), through nginx"
    QT_J=$(apiq traces "$Q/traces")
    QTS_J=$(apiq traces-svc "$Q/traces-svc")
    QTI_J=$(apiq trace-id "$Q/trace-id")
    QLR_J=$(apiq logs-rare "$Q/logs-rare")
    QLC_J=$(apiq logs-common "$Q/logs-common")
    QLP_J=$(apiq logs-phrase "$Q/logs-phrase")
    QLX_J=$(apiq logs-excl "$Q/logs-excl")
    QLM_J=$(apiq logs-mid "$Q/logs-mid")
    QLF_J=$(apiq logs-fatal "$Q/logs-fatal")
    QLS_J=$(apiq logs-svc "$Q/logs-svc")
    QTN_J=$(apiq traces-svc-none "$Q/traces-svc-none")
    QTE_J=$(apiq traces-err "$Q/traces-err")
    QTD_J=$(apiq traces-dur "$Q/traces-dur")
    QM_J=$(apiq metrics-100 "$Q/metrics-100")
    QMS_J=$(apiq metrics-sum "$Q/metrics-sum")

    # The dashboard's first page (project overview after login) on this volume.
    PAGE_J="" PAGE_WHY=""
    if [[ ! -x ${SEXTANT_CHROMIUM:-/usr/bin/chromium} ]]; then
        PAGE_WHY="no chromium (make deps)"
    elif [[ ! -d $REPO/tests/e2e/node_modules/playwright-core ]]; then
        PAGE_WHY="no tests/e2e/node_modules (cd tests/e2e && npm ci)"
    elif [[ ! -f $REPO/web/dist/index.html ]]; then
        PAGE_WHY="no web/dist (make web)"
    else
        phase page
        PAGE_PW=bench-page-$RANDOM$RANDOM
        printf '%s\n' "$PAGE_PW" | "$BIN/sextantctl" --config "$CONF" user create bench-page@example.com \
            --password-stdin >/dev/null 2>>"$OUT/page.err" || true
        "$BIN/sextantctl" --config "$CONF" member add --project "$(envval SEXTANT_PROJECT)" bench-page@example.com viewer \
            >/dev/null 2>>"$OUT/page.err" || true
        PAGE_J=$(node "$REPO/tests/e2e/pageload.mjs" "{\"url\":\"$(envval SEXTANT_URL)\",\"email\":\"bench-page@example.com\",\"password\":\"$PAGE_PW\",\"project\":\"$(envval SEXTANT_PROJECT)\",\"samples\":${BENCH_PAGE_SAMPLES:-10}}" \
            2>>"$OUT/page.err") || { PAGE_J=""; PAGE_WHY="pageload.mjs failed: $(tail -n 1 "$OUT/page.err")"; }
        phase idle
        if [[ -n $PAGE_J ]]; then say "  first page: p50 $(jget "$PAGE_J" p50_ms) ms, max $(jget "$PAGE_J" max_ms) ms"; fi
    fi
fi
fi # BENCH_SSE_ONLY
sse_phase
phase finished
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

# ---------------------------------------------------------------------------- table

S="$OUT/rss.txt"
# hwm_peak NAME / rss_peak NAME: largest VmHWM of one process / largest VmRSS sum, in MB,
# over the load phases.
hwm_peak() { awk -v g="$1" '$1 != "idle" && $3 == g && $5 > h { h = $5 } END { printf "%.1f", h / 1024 }' "$S"; }
rss_peak() { awk -v g="$1" '$1 != "idle" && $3 == g && $4 > r { r = $4 } END { printf "%.1f", r / 1024 }' "$S"; }
# rss_at NAME PHASE first|last: VmRSS in MB at the first or last sample of a phase.
rss_at() {
    awk -v g="$1" -v p="$2" -v w="$3" '$1 == p && $3 == g { if (!n++) f = $4; l = $4 }
        END { printf "%.1f", (w == "first" ? f : l) / 1024 }' "$S"
}
procs() { awk -v g="$1" '$3 == g && $6 > n { n = $6 } END { print n + 0 }' "$S"; }
# cpu NAME PHASE: CPU cores that program used on average during a phase.
HZ=$(getconf CLK_TCK)
cpu() {
    # Sums the growth between consecutive samples: a process that exits (a
    # PostgreSQL backend, loadgen) makes the total drop, which is not negative work.
    awk -v g="$1" -v p="$2" -v hz="$HZ" '$1 == p && $3 == g {
            if (n++) { if ($7 > t) d += $7 - t } else m0 = $2
            t = $7; m1 = $2 }
        END { if (n < 2 || m1 <= m0) printf "-"; else printf "%.2f", d / hz / ((m1 - m0) / 1000) }' "$S"
}

yes_no() { if [[ $(calc "$1" %d) == 1 ]]; then printf 'yes'; else printf '**no**'; fi; }
# fmt N: N rounded, with thousands separators.
fmt() {
    awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); neg = s ~ /^-/; if (neg) s = substr(s, 2)
        o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
        printf "%s%s%s", (neg ? "-" : ""), s, o }'
}
sum3() { printf '%s' "$(($(jget "$1" other) + $(jget "$1" errors)))"; }

if [[ ${BENCH_SSE_ONLY:-0} == 1 ]]; then
    {
        printf '| figure | target | this run | met |\n|---|---|---|---|\n'
        sse_rows
    } | tee "$OUT/table.md"
    exit 0
fi
S65=$(jget "$SAT65_J" spans_per_s) S520=$(jget "$SAT520_J" spans_per_s)
LAT_P99=$(jget "$LAT_J" p99_ms)
INGEST_HWM=$(hwm_peak ingest)
if [[ $E2E_ROWS == "$E2E_ACCEPTED" ]]; then
    MATCH=yes
elif [[ $E2E_COMPLETE == 0 ]]; then
    MATCH="n/a: persist still behind"
else
    MATCH="**no**"
fi

{
    printf '\n## Sextant bench, %s, %s CPUs, commit %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
        "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    printf 'Load average before the run %s, after %s.\n\n' "$LOAD_START" "$LOAD_END"
    printf '| figure | target | this run | met |\n|---|---|---|---|\n'
    printf '| accepted spans/s, ingest tier (persist paused), 65 spans/request, %s conns, %s s | >= 100,000 | %s (p50 %s ms, p99 %s ms; 503: %s, 429: %s, other: %s) | %s |\n' \
        "$CONNS" "$SAT_S" "$(fmt "$S65")" "$(jget "$SAT65_J" p50_ms)" "$(jget "$SAT65_J" p99_ms)" \
        "$(jget "$SAT65_J" rejected_503)" "$(jget "$SAT65_J" rejected_429)" "$(sum3 "$SAT65_J")" \
        "$(yes_no "$S65 >= 100000")"
    printf '| accepted spans/s, ingest tier (persist paused), 520 spans/request, %s conns, %s s | >= 100,000 | %s (p50 %s ms, p99 %s ms; 503: %s, 429: %s, other: %s) | %s |\n' \
        "$CONNS" "$SAT_S" "$(fmt "$S520")" "$(jget "$SAT520_J" p50_ms)" "$(jget "$SAT520_J" p99_ms)" \
        "$(jget "$SAT520_J" rejected_503)" "$(jget "$SAT520_J" rejected_429)" "$(sum3 "$SAT520_J")" \
        "$(yes_no "$S520 >= 100000")"
    printf '| p99 latency below saturation (%s req/s = %s spans/s, 65 spans/request, %s s) | < 20 ms | %s ms (p50 %s ms, max %s ms; 503: %s) | %s |\n' \
        "$LAT_RATE" "$(fmt "$(jget "$LAT_J" spans_per_s)")" "$LAT_S" "$LAT_P99" "$(jget "$LAT_J" p50_ms)" \
        "$(jget "$LAT_J" max_ms)" "$(jget "$LAT_J" rejected_503)" "$(yes_no "$LAT_P99 < 20")"
    printf '| persisted spans/s, %s s of load at %s spans/s offered | >= 50,000 sustained 60 s | %s (%s spans from load start to last write, %s s%s) | %s |\n' \
        "$E2E_S" "$(fmt "$E2E_RATE")" "$(fmt "$PERSIST_RATE")" "$(fmt "$E2E_WRITTEN")" "$E2E_SECS" \
        "$([[ $E2E_COMPLETE == 1 ]] || printf '; still writing at the %s s drain limit' "$E2E_DRAIN_MAX")" \
        "$(yes_no "$PERSIST_RATE >= 50000 && $E2E_S >= 60")"
    printf '| error events processed/s in the e2e run (7 exception events per 65-span request, grouped into issues in the same transactions) | - | %s (%s rows in error_events) | - |\n' \
        "$(fmt "$ERR_RATE")" "$(fmt "$E2E_ERR_ROWS")"
    printf '| e2e load accepted (p99 %s ms; 503: %s, other: %s) | the offered %s spans/s | %s spans/s (%s spans) | %s |\n' \
        "$(jget "$E2E_J" p99_ms)" "$(jget "$E2E_J" rejected_503)" "$(sum3 "$E2E_J")" "$(fmt "$E2E_RATE")" \
        "$(fmt "$(jget "$E2E_J" spans_per_s)")" "$(fmt "$E2E_ACCEPTED")" \
        "$(yes_no "$(jget "$E2E_J" spans_per_s) >= $E2E_RATE * 0.97")"
    printf '| backlog when the e2e load stopped | - | %s | - |\n' "$BACKLOG_END"
    printf '| spans in PostgreSQL = spans accepted (e2e run) | equal | %s rows / %s accepted (spans_written +%s) | %s |\n' \
        "$(fmt "$E2E_ROWS")" "$(fmt "$E2E_ACCEPTED")" "$(fmt "$E2E_WRITTEN")" "$MATCH"
    printf '| sextant-ingest RSS: peak VmHWM (VmRSS at start -> end of sat65) | < 30 MB | %s MB (%s -> %s MB) | %s |\n' \
        "$INGEST_HWM" "$(rss_at ingest sat65 first)" "$(rss_at ingest sat65 last)" "$(yes_no "$INGEST_HWM < 30")"
    for g in persist api nginx redis postgres; do
        printf '| %s RSS: peak VmRSS (sum of %s procs) / peak VmHWM of one | - | %s / %s MB | - |\n' \
            "$g" "$(procs "$g")" "$(rss_peak "$g")" "$(hwm_peak "$g")"
    done
    printf '| PostgreSQL COPY ceiling: %s rows into a spans-like table, one transaction | - | %s rows/s (%s MB/s) | - |\n' \
        "$(fmt "$COPY_ROWS")" "$(fmt "$(jget "$COPY_J" rows_per_s)")" "$(jget "$COPY_J" mb_per_s)"
    if [[ $QUERIES == 1 ]]; then
        # qrow LABEL TARGET_TEXT TARGET_MS JSON: one query row, met when p99 < TARGET_MS
        qrow() {
            printf '| %s | %s | p50 %s ms, p99 %s ms (max %s ms; %s requests, %s non-200) | %s |\n' "$1" "$2" \
                "$(jget "$4" p50_ms)" "$(jget "$4" p99_ms)" "$(jget "$4" max_ms)" "$(jget "$4" samples)" \
                "$(($(jget "$4" other) + $(jget "$4" errors)))" "$(yes_no "$(jget "$4" p99_ms) < $3")"
        }
        printf '| query volume: seeded %s spans + %s logs by COPY (%s; %s s), project now holds | - | %s spans, %s traces, %s logs, %s metric points | - |\n' \
            "$(fmt "$SEED_SPANS")" "$(fmt "$SEED_LOGS")" \
            "$([[ ${BENCH_FULL:-0} == 1 ]] && echo "BENCH_FULL=1, the issue's volume" || echo "not the issue's 10,000,000 spans: BENCH_FULL=1 for that")" \
            "$SEED_SECS" "$(fmt "$N_SPANS")" "$(fmt "$N_TRACES")" "$(fmt "$N_LOGS")" "$(fmt "$N_POINTS")"
        printf '| accepted log records/s, logs-proto.bin (10 records, %s B), %s conns, %s s, persist running | - | %s (p50 %s ms, p99 %s ms; 503: %s, other: %s) | - |\n' \
            "$(jget "$LOGS_J" body_bytes)" "$CONNS" "$SIG_S" "$(fmt "$(jget "$LOGS_J" spans_per_s)")" \
            "$(jget "$LOGS_J" p50_ms)" "$(jget "$LOGS_J" p99_ms)" "$(jget "$LOGS_J" rejected_503)" "$(sum3 "$LOGS_J")"
        printf '| persisted logs/s (sx:persist:logs_written, load start to last write) | - | %s (%s of %s accepted; %s rows in logs) | - |\n' \
            "$(fmt "$LOGS_PERSIST_RATE")" "$(fmt "$LOGS_WRITTEN")" "$(fmt "$(jget "$LOGS_J" accepted_spans)")" "$(fmt "$LOGS_ROWS")"
        printf '| accepted metric points/s, metrics-1-proto.bin (%s points, %s B), %s conns, %s s, rollup running | - | %s (p50 %s ms, p99 %s ms; 503: %s, other: %s; stream:metrics xlen %s at the end) | - |\n' \
            "$(jget "$MET_J" body_spans)" "$(jget "$MET_J" body_bytes)" "$CONNS" "$SIG_S" "$(fmt "$(jget "$MET_J" spans_per_s)")" \
            "$(jget "$MET_J" p50_ms)" "$(jget "$MET_J" p99_ms)" "$(jget "$MET_J" rejected_503)" "$(sum3 "$MET_J")" "$MET_XLEN"
        qrow "API trace list, default page (last 24 h, 20 traces)" "p99 < 100 ms" 100 "$QT_J"
        qrow "API trace list, service=payments-worker" "p99 < 100 ms" 100 "$QTS_J"
        qrow "API trace by id (200 random traces of 10 spans)" "p99 < 20 ms" 20 "$QTI_J"
        qrow "API log search, rare word ($(fmt "$N_RARE") matches)" "p99 < 200 ms" 200 "$QLR_J"
        qrow "API log search, common word 'request' ($(fmt "$N_COMMON") matches)" "p99 < 200 ms" 200 "$QLC_J"
        qrow "API log search, phrase '\"request user\"'" "p99 < 200 ms" 200 "$QLP_J"
        qrow "API log search, 'request -user' (exclusion)" "p99 < 200 ms" 200 "$QLX_J"
        qrow "API log search, '1234' (about 1 log in 2,000)" "p99 < 200 ms" 200 "$QLM_J"
        qrow "API log search, severity=FATAL (none)" "p99 < 200 ms" 200 "$QLF_J"
        qrow "API log search, service=payments-worker" "p99 < 200 ms" 200 "$QLS_J"
        qrow "API trace list, service with no traces" "p99 < 100 ms" 100 "$QTN_J"
        qrow "API trace list, status=error" "p99 < 100 ms" 100 "$QTE_J"
        qrow "API trace list, minDuration=400" "p99 < 100 ms" 100 "$QTD_J"
        qrow "API metric query, 24 h of 1-minute points, 100 series (groupBy=route)" "p99 < 50 ms" 50 "$QM_J"
        qrow "API metric query, 24 h of 1-minute points, sum over 100 series" "p99 < 50 ms" 50 "$QMS_J"
        if [[ -n $PAGE_J ]]; then
            printf '| dashboard first page: project overview after login, empty cache, headless Chromium (%s loads, %s bytes) | < 1 s | p50 %s ms, p90 %s ms, max %s ms (DOMContentLoaded p50 %s ms) | %s |\n' \
                "$(jget "$PAGE_J" samples)" "$(fmt "$(jget "$PAGE_J" bytes)")" "$(jget "$PAGE_J" p50_ms)" \
                "$(jget "$PAGE_J" p90_ms)" "$(jget "$PAGE_J" max_ms)" "$(jget "$PAGE_J" dcl_p50_ms)" \
                "$(yes_no "$(jget "$PAGE_J" p50_ms) < 1000")"
        else
            printf '| dashboard first page: project overview after login | < 1 s | skipped: %s | - |\n' "$PAGE_WHY"
        fi
    fi
    sse_rows
    printf '\nBacklog after sat65: %s; after sat520: %s.' "$SAT65_BACKLOG" "$SAT520_BACKLOG"
    [[ -n $DISCARDED ]] && printf ' Stream entries discarded between phases: %s.' "$DISCARDED"
    printf '\n\nCPU cores used per phase (%s CPUs; "other" is everything outside the stack and loadgen):\n\n' "$(nproc)"
    printf '| phase | ingest | nginx | redis | persist | postgres | api | rollup | loadgen | other | machine |\n'
    printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
    for ph in e2e e2e-drain sat65 sat520 latency logs metrics; do
        row="" known=0
        for g in ingest nginx redis persist postgres api rollup loadgen; do
            v=$(cpu "$g" "$ph")
            row="$row | $v"
            [[ $v != - ]] && known=$(calc "$known + $v" %.2f)
        done
        all=$(cpu all "$ph")
        other=-
        [[ $all != - ]] && other=$(calc "$all - $known" %.2f)
        printf '| %s%s | %s | %s |\n' "$ph" "$row" "$other" "$all"
    done
} | tee "$OUT/table.md"
cp "$OUT/table.md" "$TOOLS/last-run.md" 2>/dev/null || true
