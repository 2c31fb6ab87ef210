#!/usr/bin/env bash
# Entry point of the docker lab's MariaDB image: on the first start (empty datadir) create the
# system tables, then run /docker-entrypoint-initdb.d/*.sql once on a server that listens on a
# private socket only, so the health check (healthcheck.sh, on the public socket) stays red
# until that is done; then run mariadbd with the container's arguments.
#
# The first-start SQL is binlogged (mariadb-install-db's own tables are not: --skip-log-bin),
# so a replica starting from an empty gtid_slave_pos receives the master's accounts by
# replication and gtid_strict_mode finds nothing of the replica's own in its binlog.
set -euo pipefail

datadir=/var/lib/mysql
init_socket=/run/mysqld/init.sock

if [[ ! -d $datadir/mysql ]]; then
    echo "[entrypoint] first start: creating the system tables in $datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db --skip-log-bin \
        --auth-root-authentication-method=socket >/dev/null
    mariadbd --user=mysql --skip-networking --socket="$init_socket" --skip-slave-start "$@" &
    init_pid=$!
    for _ in $(seq 60); do
        mariadb-admin --no-defaults --protocol=socket -S "$init_socket" -uroot ping >/dev/null 2>&1 && break
        kill -0 "$init_pid" 2>/dev/null || { echo "[entrypoint] mariadbd exited during set-up" >&2; exit 1; }
        sleep 1
    done
    for sql in /docker-entrypoint-initdb.d/*.sql; do
        [[ -e $sql ]] || continue
        echo "[entrypoint] running $sql"
        mariadb --no-defaults --protocol=socket -S "$init_socket" -uroot <"$sql"
    done
    mariadb-admin --no-defaults --protocol=socket -S "$init_socket" -uroot shutdown
    wait "$init_pid" || true
    echo "[entrypoint] set-up done"
fi

exec mariadbd --user=mysql "$@"
