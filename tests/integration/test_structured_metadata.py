"""Structured metadata end to end: entries pushed with metadata through Loki
JSON (third element of a value), Loki protobuf (structuredMetadata) and the
native msgpack push come back with it from memory, from stored chunks after
a flush and a restart without WAL, and after a SIGKILL and WAL replay; in
queries it behaves as labels of the entry, as in Loki."""
import json
import os
import shutil
import time

import msgpack
import pytest
import requests
import websocket
import zstandard

from conftest import Agent, Aggregator, cri_line, metric_value, pod_log_path, urlq, wait_for
from loki_proto import push_request, snappy_compress


def push_json(agg, labels, entries):
    values = [[str(ts), line] + ([meta] if meta else []) for ts, line, meta in entries]
    r = agg.push_json([{"stream": labels, "values": values}])
    assert r.status_code == 204, r.text


def push_proto(agg, labels, entries):
    text = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    body = push_request([(text, [(ts, line, meta or {}) for ts, line, meta in entries])])
    r = requests.post(agg.url + "/loki/api/v1/push", data=snappy_compress(body),
                      headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 204, r.text


def push_native(agg, labels, entries):
    ents = [[ts, line] + ([meta] if meta else []) for ts, line, meta in entries]
    body = msgpack.packb({"streams": [{"labels": labels, "entries": ents}]}, use_bin_type=True)
    r = requests.post(agg.url + "/api/v1/push",
                      data=zstandard.ZstdCompressor(level=1).compress(body),
                      headers={"Content-Type": "application/x-msgpack",
                               "Content-Encoding": "zstd"}, timeout=10)
    assert r.status_code == 204, r.text


PUSHERS = {"json": push_json, "proto": push_proto, "native": push_native}


def make_entries(run, via, base, n=30):
    """n entries: every third traced "abc", every third "def" (with a user),
    the rest without metadata; one carries a name that is also a stream label."""
    out = []
    for i in range(n):
        ts = base + i * 1000
        if i % 3 == 0:
            meta = {"trace_id": "abc"}
        elif i % 3 == 1:
            meta = {"trace_id": "def", "user": f"u{i % 2}"}
        else:
            meta = None
        if i == 4:
            meta = {"trace_id": "def", "user": "u0", "via": "meta-says"}
        out.append((ts, f"{via} line {i} of {run}", meta))
    return out


def push_all(agg, run, base):
    """Pushes through every path; returns the expected (ts, labels, line) list."""
    want = []
    for k, (via, push) in enumerate(sorted(PUSHERS.items())):
        labels = {"app": "sm", "run": run, "via": via}
        entries = make_entries(run, via, base + k * 100)
        push(agg, labels, entries)
        for ts, line, meta in entries:
            ls = dict(labels)
            for mk, mv in (meta or {}).items():
                # a metadata name that is a stream label gets the _extracted suffix
                ls[mk + "_extracted" if mk in labels else mk] = mv
            want.append((ts, ls, line))
    want.sort(key=lambda e: e[0])
    return want


def instant(agg, query):
    r = requests.get(agg.url + "/loki/api/v1/query",
                     params={"query": query, "time": str(time.time_ns())}, timeout=30)
    assert r.status_code == 200, r.text
    return {json.dumps(s["metric"], sort_keys=True): float(s["value"][1])
            for s in r.json()["data"]["result"]}


def matrix_last(agg, query):
    """A metric query_range over the last 30 s (step 5 s): the last point of
    every series, keyed by its labels."""
    now = time.time_ns()
    r = agg.query_range(query, start=now - 30 * 10**9, end=now, step="5s")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    return {json.dumps(s["metric"], sort_keys=True): float(s["values"][-1][1])
            for s in data["result"]}


def check(agg, run, want):
    sel = f'{{app="sm", run="{run}"}}'
    # every entry's stream labels are its stream's plus its metadata
    assert agg.lines(sel, since_s=600) == want
    assert agg.lines(sel, since_s=600, direction="backward") == want
    # label filters on metadata
    abc = [e for e in want if e[1].get("trace_id") == "abc"]
    assert len(abc) == 30
    assert agg.lines(sel + ' | trace_id="abc"', since_s=600) == abc
    assert agg.lines(sel + ' | trace_id=~"d.f" and user="u0"', since_s=600) == \
        [e for e in want if e[1].get("trace_id") == "def" and e[1].get("user") == "u0"]
    assert agg.lines(sel + ' | trace_id=""', since_s=600) == \
        [e for e in want if "trace_id" not in e[1]]
    # a stream selector does not match metadata
    assert agg.lines(f'{{run="{run}", trace_id="abc"}}', since_s=600) == []
    # keep and drop act on it; line_format reads it
    kept = agg.lines(sel + " | keep via, trace_id", since_s=600)
    assert [(ts, l) for ts, _, l in kept] == [(ts, l) for ts, _, l in want]
    assert all(set(ls) <= {"via", "trace_id"} for _, ls, _ in kept)
    dropped = agg.lines(sel + " | drop trace_id, user, via_extracted", since_s=600)
    assert {json.dumps(ls, sort_keys=True) for _, ls, _ in dropped} == \
        {json.dumps({"app": "sm", "run": run, "via": v}, sort_keys=True) for v in PUSHERS}
    fmt = agg.lines(sel + ' | trace_id="def" | line_format "{{.trace_id}}/{{.user}}"',
                    since_s=600)
    assert sorted({l for _, _, l in fmt}) == ["def/u0", "def/u1"]
    # grouping of metric queries
    counts = instant(agg, f"sum by (trace_id) (count_over_time({sel}[1h]))")
    assert counts == {'{"trace_id": "abc"}': 30.0, '{"trace_id": "def"}': 30.0, "{}": 30.0}
    assert matrix_last(agg, f"sum by (trace_id) (count_over_time({sel}[1h]))") == counts
    by_user = instant(agg, f'sum by (user) (count_over_time({sel} | trace_id="def" [1h]))')
    assert by_user == {'{"user": "u0"}': 15.0, '{"user": "u1"}': 15.0}


def test_structured_metadata_memory_store_and_wal(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 120 * 10**9
    want = push_all(agg, "r1", base)
    check(agg, "r1", want)  # from memory

    # a parsed label replaces metadata of the same name (Loki's precedence)
    push_json(agg, {"app": "sm", "run": "p"},
              [(base, json.dumps({"trace_id": "parsed"}), {"trace_id": "meta"}),
               (base + 1, json.dumps({"other": 1}), {"trace_id": "meta"})])
    got = agg.lines('{run="p"} | json', since_s=600)
    assert [ls["trace_id"] for _, ls, _ in got] == ["parsed", "meta"]

    # flushed to the store, restarted with no WAL: the same answers from chunks
    r = requests.post(agg.url + "/flush", timeout=60)
    assert r.status_code in (200, 204), r.text
    assert agg.stop() == 0
    shutil.rmtree(os.path.join(agg.data_dir, "wal"))
    agg.start()
    check(agg, "r1", want)
    assert metric_value(agg.metrics(), "sluice_aggregator_streams_active") in (None, 0.0)

    # memory and store merged: new entries (in memory) next to the stored ones
    want2 = push_all(agg, "r1", base + 60 * 10**9)
    check2 = sorted(want + want2, key=lambda e: e[0])
    assert agg.lines('{app="sm", run="r1"}', since_s=600) == check2

    # acknowledged, then SIGKILL: the WAL replay keeps the metadata
    want3 = push_all(agg, "r3", base)
    agg.kill9()
    agg.start()
    assert "replay" in agg.logs().lower()
    check(agg, "r3", want3)


@pytest.mark.parametrize("level", ["1", "9"])
def test_structured_metadata_survives_recompression(workdir, procs, level):
    """Small ingester blocks joined at flush (level 9) or copied (level 1):
    entries with and without metadata interleave across blocks."""
    agg = Aggregator(workdir, extra=["--set", "ingester.chunk_block_size=1KiB",
                                     "--set", f"ingester.chunk_compression_level={level}"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 120 * 10**9
    entries = []
    for i in range(600):
        meta = {"trace_id": f"t{i // 50}"} if (i // 100) % 2 else None
        entries.append((base + i * 1000, f"line {i:04d} " + "x" * 40, meta))
    push_json(agg, {"app": "rc"}, entries)
    want = [(ts, dict({"app": "rc"}, **(m or {})), l) for ts, l, m in entries]
    assert agg.lines('{app="rc"}', since_s=600) == want
    r = requests.post(agg.url + "/flush", timeout=60)
    assert r.status_code in (200, 204), r.text
    assert agg.stop() == 0
    shutil.rmtree(os.path.join(agg.data_dir, "wal"))
    agg.start()
    assert agg.lines('{app="rc"}', since_s=600) == want
    counts = instant(agg, 'sum by (trace_id) (count_over_time({app="rc"}[1h]))')
    assert counts["{}"] == 300.0
    assert sum(counts.values()) == 600.0


def test_structured_metadata_in_live_tail(aggregator):
    """The live tail shows metadata in the stream labels and filters on it."""
    query = '{app="tl"} | trace_id="abc"'
    url = aggregator.url.replace("http://", "ws://") + "/loki/api/v1/tail?query=" + urlq(query)
    ws = websocket.create_connection(url, timeout=30)
    try:
        now = time.time_ns()
        push_json(aggregator, {"app": "tl"},
                  [(now, "one", {"trace_id": "abc", "user": "ann"}),
                   (now + 1, "two", {"trace_id": "other"}),
                   (now + 2, "three", None),
                   (now + 3, "four", {"trace_id": "abc"})])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2:
            assert time.monotonic() < deadline, f"tail gave {got}"
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(ws.recv())
            for st in msg.get("streams") or []:
                got += [(line, st["stream"]) for _, line in st["values"]]
        assert got == [("one", {"app": "tl", "trace_id": "abc", "user": "ann"}),
                       ("four", {"app": "tl", "trace_id": "abc"})]
    finally:
        ws.close()


@pytest.mark.parametrize("protocol", ["sluice", "loki-protobuf", "loki-json"])
def test_agent_metadata_is_queryable(workdir, procs, aggregator, pods_path, protocol):
    """The agent's structured_metadata stage, shipped in each protocol, is
    filtered and grouped on at the aggregator."""
    config = os.path.join(workdir, "agent.yaml")
    with open(config, "w") as f:
        f.write("pipeline:\n  - json: {expressions: {trace: trace_id}}\n"
                "  - structured_metadata: {trace_id: trace}\n")
    url = aggregator.url + ("/api/v1/push" if protocol == "sluice" else "/loki/api/v1/push")
    agent = Agent(workdir, aggregator.url, pods_path, extra=[
        "--config", config, "--set", f"client.url={url}", "--set", f"client.protocol={protocol}"])
    procs.append(agent)
    agent.start()
    path = pod_log_path(pods_path, "smns", "api-0", "u-1", "app")
    now = time.time_ns() - 30 * 10**9
    with open(path, "w") as f:
        for i in range(20):
            doc = {"msg": f"req {i}"} if i % 4 == 3 else {"msg": f"req {i}", "trace_id": f"t{i % 2}"}
            f.write(cri_line(now + i, "stdout", "F", json.dumps(doc)))
    sel = '{namespace="smns"}'
    got = wait_for(lambda: (lambda g: g if len(g) == 20 else None)(
        aggregator.lines(sel, since_s=600)), 30, what="20 lines from the agent")
    for _, labels, line in got:
        doc = json.loads(line)
        assert labels.get("trace_id") == doc.get("trace_id"), (labels, line)
        assert labels["pod"] == "api-0"
    t0 = [json.loads(l)["msg"] for _, _, l in aggregator.lines(sel + ' | trace_id="t0"',
                                                               since_s=600)]
    assert t0 == [f"req {i}" for i in range(20) if i % 4 != 3 and i % 2 == 0]
    counts = instant(aggregator, f"sum by (trace_id) (count_over_time({sel}[1h]))")
    assert counts == {'{"trace_id": "t0"}': 10.0, '{"trace_id": "t1"}': 5.0, "{}": 5.0}
