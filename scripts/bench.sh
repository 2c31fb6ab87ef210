#!/usr/bin/env bash
# rwsplit benchmark: the same sysbench workloads against a server directly, through HAProxy
# (TCP mode) and through rwsplit (release build), interleaved over BENCH_ROUNDS rounds in one
# run on one machine, medians reported; then connection cost, read-your-writes cost
# (routing.consistency none/causal/causal_global) and two scale checks (many idle clients,
# many busy clients over a bounded pool). It starts its own lab on spare ports (scripts/lab.sh;
# servers 5307-5309, proxies 5066-5095, never make lab's 3307-3309/8066/9066) and stops everything
# it started on exit (trap; lab.sh's watcher too if this script is killed outright).
#
#   scripts/bench.sh        (make bench builds the release binary and runs this)
#
# Environment (defaults):
#   BENCH_SECONDS=10        length of each sysbench run (and of the busy scale check)
#   BENCH_THREADS=16        sysbench threads (the "1 thread" row uses 1)
#   BENCH_ROUNDS=3          rounds; each round runs every workload on every target in turn
#   BENCH_WORKLOADS="ps_text ps_prep ro ps_1 rw"   the throughput rows to run (a subset, to
#                           look at one row over more rounds): point selects text / prepared /
#                           read-only / point selects with 1 thread / read-write
#   BENCH_CONNECTS=500      serial connections per target and round for the connect cost
#   BENCH_IDLE_CLIENTS=10000  idle authenticated clients held on a dedicated rwsplit
#   BENCH_BUSY_CLIENTS=2000   concurrent clients running point selects on a dedicated rwsplit
#   BENCH_BUSY_POOL=64      that rwsplit's [backend] max_connections_per_server
#   BENCH_BUSY_LOGIN_DB=1   the busy clients name the database in the handshake, as sysbench
#                           and most applications do (0: they do not, and qualify the tables)
#   BENCH_OUT=./bench-results.md   the markdown report (also printed at the end)
#   RWSPLIT_BIN=PATH        the rwsplit binary (default: cargo build --release)
#   BENCH_KEEP_STATE=1      keep the state dir (logs, configs) after the run
#
# Targets (their order rotates from round to round). Reads are compared with the replicas: "direct" is one replica, HAProxy balances
# connections round-robin over both replicas, rwsplit spreads statements over both replicas.
# oltp_read_write cannot be split by HAProxy, so there "direct" is the master and HAProxy has
# a second frontend in front of the master only. rwsplit runs the lab's config (defaults, so
# routing.consistency = causal). Every run waits for the replicas to have applied the master's
# GTID position first, so a read/write run never leaves lag to the next one.
#
# CPU per statement: utime+stime of /proc/PID/stat (clock ticks, getconf CLK_TCK) of the proxy
# (rwsplit or haproxy; 0 for direct) and of the three mariadbd processes, sampled before and
# after each run, divided by the statements sysbench reports (its "queries:" total). sysbench
# itself is a short-lived child, so its CPU is read differently: it runs (under `timeout`)
# inside a subshell that, once sysbench is reaped, reads its own /proc/$BASHPID/stat cutime +
# cstime -- the kernel's total for waited-for descendants, i.e. sysbench (and the tiny
# `timeout` wrapper) exactly, in the same clock ticks, with no pid race and nothing else in
# that subshell. The windows include connect and warm-up, identically for every target.
#
# Scheduling: every server and proxy runs in its own session (setsid: lab.sh starts the
# servers and rwsplit so, start_bg HAProxy), sysbench in this script's. With the kernel's
# autogroup scheduling (kernel.sched_autogroup_enabled, on by default) a session is one
# scheduling group and the CPU is shared group by group, as systemd's cgroups share it between
# services; so each proxy competes for CPU as one unit, alone, like in production. A proxy
# started by hand from the shell that runs sysbench shares sysbench's group instead, which moved
# a proxy's throughput by up to 10 % either way in the lab (2 CPUs, 16 threads), depending on
# its thread count: compare proxies only when they run alike. The report records the setting.
#
# Connect cost uses scripts/bench_client.py: a standard-library-only Python client (raw
# protocol, mysql_native_password with hashlib) looping connect + authenticate + SELECT 1 +
# COM_QUIT serially in one process, so the figure is the connection itself, not the ~5-10 ms
# of starting a `mariadb` CLI process per connection. The same client holds the idle
# connections and drives the busy clients (asyncio; sysbench's one OS thread and Lua state per
# connection would cost far more than the connections under test on a small machine).
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
THREADS=${BENCH_THREADS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTS=${BENCH_CONNECTS:-500}
IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-10000}
BUSY_CLIENTS=${BENCH_BUSY_CLIENTS:-2000}
BUSY_POOL=${BENCH_BUSY_POOL:-64}
BUSY_LOGIN_DB=${BENCH_BUSY_LOGIN_DB:-1}
OUT=${BENCH_OUT:-$PWD/bench-results.md}
CLIENT="$REPO_DIR/scripts/bench_client.py"
STATE_DIR=$(mktemp -d /tmp/rwsplit-bench-XXXXXX)
export STATE_DIR MASTER_PORT=5307 REPLICA1_PORT=5308 REPLICA2_PORT=5309 PROXY_PORT=5066 ADMIN_PORT=5067
HAP_RO_PORT=5070 # HAProxy: round-robin over both replicas
HAP_RW_PORT=5071 # HAProxy: the master only
declare -A MODE_PORT=([none]=5081 [causal]=5082 [causal_global]=5083) # admin: +10
IDLE_PORT=5084 BUSY_PORT=5085                                         # admin: +10
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# The throughput rows, checked before anything starts.
ALL_WORKLOADS=(ps_text ps_prep ro ps_1 rw)
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-${ALL_WORKLOADS[*]}}"
((${#WORKLOADS[@]})) || die "BENCH_WORKLOADS is empty (choose from: ${ALL_WORKLOADS[*]})"
for w in "${WORKLOADS[@]}"; do
    [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "BENCH_WORKLOADS: unknown workload '$w' (choose from: ${ALL_WORKLOADS[*]})"
done

# ---------------------------------------------------------------- processes and cleanup
# Every process this script starts in the background is recorded here and in
# $STATE_DIR/run/NAME.pid (lab.sh down also stops those, by pidfile, as a second line).
BG_PIDS=()
cleanup() {
    local pid
    touch "$STATE_DIR/release" "$STATE_DIR/stop-sampler" 2>/dev/null || true
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    LAB_KEEP_STATE=${BENCH_KEEP_STATE:-0} "$REPO_DIR/scripts/lab.sh" down >/dev/null 2>&1 || true
    [[ ${BENCH_KEEP_STATE:-0} == 1 ]] && log "state kept in $STATE_DIR"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME COMMAND...: runs COMMAND in its own session (a terminal's Ctrl-C reaches only
# this script, whose trap then stops it), output to $STATE_DIR/NAME.log.
start_bg() {
    local name=$1 pidfile="$STATE_DIR/run/$1.pid"
    shift
    mkdir -p "$STATE_DIR/run"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    NO_COLOR=1 setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' "bench-$name" "$pidfile" "$@" \
        </dev/null >"$STATE_DIR/$name.log" 2>&1 &
    for _ in $(seq 50); do [[ -s $pidfile ]] && break; sleep 0.1; done
    [[ -s $pidfile ]] || die "$name did not start"
    BG_PIDS+=("$(<"$pidfile")")
}
bg_pid() { cat "$STATE_DIR/run/$1.pid"; }
stop_bg() {
    local pid
    pid=$(bg_pid "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

# Enough descriptors for the idle check's clients (one process) and rwsplit (another).
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if (($(ulimit -n) < IDLE_CLIENTS + 512)); then
    log "warning: ulimit -n is $(ulimit -n): fewer than BENCH_IDLE_CLIENTS=$IDLE_CLIENTS + 512; the idle check may fail"
fi

# ---------------------------------------------------------------- lab, haproxy, data
if [[ -z ${RWSPLIT_BIN:-} ]]; then
    log "cargo build --release --bin rwsplit"
    (cd "$REPO_DIR" && cargo build --release --bin rwsplit)
    RWSPLIT_BIN="${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/rwsplit"
fi
[[ -x $RWSPLIT_BIN ]] || die "no rwsplit binary at $RWSPLIT_BIN"
export RWSPLIT_BIN
command -v python3 >/dev/null || die "python3 is needed (scripts/bench_client.py)"
# haproxy (Debian's 2.6) through lab.sh install: it keeps the package's service from starting.
LAB_EXTRA_PACKAGES="haproxy" "$REPO_DIR/scripts/lab.sh" install >/dev/null
# OWNER_PID: lab.sh's watcher stops the lab even if this script is killed outright.
OWNER_PID=$$ "$REPO_DIR/scripts/lab.sh" up proxy-up >/dev/null
SERVER_PIDS=()
for s in master replica1 replica2; do SERVER_PIDS+=("$(<"$STATE_DIR/$s/mariadbd.pid")"); done
RWSPLIT_PID=$(<"$STATE_DIR/rwsplit.pid")

cat >"$STATE_DIR/haproxy.cfg" <<CFG
# Written by scripts/bench.sh: plain TCP load balancing, the baseline rwsplit competes with.
global
    maxconn 8000
defaults
    mode tcp
    option tcpka
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn 8000
# No health checks: the servers stay up for the whole run, and check connections would only
# add noise (and aborted-connection counts) on the servers.
listen replicas
    bind 127.0.0.1:$HAP_RO_PORT
    balance roundrobin
    server replica1 127.0.0.1:$REPLICA1_PORT
    server replica2 127.0.0.1:$REPLICA2_PORT
listen master
    bind 127.0.0.1:$HAP_RW_PORT
    server master 127.0.0.1:$MASTER_PORT
CFG
haproxy -c -q -f "$STATE_DIR/haproxy.cfg" || die "haproxy rejects $STATE_DIR/haproxy.cfg"
start_bg haproxy haproxy -f "$STATE_DIR/haproxy.cfg" -db
HAPROXY_PID=$(bg_pid haproxy)

root_sql() { # server SQL: root over the server's unix socket
    mariadb --no-defaults --protocol=socket -S "$STATE_DIR/$1/mariadbd.sock" -uroot -N -B -e "$2"
}
wait_sql() { # port: until `SELECT 1` as app works (bounded)
    for _ in $(seq 150); do
        mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$1" -uapp -papp --connect-timeout=2 \
            -e 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "nothing answers on port $1"
}
wait_replicas() { # until both replicas have applied the master's GTID position (bounded)
    local pos r
    pos=$(root_sql master 'SELECT @@gtid_binlog_pos')
    for r in replica1 replica2; do
        [[ $(root_sql "$r" "SELECT MASTER_GTID_WAIT('$pos', 120)") == 0 ]] ||
            die "$r did not reach the master's GTID $pos within 120 s"
    done
}
threads_connected() { root_sql "$1" "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | cut -f2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

wait_sql "$HAP_RO_PORT"
wait_sql "$HAP_RW_PORT"
root_sql master "CREATE DATABASE IF NOT EXISTS sbtest"

sb() { # port workload [options...] (prepare|run)
    local port=$1 workload=$2
    shift 2
    sysbench "$workload" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=app --mysql-password=app --mysql-db=sbtest --tables=4 --table-size=10000 "$@"
}
log "preparing sbtest (4 tables x 10000 rows) on the master"
sb "$MASTER_PORT" oltp_read_write prepare >/dev/null
wait_replicas

# ---------------------------------------------------------------- one measured run
# ticks PID...: sum of utime+stime, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name, field 2, may hold spaces, so the fields are counted after its ')').
ticks() {
    local total=0 pid stat f
    for pid; do
        read -r stat <"/proc/$pid/stat"
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
# per_stmt TICKS QUERIES: CPU microseconds per statement.
per_stmt() { awk -v t="$1" -v q="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (q > 0 ? t * 1e6 / hz / q : 0) }'; }

FAILURES=0
# run_sb LABEL PORT PROXY_PID(0: none) WORKLOAD THREADS [sysbench options...]
# Sets RUN_QPS RUN_P95 RUN_CPU_PROXY RUN_CPU_SERVERS RUN_CPU_CLIENT (µs per statement).
run_sb() {
    local label=$1 port=$2 proxy_pid=$3 workload=$4 threads=$5
    shift 5
    local out="$STATE_DIR/sysbench.out" p0=0 p1=0 s0 s1 client queries
    wait_replicas
    [[ $proxy_pid == 0 ]] || p0=$(ticks "$proxy_pid")
    s0=$(ticks "${SERVER_PIDS[@]}")
    # The subshell's cutime+cstime after sysbench is reaped = sysbench's CPU (see the header).
    client=$(
        rc=0
        timeout --foreground -k 10 $((SECONDS_PER_RUN + 120)) \
            sysbench "$workload" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
            --mysql-user=app --mysql-password=app --mysql-db=sbtest --tables=4 --table-size=10000 \
            --threads="$threads" --time="$SECONDS_PER_RUN" --report-interval=0 "$@" run \
            >"$out" 2>&1 || rc=$?
        read -r stat <"/proc/$BASHPID/stat"
        read -r -a f <<<"${stat##*) }"
        echo "$((f[13] + f[14])) $rc"
    )
    s1=$(ticks "${SERVER_PIDS[@]}")
    [[ $proxy_pid == 0 ]] || p1=$(ticks "$proxy_pid")
    local rc=${client#* }
    client=${client% *}
    queries=$(awk '/^ *queries:/ {print $2}' "$out")
    RUN_QPS=$(awk '/^ *queries:/ {gsub(/[()]/, "", $3); print $3}' "$out")
    RUN_P95=$(awk '/95th percentile:/ {print $3}' "$out")
    RUN_IGNORED=$(awk '/^ *ignored errors:/ {print $3}' "$out")
    if [[ $rc != 0 || -z $queries || -z $RUN_QPS || -z $RUN_P95 ]]; then
        FAILURES=$((FAILURES + 1))
        log "FAILED (exit $rc): $label $workload $*"
        tail -n 15 "$out" >&2
        queries=0 RUN_QPS=0 RUN_P95=0 RUN_IGNORED=0
    fi
    RUN_CPU_PROXY=$(per_stmt $((p1 - p0)) "$queries")
    RUN_CPU_SERVERS=$(per_stmt $((s1 - s0)) "$queries")
    RUN_CPU_CLIENT=$(per_stmt "$client" "$queries")
    printf '[bench]   %-22s %-18s %2s thr  qps %10s  p95 %7s ms  cpu us/stmt proxy %6s servers %6s client %6s  ignored errors %s\n' \
        "$label" "$workload" "$threads" "$RUN_QPS" "$RUN_P95" "$RUN_CPU_PROXY" "$RUN_CPU_SERVERS" "$RUN_CPU_CLIENT" "${RUN_IGNORED:-0}" >&2
}

# Results: R[key|metric] holds one value per round, space-separated; median picks the middle.
declare -A R
record() { # key
    R[$1|qps]+="$RUN_QPS " R[$1|p95]+="$RUN_P95 " R[$1|cp]+="$RUN_CPU_PROXY "
    R[$1|cs]+="$RUN_CPU_SERVERS " R[$1|cc]+="$RUN_CPU_CLIENT " R[$1|ign]+="${RUN_IGNORED:-0} "
}
median() { # "v1 v2 ...": the median (mean of the two middle values for an even count)
    tr ' ' '\n' <<<"$1" | grep . | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med() { median "${R[$1|$2]:-}"; }

# ---------------------------------------------------------------- throughput
declare -A WL_LABEL=([ps_text]="point select, text protocol" [ps_prep]="point select, prepared"
    [ro]="read only (skip_trx)" [ps_1]="point select, 1 thread" [rw]="read/write")
declare -A WL_NAME=([ps_text]=oltp_point_select [ps_prep]=oltp_point_select [ro]=oltp_read_only
    [ps_1]=oltp_point_select [rw]=oltp_read_write)
declare -A WL_OPTS=([ps_text]="--db-ps-mode=disable" [ps_prep]="--db-ps-mode=auto" [ro]="--skip_trx=on"
    [ps_1]="--db-ps-mode=auto" [rw]="")
declare -A WL_THREADS=([ps_text]=$THREADS [ps_prep]=$THREADS [ro]=$THREADS [ps_1]=1 [rw]=$THREADS)
TARGETS=(direct haproxy rwsplit)
target_port() { # workload target
    case $2 in
        direct) [[ $1 == rw ]] && echo "$MASTER_PORT" || echo "$REPLICA1_PORT" ;;
        haproxy) [[ $1 == rw ]] && echo "$HAP_RW_PORT" || echo "$HAP_RO_PORT" ;;
        rwsplit) echo "$PROXY_PORT" ;;
    esac
}
target_pid() {
    case $1 in direct) echo 0 ;; haproxy) echo "$HAPROXY_PID" ;; rwsplit) echo "$RWSPLIT_PID" ;; esac
}

log "throughput: $ROUNDS round(s), ${SECONDS_PER_RUN}s per run, $THREADS threads, $(nproc) cores"
for round in $(seq "$ROUNDS"); do
    log "round $round/$ROUNDS"
    # The order of the targets rotates from round to round, so that no target always runs
    # first or right after another one (over 3 rounds each runs once in each position).
    order=()
    for i in "${!TARGETS[@]}"; do order+=("${TARGETS[$(((i + round - 1) % ${#TARGETS[@]}))]}"); done
    for w in "${WORKLOADS[@]}"; do
        for t in "${order[@]}"; do
            read -r -a opts <<<"${WL_OPTS[$w]}"
            run_sb "$t" "$(target_port "$w" "$t")" "$(target_pid "$t")" "${WL_NAME[$w]}" "${WL_THREADS[$w]}" "${opts[@]}"
            record "$w|$t"
        done
    done
done

# ---------------------------------------------------------------- connect cost
# Two loops per target and round: connect + authenticate + quit (what logging in costs), and
# the same with a SELECT 1 (which through a proxy also crosses the proxy to a server).
declare -A CONN CONNQ
log "connect cost: $CONNECTS serial connect + auth (+ SELECT 1) + quit per target and round"
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        port=$(target_port ro "$t")
        for q in 0 1; do
            res=$(timeout -k 5 $((CONNECTS + 60)) python3 "$CLIENT" connect "$CONNECTS" 127.0.0.1 "$port" app app "$q") ||
                die "connect loop to port $port failed: $res"
            log "  $t (query=$q): $res"
            [[ $res == *" errors=0 "* ]] || FAILURES=$((FAILURES + 1))
            if [[ $q == 0 ]]; then CONN[$t]+="${res##*mean_ms=} "; else CONNQ[$t]+="${res##*mean_ms=} "; fi
        done
    done
done

# ---------------------------------------------------------------- consistency
# One rwsplit per routing.consistency (the lab's config with other ports), the same autocommit
# read/write workload (oltp_read_write --skip_trx: every write is followed by reads that must
# see it under causal), interleaved over the rounds, medians. Without transactions two threads
# can delete and re-insert the same random id at once, so duplicate-key errors (1062) are
# expected (sysbench's author in akopytov/sysbench#23 and #253): they are ignored like
# sysbench's default deadlock/lock-wait errors, and counted ("ignored errors").
# rwsplit_config NAME PORT [SECTION KEY=VALUE]...: the lab's config on PORT (admin PORT+10),
# with KEY=VALUE added to SECTION (at its header; a section the lab's file lacks is appended).
rwsplit_config() {
    local name=$1 port=$2 cfg="$STATE_DIR/rwsplit-$1.toml"
    shift 2
    sed -e "s/^listen = \"127.0.0.1:${PROXY_PORT}\"/listen = \"127.0.0.1:${port}\"/" \
        -e "s/^listen = \"127.0.0.1:${ADMIN_PORT}\"/listen = \"127.0.0.1:$((port + 10))\"/" \
        "$STATE_DIR/rwsplit.toml" >"$cfg"
    while (($#)); do
        if grep -q "^\[$1\]" "$cfg"; then
            sed -i "/^\[$1\]/a $2" "$cfg"
        else
            printf '\n[%s]\n%s\n' "$1" "$2" >>"$cfg"
        fi
        shift 2
    done
    "$RWSPLIT_BIN" check --config "$cfg" >/dev/null || die "rwsplit rejects $cfg"
    start_bg "rwsplit-$name" "$RWSPLIT_BIN" --config "$cfg" run
    wait_sql "$port"
}
MODES=(none causal causal_global)
for mode in "${MODES[@]}"; do rwsplit_config "$mode" "${MODE_PORT[$mode]}" routing "consistency = \"$mode\""; done
log "read-your-writes: oltp_read_write --skip_trx, $THREADS threads, ${SECONDS_PER_RUN}s per run, $ROUNDS round(s)"
for round in $(seq "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        run_sb "consistency=$mode" "${MODE_PORT[$mode]}" "$(bg_pid "rwsplit-$mode")" oltp_read_write "$THREADS" \
            --skip_trx=on --mysql-ignore-errors=1213,1020,1205,1062
        record "consistency|$mode"
    done
done
for mode in "${MODES[@]}"; do stop_bg "rwsplit-$mode"; done

# ---------------------------------------------------------------- scale: idle clients
SERVERS=(master replica1 replica2)
declare -A SERVER_PORT=([master]=$MASTER_PORT [replica1]=$REPLICA1_PORT [replica2]=$REPLICA2_PORT)
backend_conns() { # baseline...: "server N, ..." with N = Threads_connected minus its baseline
    local s out=()
    for s in "${SERVERS[@]}"; do
        out+=("$s $(($(threads_connected "$s") - $1))")
        shift
    done
    printf '%s, ' "${out[@]}" | sed 's/, $//'
}
server_counts() { for s in "${SERVERS[@]}"; do threads_connected "$s"; done | tr '\n' ' '; }

# Two cycles of connect-all / hold / disconnect-all: RSS after the second shows whether memory
# kept after the first is reused (allocator) or grows again (a leak).
log "scale: $IDLE_CLIENTS idle clients on a dedicated rwsplit, two cycles"
read -r -a base <<<"$(server_counts)"
max_conns=$((IDLE_CLIENTS + 1000 > 20000 ? IDLE_CLIENTS + 1000 : 20000))
rwsplit_config idle "$IDLE_PORT" proxy "max_connections = $max_conns"
IDLE_PID=$(bg_pid rwsplit-idle)
IDLE_ROWS=("| before | $(rss_kib "$IDLE_PID") | $(backend_conns "${base[@]}") |")
IDLE_ALIVE=yes
for cycle in 1 2; do
    rm -f "$STATE_DIR/idle.status" "$STATE_DIR/release"
    start_bg "idle-clients-$cycle" python3 "$CLIENT" idle "$IDLE_CLIENTS" 127.0.0.1 "$IDLE_PORT" app app \
        "$STATE_DIR/idle.status" "$STATE_DIR/release" 600
    for _ in $(seq 3000); do [[ -s $STATE_DIR/idle.status ]] && break; sleep 0.2; done
    status=$(head -n1 "$STATE_DIR/idle.status" 2>/dev/null || echo "no status (timed out)")
    [[ $status == "connected=$IDLE_CLIENTS errors=0" ]] || FAILURES=$((FAILURES + 1))
    sleep 1
    rss=$(rss_kib "$IDLE_PID" 2>/dev/null || echo 0)
    back=$(backend_conns "${base[@]}")
    IDLE_ROWS+=("| cycle $cycle: $status | $rss | $back |")
    log "  cycle $cycle: $status; RSS $rss KiB; backend connections: $back"
    touch "$STATE_DIR/release"
    for _ in $(seq 300); do grep -q closed "$STATE_DIR/idle.status" 2>/dev/null && break; sleep 0.2; done
    stop_bg "idle-clients-$cycle"
    sleep 2
    kill -0 "$IDLE_PID" 2>/dev/null || IDLE_ALIVE="NO (exited)"
    rss=$(rss_kib "$IDLE_PID" 2>/dev/null || echo 0)
    back=$(backend_conns "${base[@]}")
    IDLE_ROWS+=("| cycle $cycle: all disconnected (rwsplit alive: $IDLE_ALIVE) | $rss | $back |")
    log "  cycle $cycle: disconnected; RSS $rss KiB; backend connections: $back"
done
[[ $IDLE_ALIVE == yes ]] || FAILURES=$((FAILURES + 1))
stop_bg rwsplit-idle

# ---------------------------------------------------------------- scale: busy clients
log "scale: $BUSY_CLIENTS busy clients (point selects) on a dedicated rwsplit ([backend] max_connections_per_server = $BUSY_POOL)"
sleep 1
read -r -a base <<<"$(server_counts)"
rm -f "$STATE_DIR/stop-sampler"
start_bg sampler python3 "$CLIENT" sample 200 "$STATE_DIR/stop-sampler" $((SECONDS_PER_RUN + 900)) \
    monitor monitor "$MASTER_PORT" "$REPLICA1_PORT" "$REPLICA2_PORT"
rwsplit_config busy "$BUSY_PORT" backend "max_connections_per_server = $BUSY_POOL" proxy "max_connections = 20000"
BUSY_PID=$(bg_pid rwsplit-busy)
busy_t0=$(ticks "$BUSY_PID")
BUSY_ERR=
BUSY_RES=$(timeout -k 5 $((SECONDS_PER_RUN + 600)) python3 "$CLIENT" busy "$BUSY_CLIENTS" "$SECONDS_PER_RUN" \
    127.0.0.1 "$BUSY_PORT" app app sbtest 4 10000 "$BUSY_LOGIN_DB" 2>"$STATE_DIR/busy.err") || BUSY_RES="failed: $(tail -n3 "$STATE_DIR/busy.err")"
busy_t1=$(ticks "$BUSY_PID" 2>/dev/null || echo "$busy_t0")
touch "$STATE_DIR/stop-sampler"
for _ in $(seq 100); do kill -0 "$(bg_pid sampler)" 2>/dev/null || break; sleep 0.1; done
BUSY_ALIVE=yes
kill -0 "$BUSY_PID" 2>/dev/null || BUSY_ALIVE="NO (exited)"
log "  $BUSY_RES"
if [[ -s $STATE_DIR/busy.err ]]; then
    BUSY_ERR=$(head -n 1 "$STATE_DIR/busy.err")
    log "  $BUSY_ERR"
fi
declare -A BUSY_MAX
i=0
for s in "${SERVERS[@]}"; do
    max=$(awk -v p="${SERVER_PORT[$s]}" '$1 == p { sub(/max=/, "", $3); print $3 }' "$STATE_DIR/sampler.log")
    BUSY_MAX[$s]=$((${max:-0} - base[i]))
    i=$((i + 1))
done
# rwsplit's own monitor holds one connection per server besides the pool.
BUSY_BOUND=$((BUSY_POOL + 2))
BUSY_OK=yes
for s in "${SERVERS[@]}"; do ((BUSY_MAX[$s] <= BUSY_BOUND)) || BUSY_OK=NO; done
[[ $BUSY_RES =~ connect_errors=0\ .*\ errors=0\  && $BUSY_ALIVE == yes && $BUSY_OK == yes ]] || FAILURES=$((FAILURES + 1))
log "  backend connections above baseline, max over 200 ms samples: master ${BUSY_MAX[master]}, replica1 ${BUSY_MAX[replica1]}, replica2 ${BUSY_MAX[replica2]} (bound $BUSY_BOUND: $BUSY_OK)"
grep -E 'ERROR|WARN' "$STATE_DIR/rwsplit-busy.log" | tail -n 5 >&2 || true
stop_bg rwsplit-busy

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
fmt() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
round_ratios() { # workload: rwsplit/HAProxy of each round, in round order (the two run back to back)
    local -a a b
    local i line=""
    read -r -a a <<<"${R[$1|rwsplit|qps]:-}"
    read -r -a b <<<"${R[$1|haproxy|qps]:-}"
    for i in "${!a[@]}"; do line+="$(ratio "${a[$i]}" "${b[$i]:-0}") "; done
    echo "${line% }"
}
report() {
    echo "# rwsplit benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "- scheduling: kernel.sched_autogroup_enabled=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 'n/a'); servers, HAProxy and rwsplit each in their own session, sysbench in the script's"
    echo "- MariaDB: $(mariadbd --version | sed 's/^.*Ver //')"
    echo "- sysbench: $(sysbench --version)"
    echo "- HAProxy: $(haproxy -v | head -n1)"
    echo "- rwsplit: $("$RWSPLIT_BIN" --version) (git $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "- runs: ${SECONDS_PER_RUN}s each, $ROUNDS round(s) interleaved, medians; $THREADS threads unless noted; sysbench 4 tables x 10000 rows"
    echo
    echo "## Throughput"
    echo
    echo "Reads: direct = one replica, HAProxy = TCP round-robin over both replicas. read/write: direct and HAProxy = the master."
    echo "rwsplit/HAProxy: ratio of the medians; per round: the ratio in each round, where the two ran back to back."
    echo "CPU columns: µs of CPU per statement, proxy / servers (3 mariadbd) / client (sysbench)."
    echo
    echo "| workload | threads | direct qps | direct p95 ms | HAProxy qps | HAProxy p95 ms | rwsplit qps | rwsplit p95 ms | rwsplit/HAProxy | per round | CPU direct | CPU HAProxy | CPU rwsplit |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
    local w t row
    for w in "${WORKLOADS[@]}"; do
        row="| ${WL_LABEL[$w]} | ${WL_THREADS[$w]}"
        for t in "${TARGETS[@]}"; do row+=" | $(fmt "$(med "$w|$t" qps)") | $(med "$w|$t" p95)"; done
        row+=" | $(ratio "$(med "$w|rwsplit" qps)" "$(med "$w|haproxy" qps)") | $(round_ratios "$w")"
        for t in "${TARGETS[@]}"; do row+=" | $(med "$w|$t" cp) / $(med "$w|$t" cs) / $(med "$w|$t" cc)"; done
        echo "$row |"
    done
    echo
    echo "## Connect cost"
    echo
    echo "$CONNECTS serial connections per round and loop (one Python process, no third-party packages), median of the rounds' means: connect + authenticate + quit, and the same with a SELECT 1 before the quit."
    echo
    echo "| target | ms per connection | with SELECT 1 |"
    echo "|---|---:|---:|"
    echo "| direct (replica1) | $(median "${CONN[direct]}") | $(median "${CONNQ[direct]}") |"
    echo "| HAProxy (replicas) | $(median "${CONN[haproxy]}") | $(median "${CONNQ[haproxy]}") |"
    echo "| rwsplit | $(median "${CONN[rwsplit]}") | $(median "${CONNQ[rwsplit]}") |"
    echo
    echo "## Read-your-writes (routing.consistency)"
    echo
    echo "oltp_read_write --skip_trx=on (autocommit), $THREADS threads, one rwsplit per mode; duplicate-key errors (expected without transactions) ignored and counted."
    echo
    echo "| consistency | qps | p95 ms | ratio to none | CPU µs/stmt proxy / servers / client | ignored errors |"
    echo "|---|---:|---:|---:|---|---:|"
    local m base
    base=$(med "consistency|none" qps)
    for m in "${MODES[@]}"; do
        echo "| $m | $(fmt "$(med "consistency|$m" qps)") | $(med "consistency|$m" p95) | $(ratio "$(med "consistency|$m" qps)" "$base") | $(med "consistency|$m" cp) / $(med "consistency|$m" cs) / $(med "consistency|$m" cc) | $(med "consistency|$m" ign) |"
    done
    echo
    echo "## Scale checks"
    echo
    echo "Idle: $IDLE_CLIENTS authenticated idle clients on a dedicated rwsplit ([proxy] max_connections = $max_conns, ulimit -n $(ulimit -n))."
    echo
    echo "| | rwsplit RSS (KiB) | backend connections (server: Threads_connected - baseline) |"
    echo "|---|---:|---|"
    printf '%s\n' "${IDLE_ROWS[@]}"
    echo
    local bq bs
    bq=$(sed -n 's/.* queries=\([0-9]*\).*/\1/p' <<<"$BUSY_RES")
    bs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$BUSY_RES")
    echo "Busy: $BUSY_CLIENTS concurrent clients (asyncio, text-protocol point selects; database in the handshake: $( ((BUSY_LOGIN_DB)) && echo yes || echo no)) for ${SECONDS_PER_RUN}s on a dedicated rwsplit with [backend] max_connections_per_server = $BUSY_POOL; servers' Threads_connected sampled every 200 ms."
    echo
    echo "- result: $BUSY_RES (rwsplit alive: $BUSY_ALIVE)${BUSY_ERR:+; $BUSY_ERR}"
    echo "- throughput: $(awk -v q="${bq:-0}" -v s="${bs:-0}" 'BEGIN { printf "%.0f", (s > 0 ? q / s : 0) }') successful qps, rwsplit CPU $(per_stmt $((busy_t1 - busy_t0)) "${bq:-0}") µs per successful statement (client-bound: one Python process)"
    echo "- max backend connections above baseline: master ${BUSY_MAX[master]}, replica1 ${BUSY_MAX[replica1]}, replica2 ${BUSY_MAX[replica2]}; bound $BUSY_POOL + rwsplit's monitor = $BUSY_BOUND: $BUSY_OK"
    echo
    echo "## rwsplit logs"
    echo
    echo "| rwsplit | WARN lines | ERROR lines | first WARN/ERROR |"
    echo "|---|---:|---:|---|"
    local f
    for f in "$STATE_DIR"/rwsplit.log "$STATE_DIR"/rwsplit-*.log; do
        [[ -f $f ]] || continue
        echo "| $(basename "$f" .log) | $(grep -c ' WARN ' "$f" || true) | $(grep -c ' ERROR ' "$f" || true) | $(grep -m1 -E ' (WARN|ERROR) ' "$f" | cut -c1-200 | sed 's/|/\\|/g' || true) |"
    done
    echo
    if ((FAILURES)); then echo "**$FAILURES check(s) or run(s) failed: see the log.**"; fi
}
report >"$OUT"
echo
cat "$OUT"
log "written to $OUT"
((FAILURES == 0)) || exit 1
