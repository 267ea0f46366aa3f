#!/bin/sh
# fuzz.sh: builds the libFuzzer targets in fuzz/ with clang (fuzzer, address,
# undefined), seeds each corpus from the shared OTLP fixtures and the decoder
# test cases, and runs each target for ${1:-30} seconds. Exits non-zero when a
# target crashes; the crashing input is kept under build/fuzz/artifacts/.
#   scripts/fuzz.sh [seconds]        SX_FIXTURES=dir overrides the fixture dir
set -eu

SECS=${1:-30}
cd "$(dirname "$0")/.."
FIX=${SX_FIXTURES:-../shared/otlp-fixtures}
[[ -r $FIX/traces-proto.bin ]] || FIX=tests/fixtures/otlp
OUT=build/fuzz
GEN=$OUT/gen
CC=${FUZZ_CC:-clang}

command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found" >&2; exit 1; }
command -v protoc-c >/dev/null || { echo "fuzz.sh: protoc-c not found" >&2; exit 1; }

# Generated protobuf code of our own .proto files, kept apart from the
# Makefile's build/gen so the two never race.
mkdir -p "$GEN" "$OUT/artifacts"
for p in $(find proto -name '*.proto' | sort); do
    protoc-c --proto_path=proto --c_out="$GEN" "$p"
done
PB_C=$(find "$GEN" -name '*.pb-c.c' | sort)

LIB_C="lib/arena.c lib/buf.c lib/json.c lib/config.c lib/util.c lib/log.c
       lib/gzip.c lib/otlp_pb.c lib/otlp_json.c lib/otlp_validate.c lib/otlp_logs.c lib/otlp_metrics.c lib/sqlnorm.c
       lib/stacktrace.c lib/grouping.c lib/jsonval.c lib/apiutil.c lib/scrub.c lib/live.c lib/copyrow.c lib/redis.c"
CFLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -Ilib -I$GEN -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer"
LIBS="-lprotobuf-c -lyajl -lz -lcrypto -lhiredis -lm"

# OTLP/JSON keys and tokens: helps the JSON target reach deep paths quickly.
cat > "$OUT/trace_json.dict" <<'DICT'
"\"resourceSpans\""
"\"scopeSpans\""
"\"spans\""
"\"resource\""
"\"scope\""
"\"attributes\""
"\"traceId\""
"\"spanId\""
"\"parentSpanId\""
"\"startTimeUnixNano\""
"\"endTimeUnixNano\""
"\"timeUnixNano\""
"\"events\""
"\"links\""
"\"status\""
"\"code\""
"\"kind\""
"\"key\""
"\"value\""
"\"values\""
"\"stringValue\""
"\"intValue\""
"\"doubleValue\""
"\"boolValue\""
"\"bytesValue\""
"\"arrayValue\""
"\"kvlistValue\""
"\"5654e161600dfb2ffdfaf7d91808ac81\""
"\"e6ddfe79ddf866f4\""
"\"NaN\""
"\"Infinity\""
"\"SPAN_KIND_SERVER\""
"null"
"true"
DICT

# Shared OTLP/JSON tokens (resources, scopes, attributes, values) for the
# logs and metrics dictionaries.
cat > "$OUT/common_json.dict" <<'DICT'
"\"resource\""
"\"scope\""
"\"attributes\""
"\"key\""
"\"value\""
"\"values\""
"\"stringValue\""
"\"intValue\""
"\"doubleValue\""
"\"boolValue\""
"\"bytesValue\""
"\"arrayValue\""
"\"kvlistValue\""
"\"traceId\""
"\"spanId\""
"\"timeUnixNano\""
"\"flags\""
"\"5654e161600dfb2ffdfaf7d91808ac81\""
"\"b02cb7489ca21563\""
"\"NaN\""
"null"
"true"
DICT
cat "$OUT/common_json.dict" - > "$OUT/logs_json.dict" <<'DICT'
"\"resourceLogs\""
"\"scopeLogs\""
"\"logRecords\""
"\"observedTimeUnixNano\""
"\"severityNumber\""
"\"severityText\""
"\"body\""
"\"eventName\""
"\"SEVERITY_NUMBER_WARN\""
DICT
cat "$OUT/common_json.dict" - > "$OUT/metrics_json.dict" <<'DICT'
"\"resourceMetrics\""
"\"scopeMetrics\""
"\"metrics\""
"\"name\""
"\"unit\""
"\"gauge\""
"\"sum\""
"\"histogram\""
"\"exponentialHistogram\""
"\"summary\""
"\"dataPoints\""
"\"aggregationTemporality\""
"\"isMonotonic\""
"\"startTimeUnixNano\""
"\"asInt\""
"\"asDouble\""
"\"count\""
"\"bucketCounts\""
"\"explicitBounds\""
"\"min\""
"\"max\""
"\"scale\""
"\"zeroCount\""
"\"zeroThreshold\""
"\"positive\""
"\"negative\""
"\"offset\""
"\"quantileValues\""
"\"quantile\""
"\"exemplars\""
"\"filteredAttributes\""
DICT

# Stack trace markers of every format: helps the stack target reach each parser.
cat > "$OUT/stacktrace.dict" <<'DICT'
"\x0a    at "
"at async "
"at new "
" (node:internal/"
"eval at "
"<anonymous>"
"@https://x/a.js:1:2"
"Traceback (most recent call last):"
"  File \""
"\", line "
", in "
"The above exception was the direct cause of the following exception:"
"During handling of the above exception, another exception occurred:"
"\x0a\x09at "
"Caused by: "
"Suppressed: "
"... 12 more"
"(Native Method)"
"Exception in thread \"main\" "
"panic: "
"goroutine 1 [running]:"
"\x0a\x09/app/main.go:42 +0x1d"
"created by "
":in `"
":in '"
"\x09from "
" ---> "
"--- End of inner exception stack trace ---"
" in /src/A.cs:line 42"
"site-packages/"
"node_modules/"
"0x1f"
"123e4567-e89b-12d3-a456-426614174000"
"https://a.b/c"
"2024-01-05T10:00:00Z"
"::1"
DICT

seed() { # seed NAME files...
    dir=fuzz/corpus-$1
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        [ -f "$f" ] && cp -f "$f" "$dir/seed-$(basename "$f")"
    done
    return 0
}
seed trace_pb "$FIX"/traces-proto.bin "$FIX"/traces-payments-worker-proto.bin tests/data/otlp/pb_*.bin
seed trace_json "$FIX"/traces-json.json "$FIX"/traces-payments-worker-json.json tests/data/otlp/json_*.json
seed gunzip "$FIX"/*.gz
seed logs_pb "$FIX"/logs-proto.bin tests/data/otlp_logs/pb_*.bin
seed logs_json "$FIX"/logs-json.json tests/data/otlp_logs/json_*.json
seed metrics_pb "$FIX"/metrics-*-proto.bin tests/data/otlp_metrics/pb_*.bin
seed metrics_json "$FIX"/metrics-*-json.json tests/data/otlp_metrics/json_*.json
seed sqlnorm tests/data/sql/*.sql
seed stacktrace tests/data/stacks/*.txt
seed jsonval tests/data/json/*.json
mkdir -p fuzz/corpus-scrub fuzz/corpus-live
printf '\001[{"service":"api","body":"a line","severityNumber":13}]' > fuzz/corpus-live/seed-logs
printf '\000[{"name":"GET /","service":"api","kind":2}]' > fuzz/corpus-live/seed-spans
printf '\000card 4111 1111 1111 1111 Bearer abcdefghijk eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig' > fuzz/corpus-scrub/seed-secrets
printf '\001[{"action":"redact","pattern":"ssn=[0-9]+","ignoreCase":true},{"action":"truncate","key":"a*","maxLength":3}]' > fuzz/corpus-scrub/seed-rules

fail=0
# FUZZ_TARGETS="logs_pb logs_json" runs only those.
for t in ${FUZZ_TARGETS:-trace_pb trace_json gunzip logs_pb logs_json metrics_pb metrics_json sqlnorm stacktrace jsonval scrub live}; do
    echo "== fuzz_$t: build"
    # The OTLP targets are one source, fuzz/fuzz_otlp.c, built once per signal
    # and encoding; the defines pick which.
    case $t in
        trace_*|logs_*|metrics_*)
            sig=$(echo "${t%_*}" | tr a-z A-Z)
            json=0
            [ "${t#*_}" = json ] && json=1
            src=fuzz/fuzz_otlp.c
            defs="-DSX_FUZZ_$sig -DSX_FUZZ_JSON=$json" ;;
        *)
            src=fuzz/fuzz_$t.c
            defs="" ;;
    esac
    # shellcheck disable=SC2086
    "$CC" $CFLAGS $defs -o "$OUT/fuzz_$t" "$src" $LIB_C $PB_C $LIBS
    dict=""
    [ -f "$OUT/$t.dict" ] && dict="-dict=$OUT/$t.dict"
    echo "== fuzz_$t: run ${SECS}s"
    # shellcheck disable=SC2086
    if ! "$OUT/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$OUT/artifacts/$t-" $dict "fuzz/corpus-$t" 2> "$OUT/fuzz_$t.log"; then
        echo "fuzz_$t: CRASH, see $OUT/fuzz_$t.log and $OUT/artifacts/" >&2
        tail -40 "$OUT/fuzz_$t.log" >&2
        fail=1
    fi
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done" "$OUT/fuzz_$t.log" || true
done
[ "$fail" -eq 0 ] && echo "fuzz.sh: all targets ran clean for ${SECS}s each"
exit "$fail"
