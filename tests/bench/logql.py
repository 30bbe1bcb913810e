#!/usr/bin/python3
"""Benchmark: LogQL over lines in the aggregator's memory (not a test: asserts nothing).

Generates BENCH_LOGQL_LINES lines with sluice-loggen (default 2 M, ~145 bytes each:
logfmt, JSON and access-log lines mixed), pushes them over 16 streams as Loki
protobuf + snappy into a fresh sluice-aggregator (WAL off, limits lifted), then
times the four queries of issue 5 over HTTP, each 3 times (median):

    {app="bench"} |= "rare literal"                       (matches nothing: a full scan)
    {app="bench"} |~ "status=5\\d\\d"                      (limit 100, newest first)
    sum by (level) (count_over_time({app="bench"} | logfmt [5m]))   (instant)
    {app="bench"} | json | level="error"                  (limit 100, newest first)

and, since a limit lets the regex and json queries stop early, the same two filters
over every line inside sum(count_over_time(...)).

For each: wall seconds, the aggregator's CPU seconds over the request (user + system
from /proc), lines and raw bytes processed (the response's stats) and raw GB/s per
CPU second. For scale, `zstd -d -T1` decompressing the same raw lines (compressed
with `zstd -1`, the ingester's level) and `grep -c -F` over them run in the same run.

Then the same queries over STORED chunks: POST /flush, restart the aggregator on the
same data directory (so memory is empty and every line comes from the chunk objects
through the index), one cold run (index files and chunks read from the store), then
the median of 3. BENCH_LOGQL_CONCURRENCY sets querier.max_concurrency (default: the
number of CPUs); 1 gives the serial figures.

    tests/bench/logql.py [BIN_DIR]
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
from loki_proto import push_request, snappy_compress  # noqa: E402
from benchlib import child_cpu, cpu_s, free_port  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin")
LINES = int(os.environ.get("BENCH_LOGQL_LINES", "2000000"))
CONCURRENCY = os.environ.get("BENCH_LOGQL_CONCURRENCY", "0")
STREAMS = 16

QUERIES = [
    ("literal", '{app="bench"} |= "rare literal"', "range"),
    ("regex", '{app="bench"} |~ "status=5\\\\d\\\\d"', "range"),
    ("logfmt sum by", 'sum by (level) (count_over_time({app="bench"} | logfmt [5m]))', "instant"),
    ("json filter", '{app="bench"} | json | level="error"', "range"),
    # the same filters over every line (a limit of 100 lets the two above stop early)
    ("regex, all", 'sum(count_over_time({app="bench"} |~ "status=5\\\\d\\\\d" [5m]))', "instant"),
    ("json, all", 'sum(count_over_time({app="bench"} | json | level="error" [5m]))', "instant"),
]


def corpus(tmp, base):
    cri = os.path.join(tmp, "gen.log")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base / 1e9))
    subprocess.run([os.path.join(BIN, "sluice-loggen"), "--out", cri, "--lines", str(LINES),
                    "--seed", "42", "--start", start], check=True)
    raw = os.path.join(tmp, "raw.txt")
    entries = []
    with open(cri, "rb") as f, open(raw, "wb") as out:
        for i, l in enumerate(f):
            text = l.rstrip(b"\n").split(b" ", 3)[3]
            out.write(text + b"\n")
            entries.append((base + i * 1000, text.decode("utf-8", "replace")))
    os.unlink(cri)
    return entries, raw


def push_all(port, entries):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    per = 8192
    for k in range(0, len(entries), per):
        chunk = entries[k:k + per]
        streams = [(f'{{app="bench", shard="{s}"}}', chunk[s::STREAMS]) for s in range(STREAMS)]
        body = snappy_compress(push_request([(ls, es) for ls, es in streams if es]))
        conn.request("POST", "/loki/api/v1/push", body=body,
                     headers={"Content-Type": "application/x-protobuf"})
        r = conn.getresponse()
        r.read()
        if r.status != 204:
            raise RuntimeError(f"push answered {r.status}")
    conn.close()


def run_query(port, pid, query, kind, start_ns, end_ns):
    if kind == "instant":
        path = "/loki/api/v1/query?" + urllib.parse.urlencode(
            {"query": query, "time": str(end_ns)})
    else:
        path = "/loki/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": query, "start": str(start_ns), "end": str(end_ns), "limit": "100"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    cpu0, t0 = cpu_s(pid), time.monotonic()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    wall, cpu = time.monotonic() - t0, cpu_s(pid) - cpu0
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"{query}: {r.status} {body[:300]!r}")
    data = json.loads(body)["data"]
    summary = data["stats"]["summary"]
    return wall, cpu, summary["totalLinesProcessed"], summary["totalBytesProcessed"], data


def start_agg(tmp, port):
    log = open(os.path.join(tmp, "agg.log"), "ab")
    agg = subprocess.Popen([os.path.join(BIN, "sluice-aggregator"), "--listen",
                            f"127.0.0.1:{port}", "--data-dir", os.path.join(tmp, "agg"),
                            "--set", "wal.enabled=false",
                            "--set", "limits.ingestion_rate_mb=0",
                            "--set", "limits.query_timeout=10m",
                            "--set", f"querier.max_concurrency={CONCURRENCY}",
                            "--set", "server.log_level=warn"], stdout=log, stderr=log)
    for _ in range(400):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return agg
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("aggregator not ready")


def flush(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/flush")
    r = c.getresponse()
    r.read()
    if r.status // 100 != 2:
        raise RuntimeError(f"flush answered {r.status}")


def run_queries(port, pid, dec, raw_bytes, start_ns, end_ns, cold):
    print(f"  {'query':<15} {'wall s':>7} {'CPU s':>7} {'lines':>9} {'MiB':>7} "
          f"{'GB/s/CPU':>9} {'CPU/zstd-d':>10}" + (f" {'cold wall':>9}" if cold else ""))
    for name, query, kind in QUERIES:
        first = run_query(port, pid, query, kind, start_ns, end_ns) if cold else None
        runs = [run_query(port, pid, query, kind, start_ns, end_ns) for _ in range(3)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        lines, nbytes = runs[-1][2], runs[-1][3]
        rate = nbytes / 1e9 / cpu if cpu > 0 else float("inf")
        scale = cpu / (dec * nbytes / raw_bytes) if nbytes else 0
        print(f"  {name:<15} {wall:>7.3f} {cpu:>7.2f} {lines:>9} {nbytes / 1048576:>7.0f} "
              f"{rate:>9.2f} {scale:>10.2f}" + (f" {first[0]:>9.3f}" if cold else ""))
        if kind == "instant":
            res = sorted((s["metric"].get("level", ""), s["value"][1])
                         for s in runs[-1][4]["result"])
            print(f"      {res}")


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-bench-logql.")
    agg = None
    try:
        base = time.time_ns() - 120 * 10**9
        entries, raw = corpus(tmp, base)
        raw_bytes = os.path.getsize(raw) - len(entries)  # without the newlines
        zst = raw + ".zst"
        subprocess.run(["zstd", "-q", "-1", "-T1", "-f", raw, "-o", zst], check=True)
        dec = min(child_cpu(["zstd", "-d", "-T1", "-c", zst], stdout=subprocess.DEVNULL)
                  for _ in range(3))
        grep = min(child_cpu(["sh", "-c", f"grep -c -F 'rare literal' '{raw}' || true"],
                             stdout=subprocess.DEVNULL) for _ in range(3))
        port = free_port()
        agg = start_agg(tmp, port)
        t0 = time.monotonic()
        push_all(port, entries)
        push_s = time.monotonic() - t0
        gb = raw_bytes / 1e9
        print(f"\nlogql: {len(entries)} lines, {raw_bytes / 1048576:.0f} MiB raw, {STREAMS} streams "
              f"in memory (pushed in {push_s:.1f} s), querier.max_concurrency={CONCURRENCY} "
              f"on {os.cpu_count()} CPUs")
        print(f"  zstd -d -T1 of the same lines: {dec:.2f} CPU s ({gb / dec:.2f} GB/s); "
              f"grep -c -F: {grep:.2f} CPU s ({gb / grep:.2f} GB/s)")
        start_ns, end_ns = base - 60 * 10**9, base + 60 * 10**9
        run_queries(port, agg.pid, dec, raw_bytes, start_ns, end_ns, False)
        del entries
        t0 = time.monotonic()
        flush(port)
        agg.terminate()
        agg.wait(120)
        agg = start_agg(tmp, port)
        store = os.path.join(tmp, "agg", "store", "chunks")
        nchunks = sum(len(f) for _, _, f in os.walk(store))
        zbytes = sum(os.path.getsize(os.path.join(d, x)) for d, _, f in os.walk(store) for x in f)
        print(f"\nstored: flushed and restarted in {time.monotonic() - t0:.1f} s; {nchunks} chunks, "
              f"{zbytes / 1048576:.0f} MiB; queries read the store only (cold: first run)")
        run_queries(port, agg.pid, dec, raw_bytes, start_ns, end_ns, True)
    finally:
        if agg:
            agg.terminate()
            agg.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
