#!/usr/bin/env bash
# run-tests.sh: runs the sanitized unit tests, then the end-to-end suite, and ends with one
# line "N passed, N failed". `make test` builds bin/ and build-san/ first.
#
#   scripts/run-tests.sh          unit tests, then tests/e2e (node --test, TAP)
#   scripts/run-tests.sh unit     unit tests only
#   scripts/run-tests.sh e2e      end-to-end tests only
#
# Logs go to build-san/test-logs/<time>/; the paths of failed runs are printed and kept.
# E2E tests start their own stacks (scripts/stack.sh) under a private TMPDIR; stacks a
# test left running are stopped afterwards.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

# The OTLP fixtures (real requests from the OpenTelemetry JS SDK): the team's shared copy
# beside the checkout when there is one, else the copy in tests/fixtures/otlp, so a lone
# clone tests the same vectors. C tests and fuzz.sh read SX_FIXTURES, node SEXTANT_FIXTURES.
if [[ -z ${SX_FIXTURES:-} ]]; then
    SX_FIXTURES=$REPO/tests/fixtures/otlp
    [[ -r $REPO/../shared/otlp-fixtures/traces-proto.bin ]] && SX_FIXTURES=$(cd "$REPO/../shared/otlp-fixtures" && pwd)
fi
export SX_FIXTURES
export SEXTANT_FIXTURES=${SEXTANT_FIXTURES:-$SX_FIXTURES}
MODE=${1:-all}
case $MODE in all | unit | e2e) ;; *) echo "usage: $0 [unit|e2e]" >&2; exit 2 ;; esac

LOGDIR=$REPO/build-san/test-logs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$LOGDIR"
TOTAL_PASS=0
TOTAL_FAIL=0
FAILED_LOGS=()

# Sum of N over the lines "[  WORD  ] N test(s)" of a cmocka log (0 when none).
cmocka_count() {
    local word=$1 log=$2
    { grep -E "^\[  $word  \] [0-9]+ test" "$log" || true; } |
        awk '{ n += $4 } END { print n + 0 }'
}

run_unit() {
    local bin name log rc pass fail found=0 upass=0 ufail=0
    echo "== unit tests (build-san/tests, ASan + UBSan)"
    for bin in "${SEXTANT_UNIT_DIR:-build-san/tests}"/test_*; do
        [[ -f $bin && -x $bin ]] || continue
        found=1
        name=${bin##*/}
        log=$LOGDIR/$name.log
        rc=0
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1} \
        LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$REPO/tests/lsan.supp:print_suppressions=0} \
            UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
            timeout 600 "$bin" </dev/null >"$log" 2>&1 || rc=$?
        pass=$(cmocka_count PASSED "$log")
        fail=$(cmocka_count FAILED "$log")
        # A crash, a leak report or a timeout with no failure counted is one failure.
        if ((rc != 0 && fail == 0)); then fail=1; fi
        if ((pass == 0 && fail == 0)); then fail=1; fi
        printf '  %-32s %3d passed, %d failed%s\n' "$name" "$pass" "$fail" \
            "$( ((rc == 0)) || printf ' (exit %d)' "$rc")"
        if ((fail > 0)); then
            FAILED_LOGS+=("$log")
            tail -n 30 "$log" | sed 's/^/    | /'
        fi
        upass=$((upass + pass))
        ufail=$((ufail + fail))
    done
    ((found)) || echo "  no unit test binaries in build-san/tests (run: make SANITIZER=address,undefined unit-bins)"
    echo "unit: $upass passed, $ufail failed"
    TOTAL_PASS=$((TOTAL_PASS + upass))
    TOTAL_FAIL=$((TOTAL_FAIL + ufail))
}

# Test stacks of this run still on disk: homes holding a stack.env newer than marker $1,
# under this run's private TMPDIR (where tests/e2e/lib/stack.mjs makes them; never
# /tmp at large, which may hold another run's live stacks). Each one
# still running (its test process died) is stopped; the homes are printed.
sweep_stacks() {
    local state home
    while IFS= read -r state; do
        home=${state%/stack.env}
        SEXTANT_HOME=$home scripts/stack.sh down 2>&1 | grep -E 'stopping|error' | sed "s|^|  $home: |" || true
        echo "  test stack kept: $home (logs in $home/log)"
    done < <(find "$(dirname "$1")" -maxdepth 4 -name stack.env -newer "$1" 2>/dev/null | sort -u)
}

run_e2e() {
    local dir=${SEXTANT_E2E_DIR:-tests/e2e} log=$LOGDIR/e2e.tap rc=0 pass fail cancelled tmp
    echo "== end-to-end tests (tests/e2e, node --test)"
    if ! compgen -G "$dir/*.test.mjs" >/dev/null && ! compgen -G "$dir/*.test.js" >/dev/null; then
        echo "  no tests in $dir"
        echo "e2e: 0 passed, 0 failed"
        return
    fi
    # Install when missing, and again when the lockfile changed since (a new dependency).
    if [[ -f $dir/package.json && ( ! -d $dir/node_modules ||
        $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ) ]]; then
        echo "  npm ci in $dir"
        if [[ -f $dir/package-lock.json ]]; then
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$LOGDIR/npm.log" 2>&1 || rc=$?
        else
            (cd "$dir" && npm install --no-audit --no-fund --loglevel=error) >"$LOGDIR/npm.log" 2>&1 || rc=$?
        fi
        if ((rc != 0)); then
            tail -n 30 "$LOGDIR/npm.log" | sed 's/^/    | /'
            echo "e2e: 0 passed, 1 failed (npm could not install the test dependencies: $LOGDIR/npm.log)"
            FAILED_LOGS+=("$LOGDIR/npm.log")
            TOTAL_FAIL=$((TOTAL_FAIL + 1))
            return
        fi
    fi
    # A private TMPDIR (short: unix socket paths stay under 107 bytes); its marker file
    # dates this run's test stacks.
    tmp=$(mktemp -d /tmp/sx-e2e.XXXXXX)
    chmod 0755 "$tmp"
    touch "$tmp/.start"
    rc=0
    TMPDIR=$tmp SEXTANT_BIN=${SEXTANT_BIN:-$REPO/build-san/bin} SEXTANT_REPO=$REPO \
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
        LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$REPO/tests/lsan.supp:print_suppressions=0} \
        timeout "${SEXTANT_E2E_TIMEOUT:-2400}" \
        node --test --test-reporter=tap "$dir/" </dev/null 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
    sweep_stacks "$tmp/.start"
    find "$tmp" -mindepth 1 -maxdepth 1 ! -name .start | grep -q . || rm -rf "$tmp"
    pass=$({ grep -E '^# pass [0-9]+' "$log" || true; } | tail -n 1 | awk '{ print $3 + 0 }')
    fail=$({ grep -E '^# fail [0-9]+' "$log" || true; } | tail -n 1 | awk '{ print $3 + 0 }')
    cancelled=$({ grep -E '^# cancelled [0-9]+' "$log" || true; } | tail -n 1 | awk '{ print $3 + 0 }')
    pass=${pass:-0} fail=${fail:-0} cancelled=${cancelled:-0}
    fail=$((fail + cancelled))
    if ((rc != 0 && fail == 0)); then fail=1; fi
    ((fail == 0)) || FAILED_LOGS+=("$log")
    echo "e2e: $pass passed, $fail failed$( ((rc == 0)) || printf ' (node exit %d)' "$rc")"
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
}

[[ $MODE == e2e ]] || run_unit
[[ $MODE == unit ]] || run_e2e

if ((${#FAILED_LOGS[@]})); then
    echo "logs of failed runs:"
    printf '  %s\n' "${FAILED_LOGS[@]}"
else
    rm -rf "$LOGDIR"
fi
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
((TOTAL_FAIL == 0))
