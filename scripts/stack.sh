#!/usr/bin/env bash
# stack.sh: the local Sextant stack: PostgreSQL, Redis, nginx (self-signed TLS) and every
# Sextant program, all under $SEXTANT_HOME on their own unix sockets and one TCP port.
#
#   scripts/stack.sh up | down | run | status | destroy | maintain
#       (up runs sextantctl maintain once, run also hourly; maintain runs it now)
#   scripts/stack.sh start NAME | stop NAME [--kill] | restart NAME
#       NAME: postgres redis nginx ingest api sse persist rollup, or rollup2 (a second
#       sextant-rollup, --instance 2, that `up` does not start and `down` stops)
#
# Environment:
#   SEXTANT_HOME    stack directory (default: the repo's var/; relative paths are made absolute)
#   SEXTANT_PORT    HTTPS port of nginx on 127.0.0.1 (default 8443)
#   SEXTANT_BIN     where the programs are (default: the repo's bin/; tests use build-san/bin)
#   SEXTANT_STATIC  dashboard files (default: the repo's web/dist when built)
#   SEXTANT_DEMO_USER   email of a dashboard login (instance admin) made on `up` with a
#                   generated password, both kept in demo.env and printed (make run/up
#                   set admin@sextant.local; unset: none, as in the tests)
#   SEXTANT_EXTRA_CONF  extra "name value" lines appended to sextant.conf on `up`
#                   ($SEXTANT_HOME/extra.conf is appended too, when present)
#   SEXTANT_UP_TIMEOUT   seconds `up` waits for health (default 60)
#   SEXTANT_STOP_TIMEOUT seconds a service gets after SIGTERM before SIGKILL (default 15)
#
# Layout: sextant.conf, demo.env, stack.env (paths chosen at the first `up`), run/ (pid
# files, sockets), log/NAME.log, data/{pg,redis}, nginx/ (rendered config, temp dirs),
# tls/. Unix socket paths must stay under 107 bytes, so sockets move to /tmp/sx-<hash>
# when run/ is too deep. As root, PostgreSQL runs as the postgres user; when that user
# cannot reach data/, its data dir and socket move to /tmp/sx-<hash> too.
# PostgreSQL logins: sextantctl and psql use pg_conninfo (the tables' owner); each program
# logs in as its own role sextant_{ingest,api,sse,persist,rollup} (made after migrate, see
# make_roles and README "Database roles") through <program>_pg_conninfo.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # '&' in ${v//x/y} replacements stays literal

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES=(postgres redis nginx ingest api sse persist rollup)
PG_LOGINS=(ingest api sse persist rollup) # login role sextant_NAME in group sextant_NAME_role (sql/016, 019)
PG_PORT=5432

H=$(realpath -m "${SEXTANT_HOME:-$REPO/var}")
[[ $H != *[[:space:]]* ]] || { echo "stack: error: SEXTANT_HOME must not contain spaces: '$H'" >&2; exit 1; }
RUN=$H/run
LOG=$H/log
DATA=$H/data
NGX=$H/nginx
TLS=$H/tls
CONF=$H/sextant.conf
STATE=$H/stack.env
DEMO_ENV=$H/demo.env
CERT=$TLS/cert.pem
KEY=$TLS/key.pem
SHORT=/tmp/sx-$(printf '%s' "$H" | sha256sum | cut -c1-10)
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# ---------------------------------------------------------------------------- helpers

say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() {
    printf 'stack: error: %s\n' "$*" >&2
    exit 1
}

# Prints the last lines of the given logs (to stderr), for error messages.
show_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf -- '--- last lines of %s\n' "$f" >&2
        tail -n 20 "$f" >&2
    done
}

# Serializes up/down/start/stop of one stack. Daemons never inherit fd 9.
lock() {
    mkdir -p "$H"
    exec 9>"$H/.lock"
    flock -w 300 9 || die "another stack.sh holds $H/.lock"
}
unlock() { exec 9>&-; }

# alive PID: the process exists and is not a zombie (zombies linger ~1 s under this init).
alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != [ZX] ]]
}

# Command line of PID, NULs as spaces.
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

pg_bindir() {
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $d && -x $d/initdb ]]; then
        printf '%s' "$d"
        return
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x $d/initdb ]] && { printf '%s' "$d"; return; }
    done
    [[ -x /usr/lib/postgresql/15/bin/initdb ]] || die "PostgreSQL server binaries not found (run make deps)"
    printf '%s' /usr/lib/postgresql/15/bin
}

# Runs a command as the PostgreSQL owner: the postgres user when we are root.
as_pg() {
    if [[ $IS_ROOT == 1 ]]; then
        env -C / runuser -u postgres -- "$@" # cd /: postgres may not enter our cwd
    else
        "$@"
    fi
}

# pid of a running service of THIS stack, or nothing (status 1). The command line must
# name this stack's paths, so a stale pid file never adopts another stack's process.
svc_pid() {
    local name=$1 pid="" want mine alt=""
    case $name in
    postgres)
        [[ -n ${PG_DATA:-} && -r $PG_DATA/postmaster.pid ]] && pid=$(head -n 1 "$PG_DATA/postmaster.pid")
        want=postgres mine=${PG_DATA:-} ;;
    # redis-server shows its socket only once it has set its process title; until
    # then (a window that widens under load) its command line names our config.
    redis) want=redis-server mine=${SOCK_DIR:-}/redis.sock alt=$H/redis.conf ;;
    nginx) want=nginx mine=$NGX/ ;;
    ingest) want=sextant-ingest mine=$CONF ;;
    api) want=sextant-api mine=$CONF ;;
    sse) want=sextant-sse mine=$CONF ;;
    persist) want=sextant-persist mine=$CONF ;;
    rollup | rollup2) want=sextant-rollup mine=$CONF ;;
    *) die "unknown service '$name' (one of: ${SERVICES[*]})" ;;
    esac
    [[ -z $pid && -r $RUN/$name.pid ]] && pid=$(head -n 1 "$RUN/$name.pid")
    [[ -n $pid ]] && alive "$pid" || return 1
    local cmd
    cmd=$(cmdline "$pid")
    [[ $cmd == *"$want"* && ($cmd == *"$mine"* || (-n $alt && $cmd == *"$alt"*)) ]] || return 1
    printf '%s' "$pid"
}

# launch NAME CMD...: starts CMD in its own session, in the background, stdin from
# /dev/null, output appended to log/NAME.log, pid in run/NAME.pid.
launch() {
    local name=$1
    shift
    rm -f "$RUN/$name.pid"
    printf '\n=== %s starting %s\n' "$(date '+%F %T')" "$name" >>"$LOG/$name.log"
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
        </dev/null >>"$LOG/$name.log" 2>&1 9>&- &
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $RUN/$name.pid ]] && return 0
        sleep 0.05
    done
    die "$name did not start (see $LOG/$name.log)"
}

# wait_for NAME TEST...: polls TEST until it succeeds while the service lives.
wait_for() {
    local name=$1 i
    shift
    for ((i = 0; i < 300; i++)); do
        "$@" && return 0
        svc_pid "$name" >/dev/null || { show_logs "$LOG/$name.log"; die "$name exited while starting (see $LOG/$name.log)"; }
        sleep 0.1
    done
    show_logs "$LOG/$name.log"
    die "$name not ready after 30 s (see $LOG/$name.log)"
}

is_socket() { [[ -S $1 ]]; }

# ---------------------------------------------------------------------------- layout

save_state() {
    {
        printf '# written by scripts/stack.sh: where this stack keeps its parts\n'
        printf 'STACK_PORT=%q\nSTACK_BIN=%q\nSOCK_DIR=%q\nPG_DATA=%q\nPG_SOCK=%q\n' \
            "$PORT" "$BIN" "$SOCK_DIR" "$PG_DATA" "$PG_SOCK"
    } >"$STATE"
}

# Reads stack.env when present and settles PORT, BIN and the paths of sockets and data.
load_state() {
    STACK_PORT="" STACK_BIN="" SOCK_DIR="" PG_DATA="" PG_SOCK=""
    # shellcheck disable=SC1090
    [[ -r $STATE ]] && source "$STATE"
    PORT=${SEXTANT_PORT:-${STACK_PORT:-8443}}
    BIN=${SEXTANT_BIN:+$(realpath -m "$SEXTANT_BIN")}
    BIN=${BIN:-${STACK_BIN:-$REPO/bin}}
    [[ $PORT =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "SEXTANT_PORT '$PORT' is not a port"
}

# A private directory under /tmp for what cannot live under $SEXTANT_HOME.
make_short_dir() {
    if [[ ! -d $SHORT ]]; then
        mkdir -p "$SHORT"
        chmod 0755 "$SHORT"
    fi
    [[ -O $SHORT ]] || die "$SHORT belongs to another user"
}

# First `up`: decides where sockets and PostgreSQL's data live, once.
plan_layout() {
    mkdir -p "$H" "$RUN" "$LOG" "$DATA" "$NGX" "$TLS"
    chmod 0755 "$RUN" "$DATA" "$LOG"
    [[ -n $SOCK_DIR && -n $PG_DATA && -n $PG_SOCK ]] && return 0
    # Longest socket: $SOCK_DIR/pg/.s.PGSQL.5432 (18 more bytes); leave a margin.
    if ((${#RUN} <= 80)); then
        SOCK_DIR=$RUN
    else
        make_short_dir
        SOCK_DIR=$SHORT
    fi
    PG_DATA=$DATA/pg
    PG_SOCK=$SOCK_DIR/pg
    if [[ $IS_ROOT == 1 ]]; then
        id -u postgres >/dev/null 2>&1 || die "no postgres user (run make deps)"
        if ! as_pg test -x "$DATA" -a -x "$SOCK_DIR"; then
            say "the postgres user cannot reach $H: its data and socket go to $SHORT"
            make_short_dir
            PG_DATA=$SHORT/pgdata
            PG_SOCK=$SHORT/pg
        fi
    fi
    save_state
}

# ---------------------------------------------------------------------------- config

# Last value of a setting in sextant.conf.
conf_value() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$CONF"; }

write_config() {
    local tmp=$CONF.tmp r
    {
        printf '# sextant.conf of the local stack: rewritten by scripts/stack.sh on every up.\n'
        printf '# Put your own settings in %s/extra.conf (appended below).\n' "$H"
        printf 'log_level info\n'
        printf 'redis_socket %s/redis.sock\n' "$SOCK_DIR"
        printf 'redis_prefix sx\n'
        printf 'pg_conninfo host=%s port=%s dbname=sextant user=postgres\n' "$PG_SOCK" "$PG_PORT"
        # Each program logs in as its own role (made by make_roles), as in production.
        for r in "${PG_LOGINS[@]}"; do
            printf '%s_pg_conninfo host=%s port=%s dbname=sextant user=sextant_%s\n' "$r" "$PG_SOCK" "$PG_PORT" "$r"
        done
        printf 'ingest_listen %s/ingest.sock\n' "$SOCK_DIR"
        printf 'api_listen %s/api.sock\n' "$SOCK_DIR"
        printf 'sse_socket %s/sse.sock\n' "$SOCK_DIR"
        printf 'ingest_threads 8\n'
        printf 'api_threads 4\n'
        printf 'max_body_bytes 8m\n'
        if [[ -r $H/extra.conf ]]; then
            printf '\n# from %s/extra.conf\n' "$H"
            cat "$H/extra.conf"
        fi
        if [[ -n ${SEXTANT_EXTRA_CONF:-} ]]; then
            printf '\n# from SEXTANT_EXTRA_CONF\n%s\n' "$SEXTANT_EXTRA_CONF"
        fi
    } >"$tmp"
    mv "$tmp" "$CONF"
}

# ---------------------------------------------------------------------------- postgres

start_postgres() {
    local pgbin
    if svc_pid postgres >/dev/null; then return 0; fi
    pgbin=$(pg_bindir)
    if [[ ! -s $PG_DATA/PG_VERSION ]]; then
        say "initdb $PG_DATA"
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        chmod 0700 "$PG_DATA"
        [[ $IS_ROOT == 1 ]] && chown postgres:postgres "$PG_DATA"
        as_pg "$pgbin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale \
            --no-instructions </dev/null >>"$LOG/postgres-initdb.log" 2>&1 9>&- ||
            { show_logs "$LOG/postgres-initdb.log"; die "initdb failed (see $LOG/postgres-initdb.log)"; }
        printf "\ninclude_if_exists = 'sextant-stack.conf'\n" >>"$PG_DATA/postgresql.conf"
    fi
    mkdir -p "$PG_SOCK"
    chmod 0755 "$PG_SOCK"
    [[ $IS_ROOT == 1 ]] && chown postgres:postgres "$PG_SOCK"
    # Rewritten on every start: unix socket only, inside the stack.
    cat >"$PG_DATA/sextant-stack.conf" <<EOF
# written by scripts/stack.sh on every start
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0777
fsync = on
max_connections = 100
log_line_prefix = '%m [%p] '
EOF
    [[ $IS_ROOT == 1 ]] && chown postgres:postgres "$PG_DATA/sextant-stack.conf"
    printf '\n=== %s starting postgres\n' "$(date '+%F %T')" >>"$LOG/postgres.log"
    # pg_ctl puts the server in its own session; its output goes to our log file.
    as_pg "$pgbin/pg_ctl" start -D "$PG_DATA" -w -t 60 -s </dev/null >>"$LOG/postgres.log" 2>&1 9>&- ||
        { show_logs "$LOG/postgres.log"; die "PostgreSQL did not start (see $LOG/postgres.log)"; }
    if [[ -z $("$pgbin/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'sextant'") ]]; then
        "$pgbin/createdb" -h "$PG_SOCK" -p "$PG_PORT" -U postgres sextant
    fi
}

stop_postgres() {
    local sig=$1 pid
    pid=$(svc_pid postgres) || return 0
    if [[ $sig == KILL ]]; then
        stop_pid postgres "$pid" KILL
        return
    fi
    as_pg "$(pg_bindir)/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 -s </dev/null >>"$LOG/postgres.log" 2>&1 9>&- ||
        stop_pid postgres "$pid" TERM
    stop_pid postgres "$pid" TERM
}

# ---------------------------------------------------------------------------- redis

start_redis() {
    if svc_pid redis >/dev/null; then return 0; fi
    command -v redis-server >/dev/null || die "redis-server not found (run make deps)"
    mkdir -p "$DATA/redis"
    rm -f "$SOCK_DIR/redis.sock"
    cat >"$H/redis.conf" <<EOF
# written by scripts/stack.sh on every start: unix socket only, data inside the stack
port 0
unixsocket $SOCK_DIR/redis.sock
unixsocketperm 777
daemonize no
supervised no
pidfile $RUN/redis.pid
dir $DATA/redis
appendonly yes
appendfsync everysec
save ""
logfile ""
loglevel notice
EOF
    launch redis redis-server "$H/redis.conf"
    wait_for redis is_socket "$SOCK_DIR/redis.sock"
}

# ---------------------------------------------------------------------------- nginx

make_cert() {
    [[ -s $CERT && -s $KEY ]] && return 0
    say "generating a self-signed certificate in $TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$KEY.tmp" -out "$CERT.tmp" >>"$LOG/openssl.log" 2>&1 ||
        { show_logs "$LOG/openssl.log"; die "openssl req failed"; }
    chmod 0600 "$KEY.tmp"
    mv "$KEY.tmp" "$KEY"
    mv "$CERT.tmp" "$CERT"
}

static_root() {
    if [[ -n ${SEXTANT_STATIC:-} ]]; then
        realpath -m "$SEXTANT_STATIC"
    elif [[ -f $REPO/web/dist/index.html ]]; then
        printf '%s' "$REPO/web/dist"
    else
        mkdir -p "$H/www"
        [[ -f $H/www/index.html ]] || cat >"$H/www/index.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>Sextant</title></head>
<body><h1>Sextant</h1><p>The dashboard is not built yet. The OTLP endpoint is
<code>/v1/traces</code>, the API <code>/api/v1/</code>.</p></body></html>
EOF
        printf '%s' "$H/www"
    fi
}

# Idle FastCGI connections per nginx worker: 2 workers * keepalive < threads, so a
# thread is always free for a new connection (see nginx/sextant.conf.in).
keepalive_for() {
    local threads=$1 k
    k=$(((threads - 1) / 2))
    ((k >= 1)) || k=1
    printf '%s' "$k"
}

# render TEMPLATE OUT NAME=VALUE...: replaces @NAME@ by VALUE.
render() {
    local tpl=$1 out=$2 text kv
    shift 2
    text=$(<"$tpl")
    for kv in "$@"; do
        text=${text//@${kv%%=*}@/${kv#*=}}
    done
    [[ $text != *@[A-Z_]*@* ]] || die "unreplaced placeholder in $out: $(grep -o '@[A-Z_]*@' <<<"$text" | head -n 1)"
    printf '%s\n' "$text" >"$out"
}

render_nginx() {
    local user_line="" f
    mkdir -p "$NGX"/tmp/{body,proxy,fastcgi,uwsgi,scgi}
    [[ $IS_ROOT == 1 ]] && user_line="user root;"
    for f in fastcgi_params mime.types; do
        if [[ -r /etc/nginx/$f ]]; then
            cp "/etc/nginx/$f" "$NGX/$f"
        elif [[ $f == mime.types ]]; then
            printf 'types { text/html html; text/css css; application/javascript js mjs; application/json json; image/svg+xml svg; }\n' >"$NGX/$f"
        else
            die "/etc/nginx/fastcgi_params not found (run make deps)"
        fi
    done
    render "$REPO/nginx/sextant.conf.in" "$NGX/sextant.conf" \
        "LISTEN=127.0.0.1:$PORT" \
        "SERVER_NAME=localhost 127.0.0.1" \
        "TLS_CERT=$CERT" \
        "TLS_KEY=$KEY" \
        "INGEST_SERVERS=server unix:$SOCK_DIR/ingest.sock;" \
        "INGEST_KEEPALIVE=$(keepalive_for "$(conf_value ingest_threads)")" \
        "API_SOCKET=$SOCK_DIR/api.sock" \
        "API_KEEPALIVE=$(keepalive_for "$(conf_value api_threads)")" \
        "SSE_SOCKET=$SOCK_DIR/sse.sock" \
        "STATIC_ROOT=$(static_root)" \
        "ACCESS_LOG=$LOG/nginx-access.log" \
        "HSTS_MAX_AGE=0"
    render "$REPO/nginx/nginx-local.conf.in" "$NGX/nginx.conf" \
        "USER_LINE=$user_line" "NGINX_DIR=$NGX" "RUN_DIR=$RUN" "LOG_DIR=$LOG"
}

port_busy() { (: <>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
port_open() { port_busy; }

start_nginx() {
    if svc_pid nginx >/dev/null; then return 0; fi
    command -v nginx >/dev/null || PATH=$PATH:/usr/sbin:/sbin
    command -v nginx >/dev/null || die "nginx not found (run make deps)"
    port_busy && die "127.0.0.1:$PORT is already in use: set SEXTANT_PORT"
    make_cert
    render_nginx
    nginx -t -q -p "$NGX/" -c "$NGX/nginx.conf" -e "$LOG/nginx-error.log" </dev/null >>"$LOG/nginx.log" 2>&1 ||
        { show_logs "$LOG/nginx.log" "$LOG/nginx-error.log"; die "nginx -t failed"; }
    launch nginx nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$LOG/nginx-error.log"
    wait_for nginx port_open
}

# ---------------------------------------------------------------------------- sextant

program() {
    local p=$BIN/$1
    [[ -x $p ]] || die "$p not found: build it with make (or set SEXTANT_BIN)"
    printf '%s' "$p"
}

# The programs read this stack's config; sextantctl finds the migrations here even when
# it runs from build-san/bin. NOTIFY_SOCKET belongs to whoever started us, not to them.
run_program() {
    env -u NOTIFY_SOCKET SEXTANT_HOME="$H" SEXTANT_CONFIG="$CONF" SEXTANT_SQL_DIR="$REPO/sql" "$@"
}

ctl() {
    run_program "$(program sextantctl)" --config "$CONF" "$@"
}

start_fcgi() {
    local name=$1 prog=$2 sock=$3
    if svc_pid "$name" >/dev/null; then return 0; fi
    prog=$(program "$prog")
    rm -f "$sock" # stale: our instance is not running
    launch "$name" env -u NOTIFY_SOCKET SEXTANT_HOME="$H" SEXTANT_CONFIG="$CONF" "$prog" --config "$CONF"
    wait_for "$name" is_socket "$sock"
}

start_ingest() { start_fcgi ingest sextant-ingest "$(conf_value ingest_listen)"; }
start_api() { start_fcgi api sextant-api "$(conf_value api_listen)"; }
start_sse() { start_fcgi sse sextant-sse "$(conf_value sse_socket)"; }

start_persist() {
    local prog
    if svc_pid persist >/dev/null; then return 0; fi
    prog=$(program sextant-persist)
    launch persist env -u NOTIFY_SOCKET SEXTANT_HOME="$H" SEXTANT_CONFIG="$CONF" "$prog" --config "$CONF" --instance 1
    sleep 0.2
    svc_pid persist >/dev/null || { show_logs "$LOG/persist.log"; die "persist exited at start (see $LOG/persist.log)"; }
}

# start_rollup [NAME INSTANCE]: rollup (instance 1), or rollup2 (instance 2).
start_rollup() {
    local prog name=${1:-rollup} instance=${2:-1}
    if svc_pid "$name" >/dev/null; then return 0; fi
    prog=$(program sextant-rollup)
    launch "$name" env -u NOTIFY_SOCKET SEXTANT_HOME="$H" SEXTANT_CONFIG="$CONF" "$prog" --config "$CONF" --instance "$instance"
    sleep 0.2
    svc_pid "$name" >/dev/null || { show_logs "$LOG/$name.log"; die "$name exited at start (see $LOG/$name.log)"; }
}

migrate() {
    ctl migrate </dev/null >>"$LOG/sextantctl.log" 2>&1 9>&- ||
        { show_logs "$LOG/sextantctl.log"; die "sextantctl migrate failed (see $LOG/sextantctl.log)"; }
}

# The programs' PostgreSQL logins (sql/016_service_roles.sql, README "Database roles"):
# sextant_NAME, a member of sextant_NAME_role; the two writers COPY into tables with
# row-level security, which needs BYPASSRLS. Idempotent; runs after migrate (the group
# roles come from it). Local trust authentication: no passwords.
make_roles() {
    local sql="" r attrs
    for r in "${PG_LOGINS[@]}"; do
        attrs="LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
        [[ $r == persist || $r == rollup ]] && attrs+=" BYPASSRLS" || attrs+=" NOBYPASSRLS"
        sql+="DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_$r') THEN "
        sql+="CREATE ROLE sextant_$r; END IF; END \$\$; ALTER ROLE sextant_$r $attrs; "
        sql+="GRANT sextant_${r}_role TO sextant_$r; "
    done
    "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d sextant -c "$sql" \
        </dev/null >>"$LOG/sextantctl.log" 2>&1 9>&- ||
        { show_logs "$LOG/sextantctl.log"; die "creating the programs' PostgreSQL roles failed (see $LOG/sextantctl.log)"; }
}

# json_field NAME: the value of "NAME" in the JSON object on stdin (string or number).
json_field() {
    sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\{0,1\}\([^",}]*\).*/\1/p' | head -n 1
}

# Retention: sextantctl maintain drops expired data and refreshes the storage
# estimates ingest checks. `up` runs it once (a failure is only a warning: the
# stack still works), `run` also every hour while it runs, as the systemd
# timer does in production; `stack.sh maintain` runs it on demand.
maintain() {
    ctl maintain </dev/null >>"$LOG/maintain.log" 2>&1 9>&- ||
        warn "sextantctl maintain failed (see $LOG/maintain.log)"
}

# The demo project: made on the first up; later ups reuse its key and token from demo.env.
ensure_demo() {
    local id out key="" token="" old_id="" old_key="" old_token="" user=${SEXTANT_DEMO_USER:-} password=""
    if [[ -r $DEMO_ENV ]]; then
        [[ -n $user && $(sed -n 's/^SEXTANT_USER=//p' "$DEMO_ENV") == "$user" ]] &&
            password=$(sed -n 's/^SEXTANT_PASSWORD=//p' "$DEMO_ENV")
        old_id=$(sed -n 's/^SEXTANT_PROJECT_ID=//p' "$DEMO_ENV")
        old_key=$(sed -n 's/^SEXTANT_INGEST_KEY=//p' "$DEMO_ENV")
        old_token=$(sed -n 's/^SEXTANT_TOKEN=//p' "$DEMO_ENV")
    fi
    id=$("$(pg_bindir)/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d sextant -Atqc \
        "SELECT id FROM projects WHERE slug = 'demo'" 2>>"$LOG/sextantctl.log") || id=""
    if [[ -n $id && $id == "$old_id" && -n $old_key && -n $old_token ]]; then
        key=$old_key token=$old_token
    else
        if [[ -z $id ]]; then
            out=$(ctl project create demo 2>>"$LOG/sextantctl.log" </dev/null 9>&-) ||
                { show_logs "$LOG/sextantctl.log"; die "sextantctl project create demo failed"; }
            id=$(json_field id <<<"$out")
            key=$(json_field ingestKey <<<"$out")
        else
            out=$(ctl key create --project demo 2>>"$LOG/sextantctl.log" </dev/null 9>&-) ||
                { show_logs "$LOG/sextantctl.log"; die "sextantctl key create --project demo failed"; }
            key=$(json_field ingestKey <<<"$out")
            [[ -n $key ]] || key=$(json_field key <<<"$out")
        fi
        out=$(ctl token create --project demo 2>>"$LOG/sextantctl.log" </dev/null 9>&-) ||
            { show_logs "$LOG/sextantctl.log"; die "sextantctl token create --project demo failed"; }
        token=$(json_field token <<<"$out")
        [[ -n $id && -n $key && -n $token ]] || die "could not read the demo project's id, key and token from sextantctl"
    fi
    if [[ -n $user && -z $password ]]; then
        # A dashboard login: made with a generated password, or given a new one when it
        # exists but demo.env lost its password.
        if out=$(ctl user create "$user" --admin 2>>"$LOG/sextantctl.log" </dev/null 9>&-); then :
        else
            out=$(ctl user passwd "$user" 2>>"$LOG/sextantctl.log" </dev/null 9>&-) ||
                { show_logs "$LOG/sextantctl.log"; die "sextantctl user create/passwd $user failed"; }
        fi
        password=$(json_field password <<<"$out")
        [[ -n $password ]] || die "could not read the password of $user from sextantctl"
    fi
    (
        umask 077
        cat >"$DEMO_ENV.tmp" <<EOF
SEXTANT_URL=https://127.0.0.1:$PORT
SEXTANT_OTLP_ENDPOINT=https://127.0.0.1:$PORT
SEXTANT_INGEST_KEY=$key
SEXTANT_TOKEN=$token
SEXTANT_PROJECT=demo
SEXTANT_PROJECT_ID=$id
SEXTANT_CA=$CERT
SEXTANT_CONFIG=$CONF
SEXTANT_HOME=$H
EOF
        [[ -z $user ]] || printf 'SEXTANT_USER=%s\nSEXTANT_PASSWORD=%s\n' "$user" "$password" >>"$DEMO_ENV.tmp"
    )
    mv "$DEMO_ENV.tmp" "$DEMO_ENV"
}

# http_code METHOD PATH: the status nginx answers, 000 when it cannot connect.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 5 --cacert "$CERT" \
        -X "$1" -H 'Content-Type: application/x-protobuf' ${3:+--data-binary "$3"} \
        "https://127.0.0.1:$PORT$2" 2>/dev/null || true
}

wait_healthy() {
    local deadline=$((SECONDS + ${SEXTANT_UP_TIMEOUT:-60})) h i
    while :; do
        h=$(http_code GET /api/v1/health)
        i=$(http_code POST /v1/traces x)
        [[ $h == 200 && $i == 401 ]] && return 0
        if ((SECONDS >= deadline)); then
            show_logs "$LOG/api.log" "$LOG/ingest.log" "$LOG/nginx-error.log"
            die "not healthy after ${SEXTANT_UP_TIMEOUT:-60} s: GET /api/v1/health answered $h (want 200), POST /v1/traces without key $i (want 401); logs in $LOG"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------- stopping

# stop_pid NAME PID TERM|KILL: signals, waits, escalates to SIGKILL.
stop_pid() {
    local name=$1 pid=$2 sig=$3 i limit
    alive "$pid" || return 0
    kill -s "$sig" "$pid" 2>/dev/null || true
    limit=$((${SEXTANT_STOP_TIMEOUT:-15} * 10))
    for ((i = 0; i < limit; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) still running after SIGTERM: SIGKILL"
    kill -s KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) did not die"
    return 1
}

stop_service() {
    local name=$1 sig=${2:-TERM} pid
    if [[ $name == postgres ]]; then
        stop_postgres "$sig"
        return
    fi
    if pid=$(svc_pid "$name"); then
        stop_pid "$name" "$pid" "$sig"
    fi
    rm -f "$RUN/$name.pid"
    case $name in
    ingest | api)
        [[ -r $CONF ]] && rm -f "$(conf_value "${name}_listen")" ;;
    sse)
        [[ -r $CONF ]] && rm -f "$(conf_value sse_socket)" ;;
    esac
    return 0
}

start_service() {
    case $1 in
    postgres) start_postgres ;;
    redis) start_redis ;;
    nginx) start_nginx ;;
    ingest) start_ingest ;;
    api) start_api ;;
    sse) start_sse ;;
    persist) start_persist ;;
    rollup) start_rollup ;;
    rollup2) start_rollup rollup2 2 ;;
    *) die "unknown service '$1' (one of: ${SERVICES[*]})" ;;
    esac
}

# ---------------------------------------------------------------------------- commands

print_summary() {
    local key token user password
    key=$(sed -n 's/^SEXTANT_INGEST_KEY=//p' "$DEMO_ENV")
    token=$(sed -n 's/^SEXTANT_TOKEN=//p' "$DEMO_ENV")
    user=$(sed -n 's/^SEXTANT_USER=//p' "$DEMO_ENV")
    password=$(sed -n 's/^SEXTANT_PASSWORD=//p' "$DEMO_ENV")
    cat <<EOF
Sextant is up in $H
  dashboard:   https://127.0.0.1:$PORT/   (self-signed: CA $CERT)
  OTLP:        https://127.0.0.1:$PORT    (POST /v1/traces, /v1/metrics, /v1/logs)
  ingest key:  $key
  API token:   $token
EOF
    [[ -z $user ]] || printf '  login:       %s / %s\n' "$user" "$password"
    cat <<EOF
  settings:    $DEMO_ENV (source it), config $CONF, logs $LOG/
EOF
}

all_running() {
    local s
    for s in "${SERVICES[@]}"; do
        svc_pid "$s" >/dev/null || return 1
    done
}

# Everything `up` needs, checked before anything starts.
preflight() {
    local p missing=()
    for p in sextant-ingest sextant-api sextant-sse sextant-persist sextant-rollup sextantctl; do
        [[ -x $BIN/$p ]] || missing+=("$BIN/$p")
    done
    ((${#missing[@]} == 0)) || die "not built: ${missing[*]} (run make, or set SEXTANT_BIN)"
    PATH=$PATH:/usr/sbin:/sbin
    for p in redis-server nginx openssl curl flock setsid; do
        command -v "$p" >/dev/null || die "$p not found (run make deps)"
    done
    pg_bindir >/dev/null
}

cmd_up() {
    lock
    load_state
    preflight
    if [[ -r $STATE && -r $DEMO_ENV ]] && all_running; then
        wait_healthy
        say "already running"
        print_summary
        return 0
    fi
    if ! svc_pid nginx >/dev/null && port_busy; then
        die "127.0.0.1:$PORT is already in use: set SEXTANT_PORT"
    fi
    plan_layout
    save_state
    write_config
    start_postgres
    start_redis
    start_nginx
    migrate
    make_roles
    start_ingest
    start_api
    start_sse
    start_persist
    start_rollup
    ensure_demo
    maintain
    wait_healthy
    print_summary
}

cmd_down() {
    local s i
    lock
    load_state
    [[ -r $STATE ]] || { say "nothing to stop in $H"; return 0; }
    if svc_pid rollup2 >/dev/null; then
        say "stopping rollup2"
        stop_service rollup2
    fi
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        s=${SERVICES[i]}
        if svc_pid "$s" >/dev/null; then
            say "stopping $s"
            stop_service "$s"
        fi
    done
    say "down"
}

cmd_status() {
    local s pid rc=0
    load_state
    [[ -r $STATE ]] || { say "no stack in $H"; return 3; }
    for s in "${SERVICES[@]}"; do
        if pid=$(svc_pid "$s"); then
            printf '  %-9s running  pid %s\n' "$s" "$pid"
        else
            printf '  %-9s stopped\n' "$s"
            rc=3
        fi
    done
    if [[ $rc == 0 ]]; then
        printf '  health    GET /api/v1/health: %s, POST /v1/traces without key: %s\n' \
            "$(http_code GET /api/v1/health)" "$(http_code POST /v1/traces x)"
        printf '  url       https://127.0.0.1:%s/\n' "$PORT"
    fi
    return $rc
}

cmd_run() {
    local tail_pid maint_pid
    cmd_up
    unlock
    say "running: Ctrl-C stops the stack; logs follow"
    tail -n 0 -F "$LOG"/*.log &
    tail_pid=$!
    (while sleep 3600; do maintain; done) 9>&- &
    maint_pid=$!
    # The trap only ends the tail: bash may abandon a trap that runs long commands while
    # `wait` is interrupted, so the stopping happens after wait returns.
    trap 'kill "$tail_pid" 2>/dev/null || true' INT TERM
    wait "$tail_pid" || true
    trap '' INT TERM
    kill "$maint_pid" 2>/dev/null || true
    cmd_down
}

# destroy: down, then remove everything the stack made (its data too).
cmd_destroy() {
    cmd_down
    load_state
    if [[ $IS_ROOT == 1 && -n ${PG_DATA:-} ]]; then rm -rf "$PG_DATA"; fi
    rm -rf "$RUN" "$LOG" "$DATA" "$NGX" "$TLS" "$H/www" "$CONF" "$DEMO_ENV" "$STATE" \
        "$H/redis.conf" "$H/extra.conf.tmp" "$H/.lock"
    [[ -d $SHORT && -O $SHORT ]] && rm -rf "$SHORT"
    say "destroyed $H"
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 2
}

main() {
    local cmd=${1:-} name=${2:-}
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    run) cmd_run ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    maintain)
        load_state
        [[ -r $STATE ]] || die "no stack in $H: run up first"
        ctl maintain ;;
    start | stop | restart)
        [[ -n $name ]] || usage
        lock
        load_state
        [[ -r $STATE ]] || die "no stack in $H: run up first"
        case $cmd in
        start) start_service "$name" ;;
        stop)
            if [[ ${3:-} == --kill ]]; then stop_service "$name" KILL; else stop_service "$name"; fi ;;
        restart)
            stop_service "$name"
            start_service "$name" ;;
        esac ;;
    -h | --help | help | "") usage ;;
    *) usage ;;
    esac
}

main "$@"
