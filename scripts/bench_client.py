#!/usr/bin/env python3
"""Minimal MySQL/MariaDB client for scripts/bench.sh: standard library only.

It speaks just enough of the protocol (HandshakeV10, HandshakeResponse41 with
mysql_native_password computed with hashlib, AuthSwitchRequest, COM_QUERY with a classic
EOF-terminated result set, COM_QUIT) to measure what a library would hide or a CLI would
drown in process start-up:

  connect N HOST PORT USER PASS [QUERY]
      N serial connections: TCP connect + handshake + authentication + SELECT 1 + COM_QUIT +
      close (QUERY=0: without the SELECT 1). Prints "ok=N errors=E mean_ms=M" (mean wall time per connection, errors excluded).
  idle N HOST PORT USER PASS STATUS_FILE RELEASE_FILE TIMEOUT_S
      Opens N authenticated connections (at most 200 handshakes in flight), writes
      "connected=K errors=E" to STATUS_FILE, holds them until RELEASE_FILE exists (or
      TIMEOUT_S), closes them all and appends "closed" to STATUS_FILE.
  busy N SECONDS HOST PORT USER PASS DB TABLES TABLE_SIZE [LOGIN_DB]
      N concurrent connections, each sending point selects
      (SELECT c FROM sbtestT WHERE id=R, text protocol) back to back for SECONDS. With
      LOGIN_DB=1 (default) the handshake names DB; with 0 it does not, and the statements
      name DB.sbtestT instead.
      Prints "connected=K connect_errors=C queries=Q errors=E".
  sample INTERVAL_MS STOP_FILE TIMEOUT_S USER PASS PORT...
      One connection per server port; every INTERVAL_MS reads Threads_connected on each
      (its own connection included, it is subtracted) until STOP_FILE exists. Prints one line
      per port: "PORT min=A max=B samples=S".

Everything is bounded in time: every socket operation has a timeout, every mode a deadline.
"""
import asyncio
import hashlib
import os
import random
import socket
import struct
import sys
import time

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
IO_TIMEOUT = 30.0


class MySQLError(Exception):
    pass


def native_password(password, scramble):
    """mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(scramble[:20] + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def parse_handshake(p):
    if p[0] == 0xFF:
        raise MySQLError("server refused: " + err_text(p))
    if p[0] != 10:
        raise MySQLError("unexpected protocol version %d" % p[0])
    pos = p.index(b"\0", 1) + 1  # server version
    pos += 4  # connection id
    part1 = p[pos:pos + 8]
    pos += 9  # + filler
    caps = struct.unpack_from("<H", p, pos)[0]
    pos += 2 + 1 + 2  # caps low, charset, status
    caps |= struct.unpack_from("<H", p, pos)[0] << 16
    pos += 2
    data_len = p[pos]
    pos += 1 + 10  # auth data length, reserved (MariaDB: filler + extended caps)
    part2 = b""
    if caps & CLIENT_SECURE_CONNECTION:
        n = max(13, data_len - 8)
        part2 = p[pos:pos + n].rstrip(b"\0")
        pos += n
    plugin = b"mysql_native_password"
    if caps & CLIENT_PLUGIN_AUTH and pos < len(p):
        plugin = p[pos:].split(b"\0", 1)[0]
    return caps, part1 + part2, plugin


def handshake_response(user, password, db, scramble, plugin):
    caps = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH)
    if db:
        caps |= CLIENT_CONNECT_WITH_DB
    auth = native_password(password, scramble) if plugin == b"mysql_native_password" else b""
    out = struct.pack("<IIB23x", caps, 1 << 24, 45) + user.encode() + b"\0"
    out += bytes([len(auth)]) + auth
    if db:
        out += db.encode() + b"\0"
    out += b"mysql_native_password\0"
    return out


def err_text(p):
    code = struct.unpack_from("<H", p, 1)[0]
    msg = p[3:]
    if msg[:1] == b"#":
        msg = msg[6:]
    return "%d %s" % (code, msg.decode(errors="replace"))


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


# ---------------------------------------------------------------- asyncio connection
class Conn:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    @classmethod
    async def open(cls, host, port, user, password, db=""):
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), IO_TIMEOUT)
        c = cls(r, w)
        try:
            seq, p = await c.read()
            _, scramble, plugin = parse_handshake(p)
            seq += 1
            c.w.write(packet(seq, handshake_response(user, password, db, scramble, plugin)))
            while True:
                seq, p = await c.read()
                if p[0] == 0x00:
                    return c
                if p[0] == 0xFF:
                    raise MySQLError(err_text(p))
                if p[0] == 0xFE:  # AuthSwitchRequest
                    name, _, data = p[1:].partition(b"\0")
                    if name != b"mysql_native_password":
                        raise MySQLError("unsupported auth plugin " + name.decode())
                    seq += 1
                    c.w.write(packet(seq, native_password(password, data.rstrip(b"\0"))))
                    continue
                raise MySQLError("unexpected auth packet 0x%02x" % p[0])
        except BaseException:
            c.close()
            raise

    async def read(self):
        h = await asyncio.wait_for(self.r.readexactly(4), IO_TIMEOUT)
        n = h[0] | h[1] << 8 | h[2] << 16
        return h[3], await asyncio.wait_for(self.r.readexactly(n), IO_TIMEOUT)

    async def query(self, sql):
        """Runs one statement, discards its result; raises MySQLError on ERR."""
        self.w.write(packet(0, b"\x03" + sql.encode()))
        _, p = await self.read()
        if p[0] == 0xFF:
            raise MySQLError(err_text(p))
        if p[0] == 0x00:
            return []
        eofs, rows = 0, []
        while eofs < 2:  # column definitions, EOF, rows, EOF
            _, p = await self.read()
            if p[0] == 0xFF:
                raise MySQLError(err_text(p))
            if p[0] == 0xFE and len(p) < 9:
                eofs += 1
            elif eofs == 1:
                rows.append(p)
        return rows

    def close(self):
        try:
            self.w.close()
        except Exception:
            pass

    async def quit(self):
        try:
            self.w.write(packet(0, b"\x01"))
            await asyncio.wait_for(self.w.drain(), IO_TIMEOUT)
        finally:
            self.close()


def lenenc_str(p, pos):
    n = p[pos]
    pos += 1
    if n == 0xFC:
        n = struct.unpack_from("<H", p, pos)[0]
        pos += 2
    return p[pos:pos + n], pos + n


# ---------------------------------------------------------------- blocking connection (connect)
def recv_packet(s):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise MySQLError("connection closed")
            buf += chunk
        return buf
    h = exact(4)
    return h[3], exact(h[0] | h[1] << 8 | h[2] << 16)


def connect_once(host, port, user, password, query=True):
    """Connect, authenticate, SELECT 1 (unless query is false), COM_QUIT, close: blocking
    sockets, no event loop."""
    s = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seq, p = recv_packet(s)
        _, scramble, plugin = parse_handshake(p)
        s.sendall(packet(seq + 1, handshake_response(user, password, "", scramble, plugin)))
        while True:
            seq, p = recv_packet(s)
            if p[0] == 0x00:
                break
            if p[0] == 0xFE:
                _, _, data = p[1:].partition(b"\0")
                s.sendall(packet(seq + 1, native_password(password, data.rstrip(b"\0"))))
                continue
            raise MySQLError(err_text(p) if p[0] == 0xFF else "unexpected auth packet")
        if not query:
            s.sendall(packet(0, b"\x01"))
            return
        s.sendall(packet(0, b"\x03SELECT 1"))
        eofs = 0
        _, p = recv_packet(s)
        if p[0] == 0xFF:
            raise MySQLError(err_text(p))
        while eofs < 2:
            _, p = recv_packet(s)
            if p[0] == 0xFF:
                raise MySQLError(err_text(p))
            if p[0] == 0xFE and len(p) < 9:
                eofs += 1
        s.sendall(packet(0, b"\x01"))
    finally:
        s.close()


def cmd_connect(n, host, port, user, password, query="1"):
    ok = errors = 0
    total = 0.0
    last_err = ""
    for _ in range(int(n)):
        t0 = time.perf_counter()
        try:
            connect_once(host, int(port), user, password, query != "0")
        except (OSError, MySQLError) as e:
            errors += 1
            last_err = str(e)
            continue
        total += time.perf_counter() - t0
        ok += 1
    mean = total / ok * 1000 if ok else 0.0
    print("ok=%d errors=%d mean_ms=%.3f" % (ok, errors, mean))
    if last_err:
        print("last error: " + last_err, file=sys.stderr)


# ---------------------------------------------------------------- idle
async def cmd_idle(n, host, port, user, password, status_file, release_file, timeout_s):
    deadline = time.monotonic() + float(timeout_s)
    sem = asyncio.Semaphore(200)
    conns, errors = [], []

    async def one():
        async with sem:
            try:
                conns.append(await Conn.open(host, int(port), user, password))
            except (OSError, MySQLError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                errors.append(str(e) or type(e).__name__)

    await asyncio.gather(*(one() for _ in range(int(n))))
    with open(status_file, "w") as f:
        f.write("connected=%d errors=%d\n" % (len(conns), len(errors)))
    if errors:
        print("first error: " + errors[0], file=sys.stderr)
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for c in conns:
        c.close()
    await asyncio.sleep(0.5)
    with open(status_file, "a") as f:
        f.write("closed\n")


# ---------------------------------------------------------------- busy
async def cmd_busy(n, seconds, host, port, user, password, db, tables, table_size, login_db="1"):
    tables, table_size = int(tables), int(table_size)
    prefix = "" if login_db == "1" else db + "."
    login = db if login_db == "1" else ""
    sem = asyncio.Semaphore(200)
    counts = {"connected": 0, "connect_errors": 0, "queries": 0, "errors": 0}
    first_error = []
    start = asyncio.Event()
    stop_at = [0.0]

    async def worker():
        async with sem:
            try:
                c = await Conn.open(host, int(port), user, password, login)
            except (OSError, MySQLError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                counts["connect_errors"] += 1
                first_error.append("connect: %s" % (str(e) or type(e).__name__))
                return
        counts["connected"] += 1
        await start.wait()
        rnd = random.Random()
        try:
            while time.monotonic() < stop_at[0]:
                sql = "SELECT c FROM %ssbtest%d WHERE id=%d" % (
                    prefix, rnd.randint(1, tables), rnd.randint(1, table_size))
                try:
                    await c.query(sql)
                    counts["queries"] += 1
                except MySQLError as e:
                    counts["errors"] += 1
                    first_error.append(str(e))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            counts["errors"] += 1
            first_error.append("connection lost: %s" % (str(e) or type(e).__name__))
        finally:
            c.close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(int(n))]
    # All connect first (bounded), then all start together for SECONDS.
    while counts["connected"] + counts["connect_errors"] < int(n):
        await asyncio.sleep(0.05)
    stop_at[0] = time.monotonic() + float(seconds)
    t0 = time.monotonic()
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    print("connected=%d connect_errors=%d queries=%d errors=%d seconds=%.2f" % (
        counts["connected"], counts["connect_errors"], counts["queries"], counts["errors"],
        elapsed))
    if first_error:
        print("first error: " + first_error[0], file=sys.stderr)


# ---------------------------------------------------------------- sample
async def cmd_sample(interval_ms, stop_file, timeout_s, user, password, *ports):
    deadline = time.monotonic() + float(timeout_s)
    conns = {p: await Conn.open("127.0.0.1", int(p), user, password) for p in ports}
    seen = {p: [] for p in ports}
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        for p, c in conns.items():
            rows = await c.query("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            _, pos = lenenc_str(rows[0], 0)
            value, _ = lenenc_str(rows[0], pos)
            seen[p].append(int(value) - 1)  # not counting this sampler's own connection
        await asyncio.sleep(int(interval_ms) / 1000)
    for p, c in conns.items():
        await c.quit()
        v = seen[p] or [0]
        print("%s min=%d max=%d samples=%d" % (p, min(v), max(v), len(seen[p])))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "connect":
        cmd_connect(*args)
    elif cmd == "idle":
        asyncio.run(cmd_idle(*args))
    elif cmd == "busy":
        asyncio.run(cmd_busy(*args))
    elif cmd == "sample":
        asyncio.run(cmd_sample(*args))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
