#!/usr/bin/env bash
# rwsplit docker lab: docker/docker-compose.yml brought up, checked and torn down for real, on a
# Debian 12 machine with or without an image registry.
#
#   scripts/docker-lab.sh SUBCOMMAND...      (subcommands run in the order given)
#
#   install   apt-get installs docker.io, docker-compose (1.29), debootstrap, mariadb-client and
#             curl when missing; Compose v2 (`docker compose`) from Debian 13's docker-compose
#             package, unpacked as a CLI plugin, when the docker CLI has none
#   daemon    starts dockerd when none answers (machines without systemd; log in STATE_DIR)
#   base      makes debian:bookworm-slim when it is missing and no registry answers:
#             debootstrap --variant=minbase bookworm, imported with `docker import`
#   build     the lab's images: rwsplit from docker/rwsplit/Dockerfile (`--target prebuilt`,
#             with a binary built on this machine), MariaDB and Prometheus by compose from
#             docker/mariadb and docker/prometheus
#   up        `up -d` with the COMPOSE given, then waits until every service is healthy
#   check     replication (GTID, semi-sync), reads to the replicas and writes to the master
#             through both proxies, a stopped replica leaving the read pool and coming back,
#             Prometheus scraping both proxies and answering every query of the Grafana
#             dashboard, one VRRP address held by one proxy and moving when it stops
#   down      `down -v` (containers, network, volumes)
#   run       install daemon base build, then up check down once per compose in COMPOSES
#             (default "v2 v1"): what `make docker-lab` and CI run. A failed check tears down
#             too (after printing the services' logs).
#
# Environment:
#   COMPOSE=v2|v1          which compose `up`, `check` and `down` use (default v2):
#                          v2 = `docker compose`, v1 = Debian's `docker-compose` 1.29
#   COMPOSES="v2 v1"       with `run`: the composes to go through, in order
#   RWSPLIT_BIN=PATH       with `build`: the binary to put in the image (default: cargo build
#                          --release; CI passes the debug binary `make test` built)
#   DOCKER_LAB_TIMEOUT=S   bound of every wait (default 180)
#   RWSPLIT1_PORT, RWSPLIT1_ADMIN_PORT, RWSPLIT2_PORT, RWSPLIT2_ADMIN_PORT, PROMETHEUS_PORT:
#                          the host ports docker-compose.yml publishes (defaults 18066, 19066,
#                          18067, 19067, 19090: beside `make lab`'s 8066/9066)
#
# The compose project is "rwsplit-lab". Images are built with the classic builder
# (DOCKER_BUILDKIT=0): Debian 12's docker.io has no buildx.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO_DIR/scripts/docker-lab.sh"
STATE_DIR=${STATE_DIR:-$REPO_DIR/.state/docker-lab}
COMPOSE_FILE="$REPO_DIR/docker/docker-compose.yml"
PROJECT=rwsplit-lab
COMPOSE=${COMPOSE:-v2}
COMPOSES=${COMPOSES:-v2 v1}
TIMEOUT=${DOCKER_LAB_TIMEOUT:-180}
RWSPLIT1_PORT=${RWSPLIT1_PORT:-18066}
RWSPLIT1_ADMIN_PORT=${RWSPLIT1_ADMIN_PORT:-19066}
RWSPLIT2_PORT=${RWSPLIT2_PORT:-18067}
RWSPLIT2_ADMIN_PORT=${RWSPLIT2_ADMIN_PORT:-19067}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
export RWSPLIT1_PORT RWSPLIT1_ADMIN_PORT RWSPLIT2_PORT RWSPLIT2_ADMIN_PORT PROMETHEUS_PORT
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
# The VRRP address, fixed in docker-compose.yml's subnet and docker/rwsplit/rwsplit*.toml.
VIP=10.213.66.100
# Where Debian 13's docker-compose (Compose v2) is fetched from when the CLI has no plugin.
COMPOSE_V2_SUITE="http://deb.debian.org/debian trixie main"
COMPOSE_V2_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose

log() { printf '[docker-lab] %s\n' "$*"; }
die() { printf '[docker-lab] error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# compose ARGS...: the compose chosen by COMPOSE, on the lab's project and file.
compose() {
    case $COMPOSE in
        v2) docker compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@" ;;
        v1) docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@" ;;
        *) die "COMPOSE must be v2 or v1, not '$COMPOSE'" ;;
    esac
}

# wait_until WHAT COMMAND...: runs COMMAND every second until it succeeds, for TIMEOUT seconds.
# COMMAND is run again each time: a condition must be a function, not `test "$(...)"`.
wait_until() {
    local what=$1 i
    shift
    for ((i = 0; i < TIMEOUT; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    die "timed out after ${TIMEOUT}s waiting for: $what"
}

# ---------------------------------------------------------------- install, daemon, base
cmd_install() {
    local missing=() p
    for p in docker.io docker-compose debootstrap mariadb-client curl; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    if ! docker compose version >/dev/null 2>&1; then
        install_compose_v2
    fi
    log "$(docker compose version) and $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
}

# Debian 12 packages only Compose 1.29; Debian 13's docker-compose (2.x, one static binary
# needing libc6 >= 2.34) runs here. apt fetches it with a private source list and state, so
# the machine's own apt configuration is untouched and the download is signature-checked.
install_compose_v2() {
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" RETURN
    log "Compose v2: fetching docker-compose 2.x from Debian 13 ($COMPOSE_V2_SUITE)"
    echo "deb $COMPOSE_V2_SUITE" >"$tmp/sources.list"
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
    local apt_opts=(-q -o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update >/dev/null
    (cd "$tmp" && apt-get "${apt_opts[@]}" download 'docker-compose=2.*' >/dev/null)
    dpkg-deb --fsys-tarfile "$tmp"/docker-compose_2*.deb |
        tar -xO ./usr/libexec/docker/cli-plugins/docker-compose >"$tmp/docker-compose"
    install -D -m 0755 "$tmp/docker-compose" "$COMPOSE_V2_PLUGIN"
    docker compose version >/dev/null || die "docker compose does not run after installing $COMPOSE_V2_PLUGIN"
}

cmd_daemon() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if [[ -d /run/systemd/system ]]; then
        log "systemctl start docker"
        systemctl start docker
    else
        mkdir -p "$STATE_DIR"
        log "starting dockerd (no systemd here; log: $STATE_DIR/dockerd.log)"
        nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    fi
    wait_until "the docker daemon" docker info
}

cmd_base() {
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        return 0
    fi
    if timeout 60 docker pull debian:bookworm-slim >/dev/null 2>&1; then
        log "debian:bookworm-slim pulled from the registry"
        return 0
    fi
    log "no registry answers: making debian:bookworm-slim with debootstrap"
    local root="$STATE_DIR/bootstrap"
    rm -rf "$root"
    mkdir -p "$STATE_DIR"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 ||
        die "debootstrap failed (see $STATE_DIR/debootstrap.log)"
    tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null
    rm -rf "$root"
}

# ---------------------------------------------------------------- build
cmd_build() {
    local bin=${RWSPLIT_BIN:-}
    if [[ -z $bin ]]; then
        log "cargo build --release --bin rwsplit"
        (cd "$REPO_DIR" && cargo build --release --locked --bin rwsplit)
        bin=${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/rwsplit
    fi
    [[ -x $bin ]] || die "no rwsplit binary at $bin"
    mkdir -p "$REPO_DIR/docker/rwsplit/prebuilt"
    install -m 0755 "$bin" "$REPO_DIR/docker/rwsplit/prebuilt/rwsplit"
    log "image rwsplit-lab/rwsplit:lab (docker/rwsplit/Dockerfile --target prebuilt, $bin)"
    docker build --target prebuilt -f "$REPO_DIR/docker/rwsplit/Dockerfile" -t rwsplit-lab/rwsplit:lab "$REPO_DIR" \
        >"$STATE_DIR/build.log" 2>&1 ||
        { tail -n 40 "$STATE_DIR/build.log" >&2; die "docker build failed (log: $STATE_DIR/build.log)"; }
    log "images for master, replicas and prometheus ($COMPOSE build)"
    compose build master replica1 replica2 prometheus >>"$STATE_DIR/build.log" 2>&1 ||
        { tail -n 40 "$STATE_DIR/build.log" >&2; die "compose build failed (log: $STATE_DIR/build.log)"; }
}

# ---------------------------------------------------------------- up, down
healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "$1")") == healthy ]]; }

cmd_up() {
    log "$COMPOSE: up -d"
    compose up -d --no-build
    local s
    for s in master replica1 replica2 rwsplit1 rwsplit2; do
        wait_until "$s healthy" healthy "$s"
    done
    log "$COMPOSE: every service is up and healthy"
}

cmd_down() {
    log "$COMPOSE: down -v"
    compose down -v --remove-orphans >/dev/null 2>&1 || compose down -v --remove-orphans
}

# ---------------------------------------------------------------- check
# on SERVICE SQL: a query as root inside a server's container, tab-separated, no header.
on() { compose exec -T "$1" mariadb --no-defaults -uroot -N -B -e "$2"; }
# on_vertical SERVICE SQL: the same as "name: value" lines (\G keeps the names).
on_vertical() { compose exec -T "$1" mariadb --no-defaults -uroot -e "$2\\G"; }
# via PORT SQL: a query through a proxy's published port.
via() { mariadb --no-defaults -h127.0.0.1 -P"$1" -uapp -papp -N -B -e "$2" db_test; }
status_var() { on "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2; }
# status_is SERVICE VARIABLE VALUE (a function, so that wait_until evaluates it every time).
status_is() { [[ $(status_var "$1" "$2") == "$3" ]]; }
# proxy_json PORT PYTHON: evaluates PYTHON on the proxy's /status JSON (bound to `s`).
proxy_json() { curl -fsS --max-time 5 "http://127.0.0.1:$1/status" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
# readable PORT LIST: the replicas in the proxy's read pool are exactly LIST (a Python list).
readable() { proxy_json "$1" "[x['name'] for x in s['servers'] if x['readable'] and x['role'] == 'replica'] == $2" | grep -qx True; }
vrrp_state() { proxy_json "$1" "s['vrrp'][0]['state']"; }
vrrp_is() { [[ $(vrrp_state "$1") == "$2" ]]; }
holds_vip() { compose exec -T "$1" ip -4 -o addr show dev eth0 | grep -q " $VIP/"; }

check_replication() {
    local r status
    for r in replica1 replica2; do
        status=$(on_vertical "$r" 'SHOW SLAVE STATUS')
        grep -q 'Slave_IO_Running: Yes' <<<"$status" || die "$r: IO thread not running"
        grep -q 'Slave_SQL_Running: Yes' <<<"$status" || die "$r: SQL thread not running"
        grep -q 'Using_Gtid: Slave_Pos' <<<"$status" || die "$r: not replicating by GTID"
        wait_until "$r acknowledging semi-sync" status_is "$r" Rpl_semi_sync_slave_status ON
    done
    wait_until "the master waiting on 2 semi-sync replicas" status_is master Rpl_semi_sync_master_clients 2
    wait_until "semi-sync on on the master" status_is master Rpl_semi_sync_master_status ON
    log "ok: replica1 and replica2 replicate by GTID, semi-sync on with 2 clients"
}

# reads_seen PORT N: the distinct servers N new connections' reads landed on.
reads_seen() {
    local i
    for ((i = 0; i < $2; i++)); do via "$1" 'SELECT @@hostname'; done | sort -u | tr '\n' ' '
}

check_routing() {
    local name port seen written
    via "$RWSPLIT1_PORT" 'CREATE TABLE IF NOT EXISTS lab_check (id INT AUTO_INCREMENT PRIMARY KEY, proxy VARCHAR(16), written_on VARCHAR(64))'
    for name in rwsplit1 rwsplit2; do
        port=$RWSPLIT1_PORT
        [[ $name == rwsplit2 ]] && port=$RWSPLIT2_PORT
        via "$port" "INSERT INTO lab_check (proxy, written_on) VALUES ('$name', @@hostname)"
        written=$(on master "SELECT written_on FROM db_test.lab_check WHERE proxy = '$name' ORDER BY id DESC LIMIT 1")
        [[ $written == master ]] || die "$name: a write ran on '$written', not on the master"
        seen=$(reads_seen "$port" 20)
        [[ $seen == "replica1 replica2 " ]] || die "$name: 20 connections' reads went to '$seen', not to both replicas only"
        log "ok: $name writes to the master, reads from: $seen"
    done
}

check_replica_stop() {
    log "stopping replica2"
    compose stop replica2 >/dev/null 2>&1
    wait_until "rwsplit1 reading from replica1 only" readable "$RWSPLIT1_ADMIN_PORT" "['replica1']"
    wait_until "rwsplit2 reading from replica1 only" readable "$RWSPLIT2_ADMIN_PORT" "['replica1']"
    local seen
    seen=$(reads_seen "$RWSPLIT1_PORT" 10)$(reads_seen "$RWSPLIT2_PORT" 10)
    [[ $seen == "replica1 replica1 " ]] || die "with replica2 stopped, reads went to '$seen'"
    log "ok: stopped replica2 left both proxies' read pool; reads go to replica1"
    compose start replica2 >/dev/null 2>&1
    wait_until "replica2 healthy again" healthy replica2
    wait_until "rwsplit1 reading from both replicas again" readable "$RWSPLIT1_ADMIN_PORT" "['replica1', 'replica2']"
    wait_until "rwsplit2 reading from both replicas again" readable "$RWSPLIT2_ADMIN_PORT" "['replica1', 'replica2']"
    log "ok: replica2 restarted and rejoined the read pool"
}

# prom_query PROMQL: Prometheus's result vector as "labels value" lines; fails on an error.
prom_query() {
    curl -fsS --max-time 5 -G "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json,sys
r=json.load(sys.stdin)
assert r["status"]=="success", r
for x in r["data"]["result"]: print(x["metric"].get("instance",""), x["value"][1])'
}
targets_up() { [[ $(prom_query 'up{job="rwsplit"} == 1' | wc -l) == 2 ]]; }
answers() { [[ -n $(prom_query "$1") ]]; }

check_prometheus() {
    wait_until "Prometheus scraping rwsplit1 and rwsplit2 (up == 1)" targets_up
    log "ok: Prometheus: $(prom_query 'up{job="rwsplit"}' | tr '\n' ' ')"
    # Every query of the dashboard Grafana is provisioned with must answer with data (two
    # scrapes at least, for the rates).
    local expr n=0
    while IFS= read -r expr; do
        wait_until "Prometheus data for the dashboard query: $expr" answers "$expr"
        n=$((n + 1))
    done < <(python3 -c 'import json,sys
for p in json.load(open(sys.argv[1]))["panels"]:
    for t in p.get("targets", []): print(t["expr"])' "$REPO_DIR/docker/grafana/rwsplit-dashboard.json")
    ((n > 0)) || die "no queries found in docker/grafana/rwsplit-dashboard.json"
    log "ok: all $n queries of the Grafana dashboard return data"
}

# vip_holder: exactly one proxy is VRRP master, holds the address, the other is backup
# without it; prints the holder.
vip_holder() {
    local s1 s2
    s1=$(vrrp_state "$RWSPLIT1_ADMIN_PORT")
    s2=$(vrrp_state "$RWSPLIT2_ADMIN_PORT")
    if [[ $s1 == master && $s2 == backup ]] && holds_vip rwsplit1 && ! holds_vip rwsplit2; then
        echo rwsplit1
    elif [[ $s2 == master && $s1 == backup ]] && holds_vip rwsplit2 && ! holds_vip rwsplit1; then
        echo rwsplit2
    else
        return 1
    fi
}
holder_is() { [[ $(vip_holder) == "$1" ]]; }
# vip_serves: a client inside the compose network (the master's container has one) gets an
# answer through the VRRP address.
vip_serves() { [[ $(compose exec -T master mariadb --no-defaults -h"$VIP" -P8066 -uapp -papp -N -B -e 'SELECT 1') == 1 ]]; }

check_vrrp() {
    wait_until "rwsplit1 (priority 150) holding $VIP alone" holder_is rwsplit1
    wait_until "a client in the compose network served on $VIP:8066" vip_serves
    log "ok: VRRP: rwsplit1 master with $VIP, rwsplit2 backup; clients served on the address"
    log "stopping rwsplit1"
    compose stop rwsplit1 >/dev/null 2>&1
    wait_until "rwsplit2 VRRP master" vrrp_is "$RWSPLIT2_ADMIN_PORT" master
    wait_until "rwsplit2 holding $VIP" holds_vip rwsplit2
    wait_until "clients served on $VIP:8066 by rwsplit2" vip_serves
    log "ok: VRRP: rwsplit1 stopped, rwsplit2 took $VIP and serves it"
    compose start rwsplit1 >/dev/null 2>&1
    wait_until "rwsplit1 back and holding $VIP alone (preempting)" holder_is rwsplit1
    log "ok: VRRP: rwsplit1 back, took $VIP again; rwsplit2 backup"
}

cmd_check() {
    check_replication
    check_routing
    check_replica_stop
    check_prometheus
    check_vrrp
    log "$COMPOSE: every check passed"
}

# ---------------------------------------------------------------- run
show_logs() {
    log "$COMPOSE: the services' last log lines"
    compose ps >&2 || true
    compose logs --no-color --tail=30 >&2 || true
}

cmd_run() {
    cmd_install
    cmd_daemon
    cmd_base
    cmd_build
    local c started
    for c in $COMPOSES; do
        COMPOSE=$c
        started=$SECONDS
        compose down -v --remove-orphans >/dev/null 2>&1 || true
        # A subshell of its own with -e in force (in an `if` condition, bash ignores -e).
        set +e
        (
            set -e
            cmd_up
            cmd_check
        )
        local rc=$?
        set -e
        if ((rc != 0)); then
            show_logs
            cmd_down
            die "$c: the docker lab failed"
        fi
        cmd_down
        log "$c: up, checked and down in $((SECONDS - started)) s"
    done
}

# ---------------------------------------------------------------- main
(($#)) || { usage; exit 2; }
mkdir -p "$STATE_DIR"
for command in "$@"; do
    case $command in
        install | daemon | base | build | up | check | down | run) "cmd_$command" ;;
        -h | --help | help) usage ;;
        *) usage >&2; die "unknown subcommand '$command'" ;;
    esac
done
