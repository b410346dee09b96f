#!/usr/bin/env python3
"""Capture golden ZooKeeper wire frames from real traffic (Kazoo <-> ZooKeeper).

    python3 scripts/capture-golden.py

Starts a standalone ZooKeeper with scripts/zk (under target/zk/golden-capture),
puts a recording TCP proxy on loopback between Kazoo and the server, performs a
fixed scenario, splits each direction into frames (4-byte big-endian length
prefix) and writes the interesting frames, length prefix included, to
tests/fixtures/golden/<name>.bin. It then writes tests/fixtures/golden/README.md
describing the capture and decoding every file field by field.

Needs Debian's python3-kazoo (run under /usr/bin/python3; if the python3 on
PATH lacks kazoo this script re-executes itself with /usr/bin/python3).
"""

import os
import socket
import struct
import subprocess
import sys
import threading
import time

try:
    import kazoo  # noqa: F401
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("capture-golden: kazoo not found; apt-get install python3-kazoo")

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError, NodeExistsError  # noqa: E402
import kazoo.version  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZK = os.path.join(ROOT, "scripts", "zk")
OUT = os.path.join(ROOT, "tests", "fixtures", "golden")
ZKDIR = os.path.join(ROOT, "target", "zk", "golden-capture")

SESSION_TIMEOUT = 4.0  # seconds Kazoo asks for (server allows 1 s .. 10 s)

# --------------------------------------------------------------------- proxy


class Conn:
    """One proxied client connection: frames in each direction, in order."""

    def __init__(self, num):
        self.num = num
        self.c2s = []  # frames (with length prefix) client -> server
        self.s2c = []  # frames server -> client


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                conn = Conn(len(self.conns) + 1)
                self.conns.append(conn)
            for src, dst, frames in ((client, server, conn.c2s),
                                     (server, client, conn.s2c)):
                threading.Thread(target=self._pump, args=(src, dst, frames),
                                 daemon=True).start()

    def _pump(self, src, dst, frames):
        buf = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if buf:
                    frames.append(("partial", buf))
                return
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">i", buf[:4])
                if len(buf) < 4 + n:
                    break
                with self.lock:
                    frames.append(buf[:4 + n])
                buf = buf[4 + n:]
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.lsock.close()


# --------------------------------------------------------------------- jute decoding


class Reader:
    def __init__(self, frame):
        (self.length,) = struct.unpack(">i", frame[:4])
        self.b = frame
        self.off = 0
        self.fields = []  # (offset, size, name, type, value)
        self.add("length prefix", "int", 4, self.length)

    def add(self, name, typ, size, value):
        self.fields.append((self.off, size, name, typ, value))
        self.off += size
        return value

    def int(self, name):
        (v,) = struct.unpack(">i", self.b[self.off:self.off + 4])
        return self.add(name, "int", 4, v)

    def long(self, name):
        (v,) = struct.unpack(">q", self.b[self.off:self.off + 8])
        return self.add(name, "long", 8, v)

    def bool(self, name):
        v = self.b[self.off]
        return self.add(name, "bool", 1, bool(v))

    def buffer(self, name, typ="buffer"):
        (n,) = struct.unpack(">i", self.b[self.off:self.off + 4])
        self.add(name + ".len", "int", 4, n)
        if n < 0:
            return None
        v = bytes(self.b[self.off:self.off + n])
        self.add(name, typ, n, v)
        return v

    def string(self, name):
        v = self.buffer(name, "ustring")
        return None if v is None else v.decode()

    def done(self):
        return self.off >= len(self.b)

    def stat(self, p):
        for n in ("czxid", "mzxid", "ctime", "mtime"):
            self.long(p + n)
        for n in ("version", "cversion", "aversion"):
            self.int(p + n)
        self.long(p + "ephemeralOwner")
        self.int(p + "dataLength")
        self.int(p + "numChildren")
        self.long(p + "pzxid")

    def acls(self, p):
        n = self.int(p + "acl.count")
        for i in range(n):
            self.int("%sacl[%d].perms" % (p, i))
            self.string("%sacl[%d].id.scheme" % (p, i))
            self.string("%sacl[%d].id.id" % (p, i))


OPNAMES = {0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
           5: "setData", 11: "ping", 14: "multi", 15: "create2", -11: "closeSession",
           -1: "error"}
ERRNAMES = {0: "ZOK", -101: "ZNONODE", -110: "ZNODEEXISTS", -2: "ZRUNTIMEINCONSISTENCY"}


def decode_op_body(r, op, p):
    if op in (1, 15):
        r.string(p + "path")
        r.buffer(p + "data")
        r.acls(p)
        r.int(p + "flags")
    elif op == 4:
        r.string(p + "path")
        r.bool(p + "watch")
    elif op == 5:
        r.string(p + "path")
        r.buffer(p + "data")
        r.int(p + "version")


def decode_request(frame, first):
    r = Reader(frame)
    if first:
        r.int("protocolVersion")
        r.long("lastZxidSeen")
        r.int("timeOut")
        r.long("sessionId")
        r.buffer("passwd")
        if not r.done():
            r.bool("readOnly")
        return r, None
    r.int("xid")
    op = r.int("type")
    if op == 14:
        i = 0
        while True:
            t = r.int("op[%d].header.type" % i)
            done = r.bool("op[%d].header.done" % i)
            r.int("op[%d].header.err" % i)
            if done:
                break
            decode_op_body(r, t, "op[%d]." % i)
            i += 1
    else:
        decode_op_body(r, op, "")
    return r, op


def decode_reply(frame, first, op):
    r = Reader(frame)
    if first:
        r.int("protocolVersion")
        r.int("timeOut")
        r.long("sessionId")
        r.buffer("passwd")
        if not r.done():
            r.bool("readOnly")
        return r
    xid = r.int("xid")
    r.long("zxid")
    err = r.int("err")
    if xid == -1:
        r.int("event.type")
        r.int("event.state")
        r.string("event.path")
        return r
    if err != 0 and op != 14:
        return r
    if op == 1:
        r.string("path")
    elif op == 15:
        r.string("path")
        r.stat("stat.")
    elif op == 4:
        r.buffer("data")
        r.stat("stat.")
    elif op == 5:
        r.stat("stat.")
    elif op == 14:
        i = 0
        while True:
            t = r.int("result[%d].header.type" % i)
            done = r.bool("result[%d].header.done" % i)
            r.int("result[%d].header.err" % i)
            if done:
                break
            p = "result[%d]." % i
            if t == -1:
                r.int(p + "err")
            elif t == 1:
                r.string(p + "path")
            elif t in (5, 15):
                r.stat(p + "stat.")
            i += 1
    return r


# --------------------------------------------------------------------- scenario


def zk(*args):
    return subprocess.run([ZK, *args], check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def run_scenario(proxy):
    hosts = "127.0.0.1:%d" % proxy.port
    a = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    a.start()
    assert a.create("/golden", b"hello") == "/golden"
    data, _ = a.get("/golden")
    assert data == b"hello"
    fired = threading.Event()
    events = []

    def watcher(ev):
        events.append(ev)
        fired.set()

    a.get("/golden", watch=watcher)

    b = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    b.start()
    b.set("/golden", b"world")
    b.stop()
    b.close()
    if not fired.wait(10):
        raise SystemExit("capture-golden: no watch notification arrived")

    path, _ = a.create("/golden-c2", b"c2", include_data=True)
    assert path == "/golden-c2"
    try:
        a.get("/golden-missing")
        raise SystemExit("capture-golden: /golden-missing exists?")
    except NoNodeError:
        pass

    t = a.transaction()
    t.create("/golden/a")
    t.create("/golden")
    results = t.commit()
    assert isinstance(results[1], NodeExistsError), results

    # Idle long enough for Kazoo to ping (every ~read_timeout/2 = timeout/3).
    time.sleep(SESSION_TIMEOUT * 0.75)
    a.stop()
    a.close()
    return events


# --------------------------------------------------------------------- selection


def pick(conn):
    """Name the interesting frames of one connection: {name: (frame, reader)}."""
    out = {}
    reqs = {}  # xid -> op
    for i, f in enumerate(conn.c2s):
        r, op = decode_request(f, i == 0)
        if i == 0:
            out["connect_request"] = (f, r)
            continue
        xid = r.fields[1][4]
        reqs[xid] = op
        if op == 4:
            path = [v for (_, _, n, _, v) in r.fields if n == "path"][0].decode()
            watch = [v for (_, _, n, _, v) in r.fields if n == "watch"][0]
            name = ("get_data_nonode" if path == "/golden-missing"
                    else "get_data_watch" if watch else "get_data")
        else:
            name = {1: "create", 5: "set_data", 11: "ping", 14: "multi",
                    15: "create2", -11: "close"}.get(op)
        if name and name + "_request" not in out:
            out[name + "_request"] = (f, r, xid)
    for i, f in enumerate(conn.s2c):
        if i == 0:
            out["connect_response"] = (f, decode_reply(f, True, None))
            continue
        (xid,) = struct.unpack(">i", f[4:8])
        if xid == -1:
            if "watch_notification" not in out:
                out["watch_notification"] = (f, decode_reply(f, False, None))
            continue
        for key, val in list(out.items()):
            if key.endswith("_request") and len(val) == 3 and val[2] == xid:
                name = key[:-len("_request")] + "_response"
                if name not in out:
                    out[name] = (f, decode_reply(f, False, reqs[xid]))
    return {k: v[:2] for k, v in out.items()}


WANTED_A = ["connect_request", "connect_response", "create_request", "create_response",
            "get_data_request", "get_data_response", "get_data_watch_request",
            "get_data_watch_response", "watch_notification", "create2_request",
            "create2_response", "get_data_nonode_request", "get_data_nonode_response",
            "multi_request", "multi_response", "ping_request", "ping_response",
            "close_request", "close_response"]
WANTED_B = ["set_data_request", "set_data_response"]

DESCRIPTIONS = {
    "connect_request": "ConnectRequest from client A (Kazoo), no request header.",
    "connect_response": "ConnectResponse (session established), no reply header.",
    "create_request": "Kazoo's plain `create('/golden', b'hello')`: opcode 1 (create), "
                      "OPEN_ACL_UNSAFE (perms 31 = ALL, world:anyone), flags 0 (persistent).",
    "create_response": "CreateResponse: the created path.",
    "get_data_request": "`get('/golden')`: getData (4), watch=false.",
    "get_data_response": "GetDataResponse: data + Stat.",
    "get_data_watch_request": "`get('/golden', watch=fn)`: getData (4), watch=true.",
    "get_data_watch_response": "GetDataResponse for the watching get.",
    "watch_notification": "WatcherEvent pushed to client A after client B's setData: "
                          "xid -1, event type 3 = NodeDataChanged, state 3 = SyncConnected.",
    "create2_request": "`create('/golden-c2', b'c2', include_data=True)`: opcode 15 (create2).",
    "create2_response": "Create2Response: path + Stat.",
    "get_data_nonode_request": "`get('/golden-missing')`: getData (4) of a missing node.",
    "get_data_nonode_response": "Error reply: header only, err -101 (ZNONODE), no body.",
    "multi_request": "Transaction: create('/golden/a') then create('/golden') (exists). "
                     "Each op is MultiHeader{type, done=false, err=-1} + body; "
                     "terminated by MultiHeader{-1, true, -1}.",
    "multi_response": "Failed multi: reply header err 0 (ZOK -- errors are per op); one "
                      "ErrorResult per op: op 0 rolled back (err 0), op 1 -110 ZNODEEXISTS; "
                      "terminator MultiHeader{-1, true, -1}. Header zxid is the server's "
                      "current zxid (a failed multi still consumes a zxid, as an error txn).",
    "ping_request": "Ping: xid -2, opcode 11, no body.",
    "ping_response": "Ping reply: xid -2, zxid = last processed zxid, err 0.",
    "close_request": "closeSession: opcode -11, no body (Kazoo `stop()`).",
    "close_response": "closeSession reply: header only.",
    "set_data_request": "Client B (second connection): `set('/golden', b'world')`: "
                        "setData (5), version -1 (any).",
    "set_data_response": "SetDataResponse: Stat after the change (version 1).",
}


def fmt_value(typ, v):
    if isinstance(v, bytes):
        if typ == "ustring":
            return '"%s"' % v.decode()
        try:
            txt = v.decode("ascii")
            if txt.isprintable():
                return 'b"%s" (hex %s)' % (txt, v.hex() or "empty")
        except UnicodeDecodeError:
            pass
        return "hex " + v.hex()
    if isinstance(v, bool):
        return "true" if v else "false"
    if typ == "long" and v not in (0, -1) and abs(v) > 0xFFFF:
        return "%d (0x%x)" % (v, v & 0xFFFFFFFFFFFFFFFF)
    return str(v)


def annotate(name, r):
    notes = []
    for (_, _, n, _, v) in r.fields:
        if n == "type" and v in OPNAMES:
            notes.append("type %d = %s" % (v, OPNAMES[v]))
        if n.endswith("err") and v in ERRNAMES and v != 0:
            note = "err %d = %s" % (v, ERRNAMES[v])
            if note not in notes:
                notes.append(note)
    return notes


def main():
    subprocess.run([ZK, "check"], check=True)
    connect = zk("start-standalone", ZKDIR)
    try:
        host, port = connect.split(":")
        srvr = zk("four-letter", ZKDIR, "1", "srvr")
        zk_version = [l for l in srvr.splitlines() if l.startswith("Zookeeper version")][0]
        proxy = Proxy((host, int(port)))
        run_scenario(proxy)
        time.sleep(0.5)
        proxy.close()
    finally:
        zk("stop", ZKDIR)

    if len(proxy.conns) < 2:
        raise SystemExit("capture-golden: expected 2 connections, got %d" % len(proxy.conns))
    for c in proxy.conns:
        for f in c.c2s + c.s2c:
            if isinstance(f, tuple):
                raise SystemExit("capture-golden: partial frame on connection %d" % c.num)
    a = pick(proxy.conns[0])
    b = pick(proxy.conns[1])
    frames = {}
    for names, got in ((WANTED_A, a), (WANTED_B, b)):
        for n in names:
            if n not in got:
                raise SystemExit("capture-golden: frame %s not captured" % n)
            frames[n] = got[n]

    os.makedirs(OUT, exist_ok=True)
    for n, (f, _) in frames.items():
        with open(os.path.join(OUT, n + ".bin"), "wb") as fh:
            fh.write(f)

    def pkg(name):
        try:
            return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip() or "?"
        except OSError:
            return "?"

    java = subprocess.run(["java", "-version"], stderr=subprocess.PIPE,
                          text=True).stderr.splitlines()[0]
    lines = []
    w = lines.append
    w("# Golden ZooKeeper wire frames (real traffic)")
    w("")
    w("Generated by `python3 scripts/capture-golden.py` -- do not edit by hand; rerun the")
    w("script instead (file names are stable, values such as session ids, passwords,")
    w("zxids and times change on every capture).")
    w("")
    w("## How they were captured")
    w("")
    w("- Server: Apache ZooKeeper from Debian package `zookeeper` %s (%s), standalone,"
      % (pkg("zookeeper"), zk_version.split(":", 1)[1].strip()))
    w("  started by `scripts/zk start-standalone target/zk/golden-capture` (tickTime=500,")
    w("  so sessions are clamped to 1000..10000 ms), on %s." % java)
    w("- Client: Kazoo %s (Debian `python3-kazoo` %s) on Python %s, session timeout %d ms."
      % (kazoo.version.__version__, pkg("python3-kazoo"), sys.version.split()[0],
         int(SESSION_TIMEOUT * 1000)))
    w("- A recording TCP proxy on 127.0.0.1 sat between Kazoo and the server and split")
    w("  each direction into frames on the 4-byte big-endian length prefix.")
    w("- Every `.bin` file is exactly one frame, **including** its 4-byte length prefix.")
    w("- Scenario, client A (connection 1): connect; `create('/golden', b'hello')`;")
    w("  `get('/golden')`; `get('/golden', watch=fn)`; client B (connection 2) connects,")
    w("  `set('/golden', b'world')`, closes; A receives the watch notification;")
    w("  `create('/golden-c2', b'c2', include_data=True)`; `get('/golden-missing')`;")
    w("  transaction `create('/golden/a')` + `create('/golden')` (fails on op 2);")
    w("  idle until Kazoo pings; `stop()` (closeSession).")
    w("- Kazoo's plain `create` uses opcode **1** (create, reply = path only); only")
    w("  `include_data=True` uses opcode 15 (create2, reply = path + Stat).")
    w("")
    w("Encoding reminders (jute): int = 4 bytes BE, long = 8 bytes BE, bool = 1 byte,")
    w("buffer/ustring = int length (-1 = null) + bytes, vector = int count + items.")
    w("Requests after the handshake start with RequestHeader{xid:int, type:int};")
    w("replies with ReplyHeader{xid:int, zxid:long, err:int}. Offsets below count from")
    w("the first byte of the file (the length prefix is at offset 0).")
    w("")
    w("## Files")
    order = ["connect_request", "connect_response", "create_request", "create_response",
             "get_data_request", "get_data_response", "get_data_watch_request",
             "get_data_watch_response", "set_data_request", "set_data_response",
             "watch_notification", "create2_request", "create2_response",
             "get_data_nonode_request", "get_data_nonode_response", "multi_request",
             "multi_response", "ping_request", "ping_response", "close_request",
             "close_response"]
    for n in order:
        f, r = frames[n]
        w("")
        w("### `%s.bin` (%d bytes)" % (n, len(f)))
        w("")
        w(DESCRIPTIONS[n])
        notes = annotate(n, r)
        if notes:
            w("(" + "; ".join(notes) + ")")
        w("")
        w("```")
        hx = f.hex()
        for i in range(0, len(hx), 64):
            w(hx[i:i + 64])
        w("```")
        w("")
        w("| offset | size | field | type | value |")
        w("|---:|---:|---|---|---|")
        for (off, size, name, typ, v) in r.fields:
            w("| %d | %d | %s | %s | %s |" % (off, size, name, typ, fmt_value(typ, v)))
        if r.off != len(f):
            raise SystemExit("capture-golden: %s: decoded %d of %d bytes" % (n, r.off, len(f)))
    with open(os.path.join(OUT, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("wrote %d frames and README.md to %s" % (len(frames), os.path.relpath(OUT, ROOT)))


if __name__ == "__main__":
    main()
