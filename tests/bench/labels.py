#!/usr/bin/python3
"""Benchmark: label and series endpoints at many series (not a test: asserts nothing
beyond the answers being complete).

Pushes BENCH_LABELS_SERIES (default 100 000) distinct series, one line each, as Loki
protobuf + snappy:

    {app="app-<i % 100>", namespace="ns-<i % 20>", container="c-<i % 5>", pod="pod-<i>"}

then times, over HTTP (median of BENCH_LABELS_RUNS runs, default 7, wall ms; the
aggregator's CPU ms over all runs divided by the runs):

    /loki/api/v1/labels
    /loki/api/v1/label/app/values               (100 values)
    /loki/api/v1/label/pod/values               (one value per series)
    /loki/api/v1/label/pod/values?query={app="app-7"}
    /loki/api/v1/series?match[]={app="app-7"}   (1% of the series)
    /loki/api/v1/series?match[]={app="app-7", container="c-2"}
    /loki/api/v1/series?match[]={app="app-7", pod="pod-307"}   (one series)
    /loki/api/v1/series?match[]={app=~"app-7|app-8"}           (2% of the series)

first with every series in the ingester's memory, then after POST /flush and a
restart (memory empty: answered from the index files).

    tests/bench/labels.py [BIN_DIR]
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from benchlib import cpu_s, free_port, rss_bytes  # noqa: E402
from loki_proto import push_request, snappy_compress  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin")
SERIES = int(os.environ.get("BENCH_LABELS_SERIES", "100000"))
RUNS = int(os.environ.get("BENCH_LABELS_RUNS", "7"))

ENDPOINTS = [
    ("labels", "/loki/api/v1/labels", {}),
    ("values app", "/loki/api/v1/label/app/values", {}),
    ("values pod", "/loki/api/v1/label/pod/values", {}),
    ("values pod {app}", "/loki/api/v1/label/pod/values", {"query": '{app="app-7"}'}),
    ("series {app}", "/loki/api/v1/series", {"match[]": '{app="app-7"}'}),
    ("series {app,c}", "/loki/api/v1/series", {"match[]": '{app="app-7", container="c-2"}'}),
    ("series {app,pod}", "/loki/api/v1/series", {"match[]": '{app="app-7", pod="pod-307"}'}),
    ("series {app=~}", "/loki/api/v1/series", {"match[]": '{app=~"app-7|app-8"}'}),
]


def labels_of(i):
    return (f'{{app="app-{i % 100}", container="c-{i % 5}", namespace="ns-{i % 20}", '
            f'pod="pod-{i}"}}')


def start_agg(tmp, port):
    log = open(os.path.join(tmp, "agg.log"), "ab")
    agg = subprocess.Popen([os.path.join(BIN, "sluice-aggregator"), "--listen",
                            f"127.0.0.1:{port}", "--data-dir", os.path.join(tmp, "agg"),
                            "--set", "wal.enabled=false",
                            "--set", "limits.ingestion_rate_mb=0",
                            "--set", "limits.max_streams_per_tenant=0",
                            "--set", "server.log_level=warn"], stdout=log, stderr=log)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return agg
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("aggregator not ready")


def push_all(port, base):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    per = 2000
    for k in range(0, SERIES, per):
        streams = [(labels_of(i), [(base + i, f"line of series {i}")])
                   for i in range(k, min(SERIES, k + per))]
        body = snappy_compress(push_request(streams))
        conn.request("POST", "/loki/api/v1/push", body=body,
                     headers={"Content-Type": "application/x-protobuf"})
        r = conn.getresponse()
        r.read()
        if r.status != 204:
            raise RuntimeError(f"push answered {r.status}")
    conn.close()


def measure(port, pid, path, params, start_ns, end_ns):
    q = dict(params, start=str(start_ns), end=str(end_ns))
    url = path + "?" + urllib.parse.urlencode(q)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    walls, n = [], 0
    cpu0 = cpu_s(pid)
    for _ in range(RUNS):
        t0 = time.monotonic()
        conn.request("GET", url, headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        body = r.read()
        walls.append(time.monotonic() - t0)
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {body[:200]!r}")
        enc = r.getheader("Content-Encoding")
        if enc == "gzip":
            import gzip
            body = gzip.decompress(body)
        n = len(json.loads(body)["data"])
    cpu = (cpu_s(pid) - cpu0) / RUNS
    conn.close()
    return statistics.median(walls) * 1000, cpu * 1000, n


def run_all(port, pid, start_ns, end_ns):
    print(f"  {'endpoint':<18} {'wall ms':>8} {'CPU ms':>7} {'items':>7}")
    for name, path, params in ENDPOINTS:
        wall, cpu, n = measure(port, pid, path, params, start_ns, end_ns)
        print(f"  {name:<18} {wall:>8.2f} {cpu:>7.1f} {n:>7}")


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-bench-labels.")
    agg = None
    try:
        port = free_port()
        agg = start_agg(tmp, port)
        rss0 = rss_bytes(agg.pid)
        base = time.time_ns() - 600 * 10**9
        t0 = time.monotonic()
        push_all(port, base)
        start_ns, end_ns = base - 60 * 10**9, base + 60 * 10**9
        rss1 = rss_bytes(agg.pid)
        print(f"\nlabels: {SERIES} series pushed in {time.monotonic() - t0:.1f} s "
              f"(aggregator RSS +{(rss1 - rss0) / 2**20:.1f} MiB, "
              f"{(rss1 - rss0) / SERIES:.0f} bytes per series); "
              f"median of {RUNS} runs; in memory")
        run_all(port, agg.pid, start_ns, end_ns)
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/flush")
        c.getresponse().read()
        agg.terminate()
        agg.wait(120)
        agg = start_agg(tmp, port)
        print(f"from the index (flushed and restarted in {time.monotonic() - t0:.1f} s; "
              f"first run loads the index files)")
        run_all(port, agg.pid, start_ns, end_ns)
    finally:
        if agg:
            agg.terminate()
            agg.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
