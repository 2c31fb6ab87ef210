#!/usr/bin/env bash
# Real client drivers against the master directly and through rwsplit (default config), step
# by step: node mysql2 (npm) and PHP mysqli + PDO (Debian's php-cli, php-mysql). Each script in
# tests/drivers/ prints the steps that differ and fails if any does. Starts its own lab on spare
# ports (servers 5407-5409, rwsplit 5466/5467) and stops it on exit.
#
#   scripts/driver_check.sh      (make driver-check; RWSPLIT_BIN=PATH to use a built binary)
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=$(mktemp -d /tmp/rwsplit-drivers-XXXXXX)
export STATE_DIR MASTER_PORT=5407 REPLICA1_PORT=5408 REPLICA2_PORT=5409 PROXY_PORT=5466 ADMIN_PORT=5467
export OWNER_PID=$$
trap '"$REPO_DIR/scripts/lab.sh" down >/dev/null 2>&1 || true' EXIT

"$REPO_DIR/scripts/lab.sh" install >/dev/null
if ! command -v php >/dev/null || ! php -m | grep -qi '^mysqli$'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q php-cli php-mysql >/dev/null
fi
command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null
NODE_DIR="$STATE_DIR/node"
mkdir -p "$NODE_DIR"
(cd "$NODE_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund mysql2 >/dev/null)
"$REPO_DIR/scripts/lab.sh" up proxy-up >/dev/null
status=0
NODE_PATH="$NODE_DIR/node_modules" node "$REPO_DIR/tests/drivers/mysql2.js" || status=1
php "$REPO_DIR/tests/drivers/mysqli_pdo.php" || status=1
exit "$status"
