#!/usr/bin/python3
"""Benchmark: stored size, memory per stream and WAL replay (not a test).

Generates a corpus with sluice-loggen, spreads its lines over BENCH_STREAMS
streams, pre-encodes native push bodies (msgpack + zstd, ~1 MiB of raw lines
each) and pushes them to a fresh sluice-aggregator (WAL on, limits lifted).
Then reports:
  - RSS growth per active stream, with everything in memory;
  - WAL replay rate: SIGKILL, restart, the replay's bytes / duration (from the
    aggregator's "wal replayed" log line);
  - stored bytes (chunks + index files) after POST /flush, against the raw
    line bytes (target: at most 1/6).

    tests/bench/store_bench.py [BIN_DIR]   BENCH_STORE_SIZE=256MiB BENCH_STREAMS=500
"""
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import msgpack
import zstandard

from benchlib import dir_bytes, free_port, rss_bytes, size_arg

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def start(bin_dir, data, port, log):
    p = subprocess.Popen([os.path.join(bin_dir, "sluice-aggregator"), "--listen",
                          f"127.0.0.1:{port}", "--data-dir", data,
                          "--set", "limits.ingestion_rate_mb=100000",
                          "--set", "limits.ingestion_burst_size_mb=100000",
                          "--set", "limits.reject_old_samples=false",
                          "--set", "limits.max_streams_per_tenant=1000000"],
                         stderr=open(log, "ab"))
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return p
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("aggregator did not become ready")


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bin")
    size = size_arg(os.environ.get("BENCH_STORE_SIZE", "256MiB"))
    nstreams = int(os.environ.get("BENCH_STREAMS", "500"))
    tmp = tempfile.mkdtemp(prefix="sluice-store-bench-")
    try:
        corpus = os.path.join(tmp, "corpus.log")
        subprocess.run([os.path.join(bin_dir, "sluice-loggen"), "--out", corpus, "--bytes",
                        str(size), "--start", "2026-01-01T00:00:00Z"], check=True)
        cctx = zstandard.ZstdCompressor(level=1)
        bodies, raw = [], 0
        streams = [dict() for _ in range(nstreams)]
        pending, pending_raw, n = [[] for _ in range(nstreams)], 0, 0
        with open(corpus, "rb") as f:
            for line in f:
                parts = line.rstrip(b"\n").split(b" ", 3)
                ts = int(time.time_ns() - 3600 * 10**9 + n * 1000)
                text = parts[3] if len(parts) == 4 else b""
                pending[n % nstreams].append([ts, text])
                raw += len(text)
                pending_raw += len(text)
                n += 1
                if pending_raw >= 1 << 20:
                    bodies.append(encode(cctx, pending))
                    pending, pending_raw = [[] for _ in range(nstreams)], 0
        if pending_raw:
            bodies.append(encode(cctx, pending))
        del streams
        port = free_port()
        data = os.path.join(tmp, "data")
        log = os.path.join(tmp, "agg.log")
        p = start(bin_dir, data, port, log)
        rss0 = rss_bytes(p.pid)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t0 = time.monotonic()
        for b in bodies:
            c.request("POST", "/api/v1/push", body=b,
                      headers={"Content-Type": "application/x-msgpack",
                               "Content-Encoding": "zstd"})
            r = c.getresponse()
            r.read()
            assert r.status == 204, r.status
        push_s = time.monotonic() - t0
        rss1 = rss_bytes(p.pid)
        p.kill()
        p.wait()
        p = start(bin_dir, data, port, log)
        with open(log) as f:
            rep = [l for l in f if "wal replayed" in l][-1]
        rbytes = int(re.search(r"bytes=(\d+)", rep).group(1))
        rms = max(1, int(re.search(r"duration_ms=(\d+)", rep).group(1)))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t0 = time.monotonic()
        c.request("POST", "/flush")
        r = c.getresponse()
        r.read()
        flush_s = time.monotonic() - t0
        assert r.status == 204, r.status
        chunks = dir_bytes(os.path.join(data, "store", "chunks"))
        index = dir_bytes(os.path.join(data, "store", "index"))
        p.terminate()
        p.wait()
        mb = raw / 1e6
        print(f"corpus: {mb:.1f} MB of raw line bytes, {n} lines, {nstreams} streams")
        print(f"push (native, msgpack+zstd, WAL on): {push_s:.1f} s, {mb / push_s:.1f} MB/s")
        print(f"RSS: {rss0 / 1e6:.1f} MB idle, {rss1 / 1e6:.1f} MB with everything in memory: "
              f"{(rss1 - rss0) / nstreams / 1e3:.0f} KB per active stream "
              f"({(rss1 - rss0) / raw:.3f} bytes of RSS per raw byte)")
        print(f"WAL replay: {rbytes / 1e6:.1f} MB in {rms} ms: {rbytes / 1e6 / (rms / 1000):.0f} MB/s")
        print(f"flush: {flush_s:.1f} s; stored: chunks {chunks / 1e6:.2f} MB + index "
              f"{index / 1e3:.1f} KB = 1/{raw / (chunks + index):.1f} of the raw bytes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def encode(cctx, pending):
    streams = [{"labels": {"app": f"svc{i % 50}", "pod": f"pod-{i}", "namespace": "bench"},
                "entries": e} for i, e in enumerate(pending) if e]
    return cctx.compress(msgpack.packb({"streams": streams}, use_bin_type=True))


if __name__ == "__main__":
    main()
