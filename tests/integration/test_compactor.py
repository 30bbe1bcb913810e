"""Compactor: after several flushes a day's index files become one with the
same query answers; retention deletes chunks and index entries past
limits.retention_period; a compactor killed between its steps leaves nothing
behind (orphaned chunks are collected after compactor.orphan_grace_period)."""
import os
import time

import pytest
import requests

from conftest import Aggregator, metric_value, wait_for

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


@pytest.mark.parametrize("step", ["after_merge", "after_index"])
def test_retention_killed_between_steps_leaves_nothing_behind(workdir, procs, step):
    """The compactor dies after writing the merged index (inputs not deleted),
    or after deleting the inputs (the index no longer lists the expired chunk)
    but before deleting the chunk. The next run finishes the job: through the
    old inputs still listing it, or, for the orphan, once it is older than
    compactor.orphan_grace_period. The live data is untouched."""
    opts = ["--set", "limits.reject_old_samples=false", "--set", "limits.retention_period=24h",
            "--set", "compactor.interval=1h", "--set", "compactor.orphan_grace_period=2s"]
    agg = Aggregator(workdir, extra=opts)
    procs.append(agg)
    agg.start()
    now = time.time_ns()
    push(agg, "old", now - 3 * DAY, 100)
    post(agg, "/flush")
    push(agg, "new", now - 60 * 10**9, 100)
    post(agg, "/flush")
    assert len(store_keys(agg, "chunks")) == 2
    # a clean stop empties the WAL (everything is stored), so the crash below
    # leaves only the store to look at
    assert agg.stop() == 0
    agg.env = {"SLUICE_TEST_COMPACTOR_CRASH": step}
    agg.start()
    try:
        requests.post(agg.url + "/compactor/run", timeout=60)
    except requests.ConnectionError:
        pass
    wait_for(lambda: not agg.alive(), 30, what="the compactor's test crash")
    assert agg.stop() == 86
    old_day = "%05d" % ((now - 3 * DAY) // DAY)
    # after_merge: the old day's input still lists the chunk; after_index: the
    # expired chunk is left with no index listing it
    assert any(k.startswith(old_day + "/") for k in store_keys(agg, "index")) == \
        (step == "after_merge")
    assert len(store_keys(agg, "chunks")) == 2

    agg.env = None
    agg.start()
    if step == "after_index":  # the index no longer lists the old chunk
        got = lines(agg, 4 * 86400)
        assert len(got) == 100 and {a for _, a, _ in got} == {"new"}
    time.sleep(2.5)  # past the grace period since the chunk was written
    post(agg, "/compactor/run")
    assert len(store_keys(agg, "chunks")) == 1
    assert not any(k.startswith(old_day + "/") for k in store_keys(agg, "index"))
    m = agg.metrics()
    orphans = 1 if step == "after_index" else 0
    assert metric_value(m, "sluice_aggregator_compactor_orphaned_chunks_deleted_total") == orphans
    assert metric_value(m, "sluice_aggregator_compactor_chunks_deleted_total") == 1 - orphans
    assert ("compactor: orphaned chunk deleted" in agg.logs()) == (orphans == 1)
    got = lines(agg, 4 * 86400)
    assert len(got) == 100 and {a for _, a, _ in got} == {"new"}


def test_unreferenced_chunks_younger_than_grace_are_kept(workdir, procs):
    """A chunk no index lists but written recently may belong to a flush whose
    index file is still to come: it stays; an old one goes."""
    agg = Aggregator(workdir, extra=["--set", "compactor.interval=1h",
                                     "--set", "compactor.orphan_grace_period=1h"])
    procs.append(agg)
    agg.start()
    push(agg, "a", time.time_ns() - 600 * 10**9, 200)
    post(agg, "/flush")
    chunks = store_keys(agg, "chunks")
    assert len(chunks) == 1
    root = os.path.join(agg.data_dir, "store", "chunks")
    src = os.path.join(root, chunks[0])
    stream_dir = os.path.dirname(src)
    old = os.path.join(stream_dir, "1000-2000-00000000")
    fresh = os.path.join(stream_dir, "3000-4000-00000000")
    for dst in (old, fresh):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(src, (two_hours_ago, two_hours_ago))  # referenced: kept whatever its age
    before = lines(agg, 3600)
    assert len(before) == 200

    post(agg, "/compactor/run")
    left = store_keys(agg, "chunks")
    assert sorted(left) == sorted([chunks[0], os.path.relpath(fresh, root)]), left
    assert metric_value(agg.metrics(),
                        "sluice_aggregator_compactor_orphaned_chunks_deleted_total") == 1
    assert lines(agg, 3600) == before
