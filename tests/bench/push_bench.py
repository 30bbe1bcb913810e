#!/usr/bin/python3
"""Benchmark: native push at scale, stored size and WAL replay (not a test:
asserts nothing).

A corpus of BENCH_PUSH_SIZE raw line bytes (default 1GiB) from sluice-loggen
(only the text of each CRI line, ~145 bytes a line) is spread over
BENCH_STREAMS streams (default 512) and pre-encoded into native push bodies
(msgpack + zstd level 1, ~1 MiB of raw lines each, as the agent sends them).
A client replays them over BENCH_CONNS keep-alive connections (default 4,
each with its own streams, so every stream gets its entries in order) into a
fresh sluice-aggregator on loopback, WAL on (fsync: batch), rate limits
lifted. Printed:
  - the aggregator's CPU seconds (user + system, over the replay only) per GB
    of raw line bytes, beside `zstd -1 -T1` over the same raw bytes in the
    same run, and their ratio; wall-clock MB/s;
  - RSS with everything in memory, and bytes of RSS per active stream;
  - WAL replay: SIGKILL, restart, the replay's MB/s and the time to /ready;
  - POST /flush: its wall time and CPU per GB (the recompression at
    ingester.chunk_compression_level), and the stored size (chunks + index)
    against the raw line bytes.

    tests/bench/push_bench.py [BIN_DIR]   BENCH_PUSH_SIZE=1GiB BENCH_STREAMS=512
                                          BENCH_CONNS=4 BENCH_LEVEL=<level>
"""
import http.client
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import zstandard

from benchlib import cpu_s, dir_bytes, free_port, rss_bytes, size_arg

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BODY_RAW = 1 << 20  # raw line bytes per push, as the agent's default batch_size


def metric(text, name):
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read().decode()


def start(bin_dir, data, port, log, level):
    args = [os.path.join(bin_dir, "sluice-aggregator"), "--listen", f"127.0.0.1:{port}",
            "--data-dir", data,
            "--set", "wal.fsync=batch",
            "--set", "limits.ingestion_rate_mb=0",
            "--set", "limits.reject_old_samples=false",
            "--set", "limits.max_streams_per_tenant=0",
            "--set", "compactor.enabled=false"]
    if level is not None:
        args += ["--set", f"ingester.chunk_compression_level={level}"]
    t0 = time.monotonic()
    p = subprocess.Popen(args, stderr=open(log, "ab"))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if get(port, "/ready", 2)[0] == 200:
                return p, time.monotonic() - t0
        except OSError:
            pass
        if p.poll() is not None:
            raise SystemExit(f"aggregator exited: see {log}")
        time.sleep(0.02)
    raise SystemExit("aggregator did not become ready")


def build_corpus(bin_dir, tmp, size, nstreams, nconns):
    """Pre-encoded bodies per connection, raw line bytes, lines; the raw lines
    are also written to a file for zstd."""
    cri = os.path.join(tmp, "corpus.cri")
    rawf = os.path.join(tmp, "corpus.raw")
    # CRI framing is ~25% of loggen's bytes: generate enough text lines
    subprocess.run([os.path.join(bin_dir, "sluice-loggen"), "--out", cri, "--bytes",
                    str(size * 4 // 3 + (1 << 20)), "--seed", "42"], check=True)
    cctx = zstandard.ZstdCompressor(level=1)
    labels = [{"app": f"svc{i % 40}", "pod": f"pod-{i:04d}", "namespace": "bench",
               "container": "main"} for i in range(nstreams)]
    bodies = [[] for _ in range(nconns)]
    pend = [dict() for _ in range(nconns)]
    pend_raw = [0] * nconns
    base = time.time_ns() - 3600 * 10**9
    raw = n = 0

    def encode(c):
        streams = [{"labels": labels[s], "entries": e} for s, e in pend[c].items()]
        bodies[c].append(cctx.compress(msgpack.packb({"streams": streams}, use_bin_type=True)))
        pend[c], pend_raw[c] = {}, 0

    with open(cri, "rb") as f, open(rawf, "wb") as out:
        for line in f:
            text = line.rstrip(b"\n").split(b" ", 3)[3]
            s = n % nstreams
            c = s % nconns
            pend[c].setdefault(s, []).append([base + n * 1000, text])
            out.write(text + b"\n")
            raw += len(text)
            pend_raw[c] += len(text)
            n += 1
            if pend_raw[c] >= BODY_RAW:
                encode(c)
            if raw >= size:
                break
    for c in range(nconns):
        if pend_raw[c]:
            encode(c)
    os.unlink(cri)
    return bodies, raw, n, rawf


def replay(port, bodies):
    errors = []

    def run(mine):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for b in mine:
            c.request("POST", "/api/v1/push", body=b,
                      headers={"Content-Type": "application/x-msgpack",
                               "Content-Encoding": "zstd"})
            r = c.getresponse()
            r.read()
            if r.status != 204:
                errors.append(r.status)
                return
    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"push failed: {errors}")


def zstd_cpu(rawf):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["zstd", "-1", "-T1", "-q", "-c", rawf], stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bin")
    size = size_arg(os.environ.get("BENCH_PUSH_SIZE", "1GiB"))
    nstreams = int(os.environ.get("BENCH_STREAMS", "512"))
    nconns = int(os.environ.get("BENCH_CONNS", "4"))
    level = os.environ.get("BENCH_LEVEL")
    tmp = tempfile.mkdtemp(prefix="sluice-push-bench-")
    p = None
    try:
        t0 = time.monotonic()
        bodies, raw, nlines, rawf = build_corpus(bin_dir, tmp, size, nstreams, nconns)
        wire = sum(len(b) for bs in bodies for b in bs)
        gb = raw / 1e9
        print(f"corpus: {raw / 1e6:.1f} MB of raw line bytes, {nlines} lines, {nstreams} streams, "
              f"{sum(map(len, bodies))} bodies ({wire / 1e6:.1f} MB on the wire), "
              f"encoded in {time.monotonic() - t0:.0f} s")
        zs = zstd_cpu(rawf)
        os.unlink(rawf)

        port = free_port()
        data = os.path.join(tmp, "data")
        log = os.path.join(tmp, "agg.log")
        p, _ = start(bin_dir, data, port, log, level)
        rss0 = rss_bytes(p.pid)
        c0 = cpu_s(p.pid)
        t0 = time.monotonic()
        replay(port, bodies)
        push_s = time.monotonic() - t0
        push_cpu = cpu_s(p.pid) - c0
        del bodies
        rss1 = rss_bytes(p.pid)
        m = get(port, "/metrics")[1]
        streams = metric(m, "sluice_aggregator_streams_active") or 0
        fsyncs = metric(m, "sluice_aggregator_wal_fsyncs_total") or 0
        print(f"push (native msgpack+zstd, {nconns} connections, WAL fsync batch): "
              f"{push_s:.1f} s, {raw / 1e6 / push_s:.1f} MB/s of raw lines, {fsyncs:.0f} fsyncs")
        print(f"aggregator CPU: {push_cpu:.1f} s = {push_cpu / gb:.2f} s/GB; "
              f"zstd -1 -T1 over the same bytes: {zs:.1f} s = {zs / gb:.2f} s/GB; "
              f"ratio {push_cpu / zs:.2f}x")
        print(f"RSS: {rss0 / 1e6:.1f} MB idle -> {rss1 / 1e6:.1f} MB with everything in memory "
              f"({streams:.0f} active streams: {(rss1 - rss0) / max(streams, 1) / 1e3:.0f} KB "
              f"per stream, {(rss1 - rss0) / raw:.3f} bytes of RSS per raw byte)")

        p.kill()
        p.wait()
        p, ready_s = start(bin_dir, data, port, log, level)
        with open(log) as f:
            rep = [line for line in f if "wal replayed" in line][-1]
        rbytes = int(re.search(r"bytes=(\d+)", rep).group(1))
        rms = max(1, int(re.search(r"duration_ms=(\d+)", rep).group(1)))
        print(f"WAL replay after SIGKILL: {rbytes / 1e6:.1f} MB in {rms / 1000:.1f} s "
              f"({rbytes / 1e6 / (rms / 1000):.0f} MB/s of WAL, "
              f"{raw / 1e6 / (rms / 1000):.0f} MB/s of raw lines); /ready after {ready_s:.1f} s")

        c0 = cpu_s(p.pid)
        t0 = time.monotonic()
        hc = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
        hc.request("POST", "/flush")
        r = hc.getresponse()
        r.read()
        flush_s = time.monotonic() - t0
        flush_cpu = cpu_s(p.pid) - c0
        if r.status != 204:
            raise SystemExit(f"flush failed: {r.status}")
        m = get(port, "/metrics")[1]
        comp = metric(m, "sluice_aggregator_flush_compress_cpu_seconds_total") or 0
        chunks = dir_bytes(os.path.join(data, "store", "chunks"))
        index = dir_bytes(os.path.join(data, "store", "index"))
        lvl = level if level is not None else "default"
        print(f"flush (chunk_compression_level {lvl}): {flush_s:.1f} s, aggregator CPU "
              f"{flush_cpu:.1f} s = {flush_cpu / gb:.2f} s/GB (chunk building "
              f"{comp / gb:.2f} s/GB, on {os.cpu_count()} cores)")
        print(f"stored: chunks {chunks / 1e6:.1f} MB + index {index / 1e3:.0f} KB = "
              f"1/{raw / (chunks + index):.2f} of the raw bytes")
        p.terminate()
        p.wait()
        p = None
    finally:
        if p is not None:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
