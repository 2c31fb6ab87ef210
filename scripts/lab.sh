#!/usr/bin/env bash
# rwsplit lab: a MariaDB master and two GTID replicas (semi-sync) as separate mariadbd
# processes on loopback ports, plus rwsplit in front of them.
#
#   scripts/lab.sh [options] SUBCOMMAND...      (subcommands run in the order given)
#
#   install   apt-get installs mariadb-server, mariadb-client, sysbench when missing
#   up        starts master + 2 replicas under STATE_DIR, users, GTID + semi-sync replication
#   proxy-up  builds rwsplit (release), writes STATE_DIR/rwsplit.toml, starts it on PROXY_PORT
#   proxy-down  stops that proxy only
#   down      stops what the lab started (by pidfile, never by name) and removes STATE_DIR
#   status    which lab processes are up, replication and semi-sync state
#   start-server NAME  starts one stopped server (master, replica1, replica2) as it is, without
#             touching users or replication: a killed master comes back as it was (after a
#             failover, rwsplit rejoins it)
#
# Options (or the environment variable of the same name):
#   --state-dir DIR        STATE_DIR      default <repo>/.state/lab
#   --master-port N        MASTER_PORT    default 3307
#   --replica1-port N      REPLICA1_PORT  default 3308
#   --replica2-port N      REPLICA2_PORT  default 3309
#   --proxy-port N         PROXY_PORT     default 8066
#   --admin-port N         ADMIN_PORT     default 9066
#   OWNER_PID=PID          with `up`: a watcher stops the lab when that process dies
#   RWSPLIT_BIN=PATH       with `proxy-up`: use this binary instead of building one
#   LAB_TIMEOUT=SECONDS    bound of every wait (default 60)
#   LAB_KEEP_STATE=1       with `down` (and the watcher): stop everything but keep STATE_DIR
#   LAB_EXTRA_PACKAGES=…   with `install`: more Debian packages to install when missing
#
# Everything the lab runs lives under STATE_DIR: one directory per server (my.cnf, data/,
# mariadbd.sock, mariadbd.pid, mariadbd.err), rwsplit.toml/.pid/.log, watcher.pid/.log,
# lab.env (the ports in use) and tls/: a CA (tls/ca.pem) and a server certificate signed by it
# for IP:127.0.0.1 and DNS:localhost, made once per STATE_DIR, which every server offers (TLS
# is available, not required: backend.tls_ca = "STATE_DIR/tls/ca.pem" in rwsplit.toml). A process is only ever signalled when its pidfile is under
# STATE_DIR *and* its command line names STATE_DIR, so labs side by side (`make lab`, the test
# harness's clusters) never touch each other's processes.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO_DIR/scripts/lab.sh"
SERVERS=(master replica1 replica2)

log() { printf '[lab] %s\n' "$*"; }
warn() { printf '[lab] warning: %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }

# ---------------------------------------------------------------- settings
# Remember which ports were given explicitly, so a conflict with an existing lab is an error.
GIVEN_MASTER_PORT=${MASTER_PORT-}
GIVEN_REPLICA1_PORT=${REPLICA1_PORT-}
GIVEN_REPLICA2_PORT=${REPLICA2_PORT-}
GIVEN_PROXY_PORT=${PROXY_PORT-}
GIVEN_ADMIN_PORT=${ADMIN_PORT-}
STATE_DIR=${STATE_DIR:-$REPO_DIR/.state/lab}
SUDO=()
LAB_TIMEOUT=${LAB_TIMEOUT:-60}

COMMANDS=()
while (($#)); do
    case "$1" in
        --state-dir) STATE_DIR=${2:?--state-dir needs a value}; shift 2 ;;
        --master-port) GIVEN_MASTER_PORT=${2:?}; shift 2 ;;
        --replica1-port) GIVEN_REPLICA1_PORT=${2:?}; shift 2 ;;
        --replica2-port) GIVEN_REPLICA2_PORT=${2:?}; shift 2 ;;
        --proxy-port) GIVEN_PROXY_PORT=${2:?}; shift 2 ;;
        --admin-port) GIVEN_ADMIN_PORT=${2:?}; shift 2 ;;
        -h | --help | help) usage; exit 0 ;;
        __watch) COMMANDS+=("$1" "${2:?__watch needs a pid}"); shift 2 ;;
        start-server)
            case ${2:-} in master | replica1 | replica2) ;; *) die "start-server needs master, replica1 or replica2" ;; esac
            COMMANDS+=("$1" "$2"); shift 2 ;;
        install | up | proxy-up | proxy-down | down | status) COMMANDS+=("$1"); shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
((${#COMMANDS[@]})) || { usage; exit 1; }

STATE_DIR=$(realpath -m -- "$STATE_DIR")
LAB_ENV="$STATE_DIR/lab.env"

# Ports: those recorded in lab.env win (the lab is already laid out with them); a port given
# explicitly that differs from the recorded one is an error rather than a silent surprise.
declare -A PORT
load_ports() {
    local -A saved=()
    local key value
    if [[ -f $LAB_ENV ]]; then
        while IFS='=' read -r key value; do
            [[ $key =~ ^[A-Z0-9_]+_PORT$ ]] && saved[$key]=$value
        done <"$LAB_ENV"
    fi
    local name given default
    for name in MASTER_PORT REPLICA1_PORT REPLICA2_PORT PROXY_PORT ADMIN_PORT; do
        case $name in
            MASTER_PORT) given=$GIVEN_MASTER_PORT default=3307 ;;
            REPLICA1_PORT) given=$GIVEN_REPLICA1_PORT default=3308 ;;
            REPLICA2_PORT) given=$GIVEN_REPLICA2_PORT default=3309 ;;
            PROXY_PORT) given=$GIVEN_PROXY_PORT default=8066 ;;
            ADMIN_PORT) given=$GIVEN_ADMIN_PORT default=9066 ;;
        esac
        if [[ -n ${saved[$name]:-} ]]; then
            if [[ -n $given && $given != "${saved[$name]}" ]]; then
                die "$name=$given but the lab in $STATE_DIR uses ${saved[$name]} (run 'down' first or pick another STATE_DIR)"
            fi
            PORT[$name]=${saved[$name]}
        else
            PORT[$name]=${given:-$default}
        fi
        if ! [[ ${PORT[$name]} =~ ^[0-9]+$ ]] || ((PORT[$name] < 1 || PORT[$name] > 65535)); then
            die "$name=${PORT[$name]} is not a port number"
        fi
    done
}
load_ports

server_port() {
    case $1 in
        master) echo "${PORT[MASTER_PORT]}" ;;
        replica1) echo "${PORT[REPLICA1_PORT]}" ;;
        replica2) echo "${PORT[REPLICA2_PORT]}" ;;
    esac
}
server_id() {
    case $1 in master) echo 1 ;; replica1) echo 2 ;; replica2) echo 3 ;; esac
}
sdir() { echo "$STATE_DIR/$1"; }
sock() { echo "$STATE_DIR/$1/mariadbd.sock"; }

# ---------------------------------------------------------------- processes
# Prints the pid recorded in pidfile $1 when that process is alive and its command line names
# STATE_DIR (so a recycled pid is never mistaken for ours); fails otherwise.
lab_pid() {
    local pidfile=$1 pid cmdline
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$STATE_DIR/"* ]] || return 1
    echo "$pid"
}

server_pid() { lab_pid "$(sdir "$1")/mariadbd.pid"; }

# Sends TERM to every pid given, waits up to $LAB_TIMEOUT s for all to exit, then KILLs the rest.
stop_pids() {
    local pid
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    local deadline=$((SECONDS + LAB_TIMEOUT))
    while ((SECONDS < deadline)); do
        local alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; fi
        done
        ((alive)) || return 0
        sleep 0.2
    done
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            warn "pid $pid did not stop within ${LAB_TIMEOUT}s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tail_log() {
    local file=$1
    [[ -f $file ]] || return 0
    printf '[lab] ---- last lines of %s ----\n' "$file" >&2
    tail -n "${2:-30}" "$file" >&2 || true
    printf '[lab] ----\n' >&2
}

# ---------------------------------------------------------------- SQL helpers
# Root over the server's own unix socket; --no-defaults so no ~/.my.cnf interferes.
sql() {
    local name=$1
    shift
    mariadb --no-defaults --protocol=socket -S "$(sock "$name")" -uroot -N -B "$@"
}

# Vertical output with field names (-N would drop them), for SHOW SLAVE STATUS.
sql_vertical() { mariadb --no-defaults --protocol=socket -S "$(sock "$1")" -uroot -E -e "$2"; }

# Value of one row of SHOW ... output: `show_value master "SHOW GLOBAL STATUS LIKE 'x'"`.
show_value() { sql "$1" -e "$2" 2>/dev/null | awk -F'\t' 'NR==1{print $2}'; }

# One field of SHOW SLAVE STATUS (empty when the server is no replica).
slave_field() {
    sql_vertical "$1" 'SHOW SLAVE STATUS' 2>/dev/null |
        awk -v f="$2" '{k=$1; sub(/:$/, "", k)} k==f {sub(/^[^:]*: ?/, ""); print; exit}'
}

# ---------------------------------------------------------------- install
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

cmd_install() {
    local missing=() pkg
    local extra_pkgs=()
    read -r -a extra_pkgs <<<"${LAB_EXTRA_PACKAGES:-}"
    local want=(mariadb-server mariadb-client sysbench "${extra_pkgs[@]}")
    for pkg in "${want[@]}"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "install: already installed: ${want[*]}"
        return 0
    fi
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "installing ${missing[*]} needs root (or sudo)"
        SUDO=(sudo)
    fi
    # The lab runs its own mariadbd processes; the distro's service is not wanted. A temporary
    # policy-rc.d (the Debian way) keeps postinst from starting it; an existing one is kept.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from rwsplit scripts/lab.sh install\nexit 101\n' |
            "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        made_policy=1
        trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    log "install: apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    log "install: apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if ((made_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
}

# ---------------------------------------------------------------- up
write_cnf() {
    local name=$1 dir read_only=OFF
    dir=$(sdir "$name")
    [[ $name == master ]] || read_only=ON
    cat >"$dir/my.cnf" <<CNF
# Written by scripts/lab.sh: the rwsplit lab's $name. Regenerated on every 'up'.
[mariadbd]
user=root
datadir=$dir/data
socket=$dir/mariadbd.sock
pid-file=$dir/mariadbd.pid
log-error=$dir/mariadbd.err
tmpdir=$dir/tmp
port=$(server_port "$name")
bind-address=127.0.0.1
# Accounts are for 127.0.0.1 (TCP) and localhost (socket): no DNS look-ups.
skip-name-resolve
server_id=$(server_id "$name")

# GTID replication; every server can become the master.
log_bin=mariadb-bin
relay_log=relay-bin
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
slave_net_timeout=10
read_only=$read_only

# Semi-sync (built into MariaDB 10.11). Master and slave sides on everywhere, so a promoted
# replica acks and waits like the master did; only the side in use does anything.
rpl_semi_sync_master_enabled=ON
rpl_semi_sync_master_timeout=1000
rpl_semi_sync_slave_enabled=ON

# Room for the 20 MiB blob tests, utf8mb4 for emoji.
max_allowed_packet=64M
character_set_server=utf8mb4
collation_server=utf8mb4_general_ci
max_connections=1000

# A lab, not a production server: small and quick, durability relaxed.
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=2
sync_binlog=0
performance_schema=OFF

# TLS offered (not required) with the lab's certificate (make_tls).
ssl_ca=$STATE_DIR/tls/ca.pem
ssl_cert=$STATE_DIR/tls/server.pem
ssl_key=$STATE_DIR/tls/server-key.pem
CNF
}

# The lab's CA and the server certificate every server offers, made once per STATE_DIR.
make_tls() {
    local dir="$STATE_DIR/tls"
    [[ -s $dir/ca.pem && -s $dir/server.pem && -s $dir/server-key.pem ]] && return 0
    command -v openssl >/dev/null || die "openssl not found (needed for the lab's TLS certificates)"
    mkdir -p "$dir"
    log "up: creating the lab's CA and server certificate in $dir"
    printf '%s\n' '[req]' 'distinguished_name=dn' '[dn]' '[ca]' 'basicConstraints=critical,CA:TRUE' \
        'keyUsage=critical,keyCertSign,cRLSign' 'subjectKeyIdentifier=hash' '[server]' \
        'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
        'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$dir/openssl.cnf"
    {
        openssl req -x509 -config "$dir/openssl.cnf" -extensions ca -newkey rsa:2048 -nodes -days 3650 \
            -subj "/CN=rwsplit lab CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" &&
            openssl req -new -config "$dir/openssl.cnf" -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                -keyout "$dir/server-key.pem" -out "$dir/server.csr" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
                -CAcreateserial -days 3650 -extfile "$dir/openssl.cnf" -extensions server -out "$dir/server.pem"
    } >"$dir/openssl.log" 2>&1 || {
        tail_log "$dir/openssl.log"
        rm -f "$dir/ca.pem" "$dir/server.pem"
        die "creating the lab's TLS certificates failed"
    }
}

start_server() {
    local name=$1 dir port
    dir=$(sdir "$name")
    port=$(server_port "$name")
    if port_in_use "$port"; then
        die "port $port (for $name) is already in use by another process; pick other ports (--master-port …) or STATE_DIR"
    fi
    rm -f "$dir/mariadbd.pid" "$dir/mariadbd.sock"
    # setsid: its own session, so a terminal's Ctrl-C or hang-up does not reach it; all three
    # standard streams go to files, so a caller reading our output (the test harness) does not
    # wait on the server.
    setsid mariadbd --defaults-file="$dir/my.cnf" </dev/null >>"$dir/mariadbd.out" 2>&1 &
    echo $! >"$dir/launcher.pid"
}

wait_server() {
    local name=$1 dir deadline launcher
    dir=$(sdir "$name")
    launcher=$(cat "$dir/launcher.pid" 2>/dev/null || true)
    deadline=$((SECONDS + LAB_TIMEOUT))
    while ((SECONDS < deadline)); do
        if mariadb-admin --no-defaults --protocol=socket -S "$(sock "$name")" -uroot ping >/dev/null 2>&1; then
            rm -f "$dir/launcher.pid"
            return 0
        fi
        if [[ -n $launcher ]] && ! kill -0 "$launcher" 2>/dev/null && ! server_pid "$name" >/dev/null; then
            tail_log "$dir/mariadbd.err"
            tail_log "$dir/mariadbd.out" 10
            die "$name (mariadbd) exited during start-up"
        fi
        sleep 0.2
    done
    tail_log "$dir/mariadbd.err"
    die "$name did not answer within ${LAB_TIMEOUT}s"
}

create_users() {
    log "up: creating users app, monitor, repl and database db_test on the master"
    # Semi-sync off while nobody can ack (else the first commit waits out the timeout); SET
    # GLOBAL is not binlogged. Everything else is, so the replicas get the users by GTID.
    sql master <<'SQL'
SET GLOBAL rpl_semi_sync_master_enabled = OFF;
CREATE DATABASE IF NOT EXISTS db_test;
-- Each account for 127.0.0.1 (TCP from loopback; skip-name-resolve) and localhost (socket).
-- Not '%': the lab's passwords are trivial, so its accounts accept loopback only.
CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app';
CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'app';
-- Deliberately not GRANT ALL: that includes READ_ONLY ADMIN, with which a write misrouted to
-- a read_only replica would silently succeed.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES,
      LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT,
      TRIGGER, REFERENCES ON *.* TO 'app'@'127.0.0.1', 'app'@'localhost';
CREATE USER IF NOT EXISTS 'monitor'@'127.0.0.1' IDENTIFIED BY 'monitor';
CREATE USER IF NOT EXISTS 'monitor'@'localhost' IDENTIFIED BY 'monitor';
GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS, REPLICATION CLIENT ON *.*
      TO 'monitor'@'127.0.0.1', 'monitor'@'localhost';
-- The monitor's heartbeat table lives in `rwsplit`, which it creates itself; its
-- REPLACE INTO needs INSERT and DELETE.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON rwsplit.* TO 'monitor'@'127.0.0.1', 'monitor'@'localhost';
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
CREATE USER IF NOT EXISTS 'repl'@'localhost' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1', 'repl'@'localhost';
SET GLOBAL rpl_semi_sync_master_enabled = ON;
SQL
}

# The monitor account also runs switchovers and failovers (read_only, CHANGE MASTER, the
# semi-sync switches). Granted on the master, replicated; a lab made before this was added gets
# it at its next `up`.
grant_promotion() {
    local writer=master
    # After a switchover the writer may be another server: grant where read_only is OFF.
    for name in "${SERVERS[@]}"; do
        [[ $(sql "$name" -e 'SELECT @@read_only' 2>/dev/null) == 0 ]] && writer=$name && break
    done
    if ! sql "$writer" -e "SHOW GRANTS FOR 'monitor'@'127.0.0.1'" | grep -q 'RELOAD.*READ_ONLY ADMIN'; then
        log "up: granting the monitor account what switchover and failover need"
        sql "$writer" -e "GRANT RELOAD, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, BINLOG ADMIN
            ON *.* TO 'monitor'@'127.0.0.1', 'monitor'@'localhost'"
    fi
}

attach_replica() {
    local name=$1
    if [[ -z $(slave_field "$name" Master_Host) ]]; then
        log "up: $name replicates from 127.0.0.1:${PORT[MASTER_PORT]} (GTID slave_pos)"
        sql "$name" -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${PORT[MASTER_PORT]},
            MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos,
            MASTER_CONNECT_RETRY=1; START SLAVE;"
    elif [[ $(slave_field "$name" Slave_IO_Running) != Yes || $(slave_field "$name" Slave_SQL_Running) != Yes ]]; then
        sql "$name" -e 'START SLAVE' 2>/dev/null || true
    fi
}

wait_replication() {
    local name deadline pos
    deadline=$((SECONDS + LAB_TIMEOUT))
    for name in replica1 replica2; do
        while :; do
            local io sql_t
            io=$(slave_field "$name" Slave_IO_Running)
            sql_t=$(slave_field "$name" Slave_SQL_Running)
            [[ $io == Yes && $sql_t == Yes ]] && break
            if ((SECONDS >= deadline)); then
                sql_vertical "$name" 'SHOW SLAVE STATUS' >&2 || true
                tail_log "$(sdir "$name")/mariadbd.err"
                die "$name: replication threads not running after ${LAB_TIMEOUT}s (IO=$io SQL=$sql_t)"
            fi
            sleep 0.2
        done
    done
    pos=$(sql master -e 'SELECT @@gtid_binlog_pos')
    if [[ -n $pos ]]; then
        for name in replica1 replica2; do
            local left=$((deadline - SECONDS))
            ((left > 0)) || left=1
            if [[ $(sql "$name" -e "SELECT MASTER_GTID_WAIT('$pos', $left)") != 0 ]]; then
                sql_vertical "$name" 'SHOW SLAVE STATUS' >&2 || true
                die "$name did not reach the master's GTID $pos within ${LAB_TIMEOUT}s"
            fi
        done
    fi
    while :; do
        local status clients
        status=$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
        clients=$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
        [[ $status == ON && $clients == 2 ]] && break
        if ((SECONDS >= deadline)); then
            tail_log "$(sdir master)/mariadbd.err"
            die "semi-sync not established after ${LAB_TIMEOUT}s: Rpl_semi_sync_master_status=$status clients=$clients"
        fi
        sleep 0.2
    done
}

save_lab_env() {
    {
        echo "# rwsplit lab: ports in use (scripts/lab.sh)"
        local name
        for name in MASTER_PORT REPLICA1_PORT REPLICA2_PORT PROXY_PORT ADMIN_PORT; do
            echo "$name=${PORT[$name]}"
        done
    } >"$LAB_ENV"
}

cmd_up() {
    local t0=$SECONDS name
    local tool
    for tool in mariadbd mariadb-install-db mariadb mariadb-admin; do
        command -v "$tool" >/dev/null || die "$tool not found: run 'scripts/lab.sh install' first"
    done
    mkdir -p "$STATE_DIR"
    save_lab_env
    local sockpath
    sockpath=$(sock replica2)
    ((${#sockpath} < 100)) || die "STATE_DIR is too deep for a unix socket path ($sockpath): pick a shorter STATE_DIR"

    make_tls
    # Initialise missing datadirs (in parallel: each takes about half a second).
    local inits=() init_names=()
    for name in "${SERVERS[@]}"; do
        mkdir -p "$(sdir "$name")/tmp"
        write_cnf "$name"
        if [[ ! -d $(sdir "$name")/data/mysql ]]; then
            rm -rf "$(sdir "$name")/data"
            log "up: initialising $name's datadir"
            mariadb-install-db --defaults-file="$(sdir "$name")/my.cnf" --auth-root-authentication-method=normal \
                --skip-test-db --user=root </dev/null >"$(sdir "$name")/install-db.log" 2>&1 &
            inits+=($!)
            init_names+=("$name")
        fi
    done
    local i
    for i in "${!inits[@]}"; do
        wait "${inits[$i]}" || {
            tail_log "$(sdir "${init_names[$i]}")/install-db.log"
            die "mariadb-install-db failed for ${init_names[$i]}"
        }
    done

    local started=()
    for name in "${SERVERS[@]}"; do
        if pid=$(server_pid "$name"); then
            log "up: $name already running (pid $pid)"
        else
            log "up: starting $name on 127.0.0.1:$(server_port "$name")"
            start_server "$name"
            started+=("$name")
        fi
    done
    for name in "${started[@]}"; do wait_server "$name"; done

    if [[ $(sql master -e "SELECT COUNT(*) FROM mysql.global_priv WHERE User IN ('app','monitor','repl')") != 6 ]]; then
        create_users
    fi
    grant_promotion
    attach_replica replica1
    attach_replica replica2
    wait_replication

    if [[ -n ${OWNER_PID:-} ]]; then start_watcher "$OWNER_PID"; fi
    summary
    log "up: done in $((SECONDS - t0))s"
}

summary() {
    local name
    echo "rwsplit lab (state: $STATE_DIR)"
    for name in "${SERVERS[@]}"; do
        local pid ro extra=""
        pid=$(server_pid "$name" || echo "-")
        ro=$(sql "$name" -e 'SELECT IF(@@read_only, "ON", "OFF")' 2>/dev/null || echo "?")
        if [[ $name != master ]]; then
            extra="  IO=$(slave_field "$name" Slave_IO_Running) SQL=$(slave_field "$name" Slave_SQL_Running) gtid_slave_pos=$(sql "$name" -e 'SELECT @@gtid_slave_pos' 2>/dev/null)"
        else
            extra="  gtid_binlog_pos=$(sql master -e 'SELECT @@gtid_binlog_pos' 2>/dev/null)"
        fi
        printf '  %-9s 127.0.0.1:%-5s server_id=%s pid=%s read_only=%s%s\n' \
            "$name" "$(server_port "$name")" "$(server_id "$name")" "$pid" "$ro" "$extra"
    done
    printf '  semi-sync: Rpl_semi_sync_master_status=%s Rpl_semi_sync_master_clients=%s\n' \
        "$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")" \
        "$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")"
    echo "  users: app/app, monitor/monitor, repl/repl (@127.0.0.1, @localhost); database db_test"
    echo "  root:  mariadb -h127.0.0.1 -P${PORT[MASTER_PORT]} -uroot"
}

# ---------------------------------------------------------------- watcher
proc_starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }

start_watcher() {
    local owner=$1
    if ! [[ $owner =~ ^[0-9]+$ ]] || ! kill -0 "$owner" 2>/dev/null; then
        die "OWNER_PID=$owner is not a running process"
    fi
    if pid=$(lab_pid "$STATE_DIR/watcher.pid"); then
        log "up: watcher already running (pid $pid)"
        return 0
    fi
    # The trailing slash puts "$STATE_DIR/" in its command line, which lab_pid looks for.
    setsid "$SELF" --state-dir "$STATE_DIR/" __watch "$owner" </dev/null >>"$STATE_DIR/watcher.log" 2>&1 &
    log "up: watcher stops the lab when pid $owner exits"
}

# Runs detached: stops the lab once the owner is gone (pid absent or reused), exits by itself
# when the servers are gone (someone ran `down`) or after a day.
cmd_watch() {
    local owner=$1 started
    echo $$ >"$STATE_DIR/watcher.pid"
    started=$(proc_starttime "$owner")
    local deadline=$((SECONDS + 86400))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$owner" 2>/dev/null || [[ $(proc_starttime "$owner") != "$started" ]]; then
            log "watch: owner $owner is gone: stopping the lab"
            cmd_down
            return 0
        fi
        local any=0 name
        for name in "${SERVERS[@]}"; do
            if server_pid "$name" >/dev/null; then any=1; fi
        done
        ((any)) || { log "watch: servers are gone: exiting"; rm -f "$STATE_DIR/watcher.pid"; return 0; }
        sleep 1
    done
}

# ---------------------------------------------------------------- proxy
write_proxy_config() {
    cat >"$STATE_DIR/rwsplit.toml" <<TOML
# Written by scripts/lab.sh proxy-up: rwsplit in front of the lab's servers.
# See config/rwsplit.example.toml for every field.

[proxy]
listen = "127.0.0.1:${PORT[PROXY_PORT]}"

[[users]]
name = "app"
password = "app"

[backend]
user = "app"
password = "app"

[[servers]]
name = "master"
address = "127.0.0.1:${PORT[MASTER_PORT]}"

[[servers]]
name = "replica1"
address = "127.0.0.1:${PORT[REPLICA1_PORT]}"

[[servers]]
name = "replica2"
address = "127.0.0.1:${PORT[REPLICA2_PORT]}"

[monitor]
user = "monitor"
password = "monitor"
# For switchover and failover (CHANGE MASTER TO ... when servers are repointed).
replication_user = "repl"
replication_password = "repl"

[admin]
listen = "127.0.0.1:${PORT[ADMIN_PORT]}"
TOML
}

cmd_proxy_up() {
    server_pid master >/dev/null || die "the lab's servers are not running: run 'scripts/lab.sh up' first"
    local bin=${RWSPLIT_BIN:-}
    if [[ -z $bin ]]; then
        log "proxy-up: cargo build --release --bin rwsplit"
        (cd "$REPO_DIR" && cargo build --release --bin rwsplit)
        bin="${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/rwsplit"
    fi
    [[ -x $bin ]] || die "rwsplit binary not found at $bin"
    bin=$(realpath "$bin")

    local cfg="$STATE_DIR/rwsplit.toml" pidfile="$STATE_DIR/rwsplit.pid" logf="$STATE_DIR/rwsplit.log"
    local old_cfg=""
    [[ -f $cfg ]] && old_cfg=$(cat "$cfg")
    write_proxy_config
    "$bin" check --config "$cfg" || die "rwsplit rejects $cfg"

    if pid=$(lab_pid "$pidfile"); then
        if [[ $bin -nt $pidfile || $(cat "$cfg") != "$old_cfg" ]]; then
            log "proxy-up: binary or config changed: restarting rwsplit (pid $pid)"
            stop_pids "$pid"
        else
            log "proxy-up: rwsplit already running (pid $pid)"
            proxy_ready_or_die "$pid"
            print_connect
            return 0
        fi
    fi
    local port
    for port in "${PORT[PROXY_PORT]}" "${PORT[ADMIN_PORT]}"; do
        port_in_use "$port" && die "port $port is already in use: set PROXY_PORT/ADMIN_PORT (or run 'proxy-down')"
    done
    log "proxy-up: starting rwsplit on 127.0.0.1:${PORT[PROXY_PORT]} (log: $logf)"
    # The inner shell records its own pid, then becomes rwsplit: the pidfile is right whether or
    # not setsid had to fork.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    NO_COLOR=1 setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' rwsplit-launch "$pidfile" \
        "$bin" --config "$cfg" </dev/null >>"$logf" 2>&1 &
    local deadline=$((SECONDS + 5))
    until pid=$(lab_pid "$pidfile"); do
        ((SECONDS < deadline)) || { tail_log "$logf"; die "rwsplit did not start"; }
        sleep 0.1
    done
    proxy_ready_or_die "$pid"
    print_connect
}

proxy_ready_or_die() {
    local pid=$1 logf="$STATE_DIR/rwsplit.log" deadline=$((SECONDS + LAB_TIMEOUT)) err=""
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail_log "$logf"
            die "rwsplit (pid $pid) exited during start-up"
        fi
        if port_in_use "${PORT[PROXY_PORT]}"; then
            if err=$(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"${PORT[PROXY_PORT]}" -uapp -papp \
                --connect-timeout=5 -N -B -e 'select 1' 2>&1); then
                return 0
            fi
        fi
        sleep 0.3
    done
    tail_log "$logf"
    die "rwsplit did not serve 'select 1' within ${LAB_TIMEOUT}s${err:+ (last error: $err)}; it is left running (pid $pid) for inspection"
}

print_connect() {
    echo "rwsplit is up (pid $(lab_pid "$STATE_DIR/rwsplit.pid"), admin http://127.0.0.1:${PORT[ADMIN_PORT]}/status). Connect with:"
    echo "mariadb -h127.0.0.1 -P${PORT[PROXY_PORT]} -uapp -papp db_test"
}

cmd_proxy_down() {
    local pid
    if pid=$(lab_pid "$STATE_DIR/rwsplit.pid"); then
        log "proxy-down: stopping rwsplit (pid $pid)"
        stop_pids "$pid"
    else
        log "proxy-down: rwsplit is not running"
    fi
    rm -f "$STATE_DIR/rwsplit.pid"
}

# ---------------------------------------------------------------- down / status
cmd_down() {
    if [[ ! -d $STATE_DIR ]]; then
        log "down: nothing at $STATE_DIR"
        return 0
    fi
    [[ -f $LAB_ENV ]] || die "$STATE_DIR has no lab.env: not a lab state directory, refusing to remove it"
    local pids=() pid f
    # The watcher first (unless we are it), then proxies (lab's and the harness's registered
    # under run/), then the servers: all TERMed together, bounded wait, then KILL.
    if pid=$(lab_pid "$STATE_DIR/watcher.pid") && [[ $pid != "$$" ]]; then pids+=("$pid"); fi
    for f in "$STATE_DIR/rwsplit.pid" "$STATE_DIR"/run/*.pid; do
        if pid=$(lab_pid "$f"); then pids+=("$pid"); fi
    done
    local name
    for name in "${SERVERS[@]}"; do
        if pid=$(server_pid "$name"); then pids+=("$pid"); fi
    done
    if ((${#pids[@]})); then
        log "down: stopping pids ${pids[*]}"
        stop_pids "${pids[@]}"
    fi
    if [[ ${LAB_KEEP_STATE:-0} == 1 ]]; then
        rm -f "$STATE_DIR"/*/mariadbd.pid "$STATE_DIR"/rwsplit.pid "$STATE_DIR"/watcher.pid "$STATE_DIR"/run/*.pid
        log "down: LAB_KEEP_STATE=1: kept $STATE_DIR (logs, datadirs) for inspection"
    else
        rm -rf -- "$STATE_DIR"
        log "down: removed $STATE_DIR"
    fi
}

cmd_status() {
    if [[ ! -f $LAB_ENV ]]; then
        echo "no lab at $STATE_DIR"
        return 0
    fi
    echo "rwsplit lab at $STATE_DIR"
    local name pid
    for name in "${SERVERS[@]}"; do
        if pid=$(server_pid "$name"); then
            local extra=""
            if [[ $name == master ]]; then
                extra="semi-sync=$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'") clients=$(show_value master "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'") gtid_binlog_pos=$(sql master -e 'SELECT @@gtid_binlog_pos' 2>/dev/null)"
            else
                extra="IO=$(slave_field "$name" Slave_IO_Running) SQL=$(slave_field "$name" Slave_SQL_Running) lag=$(slave_field "$name" Seconds_Behind_Master)s read_only=$(sql "$name" -e 'SELECT @@read_only' 2>/dev/null)"
            fi
            printf '  %-9s up    pid %-7s 127.0.0.1:%s  %s\n' "$name" "$pid" "$(server_port "$name")" "$extra"
        else
            printf '  %-9s down\n' "$name"
        fi
    done
    if pid=$(lab_pid "$STATE_DIR/rwsplit.pid"); then
        printf '  %-9s up    pid %-7s 127.0.0.1:%s admin 127.0.0.1:%s\n' rwsplit "$pid" "${PORT[PROXY_PORT]}" "${PORT[ADMIN_PORT]}"
    else
        printf '  %-9s down\n' rwsplit
    fi
    if pid=$(lab_pid "$STATE_DIR/watcher.pid"); then
        printf '  %-9s up    pid %s\n' watcher "$pid"
    fi
    local f
    for f in "$STATE_DIR"/run/*.pid; do
        if pid=$(lab_pid "$f"); then printf '  %-9s up    pid %s (%s)\n' extra "$pid" "$(basename "$f" .pid)"; fi
    done
}

cmd_start_server() {
    local name=$1
    if server_pid "$name" >/dev/null; then
        log "start-server: $name is already running"
        return 0
    fi
    log "start-server: starting $name on 127.0.0.1:$(server_port "$name")"
    start_server "$name"
    wait_server "$name"
}

# ---------------------------------------------------------------- main
i=0
while ((i < ${#COMMANDS[@]})); do
    case ${COMMANDS[$i]} in
        install) cmd_install ;;
        up) cmd_up ;;
        proxy-up) cmd_proxy_up ;;
        proxy-down) cmd_proxy_down ;;
        down) cmd_down ;;
        status) cmd_status ;;
        __watch) i=$((i + 1)); cmd_watch "${COMMANDS[$i]}" ;;
        start-server) i=$((i + 1)); cmd_start_server "${COMMANDS[$i]}" ;;
    esac
    i=$((i + 1))
done
