#!/usr/bin/env bash
# rwsplit throughput benchmark: the same sysbench workloads against the master directly (the
# baseline) and through rwsplit (release build), in one run on one machine, printing figures
# and the ratio. It starts its own lab on spare ports (scripts/lab.sh) and stops it after.
#
#   scripts/bench.sh            (BENCH_SECONDS=20 BENCH_THREADS=8 by default)
#
# A second baseline is a plain TCP relay (socat) in front of the master: the cost of any proxy
# hop on this machine, against which rwsplit's own work shows. Read-only runs also show what
# read/write splitting buys: rwsplit spreads the reads over both replicas while the baselines
# send everything to the master.
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
THREADS=${BENCH_THREADS:-8}
STATE_DIR=$(mktemp -d /tmp/rwsplit-bench-XXXXXX)
PORTS=(5307 5308 5309 5066 5067 5068)
RELAY_PORT=${PORTS[5]}
export STATE_DIR MASTER_PORT=${PORTS[0]} REPLICA1_PORT=${PORTS[1]} REPLICA2_PORT=${PORTS[2]} PROXY_PORT=${PORTS[3]} ADMIN_PORT=${PORTS[4]}
RELAY_PID=
CONSISTENCY_PIDS=()
cleanup() {
    [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null
    for pid in "${CONSISTENCY_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    "$REPO_DIR/scripts/lab.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$REPO_DIR/scripts/lab.sh" install up proxy-up >/dev/null
command -v socat >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q socat >/dev/null
socat TCP-LISTEN:"$RELAY_PORT",bind=127.0.0.1,reuseaddr,fork,nodelay TCP:127.0.0.1:"$MASTER_PORT",nodelay &
RELAY_PID=$!
mariadb -h127.0.0.1 -P"$MASTER_PORT" -uroot -e "CREATE DATABASE IF NOT EXISTS sbtest; GRANT ALL ON sbtest.* TO 'app'@'127.0.0.1'"

sb() { # port workload extra...
    local port=$1 workload=$2
    shift 2
    sysbench "$workload" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=app --mysql-password=app --mysql-db=sbtest --tables=4 --table-size=10000 "$@"
}
sb "$MASTER_PORT" oltp_read_write prepare >/dev/null
"$REPO_DIR/scripts/lab.sh" status >/dev/null

run() { # label port workload [sysbench options...]
    local out tps qps lat
    out=$(sb "$2" "$3" --threads="$THREADS" --time="$SECONDS_PER_RUN" --report-interval=0 "${@:4}" run)
    tps=$(awk '/transactions:/ {gsub(/[()]/,"",$3); print $3}' <<<"$out")
    qps=$(awk '/queries:/ && !/performed/ {gsub(/[()]/,"",$3); print $3}' <<<"$out")
    lat=$(awk '/95th percentile:/ {print $3}' <<<"$out")
    printf '%-28s %-16s tps %10s  qps %10s  p95 %8s ms\n' "$1" "$3" "$tps" "$qps" "$lat" >&2
    echo "$qps"
}

echo "sysbench, $THREADS threads, ${SECONDS_PER_RUN}s per run, 4 tables x 10000 rows ($(nproc) cores)" >&2
for workload in oltp_point_select oltp_read_only oltp_read_write; do
    direct=$(run "direct to master (baseline)" "$MASTER_PORT" "$workload")
    relayed=$(run "socat relay to master" "$RELAY_PORT" "$workload")
    proxied=$(run "through rwsplit" "$PROXY_PORT" "$workload")
    awk -v d="$direct" -v r="$relayed" -v p="$proxied" -v w="$workload" \
        'BEGIN { printf "%-28s %-16s qps ratio rwsplit/direct %.2f, rwsplit/socat %.2f\n\n", "", w, p / d, p / r }' >&2
done

# Read-your-writes: what each routing.consistency costs. One rwsplit per mode (the lab's config
# with another [routing] consistency and ports), the same autocommit read/write workload
# (oltp_read_write --skip_trx: every write is followed by reads that must see it under
# causal), ROUNDS rounds interleaved, medians.
ROUNDS=${BENCH_ROUNDS:-3}
declare -A MODE_PORT=([none]=5081 [causal]=5082 [causal_global]=5083)
for mode in none causal causal_global; do
    port=${MODE_PORT[$mode]}
    sed -e "s/^listen = \"127.0.0.1:${PROXY_PORT}\"/listen = \"127.0.0.1:${port}\"/" \
        -e "s/^listen = \"127.0.0.1:${ADMIN_PORT}\"/listen = \"127.0.0.1:$((port + 10))\"/" \
        "$STATE_DIR/rwsplit.toml" >"$STATE_DIR/rwsplit-$mode.toml"
    printf '\n[routing]\nconsistency = "%s"\n' "$mode" >>"$STATE_DIR/rwsplit-$mode.toml"
    "${RWSPLIT_BIN:-$REPO_DIR/target/release/rwsplit}" --config "$STATE_DIR/rwsplit-$mode.toml" run >"$STATE_DIR/rwsplit-$mode.log" 2>&1 &
    CONSISTENCY_PIDS+=($!)
done
for mode in none causal causal_global; do
    for _ in $(seq 100); do
        mariadb -h127.0.0.1 -P"${MODE_PORT[$mode]}" -uapp -papp -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A QPS
echo "read-your-writes: oltp_read_write --skip_trx, $THREADS threads, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    for mode in none causal causal_global; do
        q=$(run "rwsplit consistency=$mode" "${MODE_PORT[$mode]}" oltp_read_write --skip_trx=on)
        QPS[$mode]+="$q "
    done
    echo "  (round $round done)" >&2
done
base=$(tr ' ' '\n' <<<"${QPS[none]}" | grep . | median)
for mode in none causal causal_global; do
    m=$(tr ' ' '\n' <<<"${QPS[$mode]}" | grep . | median)
    awk -v m="$m" -v b="$base" -v mode="$mode" \
        'BEGIN { printf "%-28s median qps %10.1f  ratio to none %.2f\n", "consistency=" mode, m, m / b }' >&2
done