"""Query execution: the same answers from memory, from stored chunks scanned
serially (querier.max_concurrency=1) and on the worker pool; the chunk disk
cache in front of S3 (s3rver): filled, hit, kept across a restart, bounded;
the index-file cache bounded; index/stats counting stored chunks exactly; the
query timeout still ending a parallel scan."""
import os
import random
import shutil
import time

import requests

from aws_fake import S3rver
from conftest import Aggregator, metric_value, wait_for
from test_s3 import s3_args

SMALL_CHUNKS = ["--set", "ingester.chunk_target_size=6KiB",
                "--set", "ingester.chunk_block_size=2KiB",
                "--set", "limits.ingestion_rate_mb=0"]


def push_corpus(agg, base, streams=8, per=1500, seed=7):
    """Lines over several streams, pushed in shuffled batches (out of order
    inside the window), with some entries pushed twice."""
    rnd = random.Random(seed)
    for s in range(streams):
        entries = [(base + i * 1_000_003 + s, f"s{s} level={'error' if i % 7 == 0 else 'info'} "
                    f"n={i} " + "y" * (i % 50)) for i in range(per)]
        batches = [entries[k:k + 100] for k in range(0, per, 100)]
        order = list(range(len(batches)))
        for k in range(0, len(order) - 1, 2):  # swap neighbours: out of order
            if rnd.random() < 0.5:
                order[k], order[k + 1] = order[k + 1], order[k]
        for k in order + order[:2]:  # the first two batches again: duplicates
            values = [[str(ts), line] for ts, line in batches[k]]
            r = agg.push_json([{"stream": {"app": "exec", "shard": str(s % 3), "n": str(s)},
                                "values": values}])
            assert r.status_code == 204, r.text


def get(agg, path, **params):
    r = requests.get(agg.url + path, params=params, timeout=60)
    assert r.status_code == 200, f"{path} {params}: {r.status_code} {r.text[:300]}"
    body = r.json()
    return body["data"] if "data" in body else body


def answers(agg, base):
    """Every read endpoint over the corpus; stats (timings) left out."""
    start, end = base - 10**9, base + 2000 * 1_000_003 + 10**9
    out = {}
    for name, q, extra in [
        ("all fwd", '{app="exec"}', {"direction": "forward", "limit": 100000}),
        ("all bwd", '{app="exec"}', {"direction": "backward", "limit": 100000}),
        ("newest 50", '{app="exec"}', {"limit": 50}),
        ("oldest 50 shard", '{shard="1"}', {"direction": "forward", "limit": 50}),
        ("filter", '{app="exec"} |= "level=error" != "n=7 "', {"limit": 5000}),
        ("logfmt", '{app="exec", n=~"[0-4]"} | logfmt | level="error"', {"limit": 200}),
        ("count by", 'sum by (shard) (count_over_time({app="exec"}[20s]))', {"step": "5s"}),
        ("rate", 'sum(rate({app="exec"} |= "info" [30s]))', {"step": "10s"}),
    ]:
        d = get(agg, "/loki/api/v1/query_range", query=q, start=start, end=end, **extra)
        out[name] = d["result"]
    out["labels"] = get(agg, "/loki/api/v1/labels", start=start, end=end)
    out["values"] = get(agg, "/loki/api/v1/label/n/values", start=start, end=end)
    out["series"] = get(agg, "/loki/api/v1/series", **{"match[]": '{shard="2"}'},
                        start=start, end=end)
    out["stats"] = get(agg, "/loki/api/v1/index/stats", query='{app="exec"}', start=start,
                       end=end)
    return out


def chunk_objects(store_dir):
    return [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(store_dir, "chunks"))
            for f in fs]


def test_parallel_and_serial_scans_of_stored_chunks_agree_with_memory(workdir, procs):
    agg = Aggregator(workdir, extra=SMALL_CHUNKS)
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 1200 * 10**9
    push_corpus(agg, base)
    mem = answers(agg, base)
    assert len(mem["all fwd"]) == 8 and sum(len(s["values"]) for s in mem["all fwd"]) == 8 * 1500
    assert requests.post(agg.url + "/flush", timeout=120).status_code == 204

    runs = {}
    for conc in ("1", "4"):
        agg.stop()  # memory is empty: every answer below comes from the store
        shutil.rmtree(os.path.join(agg.data_dir, "wal"), ignore_errors=True)
        a = Aggregator(workdir, extra=SMALL_CHUNKS + ["--set", f"querier.max_concurrency={conc}"])
        procs.append(a)
        a.start()
        runs[conc] = answers(a, base)
        m = a.metrics()
        # the answers came from many stored chunks, not from memory
        assert metric_value(m, "sluice_aggregator_query_chunks_fetched_total") > 8 * 3
        agg = a
    nchunks = len(chunk_objects(os.path.join(agg.data_dir, "store")))
    assert nchunks >= 2 * 8, nchunks  # several chunks per stream
    for name in mem:
        if name == "stats":
            continue
        assert runs["1"][name] == mem[name], name
        assert runs["4"][name] == runs["1"][name], name
    # stats: exact entries and bytes everywhere; chunks exact once stored
    for k in ("streams", "entries", "bytes"):
        assert runs["1"]["stats"][k] == runs["4"]["stats"][k] == mem["stats"][k], k
    assert mem["stats"]["entries"] == 8 * 1500
    assert runs["1"]["stats"]["chunks"] == runs["4"]["stats"]["chunks"] == nchunks


def test_query_timeout_ends_a_parallel_scan(workdir, procs):
    agg = Aggregator(workdir, extra=SMALL_CHUNKS + ["--set", "limits.query_timeout=1ns",
                                                     "--set", "querier.max_concurrency=4"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 1200 * 10**9
    push_corpus(agg, base, streams=4)
    assert requests.post(agg.url + "/flush", timeout=120).status_code == 204
    r = requests.get(agg.url + "/loki/api/v1/query_range", timeout=60,
                     params={"query": 'sum(count_over_time({app="exec"}[1m]))',
                             "start": base - 10**9, "end": base + 3000 * 10**6})
    assert r.status_code == 504, r.text
    assert "timed out" in r.text
    # and the process is still answering
    assert requests.get(agg.url + "/ready", timeout=5).status_code == 200


def test_index_cache_is_bounded(workdir, procs):
    agg = Aggregator(workdir, extra=SMALL_CHUNKS + ["--set", "querier.index_cache_size=1"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 1200 * 10**9
    push_corpus(agg, base, streams=3, per=600)
    assert requests.post(agg.url + "/flush", timeout=120).status_code == 204
    agg.stop()
    shutil.rmtree(os.path.join(agg.data_dir, "wal"), ignore_errors=True)
    agg.start()
    for _ in range(3):
        got = agg.lines('{app="exec"}', since_s=3600)
        assert len(got) == 3 * 600
    m = agg.metrics()
    loaded = metric_value(m, "sluice_aggregator_query_index_files_loaded_total")
    assert loaded >= 3  # dropped after each query, so loaded again
    assert metric_value(m, "sluice_aggregator_query_index_cache_evictions_total") >= 2
    assert metric_value(m, "sluice_aggregator_query_index_cache_bytes") == 0


def cache_files(d):
    return [os.path.join(p, f) for p, _, fs in os.walk(d) for f in fs if f.endswith(".chunk")]


def test_chunk_cache_in_front_of_s3(workdir, procs):
    s3 = S3rver(workdir).start()
    try:
        cache = os.path.join(workdir, "cache")
        extra = s3_args(s3) + SMALL_CHUNKS + [
            "--set", f"querier.chunk_cache.dir={cache}",
            "--set", "querier.chunk_cache.max_size=64MiB"]
        agg = Aggregator(workdir, extra=extra)
        procs.append(agg)
        agg.start()
        base = time.time_ns() - 1200 * 10**9
        push_corpus(agg, base, streams=3, per=800)
        assert requests.post(agg.url + "/flush", timeout=120).status_code == 204
        nchunks = sum(1 for k in s3.object_keys() if k.startswith("chunks/"))
        assert nchunks > 3
        agg.kill9()
        shutil.rmtree(os.path.join(agg.data_dir, "wal"), ignore_errors=True)
        agg.start()

        want = agg.lines('{app="exec"}')
        assert len(want) == 3 * 800
        m = agg.metrics()
        assert metric_value(m, "sluice_aggregator_chunk_cache_misses_total") == nchunks
        assert metric_value(m, "sluice_aggregator_query_chunks_fetched_total") == nchunks
        wait_for(lambda: len(cache_files(cache)) == nchunks, 10, what="cache files")
        assert agg.lines('{app="exec"}') == want
        m = agg.metrics()
        assert metric_value(m, "sluice_aggregator_chunk_cache_hits_total") == nchunks
        assert metric_value(m, "sluice_aggregator_query_chunks_fetched_total") == nchunks
        assert metric_value(m, "sluice_aggregator_chunk_cache_files") == nchunks

        # a restart keeps the cache: nothing is fetched from S3 again
        agg.stop()
        agg.start()
        assert agg.lines('{app="exec"}') == want
        m = agg.metrics()
        assert metric_value(m, "sluice_aggregator_chunk_cache_hits_total") == nchunks
        assert (metric_value(m, "sluice_aggregator_query_chunks_fetched_total") or 0) == 0

        # a damaged file is a miss (refetched), never a wrong answer
        victim = cache_files(cache)[0]
        with open(victim, "r+b") as f:
            f.truncate(10)
        assert agg.lines('{app="exec"}') == want
        m = agg.metrics()
        assert metric_value(m, "sluice_aggregator_chunk_cache_errors_total") == 1
        assert metric_value(m, "sluice_aggregator_query_chunks_fetched_total") == 1

        # bounded: a cache smaller than the chunks evicts, and still answers right
        agg.stop()
        size = sorted(os.path.getsize(f) for f in cache_files(cache))[-1]
        limit = 2 * size + 100
        agg2 = Aggregator(workdir, extra=s3_args(s3) + SMALL_CHUNKS + [
            "--set", f"querier.chunk_cache.dir={cache}",
            "--set", f"querier.chunk_cache.max_size={limit}"])
        procs.append(agg2)
        agg2.start()
        assert sum(os.path.getsize(f) for f in cache_files(cache)) <= limit  # trimmed at start
        assert agg2.lines('{app="exec"}') == want
        m = agg2.metrics()
        assert metric_value(m, "sluice_aggregator_chunk_cache_evictions_total") > 0
        assert metric_value(m, "sluice_aggregator_chunk_cache_bytes") <= limit
        assert sum(os.path.getsize(f) for f in cache_files(cache)) <= limit
    finally:
        s3.stop()


def test_big_streams_in_memory_scanned_in_slices_agree_with_serial(workdir, procs):
    """Metric queries and index/stats scan streams of 32 Ki entries or more in
    memory in time slices on the pool: the answers are those of a serial
    scan (log queries, which stop early, scan memory serially)."""
    aggs = []
    for conc in ("1", "4"):
        a = Aggregator(os.path.join(workdir, conc), extra=["--set", "limits.ingestion_rate_mb=0",
                                                          "--set", f"querier.max_concurrency={conc}"])
        os.makedirs(os.path.join(workdir, conc), exist_ok=True)
        procs.append(a)
        a.start()
        aggs.append(a)
    base = time.time_ns() - 1200 * 10**9
    n = 70000
    for k in range(0, n, 5000):
        values = [[str(base + i * 10_000_000 + (i % 3)), f"big level={'warn' if i % 11 else 'error'} "
                   f"i={i}"] for i in range(k, min(n, k + 5000))]
        small = [[str(base + i * 10_000_000), f"small i={i}"] for i in range(k, k + 50)]
        for a in aggs:
            r = a.push_json([{"stream": {"app": "big"}, "values": values},
                             {"stream": {"app": "small"}, "values": small}])
            assert r.status_code == 204, r.text
    start, end = base - 10**9, base + n * 10_000_000 + 10**9
    got = []
    for a in aggs:
        out = {}
        for name, q, extra in [
            ("fwd", '{app=~"big|small"}', {"direction": "forward", "limit": 200000}),
            ("bwd", '{app="big"}', {"direction": "backward", "limit": 200000}),
            ("newest", '{app="big"}', {"limit": 30}),
            ("oldest", '{app="big"}', {"limit": 30, "direction": "forward"}),
            ("filter", '{app="big"} |= "level=error"', {"limit": 10000}),
            ("count", 'sum by (app) (count_over_time({app=~".+"} |= "i=" [1m]))', {"step": "60s"}),
            ("levels", 'sum by (level) (count_over_time({app="big"} | logfmt [5m]))',
             {"step": "300s"}),
            ("bytes", 'bytes_over_time({app="big"}[7m])', {"step": "420s"}),
        ]:
            out[name] = get(a, "/loki/api/v1/query_range", query=q, start=start, end=end,
                            **extra)["result"]
        out["stats"] = get(a, "/loki/api/v1/index/stats", query='{app="big"}', start=start,
                           end=end)
        got.append(out)
    assert sum(len(s["values"]) for s in got[0]["fwd"]) == n + 14 * 50
    assert len(got[0]["filter"][0]["values"]) == len(range(0, n, 11))
    assert got[0]["stats"]["entries"] == n
    last_step = start + 2 * 300 * 10**9  # steps at start, +5m, +10m; 5m windows tile them
    want = sum(1 for i in range(n) if base + i * 10_000_000 + (i % 3) <= last_step)
    assert sum(float(v) for s in got[0]["levels"] for _, v in s["values"]) == want
    for name in got[0]:
        assert got[1][name] == got[0][name], name


def test_shutdown_stops_a_running_query(workdir, procs):
    """SIGTERM while a long query runs: the query answers 503 at once and the
    process exits, instead of both waiting for the query's timeout."""
    import signal
    import threading
    agg = Aggregator(workdir, extra=["--set", "limits.query_timeout=10m",
                                     "--set", "limits.ingestion_rate_mb=0"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 600 * 10**9
    n = 40000
    for k in range(0, n, 5000):
        # every line costs the regex its whole match limit (exponential backtracking)
        values = [[str(base + i * 1000), "a" * 40 + f"c d {i}"] for i in range(k, k + 5000)]
        assert agg.push_json([{"stream": {"app": "slow"}, "values": values}]).status_code == 204
    out = {}

    def run():
        t0 = time.monotonic()
        r = requests.get(agg.url + "/loki/api/v1/query", timeout=600, params={
            "query": 'sum(count_over_time({app="slow"} |~ "(a|aa)+d" [1h]))',
            "time": base + 10**9 * 300})
        out["status"], out["text"], out["t"] = r.status_code, r.text, time.monotonic() - t0

    th = threading.Thread(target=run)
    th.start()
    time.sleep(1.5)
    assert th.is_alive(), f"the query ended before the signal: {out}"
    t0 = time.monotonic()
    agg.proc.send_signal(signal.SIGTERM)
    th.join(60)
    assert not th.is_alive()
    assert out["status"] == 503, out
    assert "shutting down" in out["text"]
    assert time.monotonic() - t0 < 20
    agg.proc.wait(30)
    assert agg.proc.returncode == 0
