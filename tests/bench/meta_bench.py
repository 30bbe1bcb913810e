#!/usr/bin/python3
"""Benchmark: what structured metadata costs (not a test: asserts nothing).

The same BENCH_META_LINES lines of `sluice-loggen --seed 42` (default 500 000) are
pushed twice as Loki protobuf + snappy over 16 streams into a fresh
sluice-aggregator (WAL off, limits lifted): once plain, once with structured
metadata on every entry (trace_id: 16 random hex digits, user: one of 100 values;
about 40 bytes per entry, as OpenTelemetry-style senders attach). For each run:
the aggregator's CPU seconds while pushing, the ingester's memory
(sluice_aggregator_ingester_block_bytes + _head_bytes), three queries over
memory (median of 3: aggregator CPU seconds), then POST /flush and the stored
chunk bytes.

    tests/bench/meta_bench.py [BIN_DIR]
"""
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import logql  # noqa: E402  (its corpus, push and query helpers)
from benchlib import cpu_s, free_port  # noqa: E402

logql.LINES = int(os.environ.get("BENCH_META_LINES", "500000"))

QUERIES = [
    ("literal", '{app="bench"} |= "rare literal"', "range"),
    ("count by user", 'sum by (user) (count_over_time({app="bench"}[5m]))', "instant"),
    ("user filter", 'sum(count_over_time({app="bench"} | user="u7" [5m]))', "instant"),
]


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name + " ") or l.startswith(name + "{"))


def one_run(tmp, entries, label):
    port = free_port()
    agg = logql.start_agg(tmp, port)
    try:
        cpu0, t0 = cpu_s(agg.pid), time.monotonic()
        logql.push_all(port, entries)
        push_wall, push_cpu = time.monotonic() - t0, cpu_s(agg.pid) - cpu0
        mem = metric(port, "sluice_aggregator_ingester_block_bytes") + \
            metric(port, "sluice_aggregator_ingester_head_bytes")
        base = entries[0][0]
        start_ns, end_ns = base - 60 * 10**9, base + 60 * 10**9
        q = {}
        for name, query, kind in QUERIES:
            runs = [logql.run_query(port, agg.pid, query, kind, start_ns, end_ns)
                    for _ in range(3)]
            q[name] = statistics.median(r[1] for r in runs)
        logql.flush(port)
        stored = metric(port, "sluice_aggregator_chunk_stored_bytes_total")
    finally:
        agg.terminate()
        agg.wait(120)
        shutil.rmtree(os.path.join(tmp, "agg"), ignore_errors=True)
    print(f"  {label:<9} {push_wall:>7.2f} {push_cpu:>7.2f} {mem / 1048576:>8.1f} "
          f"{stored / 1048576:>8.1f} " + " ".join(f"{q[n]:>13.2f}" for n, _, _ in QUERIES))


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-bench-meta.")
    try:
        base = time.time_ns() - 120 * 10**9
        entries, raw = logql.corpus(tmp, base)
        raw_bytes = os.path.getsize(raw) - len(entries)
        rnd = random.Random(42)
        with_meta = [(ts, line, {"trace_id": f"{rnd.getrandbits(64):016x}",
                                 "user": f"u{rnd.randrange(100)}"}) for ts, line in entries]
        print(f"\nmeta: {len(entries)} lines, {raw_bytes / 1048576:.0f} MiB raw, "
              f"{logql.STREAMS} streams, on {os.cpu_count()} CPUs (CPU: the aggregator's "
              f"user + system seconds)")
        print(f"  {'run':<9} {'push s':>7} {'push CPU':>7} {'mem MiB':>8} {'stored MiB':>8} " +
              " ".join(f"{n + ' CPU':>13}" for n, _, _ in QUERIES))
        one_run(tmp, entries, "plain")
        one_run(tmp, with_meta, "metadata")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
