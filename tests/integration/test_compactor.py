"""Compactor: after several flushes a day's index files become one with the
same query answers; retention deletes chunks and index entries past
limits.retention_period."""
import os
import time

import requests

from conftest import Aggregator, metric_value

DAY = 86400 * 10**9


def store_keys(agg, top):
    root = os.path.join(agg.data_dir, "store", top)
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(out)


def push(agg, app, base_ns, n, step_ns=10**6):
    values = [[str(base_ns + i * step_ns), f"{app} line {i:05d}"] for i in range(n)]
    r = agg.push_json([{"stream": {"app": app, "env": "compact"}, "values": values}])
    assert r.status_code == 204, r.text


def post(agg, path):
    r = requests.post(agg.url + path, timeout=120)
    assert r.status_code == 204, r.text


def lines(agg, since_s):
    return [(t, s["app"], l) for t, s, l in agg.lines('{env="compact"}', since_s=since_s)]


def periods(keys):
    out = {}
    for k in keys:
        day, tenant, _ = k.split("/")
        out.setdefault((day, tenant), []).append(k)
    return out


def test_flushes_merge_into_one_index_file(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 600 * 10**9
    for i, app in enumerate(["a", "b", "a", "c"]):
        push(agg, app, base + i * 10**9 * 60, 200)
        post(agg, "/flush")
    index = store_keys(agg, "index")
    assert len(index) >= 4, index
    before = lines(agg, 3600)
    assert len(before) == 800

    post(agg, "/compactor/run")
    after_keys = store_keys(agg, "index")
    per = periods(after_keys)
    assert all(len(v) == 1 for v in per.values()), after_keys
    assert all(v[0].split("/")[2].startswith("compactor-") for v in per.values())
    assert lines(agg, 3600) == before
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_compactor_index_files_merged_total") == len(index)
    assert metric_value(m, "sluice_aggregator_compactor_runs_total", {"result": "success"}) >= 1
    assert metric_value(m, "sluice_aggregator_compactor_chunks_deleted_total") == 0

    # still the same after a restart (fresh index cache, WAL emptied by the flushes)
    agg.stop()
    agg.start()
    assert lines(agg, 3600) == before


def test_retention_deletes_old_chunks_and_days(workdir, procs):
    agg = Aggregator(workdir, extra=["--set", "limits.reject_old_samples=false",
                                     "--set", "limits.retention_period=24h",
                                     "--set", "compactor.interval=1h"])
    procs.append(agg)
    agg.start()
    now = time.time_ns()
    push(agg, "old", now - 3 * DAY, 100)
    post(agg, "/flush")
    push(agg, "new", now - 60 * 10**9, 100)
    post(agg, "/flush")
    old_day = "%05d" % ((now - 3 * DAY) // DAY)
    assert any(k.startswith(old_day + "/") for k in store_keys(agg, "index"))
    chunks_before = store_keys(agg, "chunks")
    assert len(chunks_before) == 2
    assert {a for _, a, _ in lines(agg, 4 * 86400)} == {"old", "new"}

    post(agg, "/compactor/run")
    assert not any(k.startswith(old_day + "/") for k in store_keys(agg, "index"))
    assert len(store_keys(agg, "chunks")) == 1
    got = lines(agg, 4 * 86400)
    assert len(got) == 100 and {a for _, a, _ in got} == {"new"}
    assert metric_value(agg.metrics(), "sluice_aggregator_compactor_chunks_deleted_total") == 1


def test_compactor_disabled_and_read_target(workdir, procs):
    agg = Aggregator(workdir, extra=["--set", "compactor.enabled=false"])
    procs.append(agg)
    agg.start()
    r = requests.post(agg.url + "/compactor/run", timeout=30)
    assert r.status_code == 400
