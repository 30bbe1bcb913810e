#!/usr/bin/python3
"""Benchmark: live tail (/loki/api/v1/tail) latency and throughput (asserts nothing).

Starts a fresh sluice-aggregator (WAL off, limits lifted) and measures:

1. latency: BENCH_TAIL_PINGS single lines (default 20) pushed 0.3 s apart while one
   tail is open; the time from the push's answer to the line's arrival on the
   WebSocket (p50, p95, max). The tail polls once a second, so about 0.5 s is
   expected on average.
2. throughput: BENCH_TAIL_LINES lines (default 200,000, ~100 bytes, 8 streams)
   pushed as JSON in batches of 2,000 as fast as one client can, once with no tail
   (baseline) and once with a tail reading them all: lines/s through the tail, and
   the aggregator's CPU seconds (user + system from /proc) for each run, so the
   tail's own cost is the difference.

    tests/bench/tail_bench.py [BIN_DIR]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import requests
import websocket

from benchlib import cpu_s, free_port

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
PINGS = int(os.environ.get("BENCH_TAIL_PINGS", "20"))
LINES = int(os.environ.get("BENCH_TAIL_LINES", "200000"))
BATCH = 2000
STREAMS = 8


class Agg:
    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(workdir, "agg.log"), "wb")
        self.p = subprocess.Popen(
            [os.path.join(BIN, "sluice-aggregator"), "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", os.path.join(workdir, "data"), "--set", "wal.enabled=false",
             "--set", "limits.ingestion_rate_mb=100000",
             "--set", "limits.ingestion_burst_size_mb=100000",
             "--set", "limits.max_entries_limit_per_query=1000000"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise SystemExit("aggregator did not start")

    def stop(self):
        self.p.terminate()
        self.p.wait(30)
        self.log.close()


def push(session, url, app, lines, base_ns):
    streams = {}
    for i, line in enumerate(lines):
        streams.setdefault(i % STREAMS, []).append([str(base_ns + i), line])
    body = {"streams": [{"stream": {"app": app, "s": str(k)}, "values": v}
                        for k, v in streams.items()]}
    r = session.post(url + "/loki/api/v1/push", data=json.dumps(body),
                     headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 204, r.text


def open_tail(agg, query, limit=1):
    q = urllib.parse.urlencode({"query": query, "limit": limit})
    return websocket.create_connection(agg.url.replace("http", "ws") + "/loki/api/v1/tail?" + q,
                                       timeout=60)


def count_entries(msg):
    """(entries sent, entries reported dropped) in one tail message."""
    m = json.loads(msg)
    return (sum(len(s["values"]) for s in m.get("streams") or []),
            len(m.get("dropped_entries") or []))


def latency(agg):
    ws = open_tail(agg, '{app="ping"}')
    got = {}

    def reader():
        while len(got) < PINGS:
            m = json.loads(ws.recv())
            for s in m.get("streams") or []:
                for _, line in s["values"]:
                    got[line] = time.monotonic()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    sent = {}
    s = requests.Session()
    time.sleep(1.2)
    for i in range(PINGS):
        push(s, agg.url, "ping", [f"ping {i}"], time.time_ns())
        sent[f"ping {i}"] = time.monotonic()
        time.sleep(0.3)
    t.join(30)
    ws.close()
    lat = sorted(got[k] - sent[k] for k in sent if k in got)
    return lat


def throughput(agg, app, with_tail):
    line = "x" * 90
    s = requests.Session()
    ws = open_tail(agg, f'{{app="{app}"}}') if with_tail else None
    received = [0, 0]  # sent, dropped (this client too slow)
    done = threading.Event()

    def reader():
        while received[0] + received[1] < LINES:
            sent, dropped = count_entries(ws.recv())
            received[0] += sent
            received[1] += dropped
        done.set()
    if ws:
        time.sleep(1.2)  # past the initial batch
        threading.Thread(target=reader, daemon=True).start()
    cpu0, t0 = cpu_s(agg.p.pid), time.monotonic()
    base = time.time_ns()
    for off in range(0, LINES, BATCH):
        push(s, agg.url, app, [f"{off + i:08d} {line}" for i in range(BATCH)], base + off)
    pushed = time.monotonic() - t0
    if ws:
        done.wait(600)
        ws.close()
    wall, cpu = time.monotonic() - t0, cpu_s(agg.p.pid) - cpu0
    return pushed, wall, cpu, received


def main():
    work = tempfile.mkdtemp(prefix="sluice-tail-bench-")
    agg = Agg(work)
    try:
        lat = latency(agg)
        print(f"latency push -> tail over {len(lat)} lines: p50 {statistics.median(lat):.3f} s, "
              f"p95 {lat[int(0.95 * (len(lat) - 1))]:.3f} s, max {lat[-1]:.3f} s")
        p0, w0, c0, _ = throughput(agg, "base", False)
        print(f"push only: {LINES} lines in {w0:.2f} s ({LINES / w0:,.0f} lines/s), "
              f"aggregator CPU {c0:.2f} s")
        p1, w1, c1, (n, dropped) = throughput(agg, "tailed", True)
        print(f"push + tail: {n} lines through the tail and {dropped} reported dropped "
              f"(this Python client reads slower than the server sends) in {w1:.2f} s "
              f"({(n + dropped) / w1:,.0f} lines/s; pushing took {p1:.2f} s), aggregator CPU "
              f"{c1:.2f} s (tail: {c1 - c0:.2f} s, "
              f"{(c1 - c0) / max(n + dropped, 1) * 1e6:.1f} us per line)")
    finally:
        agg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
