#!/usr/bin/python3
"""Benchmark: aggregator ingest of Loki push bodies (not a test: asserts nothing).

Pre-encodes a corpus of log lines (from sluice-loggen, the same generator as the
ship benchmark) into Loki push bodies of ~1 MiB of raw lines each -- JSON, JSON
+ gzip (what pino-loki / Grafana Alloy's JSON path send) and protobuf + snappy
(Promtail, winston-loki) -- then replays them on loopback over keep-alive
connections to a fresh sluice-aggregator per format (WAL on, fsync batch, rate
limits lifted). Reports, per format: wall-clock MB/s of raw line bytes and the
aggregator's CPU seconds per GB of raw line bytes (user + system from /proc,
counted over the replay only), beside `zstd -1` over the same raw bytes.

Each format runs twice: "in order" (each connection pushes to its own streams,
so every stream receives its entries in time order, as from one real client per
stream) and "shared" (every connection pushes to the same streams, so entries
of a stream arrive out of order within the accepted window and each one is
checked for a duplicate among what is already stored, as with several senders
or retries per stream).

    tests/bench/loki_push.py [BIN_DIR]      BENCH_LOKI_SIZE=100MiB (default)
                                            BENCH_LOKI_FORMATS=json,json+gzip,protobuf+snappy
                                            BENCH_LOKI_MODES=in-order,shared
"""
import concurrent.futures
import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from loki_proto import push_request, snappy_compress  # noqa: E402
from benchlib import cpu_s, free_port, peak_rss_mib  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin")
SIZE = os.environ.get("BENCH_LOKI_SIZE", "100MiB")
STREAMS = 16          # label sets per client connection
BODY_RAW = 1 << 20    # raw line bytes per push, as the agent's default batch_size
CONNS = 4             # concurrent pushers: keeps the aggregator busy across WAL fsyncs


def corpus(tmp):
    """[(ts_ns, line)] from sluice-loggen, and the raw lines file for zstd."""
    cri = os.path.join(tmp, "gen.log")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800))
    subprocess.run([os.path.join(BIN, "sluice-loggen"), "--out", cri, "--bytes", SIZE,
                    "--seed", "42", "--start", start], check=True)
    entries = []
    raw = os.path.join(tmp, "raw.txt")
    base = time.time_ns() - 1800 * 10**9
    with open(cri, "rb") as f, open(raw, "wb") as out:
        for i, l in enumerate(f):
            text = l.rstrip(b"\n").split(b" ", 3)[3]
            out.write(text + b"\n")
            entries.append((base + i * 1000, text.decode("utf-8", "replace")))
    os.unlink(cri)
    return entries, raw


def bodies(entries):
    """Chunks of ~BODY_RAW raw bytes, each spread over STREAMS streams."""
    chunk, size = [], 0
    for e in entries:
        chunk.append(e)
        size += len(e[1])
        if size >= BODY_RAW:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def split_streams(chunk, conn):
    """conn None: the streams every connection shares."""
    per = [[] for _ in range(STREAMS)]
    for k, e in enumerate(chunk):
        per[k % STREAMS].append(e)
    client = "shared" if conn is None else str(conn)
    return [({"app": "bench", "client": client, "shard": str(s)}, es)
            for s, es in enumerate(per) if es]


def encode(fmt, chunk, conn):
    streams = split_streams(chunk, conn)
    if fmt.startswith("json"):
        body = json.dumps({"streams": [{"stream": ls, "values": [[str(t), l] for t, l in es]}
                                       for ls, es in streams]}).encode()
        if fmt == "json+gzip":
            return gzip.compress(body, 6), {"Content-Type": "application/json",
                                            "Content-Encoding": "gzip"}
        return body, {"Content-Type": "application/json"}
    text = [("{" + ", ".join(f'{k}="{v}"' for k, v in ls.items()) + "}", es)
            for ls, es in streams]
    return snappy_compress(push_request(text)), {"Content-Type": "application/x-protobuf"}


def replay(port, work):
    def pusher(items):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body, headers in items:
            conn.request("POST", "/loki/api/v1/push", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 204:
                raise RuntimeError(f"push answered {r.status}")
        conn.close()
    parts = [work[i::CONNS] for i in range(CONNS)]
    with concurrent.futures.ThreadPoolExecutor(CONNS) as ex:
        for f in [ex.submit(pusher, p) for p in parts]:
            f.result()


def run_format(fmt, mode, chunks, tmp):
    # Body k goes to connection k % CONNS. In order: the connection's streams
    # are its own, so each stream receives its entries in order. Shared: all
    # connections use the same streams, and the entries of each round of
    # CONNS bodies are dealt out to the connections one by one, so whichever
    # body of a round arrives second interleaves in time with the first: every
    # stream gets most of its entries out of order, whatever the timing.
    if mode == "shared":
        work = []
        for r in range(0, len(chunks), CONNS):
            merged = [e for c in chunks[r:r + CONNS] for e in c]
            work += [encode(fmt, merged[c::CONNS], None) for c in range(CONNS)
                     if merged[c::CONNS]]
    else:
        work = [encode(fmt, c, k % CONNS) for k, c in enumerate(chunks)]
    wire = sum(len(b) for b, _ in work)
    port = free_port()
    name = f"{fmt.replace('+', '-')}-{mode}"
    data = os.path.join(tmp, "agg-" + name)
    log = open(os.path.join(tmp, f"agg-{name}.log"), "wb")
    agg = subprocess.Popen([os.path.join(BIN, "sluice-aggregator"), "--listen",
                            f"127.0.0.1:{port}", "--data-dir", data,
                            "--set", "limits.ingestion_rate_mb=0",
                            "--set", "server.log_level=warn"], stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        cpu0, t0 = cpu_s(agg.pid), time.monotonic()
        replay(port, work)
        wall, cpu = time.monotonic() - t0, cpu_s(agg.pid) - cpu0
        rss = peak_rss_mib(agg.pid)
        dedup = dedup_metrics(port)
    finally:
        agg.terminate()
        agg.wait(60)
        log.close()
    return wall, cpu, rss, wire, dedup


def dedup_metrics(port):
    """The ingester's out-of-order duplicate-check counters, summed."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for line in text.splitlines():
        for name in ("dedup_block_reads", "dedup_filter_false_positives", "blocks_cut",
                     "lines_duplicate"):
            if line.startswith(f"sluice_aggregator_ingester_{name}_total") or \
                    line.startswith(f"sluice_aggregator_{name}_total"):
                out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-bench-loki.")
    try:
        entries, raw = corpus(tmp)
        raw_bytes = sum(len(l.encode()) for _, l in entries)
        gb = raw_bytes / 1e9
        t = os.times()
        subprocess.run(["zstd", "-1", "-T1", "-c", raw], stdout=subprocess.DEVNULL, check=True)
        t2 = os.times()
        zstd = (t2.children_user - t.children_user) + (t2.children_system - t.children_system)
        chunks = list(bodies(entries))
        print(f"\nloki push: {raw_bytes / 1048576:.0f} MiB of raw lines, {len(entries)} lines, "
              f"{len(chunks)} bodies of ~1 MiB raw, {CONNS} connections with {STREAMS} streams each")
        print(f"  {'format':<18} {'streams':<9} {'wire MiB':>9} {'MB/s':>7} {'CPU s/GB':>9} "
              f"{'/ zstd -1':>9} {'peak RSS':>9}")
        formats = os.environ.get("BENCH_LOKI_FORMATS", "json,json+gzip,protobuf+snappy")
        modes = os.environ.get("BENCH_LOKI_MODES", "in-order,shared")
        for fmt in formats.split(","):
            for mode in modes.split(","):
                wall, cpu, rss, wire, dedup = run_format(fmt, mode, chunks, tmp)
                print(f"  {fmt:<18} {mode:<9} {wire / 1048576:>9.1f} "
                      f"{raw_bytes / 1e6 / wall:>7.1f} {cpu / gb:>9.2f} {cpu / zstd:>9.2f} "
                      f"{rss:>6.1f} MiB", flush=True)
                if mode == "shared":
                    print("  " + " " * 28 + "blocks cut {:.0f}, read for duplicate checks {:.0f}, "
                          "filter false positives {:.0f}, duplicates {:.0f}".format(
                              dedup.get("blocks_cut", 0), dedup.get("dedup_block_reads", 0),
                              dedup.get("dedup_filter_false_positives", 0),
                              dedup.get("lines_duplicate", 0)), flush=True)
        print(f"  {'zstd -1 -T1':<18} {'':<9} {'':>9} {'':>7} {zstd / gb:>9.2f} {1:>9.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
