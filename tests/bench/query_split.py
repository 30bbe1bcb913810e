#!/usr/bin/python3
"""Benchmark: one long metric query_range, whole vs split (not a test: asserts
that the answers match, nothing else).

Pushes BENCH_SPLIT_LINES logfmt lines (default 1 M, ~90 bytes each) spread
evenly over 6 hours on 8 streams into a fresh sluice-aggregator (WAL off,
limits lifted), then runs, 3 times each (median):

    sum by (level) (count_over_time({app="bench"} | logfmt [5m]))   step 60s, 6 h
    sum(rate({app="bench"} | logfmt | level="error" [5m]))          step 60s, 6 h

with querier.split_queries_by_interval=0s (whole) and =1h (split into at most
querier.max_concurrency parts, BENCH_SPLIT_CONCURRENCY, default the number of
CPUs): wall seconds and the aggregator's CPU seconds over the request. The
answers of the two must be equal (stats left out).

    tests/bench/query_split.py [BIN_DIR]
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import cpu_s, free_port  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin")
LINES = int(os.environ.get("BENCH_SPLIT_LINES", "1000000"))
CONCURRENCY = os.environ.get("BENCH_SPLIT_CONCURRENCY", "0")
STREAMS = 8
SPAN = 6 * 3600 * 10**9
QUERIES = ['sum by (level) (count_over_time({app="bench"} | logfmt [5m]))',
           'sum(rate({app="bench"} | logfmt | level="error" [5m]))']


def start_agg(tmp, port, split):
    log = open(os.path.join(tmp, f"agg-{split}.log"), "wb")
    p = subprocess.Popen([os.path.join(BIN, "sluice-aggregator"), "--listen", f"127.0.0.1:{port}",
                          "--data-dir", os.path.join(tmp, f"data-{split}"),
                          "--set", "wal.enabled=false", "--set", "limits.ingestion_rate_mb=0",
                          "--set", "limits.query_timeout=10m",
                          "--set", "ingester.max_chunk_age=12h",
                          "--set", f"querier.max_concurrency={CONCURRENCY}",
                          "--set", f"querier.split_queries_by_interval={split}",
                          "--set", "server.log_level=warn"], stdout=log, stderr=log)
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("aggregator did not start")


def push(port, base):
    rnd = random.Random(42)
    gap = SPAN // LINES
    per = 5000
    for k in range(0, LINES, per):
        streams = {}
        for i in range(k, min(k + per, LINES)):
            level = rnd.choice(["info", "info", "info", "debug", "warn", "error"])
            line = (f"ts={i} level={level} method=GET path=/api/v{i % 7}/items status="
                    f"{rnd.choice([200, 200, 404, 500])} dur={rnd.randrange(1, 900)}ms")
            streams.setdefault(i % STREAMS, []).append([str(base + i * gap), line])
        body = json.dumps({"streams": [{"stream": {"app": "bench", "shard": str(s)},
                                        "values": v} for s, v in streams.items()]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/loki/api/v1/push", data=body,
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=60)


def query(port, pid, q, base):
    params = urllib.parse.urlencode({"query": q, "start": str(base), "end": str(base + SPAN),
                                     "step": "60s"})
    c0, t0 = cpu_s(pid), time.monotonic()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/loki/api/v1/query_range?{params}",
                                  timeout=600).read().decode()
    wall, cpu = time.monotonic() - t0, cpu_s(pid) - c0
    return wall, cpu, body[:body.index(',"stats"')], json.loads(body)["data"]["stats"]["summary"]


def main():
    tmp = tempfile.mkdtemp(prefix="bench-split-")
    base = (time.time_ns() - SPAN - 600 * 10**9) // 60_000_000_000 * 60_000_000_000
    answers = {}
    try:
        for split in ["0s", "1h"]:
            port = free_port()
            agg = start_agg(tmp, port, split)
            try:
                t0 = time.monotonic()
                push(port, base)
                print(f"split={split}: pushed {LINES} lines in {time.monotonic() - t0:.1f} s")
                for q in QUERIES:
                    runs = [query(port, agg.pid, q, base) for _ in range(3)]
                    wall = statistics.median(r[0] for r in runs)
                    cpu = statistics.median(r[1] for r in runs)
                    s = runs[0][3]
                    answers.setdefault(q, set()).add(runs[0][2])
                    print(f"  {q}\n    wall {wall:.3f} s  cpu {cpu:.3f} s  splits {s['splits']}  "
                          f"lines {s['totalLinesProcessed']}")
            finally:
                agg.terminate()
                agg.wait()
        for q, a in answers.items():
            print(f"answers {'equal' if len(a) == 1 else 'DIFFER'}: {q}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
