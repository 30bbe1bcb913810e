"""Label names, label values and series from the ingester's memory (its label postings)
are the answers a user expects from the pushed data, and stay identical after POST
/flush (memory + store) and after a restart (the index files alone), over the whole
range and over a narrow one that leaves some streams out; streams that leave memory
after the flush and come back are found again."""
import time

import requests

from conftest import Aggregator, metric_value, wait_for

S = 10**9
NSTREAMS = 240


def stream_labels(i):
    ls = {"app": f"app-{i % 12}", "namespace": f"ns-{i % 3}", "pod": f"pod-{i}"}
    if i % 4 == 0:
        ls["team"] = f"team-{i % 5}"
    if i % 7 == 0:  # more labels than the common case
        ls.update({"zone": f"z-{i % 2}", "node": f"n-{i % 3}", "tier": "web", "rack": "r1"})
    return ls


def stream_times(base, i):
    """Three entries per stream, the streams spread over ~40 minutes."""
    first = base + (i * 37 % 2400) * S
    return [first, first + 5 * S, first + 20 * S]


def push_all(agg, base, which):
    streams = []
    for i in which:
        streams.append({"stream": stream_labels(i),
                        "values": [[str(t), f"line {k} of {i}"]
                                   for k, t in enumerate(stream_times(base, i))]})
    r = agg.push_json(streams)
    assert r.status_code == 204, r.text


def expected(base, which, start, end):
    """What Loki answers: the streams whose [first, last] entry overlaps [start, end)."""
    sel = [stream_labels(i) for i in which
           if stream_times(base, i)[-1] >= start and stream_times(base, i)[0] < end]
    return sel


def get(agg, path, **params):
    r = requests.get(agg.url + path, params=params, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def answers(agg, base):
    """Every answer the test compares, keyed by a description."""
    full = (base - 3600 * S, base + 3600 * S)
    narrow = (base + 1000 * S, base + 1500 * S)
    out = {}
    for rname, (start, end) in (("full", full), ("narrow", narrow)):
        t = {"start": str(start), "end": str(end)}
        out[rname, "labels"] = get(agg, "/loki/api/v1/labels", **t)
        for name in ("app", "pod", "team", "zone", "missing"):
            out[rname, "values", name] = get(agg, f"/loki/api/v1/label/{name}/values", **t)
        out[rname, "values pod {app=app-3}"] = get(agg, "/loki/api/v1/label/pod/values",
                                                   query='{app="app-3"}', **t)
        for m in ('{app="app-3"}', '{app="app-3", namespace="ns-0"}',
                  '{app=~"app-1.*", team!=""}', '{namespace=~"ns-[12]", team="team-0"}',
                  '{pod="pod-7", app="app-7"}', '{pod="pod-7", app="app-8"}',
                  '{app="nope"}'):
            out[rname, "series", m] = get(agg, "/loki/api/v1/series", **{"match[]": m}, **t)
        out[rname, "series two"] = get(agg, "/loki/api/v1/series",
                                       **{"match[]": ['{team="team-1"}', '{zone="z-0"}']}, **t)
    return out


def check_against_model(ans, base, which):
    full = (base - 3600 * S, base + 3600 * S)
    narrow = (base + 1000 * S, base + 1500 * S)
    for rname, (start, end) in (("full", full), ("narrow", narrow)):
        exp = expected(base, which, start, end)
        assert 0 < len(exp) <= len(which)
        if rname == "narrow":
            assert len(exp) < len(which)  # the narrow range leaves streams out
        names = sorted({k for ls in exp for k in ls})
        assert ans[rname, "labels"] == names
        for name in ("app", "pod", "team", "zone", "missing"):
            vals = sorted({ls[name] for ls in exp if name in ls})
            assert ans[rname, "values", name] == vals, (rname, name)
        assert ans[rname, "values pod {app=app-3}"] == sorted(
            ls["pod"] for ls in exp if ls["app"] == "app-3")

        def series(pred):
            return sorted((ls for ls in exp if pred(ls)), key=lambda d: sorted(d.items()))

        def got(key):
            return sorted(ans[key], key=lambda d: sorted(d.items()))

        assert got((rname, "series", '{app="app-3"}')) == series(lambda ls: ls["app"] == "app-3")
        assert got((rname, "series", '{app="app-3", namespace="ns-0"}')) == series(
            lambda ls: ls["app"] == "app-3" and ls["namespace"] == "ns-0")
        assert got((rname, "series", '{app=~"app-1.*", team!=""}')) == series(
            lambda ls: ls["app"].startswith("app-1") and ls.get("team", "") != "")
        assert got((rname, "series", '{namespace=~"ns-[12]", team="team-0"}')) == series(
            lambda ls: ls["namespace"] in ("ns-1", "ns-2") and ls.get("team") == "team-0")
        assert got((rname, "series", '{pod="pod-7", app="app-7"}')) == series(
            lambda ls: ls["pod"] == "pod-7")
        assert ans[rname, "series", '{pod="pod-7", app="app-8"}'] == []
        assert ans[rname, "series", '{app="nope"}'] == []
        assert got((rname, "series two")) == series(
            lambda ls: ls.get("team") == "team-1" or ls.get("zone") == "z-0")


def test_labels_and_series_same_from_memory_store_and_index(workdir, procs):
    agg = Aggregator(workdir, extra=("--set", "limits.max_streams_per_tenant=0"))
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 3000 * S
    everything = range(NSTREAMS)
    push_all(agg, base, everything)
    in_memory = answers(agg, base)
    check_against_model(in_memory, base, everything)

    r = requests.post(agg.url + "/flush", timeout=120)
    assert r.status_code in (200, 204), r.text
    # the flushed streams leave memory once stored and indexed
    wait_for(lambda: metric_value(agg.metrics(), "sluice_aggregator_streams_active") == 0,
             60, what="streams to leave memory after /flush")
    assert answers(agg, base) == in_memory
    # the postings' memory, as of the flush's cut (the streams were still in memory)
    assert metric_value(agg.metrics(), "sluice_aggregator_ingester_postings_bytes") > 0

    agg.stop()
    agg.start()
    assert answers(agg, base) == in_memory

    # Some flushed streams come back into memory (their old values again), with the
    # store holding them too: still the same answers.
    push_all(agg, base + 1 * S, range(0, NSTREAMS, 3))
    wait_for(lambda: metric_value(agg.metrics(), "sluice_aggregator_streams_active") > 0,
             30, what="streams in memory again")
    again = answers(agg, base)
    assert again["full", "labels"] == in_memory["full", "labels"]
    for key in in_memory:
        if key[0] == "full":
            assert sorted(map(str, again[key])) == sorted(map(str, in_memory[key])), key
