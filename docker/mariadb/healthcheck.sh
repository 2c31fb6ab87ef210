#!/usr/bin/env bash
# Health of a docker lab server: it answers on its public socket (the set-up server of
# entrypoint.sh uses a private one) and, on a replica, both replication threads run.
set -euo pipefail
sql() { mariadb --no-defaults --protocol=socket -S /run/mysqld/mysqld.sock -uroot -B "$@"; }
sql -N -e 'SELECT 1' >/dev/null
if [[ $(sql -N -e 'SELECT @@read_only') == 1 ]]; then
    # With the column names (no -N): \G prints "name: value".
    status=$(sql -e 'SHOW SLAVE STATUS\G')
    grep -q 'Slave_IO_Running: Yes' <<<"$status"
    grep -q 'Slave_SQL_Running: Yes' <<<"$status"
fi
