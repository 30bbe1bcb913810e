"""Chunks and index in the filesystem object store: /flush writes them, a
restart with an empty WAL answers from the store alone, store and memory are
merged without duplicates, and a SIGKILL in the middle of a flush loses
nothing."""
import os
import shutil
import threading
import time

import requests

from conftest import Aggregator, metric_value, wait_for


def push_lines(agg, app, base_ns, n, prefix="line", step_ns=1000, batch=500, first=0):
    for start in range(first, first + n, batch):
        values = [[str(base_ns + i * step_ns), f"{prefix} {app} {i:06d} " + "x" * 40]
                  for i in range(start, min(first + n, start + batch))]
        r = agg.push_json([{"stream": {"app": app, "env": "test"}, "values": values}])
        assert r.status_code == 204, r.text


def store_keys(agg, top):
    root = os.path.join(agg.data_dir, "store", top)
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(out)


def flush(agg):
    r = requests.post(agg.url + "/flush", timeout=120)
    assert r.status_code == 204, r.text


def all_lines(agg, query='{env="test"}'):
    return agg.lines(query, since_s=6 * 3600)


def test_flush_then_restart_with_empty_wal_reads_the_store(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 1800 * 10**9
    push_lines(agg, "api", base, 3000)
    push_lines(agg, "web", base, 1000)
    flush(agg)
    chunks = store_keys(agg, "chunks")
    index = store_keys(agg, "index")
    assert len(chunks) >= 2, chunks
    assert all(k.startswith("anonymous/") for k in chunks)
    assert len(index) >= 1 and all("/anonymous/" in k and k.endswith(".idx") for k in index)
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_chunks_flushed_total") >= 2
    # memory is released once chunks and index entries are stored
    wait_for(lambda: metric_value(m := agg.metrics(), "sluice_aggregator_ingester_block_bytes") == 0,
             what="block memory released")
    before = all_lines(agg)
    assert len(before) == 4000

    agg.kill9()
    shutil.rmtree(os.path.join(agg.data_dir, "wal"))
    agg.start()
    after = all_lines(agg)
    assert len(after) == 4000
    assert [(t, l) for t, _, l in after] == [(t, l) for t, _, l in before]
    assert {s["app"] for _, s, _ in after} == {"api", "web"}
    # a backward query with a limit gets the newest lines from the store
    r = agg.query_range('{app="api"}', start=base - 10**9, end=time.time_ns(), limit=5,
                        direction="backward")
    vals = r.json()["data"]["result"][0]["values"]
    assert [v[1].split()[2] for v in vals] == ["002999", "002998", "002997", "002996", "002995"]


def test_store_and_memory_merge_without_duplicates(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    old = time.time_ns() - 3 * 3600 * 10**9
    push_lines(agg, "api", old, 2000, prefix="old")
    flush(agg)
    # a client retry of already-stored lines: accepted into memory again (the
    # stream left memory with the flush), but a query must return each line once
    push_lines(agg, "api", old, 100, prefix="old", first=1500)
    recent = time.time_ns() - 30 * 10**9
    push_lines(agg, "api", recent, 500, prefix="new")
    got = all_lines(agg, '{app="api"}')
    keys = [(t, l) for t, _, l in got]
    assert len(keys) == len(set(keys)) == 2500
    assert sum(1 for _, l in keys if l.startswith("new")) == 500
    # flushed again: the duplicate is now in two chunks, still returned once
    flush(agg)
    got = all_lines(agg, '{app="api"}')
    assert len(got) == 2500


def test_sigkill_during_flush_loses_nothing(workdir, procs):
    agg = Aggregator(workdir, extra=("--set", "ingester.chunk_block_size=16KiB"))
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 3600 * 10**9
    apps = [f"svc{i}" for i in range(20)]
    for app in apps:
        push_lines(agg, app, base, 1500)
    total = 1500 * len(apps)

    def do_flush():
        try:
            requests.post(agg.url + "/flush", timeout=60)
        except requests.RequestException:
            pass  # the process is killed under it

    t = threading.Thread(target=do_flush)
    t.start()
    wait_for(lambda: len(store_keys(agg, "chunks")) > 0, timeout=30, interval=0.005,
             what="first chunk stored")
    agg.kill9()
    t.join()
    agg.start()
    got = all_lines(agg)
    keys = [(t, s["app"], l) for t, s, l in got]
    assert len(keys) == len(set(keys)) == total
    # and once everything is flushed, the store alone has every line once
    flush(agg)
    agg.stop()
    assert not [f for f in os.listdir(os.path.join(agg.data_dir, "wal")) if f.endswith(".wal")
                and os.path.getsize(os.path.join(agg.data_dir, "wal", f)) > 8]
    shutil.rmtree(os.path.join(agg.data_dir, "wal"))
    agg.start()
    got = all_lines(agg)
    assert len(got) == total


def test_shutdown_flush_is_bounded_and_the_wal_keeps_what_was_not_stored(workdir, procs):
    """With the store failing, a shutdown gives up flushing after
    ingester.shutdown_flush_timeout, says what it left, and exits; the WAL
    keeps it, so a restart with the store back loses nothing."""
    agg = Aggregator(workdir, extra=["--set", "ingester.shutdown_flush_timeout=2s",
                                     "--set", "ingester.flush_check_period=1h"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 600 * 10**9
    push_lines(agg, "api", base, 1500)
    push_lines(agg, "web", base, 500)
    # a file where the chunks directory must go: every chunk put fails
    blocker = os.path.join(agg.data_dir, "store", "chunks")
    assert not os.path.exists(blocker)
    with open(blocker, "w") as f:
        f.write("not a directory")
    t0 = time.monotonic()
    assert agg.stop(timeout=60) == 0
    took = time.monotonic() - t0
    assert took < 20, took  # 2 s of flushing, plus start-up slack for slow (ASan) builds
    log = agg.logs()
    assert "flush on shutdown incomplete" in log
    assert "chunks_not_flushed=2 entries_not_flushed=2000 tenants=1" in log
    wal = os.path.join(agg.data_dir, "wal")
    assert any(f.endswith(".wal") and os.path.getsize(os.path.join(wal, f)) > 8
               for f in os.listdir(wal))

    os.unlink(blocker)
    agg.start()
    got = all_lines(agg)
    assert len(got) == 2000
    flush(agg)
    assert len(store_keys(agg, "chunks")) == 2
    # a clean stop now empties the WAL: the next start answers from the store
    assert agg.stop() == 0
    agg.start()
    assert all_lines(agg) == got
    assert metric_value(agg.metrics(), "sluice_aggregator_wal_replay_records_total") == 0


def test_chunk_compression_level_is_checked(workdir):
    import subprocess
    from conftest import BIN
    exe = os.path.join(BIN, "sluice-aggregator")
    r = subprocess.run([exe, "--check-config", "--set", "ingester.chunk_compression_level=30"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "ingester.chunk_compression_level" in r.stdout + r.stderr
    r = subprocess.run([exe, "--check-config", "--set", "ingester.chunk_compression_level=19"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "chunk_compression_level: 19" in r.stdout


def test_shutdown_does_not_wait_for_a_hung_s3_endpoint(workdir, procs):
    """An S3 endpoint that accepts connections and never answers holds a flush
    worker inside a request for up to timeout x retries: the shutdown still ends
    within ingester.shutdown_flush_timeout (plus a second for the workers), and
    a restart against a working S3 stores everything from the WAL."""
    import socket
    from aws_fake import S3RVER_KEY, S3rver
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # never accepted: requests hang until the client's timeout
    s3 = None
    try:
        def s3_args(url):
            return ["--set", "storage.backend=s3", "--set", "storage.s3.bucket=logs",
                    "--set", f"storage.s3.endpoint={url}", "--set", "storage.s3.path_style=true",
                    "--set", f"storage.s3.access_key_id={S3RVER_KEY}",
                    "--set", f"storage.s3.secret_access_key={S3RVER_KEY}",
                    "--set", "storage.s3.timeout=60s", "--set", "storage.s3.max_retries=5"]
        agg = Aggregator(workdir, extra=["--set", "ingester.shutdown_flush_timeout=2s",
                                         "--set", "ingester.flush_check_period=1h",
                                         *s3_args(f"http://127.0.0.1:{hole.getsockname()[1]}")])
        procs.append(agg)
        agg.start()
        push_lines(agg, "api", time.time_ns() - 600 * 10**9, 800)
        t0 = time.monotonic()
        assert agg.stop(timeout=60) == 0
        took = time.monotonic() - t0
        assert took < 20, took
        log = agg.logs()
        assert "flush on shutdown incomplete" in log and "entries_not_flushed=800" in log

        s3 = S3rver(workdir).start()
        agg.args = [f"storage.s3.endpoint={s3.url}" if a.startswith("storage.s3.endpoint=")
                    else a for a in agg.args]
        agg.start()
        flush(agg)
        assert any(k.startswith("chunks/") for k in s3.object_keys())
        assert len(all_lines(agg)) == 800
    finally:
        hole.close()
        if s3:
            s3.stop()


def test_crash_after_everything_was_flushed_replays_nothing(workdir, procs):
    """Once memory is empty the WAL segment holding the stored entries is
    closed and deleted at the next flush round, so a SIGKILL then replays
    nothing (nothing is stored twice) and the lines come from the store."""
    agg = Aggregator(workdir, extra=["--set", "ingester.flush_check_period=1h"])
    procs.append(agg)
    agg.start()
    push_lines(agg, "api", time.time_ns() - 600 * 10**9, 1200)
    wal = os.path.join(agg.data_dir, "wal")

    def wal_bytes():
        flush(agg)  # each round deletes the segments older than the current one
        return sum(os.path.getsize(os.path.join(wal, f)) for f in os.listdir(wal)
                   if f.endswith(".wal"))
    wait_for(lambda: wal_bytes() <= 8, 30, interval=0.2, what="only an empty WAL segment left")
    before = all_lines(agg)
    assert len(before) == 1200
    agg.kill9()
    agg.start()
    assert metric_value(agg.metrics(), "sluice_aggregator_wal_replay_records_total") == 0
    assert all_lines(agg) == before
    assert len(store_keys(agg, "chunks")) == 1
