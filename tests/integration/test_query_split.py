"""Split metric queries (querier.split_queries_by_interval): a metric
query_range evaluated in step-aligned parts on several threads answers byte
for byte what the whole evaluation answers, from memory and from stored
chunks, for range and vector aggregations, offsets, steps that do not divide
the range, topk, binary operators and label_replace; its stats count every
line once. limits.max_query_bytes_read refuses a query reading more raw
bytes with a 400 naming the limit."""
import random
import time

import requests

from conftest import Aggregator, metric_value

MINUTE = 60 * 10**9
QUERIES = [
    ('sum by (level) (count_over_time({app="split"} | logfmt [5m]))', "60s", 0),
    ('rate({app="split"}[2m])', "47s", 0),
    ('count_over_time({app="split"} [5m] offset 3m)', "61s", 0),
    ('topk(2, sum by (pod) (rate({app="split"}[5m])))', "90s", 0),
    ('bottomk(1, sum by (pod) (count_over_time({app="split"}[3m])))', "53s", 0),
    ('sum by (pod) (count_over_time({app="split"} |= "level=error" [5m])) / '
     'sum by (pod) (count_over_time({app="split"}[5m]))', "70s", 0),
    ('avg_over_time({app="split"} | logfmt | unwrap latency [3m]) by (pod)', "45s", 7),
    ('quantile_over_time(0.9, {app="split"} | logfmt | unwrap latency [5m]) by (level)', "100s", 0),
    ('stddev_over_time({app="split"} | logfmt | unwrap latency [4m]) by (pod)', "33s", 0),
    ('absent_over_time({app="split", pod="gap"}[1m])', "60s", 0),
    ('label_replace(sum by (pod) (bytes_over_time({app="split"}[4m])), "x", "p-$1", "pod", '
     '"(.*)")', "75s", 0),
    ('sum(count_over_time({app="split"}[1m])) > 8', "30s", 0),
    ('sort_desc(sum by (pod) (rate({app="split"}[2m])))', "60s", 0),
    ('max_over_time({app="split"} | logfmt | unwrap latency [2m]) by (level) '
     '- min_over_time({app="split"} | logfmt | unwrap latency [2m]) by (level)', "57s", 0),
    ('sum(rate({app="split"} | logfmt | level="info" [10m]))', "120s", 3),
]


def push_data(aggs, base, rnd):
    """~110 minutes of lines for four pods, each stream pushed in time order:
    pod "gap" only in the first 40 minutes, pod "late" only in the last 25."""
    pods = {"a": (0, 110), "b": (0, 110), "gap": (0, 40), "late": (85, 110)}
    for pod, (m0, m1) in pods.items():
        entries, ts = [], base + m0 * MINUTE + rnd.randrange(10**9)
        while ts < base + m1 * MINUTE:
            level = rnd.choice(["info", "info", "info", "warn", "error"])
            lat = round(rnd.uniform(0.001, 3.0), 3)
            entries.append([str(ts), f"level={level} latency={lat} pod={pod} n={len(entries)}"])
            ts += rnd.randrange(2 * 10**9, 12 * 10**9)
        for k in range(0, len(entries), 200):
            for agg in aggs:
                r = agg.push_json([{"stream": {"app": "split", "pod": pod},
                                    "values": entries[k:k + 200]}])
                assert r.status_code == 204, r.text


def result_text(r):
    """The answer without its stats (which hold timings)."""
    assert r.status_code == 200, r.text[:500]
    t = r.text
    return t[:t.index(',"stats"')], r.json()["data"]["stats"]["summary"]


def compare_all(whole, split, base, seed):
    rnd = random.Random(seed)
    nsplit = 0
    for q, step, shift_s in QUERIES:
        # start off the minute grid; end not a whole number of steps away
        start = base + rnd.randrange(0, 300) * 10**9 + shift_s * 10**9
        end = base + 110 * MINUTE - rnd.randrange(0, 200) * 10**9
        args = dict(start=start, end=end, step=step)
        a, sa = result_text(whole.query_range(q, **args))
        b, sb = result_text(split.query_range(q, **args))
        assert a == b, f"{q}: split answer differs\nwhole: {a[:600]}\nsplit: {b[:600]}"
        assert '"result":[]' not in a or "absent" in q or ">" in q, f"{q}: empty answer"
        assert sa["splits"] == 1
        assert sb["splits"] >= 2, f"{q}: not split: {sb}"
        nsplit += 1
        # stats: every line counted once, whatever the parts
        assert sb["totalLinesProcessed"] == sa["totalLinesProcessed"], q
        assert sb["totalBytesProcessed"] == sa["totalBytesProcessed"], q
        assert sa["totalLinesProcessed"] > 0, q
    return nsplit


def workdir(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    return str(d)


def start_pair(tmp_path, extra=()):
    whole = Aggregator(workdir(tmp_path, "whole"), extra=[
        "--set", "querier.split_queries_by_interval=0s", "--set", "limits.ingestion_rate_mb=0",
        *extra]).start()
    split = Aggregator(workdir(tmp_path, "split"), extra=[
        "--set", "querier.split_queries_by_interval=20m", "--set", "querier.max_concurrency=4",
        "--set", "limits.ingestion_rate_mb=0", *extra]).start()
    return whole, split


def test_split_answers_equal_whole_memory_and_store(tmp_path):
    base = (time.time_ns() - 115 * MINUTE) // MINUTE * MINUTE
    whole, split = start_pair(tmp_path, ["--set", "ingester.chunk_target_size=8KiB",
                                         "--set", "ingester.chunk_block_size=2KiB"])
    try:
        push_data([whole, split], base, random.Random(5))
        assert compare_all(whole, split, base, 1) == len(QUERIES)
        for agg in (whole, split):  # everything into stored chunks
            r = requests.post(agg.url + "/flush", timeout=60)
            assert r.status_code in (200, 204), r.text
        assert compare_all(whole, split, base, 2) == len(QUERIES)
        parts = metric_value(split.metrics(), "sluice_aggregator_query_split_parts_total")
        assert parts >= 2 * 2 * len(QUERIES), parts
        assert metric_value(whole.metrics(), "sluice_aggregator_query_split_parts_total") == 0
        # a short query or an instant query is never split
        r = split.query_range('count_over_time({app="split"}[1m])', start=base,
                              end=base + 10 * MINUTE, step="60s")
        assert r.json()["data"]["stats"]["summary"]["splits"] == 1
        r = requests.get(split.url + "/loki/api/v1/query", timeout=30, params={
            "query": 'sum(count_over_time({app="split"}[100m]))', "time": str(base + 105 * MINUTE)})
        assert r.status_code == 200 and r.json()["data"]["stats"]["summary"]["splits"] == 1
    finally:
        whole.stop()
        split.stop()
    whole.check_sanitizers()
    split.check_sanitizers()


def test_split_errors_as_whole(tmp_path):
    """A pipeline error and the series limit answer as the whole query does."""
    base = (time.time_ns() - 115 * MINUTE) // MINUTE * MINUTE
    whole, split = start_pair(tmp_path, ["--set", "limits.max_query_series=3"])
    try:
        push_data([whole, split], base, random.Random(9))
        args = dict(start=base, end=base + 110 * MINUTE, step="60s")
        for q in ['sum by (n) (count_over_time({app="split"} | logfmt [5m]))',
                  'sum by (pod) (rate({app="split"} | json [5m]))']:
            a = whole.query_range(q, **args)
            b = split.query_range(q, **args)
            assert a.status_code == 400, a.text[:300]
            assert (b.status_code, b.text) == (a.status_code, a.text)
        # each failed in a part, then ran whole (counted and logged)
        assert metric_value(split.metrics(),
                            "sluice_aggregator_query_split_fallbacks_total") == 2
        assert "evaluating the whole query" in split.logs()
    finally:
        whole.stop()
        split.stop()


def test_max_query_bytes_read(tmp_path):
    base = (time.time_ns() - 115 * MINUTE) // MINUTE * MINUTE
    agg = Aggregator(workdir(tmp_path, "a"), extra=[
        "--set", "limits.max_query_bytes_read=20KB", "--set", "limits.ingestion_rate_mb=0",
        "--set", "querier.split_queries_by_interval=20m"]).start()
    try:
        push_data([agg], base, random.Random(3))
        q = '{app="split", pod="a"}'
        # the whole range: far more than 20 KB of lines
        for query, extra in [(q, {"limit": 5000}),
                             (f"count_over_time({q}[5m])", {"step": "60s"}),
                             (f'sum(rate({{app="split"}} | logfmt [5m]))', {"step": "60s"})]:
            r = agg.query_range(query, start=base, end=base + 110 * MINUTE, **extra)
            assert r.status_code == 400, (query, r.status_code, r.text[:300])
            assert "max_query_bytes_read" in r.text and "too many bytes" in r.text, r.text
        assert metric_value(agg.metrics(),
                            "sluice_aggregator_query_bytes_limit_refused_total") == 3
        # five minutes of one pod: well under the limit
        r = agg.query_range(f"count_over_time({q}[1m])", start=base + 10 * MINUTE,
                            end=base + 14 * MINUTE, step="60s")
        assert r.status_code == 200, r.text[:300]
        stats = r.json()["data"]["stats"]["summary"]
        assert 0 < stats["totalBytesProcessed"] <= 20000
        r = agg.query_range(q, start=base + 10 * MINUTE, end=base + 15 * MINUTE, limit=1000)
        assert r.status_code == 200 and r.json()["data"]["result"], r.text[:300]
    finally:
        agg.stop()
    agg.check_sanitizers()
