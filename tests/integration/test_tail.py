"""Live tail (/loki/api/v1/tail over WebSocket) against the real aggregator,
with a real WebSocket client (python3-websocket), and the `sluice tail` CLI.

What a user checks: pushed lines come through once each and in order, the
initial batch honours limit, delay_for holds lines back, bad queries get a
400 before any upgrade, a client that vanishes or reads too slowly does not
hurt the server (drops are reported and counted), SIGTERM does not hang on an
open tail, and the CLI prints what is pushed and exits 0 on Ctrl-C."""
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests
import websocket

from conftest import BIN, Aggregator, metric_value, urlq, wait_for

SEL = '{app="tail"}'


def push(agg, lines, labels=None, base_ns=None, tenant=None):
    """Pushes lines (one ns apart from base_ns, default now); returns their
    (ts, line) pairs."""
    base = time.time_ns() if base_ns is None else base_ns
    values = [[str(base + i), line] for i, line in enumerate(lines)]
    stream = {"app": "tail", **(labels or {})}
    r = agg.push_json([{"stream": stream, "values": values}], tenant=tenant)
    assert r.status_code == 204, r.text
    return [(int(ts), line) for ts, line in values]


def tail_url(agg, query=SEL, **params):
    q = "&".join(f"{k}={urlq(str(v))}" for k, v in {"query": query, **params}.items())
    return agg.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + q


def open_tail(agg, query=SEL, tenant=None, sockopt=(), **params):
    headers = [f"X-Scope-OrgID: {tenant}"] if tenant else []
    return websocket.create_connection(tail_url(agg, query, **params), timeout=30,
                                       header=headers, sockopt=list(sockopt))


class Reader:
    """Collects (ts, labels, line) and dropped entries from a tail."""

    def __init__(self, ws):
        self.ws = ws
        self.entries = []
        self.dropped = []
        self.messages = 0
        self.closed = None

    def read_once(self, timeout):
        self.ws.settimeout(timeout)
        try:
            op, data = self.ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return False
        if op == websocket.ABNF.OPCODE_CLOSE:
            self.closed = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            return True
        if op != websocket.ABNF.OPCODE_TEXT:
            return True
        msg = json.loads(data)
        self.messages += 1
        assert set(msg) <= {"streams", "dropped_entries"}, msg
        for s in msg.get("streams") or []:
            for ts, line in s["values"]:
                self.entries.append((int(ts), s["stream"], line))
        for d in msg.get("dropped_entries") or []:
            assert set(d) == {"labels", "timestamp"}, d
            self.dropped.append((int(d["timestamp"]), d["labels"]))
        return True

    def until(self, pred, timeout=30, what="entries"):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}: got {len(self.entries)} entries"
            self.read_once(min(left, 1.0))
            assert self.closed is None, f"tail closed ({self.closed}) while waiting for {what}"

    def quiet_for(self, seconds):
        """Reads for `seconds`; returns what arrived meanwhile."""
        n = len(self.entries)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read_once(max(0.05, deadline - time.monotonic()))
        return self.entries[n:]


def lines_of(entries):
    return [e[2] for e in entries]


def test_tail_sends_each_line_once_in_order(aggregator):
    old = push(aggregator, [f"old {i}" for i in range(5)], base_ns=time.time_ns() - 10**9)
    ws = open_tail(aggregator, limit=100)
    r = Reader(ws)
    r.until(lambda: len(r.entries) >= 5, what="initial batch")
    assert lines_of(r.entries) == [line for _, line in old]
    assert metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 1

    expected = list(old)
    # batches while the tail runs, another tenant's lines that must not show,
    # and lines sharing a timestamp with one already sent, in another stream
    for b in range(4):
        expected += push(aggregator, [f"live {b}.{i}" for i in range(20)])
        push(aggregator, ["other tenant"], tenant="someone-else")
        time.sleep(0.3)
    r.until(lambda: len(r.entries) >= len(expected), what="live lines")
    last_ts = r.entries[-1][0]
    twin = push(aggregator, ["same ts, other stream"], labels={"pod": "b"}, base_ns=last_ts)
    expected += twin
    r.until(lambda: len(r.entries) >= len(expected), what="line at the same timestamp")
    extra = r.quiet_for(2.5)
    assert extra == [], f"sent again: {extra}"
    got = [(ts, line) for ts, _, line in r.entries]
    assert got == sorted(expected), "entries out of order, missing or duplicated"
    assert [e[1] for e in r.entries if e[2] == "same ts, other stream"] == [
        {"app": "tail", "pod": "b"}]
    ws.close()
    wait_for(lambda: metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 0,
             20, what="tail_active back to 0")
    sent = metric_value(aggregator.metrics(), "sluice_aggregator_tail_entries_sent_total")
    assert sent == len(expected)
    assert metric_value(aggregator.metrics(), "sluice_aggregator_tail_ended_total",
                        {"reason": "client_close"}) == 1


def test_tail_reads_a_burst_larger_than_a_poll_in_batches(aggregator):
    r = Reader(open_tail(aggregator, limit=10))
    r.quiet_for(1.2)
    base = time.time_ns()
    # 2 x 3000 entries in one push, the two streams sharing every timestamp:
    # several polls' worth, cut inside runs of equal timestamps
    values = [[str(base + i // 2), f"burst {i:05d}"] for i in range(6000)]
    body = [{"stream": {"app": "tail", "half": str(h)}, "values": values[h::2]} for h in (0, 1)]
    resp = aggregator.push_json(body)
    assert resp.status_code == 204, resp.text
    r.until(lambda: len(r.entries) >= 6000, 60, what="the burst")
    assert r.quiet_for(1.5) == []
    got = [(ts, line) for ts, _, line in r.entries]
    assert len(set(got)) == 6000
    assert got == sorted((int(ts), line) for ts, line in values)


def test_tail_limit_bounds_the_initial_batch(aggregator):
    base = time.time_ns() - 60 * 10**9
    pushed = push(aggregator, [f"line {i:03d}" for i in range(50)], base_ns=base)
    r = Reader(open_tail(aggregator, limit=10, start=str(base - 10**9)))
    r.until(lambda: len(r.entries) >= 10, what="initial batch")
    # the newest 10, oldest first; the 40 older ones never come
    assert lines_of(r.entries) == [line for _, line in pushed[-10:]]
    assert r.quiet_for(2.0) == []
    # start excludes older lines: nothing before start is sent
    r2 = Reader(open_tail(aggregator, limit=100, start=str(pushed[45][0])))
    r2.until(lambda: len(r2.entries) >= 5, what="lines after start")
    assert lines_of(r2.entries) == [line for _, line in pushed[45:]]
    assert r2.quiet_for(1.5) == []


def test_tail_delay_for_holds_lines_back_and_orders_late_ones(aggregator):
    r = Reader(open_tail(aggregator, delay_for=3, limit=10))
    r.quiet_for(0.5)
    t0 = time.monotonic()
    now = time.time_ns()
    first = push(aggregator, ["on time"], base_ns=now)
    # arrives after "on time" but is older: within delay_for, so it comes first
    late = push(aggregator, ["late by a second"], base_ns=now - 10**9)
    r.until(lambda: len(r.entries) >= 2, what="delayed lines")
    waited = time.monotonic() - t0
    assert lines_of(r.entries) == ["late by a second", "on time"]
    assert [e[0] for e in r.entries] == [late[0][0], first[0][0]]
    # "on time" may leave only once it is delay_for old
    assert waited >= 2.0, f"sent after {waited:.2f}s despite delay_for=3"


def test_tail_late_entries_within_grace_still_come(aggregator):
    r = Reader(open_tail(aggregator, limit=10))
    a = push(aggregator, ["A"])
    r.until(lambda: len(r.entries) >= 1, what="A")
    # another agent's entry, older than A but arriving after it was sent: past
    # delay_for (0), within the grace period, still sent
    b = push(aggregator, ["B, late"], labels={"pod": "other"}, base_ns=a[0][0] - 10**6)
    r.until(lambda: len(r.entries) >= 2, what="the late entry")
    assert [(e[0], e[2]) for e in r.entries] == a + b
    late = metric_value(aggregator.metrics(), "sluice_aggregator_tail_late_entries_total")
    assert late == 1
    # a minute late is beyond the 2 s grace: not sent (see docs/query.md)
    push(aggregator, ["C, a minute late"], base_ns=a[0][0] - 60 * 10**9)
    assert r.quiet_for(2.5) == []


def test_tail_refuses_bad_requests_before_upgrading(aggregator):
    def refused(query=SEL, **params):
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            open_tail(aggregator, query, **params)
        # the same handshake by hand, to read the reason in the body
        hs = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        r = requests.get(aggregator.url + "/loki/api/v1/tail", headers=hs,
                         params={"query": query, **params}, timeout=10)
        assert e.value.status_code == r.status_code
        return r.status_code, r.text

    code, body = refused('sum(count_over_time({app="tail"}[1m]))')
    assert code == 400 and "only log selector is supported" in body
    code, body = refused('{app="tail"')
    assert code == 400 and "parse error" in body
    code, body = refused(delay_for=6)
    assert code == 400 and "delay_for can't be greater than 5" in body
    code, body = refused(limit=0)
    assert code == 400 and "limit" in body
    code, body = refused(limit=2000000)
    assert code == 400 and "max entries limit" in body
    code, body = refused(start="yesterday")
    assert code == 400 and "start" in body
    # a plain GET, not a WebSocket handshake
    plain = requests.get(aggregator.url + "/loki/api/v1/tail", params={"query": SEL}, timeout=10)
    assert plain.status_code == 400 and "websocket" in plain.text
    assert metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 0


def test_tail_limits_concurrent_tails_per_tenant(aggregator):
    tails = [open_tail(aggregator, tenant="busy") for _ in range(10)]
    wait_for(lambda: metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 10,
             20, what="10 tails open")
    hs = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "X-Scope-OrgID": "busy"}
    r = requests.get(aggregator.url + "/loki/api/v1/tail", params={"query": SEL}, headers=hs,
                     timeout=10)
    assert r.status_code == 400 and "max concurrent tail requests limit exceeded" in r.text
    # other tenants are not affected
    other = open_tail(aggregator, tenant="calm")
    other.close()
    tails.pop().close()
    wait_for(lambda: metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 9,
             20, what="one tail closed")
    tails.append(open_tail(aggregator, tenant="busy"))
    for t in tails:
        t.close()


def test_tail_limits_are_configurable(workdir, procs):
    """limits.max_concurrent_tail_requests=1: the second tail of a tenant gets
    Loki's error; querier.tail_max_duration=2s: a tail is closed normally
    after that long."""
    agg = Aggregator(workdir, extra=["--set", "limits.max_concurrent_tail_requests=1",
                                     "--set", "querier.tail_max_duration=2s",
                                     "--set", "querier.tail_max_queued_bytes=1MiB"])
    procs.append(agg)
    agg.start()
    cfg = requests.get(agg.url + "/config", timeout=10).text
    assert "max_concurrent_tail_requests: 1" in cfg and "tail_max_duration: 2s" in cfg, cfg
    first = open_tail(agg, tenant="one")
    t0 = time.monotonic()
    hs = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "X-Scope-OrgID": "one"}
    r = requests.get(agg.url + "/loki/api/v1/tail", params={"query": SEL}, headers=hs,
                     timeout=10)
    assert r.status_code == 400, r.text
    assert "max concurrent tail requests limit exceeded, count > limit (2 > 1)" in r.text
    other = open_tail(agg, tenant="two")  # per tenant
    other.close()
    rd = Reader(first)
    deadline = time.monotonic() + 30
    while rd.closed is None and time.monotonic() < deadline:
        rd.read_once(1.0)
    assert rd.closed == 1000, rd.closed
    assert 1.5 <= time.monotonic() - t0 < 30
    wait_for(lambda: metric_value(agg.metrics(), "sluice_aggregator_tail_ended_total",
                                  {"reason": "max_duration"}) == 1, 20, what="max_duration end")
    first.close()
    again = open_tail(agg, tenant="one")  # the slot is free again
    again.close()


def test_tail_answers_pings_and_closes_on_bad_frames(aggregator):
    ws = open_tail(aggregator)
    ws.ping(b"are you there")
    ws.settimeout(10)
    op, data = ws.recv_data(control_frame=True)
    while op == websocket.ABNF.OPCODE_TEXT:  # the initial batch, if any
        op, data = ws.recv_data(control_frame=True)
    assert op == websocket.ABNF.OPCODE_PONG and data == b"are you there"
    # an unmasked client frame is a protocol error: close 1002, then the end
    ws.sock.sendall(b"\x81\x02hi")
    op, data = ws.recv_data(control_frame=True)
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1002
    assert b"not masked" in data
    ws.sock.settimeout(10)
    try:
        assert ws.sock.recv(100) == b""  # the server closed the connection
    except ConnectionResetError:
        pass  # also closed, if the client's bytes crossed the close
    wait_for(lambda: metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 0,
             20, what="the tail ended")
    assert metric_value(aggregator.metrics(), "sluice_aggregator_tail_ended_total",
                        {"reason": "protocol_error"}) == 1
    assert requests.get(aggregator.url + "/ready", timeout=10).status_code == 200


def test_slow_and_vanishing_clients_do_not_hurt_the_server(workdir, procs):
    agg = Aggregator(workdir, extra=["--set", "limits.ingestion_rate_mb=1000",
                                     "--set", "limits.ingestion_burst_size_mb=1000"])
    procs.append(agg)
    agg.start()
    # a client that does not read, with a small receive buffer
    slow_ws = open_tail(agg, limit=1, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)])
    # a client that hangs up abruptly while lines flow
    gone_ws = open_tail(agg, limit=1)
    stop = threading.Event()
    pushed = []
    # enough to overflow the kernel's send buffer and the server's 4 MiB bound
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except OSError:
        wmem = 4 << 20
    nlines = max(160, (wmem + (8 << 20)) // 100_000)

    def pusher():
        i = 0
        while not stop.is_set() and i < nlines:
            pushed.extend(push(agg, [f"{i:04d} " + "x" * 100_000]))
            i += 1
    t = threading.Thread(target=pusher)
    t.start()
    time.sleep(0.5)
    gone_ws.sock.shutdown(socket.SHUT_RDWR)
    gone_ws.sock.close()
    t.join(120)
    stop.set()
    assert agg.alive()

    def dropped():
        return metric_value(agg.metrics(), "sluice_aggregator_tail_dropped_entries_total") or 0
    wait_for(lambda: dropped() > 0, 30, what="drops counted for the slow client")
    wait_for(lambda: metric_value(agg.metrics(), "sluice_aggregator_tail_ended_total",
                                  {"reason": "client_gone"}) == 1, 30,
             what="the vanished client's tail ended")
    # now read everything: each pushed entry was either sent or reported dropped
    r = Reader(slow_ws)
    r.until(lambda: len(r.entries) + len(r.dropped) >= len(pushed), 60,
            what="sent + dropped covering every pushed line")
    assert len(r.dropped) > 0 and r.dropped[0][1] == {"app": "tail"}
    sent_ts = [e[0] for e in r.entries]
    assert sent_ts == sorted(sent_ts) and len(set(sent_ts)) == len(sent_ts)
    assert sorted(sent_ts + [d[0] for d in r.dropped]) == [ts for ts, _ in pushed]
    assert dropped() == len(r.dropped)
    assert "entries dropped" in agg.logs()
    slow_ws.close()
    # the server still serves tails and queries
    fresh = Reader(open_tail(agg, query=f'{{app="tail"}} |= "{nlines - 1:04d} "', limit=5))
    fresh.until(lambda: len(fresh.entries) >= 1, what="a new tail after the chaos")
    assert requests.get(agg.url + "/ready", timeout=10).status_code == 200
    fresh.ws.close()
    wait_for(lambda: metric_value(agg.metrics(), "sluice_aggregator_tail_active") == 0, 20,
             what="every tail closed")


def test_sigterm_with_an_open_tail_exits_promptly(aggregator):
    push(aggregator, ["before shutdown"])
    r = Reader(open_tail(aggregator))
    r.until(lambda: len(r.entries) >= 1, what="initial line")
    t0 = time.monotonic()
    rc = aggregator.stop(signal.SIGTERM, timeout=15)
    assert rc == 0
    assert time.monotonic() - t0 < 15
    # the client was told: close frame 1001 (going away)
    deadline = time.monotonic() + 5
    while r.closed is None and time.monotonic() < deadline:
        try:
            r.read_once(1.0)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            break
    assert r.closed == 1001


class LineReader:
    """Lines of a child's stdout, read from the pipe without Python's
    buffering (so select() tells the truth)."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""

    def read(self, n, timeout=30):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            if b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(line.decode())
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"timed out: got {out}"
            fd = self.proc.stdout.fileno()
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                assert chunk, f"sluice exited: {self.proc.wait()} {self.proc.stderr.read()}"
                self.buf += chunk
        return out


@pytest.mark.parametrize("cmd", [["tail"], ["query", "--tail"]])
def test_cli_tail_prints_pushed_lines(aggregator, cmd):
    push(aggregator, ["first", "second"], base_ns=time.time_ns() - 10**9)
    p = subprocess.Popen([os.path.join(BIN, "sluice"), "--addr", aggregator.url, *cmd,
                          "--output", "raw", "--limit", "10", SEL],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = LineReader(p)
    try:
        assert out.read(2) == ["first", "second"]
        push(aggregator, ["third", "fourth"])
        assert out.read(2) == ["third", "fourth"]
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    wait_for(lambda: metric_value(aggregator.metrics(), "sluice_aggregator_tail_active") == 0,
             20, what="the CLI's tail closed")


def test_cli_tail_default_output_and_errors(aggregator):
    push(aggregator, ["hello"], labels={"pod": "p1"})
    sluice = os.path.join(BIN, "sluice")
    p = subprocess.Popen([sluice, "--addr", aggregator.url, "tail", SEL],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = LineReader(p).read(1)[0]
        # piped: no colours
        assert "\x1b[" not in line
        ts, _, rest = line.partition(" ")
        assert ts.endswith("Z") and rest == '{app="tail", pod="p1"} hello', line
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    bad = subprocess.run([sluice, "--addr", aggregator.url, "tail", "rate(" + SEL + "[1m])"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "only log selector is supported" in bad.stderr


class TlsProxy:
    """TLS in front of the aggregator (a self-signed certificate for
    127.0.0.1), so the CLI's https:// tail can be checked."""

    def __init__(self, workdir, target_port):
        import ssl
        self.cert = os.path.join(workdir, "proxy.pem")
        key = os.path.join(workdir, "proxy.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=sluice-test", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            tc = self.ctx.wrap_socket(c, server_side=True)
        except OSError:
            c.close()
            return
        up = socket.create_connection(("127.0.0.1", self.target))

        def pump(src, dst):
            try:
                while True:
                    b = src.recv(65536)
                    if not b:
                        break
                    dst.sendall(b)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
        threading.Thread(target=pump, args=(up, tc), daemon=True).start()
        pump(tc, up)

    def close(self):
        self.lsock.close()


def test_cli_tail_over_https(aggregator, workdir):
    proxy = TlsProxy(workdir, aggregator.port)
    try:
        push(aggregator, ["over tls"], base_ns=time.time_ns() - 10**9)
        args = [os.path.join(BIN, "sluice"), "--addr", f"https://127.0.0.1:{proxy.port}", "tail",
                "--output", "raw", SEL]
        # the certificate is not trusted: refused, exit 1
        bad = subprocess.run(args, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "SSL_CERT_FILE": "/nonexistent"})
        assert bad.returncode == 1 and "TLS handshake failed" in bad.stderr, bad.stderr
        # trusted through SSL_CERT_FILE: lines come, Ctrl-C exits 0
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "SSL_CERT_FILE": proxy.cert})
        out = LineReader(p)
        try:
            assert out.read(1) == ["over tls"]
            push(aggregator, ["still over tls"])
            assert out.read(1) == ["still over tls"]
            p.send_signal(signal.SIGINT)
            assert p.wait(15) == 0, p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        proxy.close()
