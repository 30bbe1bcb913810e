"""No lost line across crashes: the agent SIGKILLed mid-stream resumes from its
acknowledged positions, and the aggregator SIGKILLed after acknowledging pushes
replays its WAL."""
import collections
import os
import threading
import time

import requests

from conftest import Agent, Aggregator, cri_line, pod_log_path, wait_for


def test_agent_sigkill_mid_stream_loses_nothing(workdir, procs, pods_path):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    agent = Agent(workdir, agg.url, pods_path)
    procs.append(agent)
    agent.start()

    paths = [pod_log_path(pods_path, "load", f"writer-{i}", f"uid-{i}", "app") for i in range(3)]
    total = 30000
    base = time.time_ns() - 120 * 10**9
    done = threading.Event()

    def writer():
        files = [open(p, "a") for p in paths]
        for n in range(total):
            tag = "P" if n % 97 == 5 else "F"
            f = files[n % 3]
            if tag == "P":
                f.write(cri_line(base + n * 1000, "stdout", "P", f"seq={n:06d} first-half "))
                f.write(cri_line(base + n * 1000 + 1, "stdout", "F", "second-half"))
            else:
                f.write(cri_line(base + n * 1000, "stdout", "F", f"seq={n:06d} payload"))
            if n % 500 == 0:
                f.flush()
                time.sleep(0.02)
        for f in files:
            f.close()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(1.0)
    agent.kill9()
    time.sleep(0.5)
    agent.start()
    time.sleep(1.0)
    agent.kill9()
    agent.start()
    t.join()
    assert done.is_set()

    def all_there():
        got = agg.lines('{namespace="load"}', since_s=600, limit=100000)
        return got if len(got) >= total else None

    got = wait_for(all_there, 60, interval=0.5, what=f"{total} lines")
    seqs = collections.Counter(int(line.split()[0][4:]) for _, _, line in got)
    missing = [n for n in range(total) if seqs[n] == 0]
    dups = [n for n, c in seqs.items() if c > 1]
    assert not missing, f"{len(missing)} lines missing, first {missing[:10]}"
    assert not dups, f"{len(dups)} lines duplicated, first {dups[:10]}"
    assert len(got) == total
    joined = [line for _, _, line in got if "first-half" in line]
    assert joined and all(line.endswith("first-half second-half") for line in joined)


def test_aggregator_sigkill_keeps_acknowledged_pushes(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    acked = []
    stop = threading.Event()
    base = time.time_ns() - 60 * 10**9

    def pusher():
        n = 0
        s = requests.Session()
        while not stop.is_set():
            values = [[str(base + (n + i) * 1000), f"push {n + i}"] for i in range(50)]
            try:
                r = s.post(agg.url + "/loki/api/v1/push",
                           json={"streams": [{"stream": {"app": "crash", "env": "test"},
                                              "values": values}]}, timeout=5)
            except requests.RequestException:
                break
            if r.status_code == 204:
                acked.extend(v[1] for v in values)
            n += 50

    t = threading.Thread(target=pusher)
    t.start()
    wait_for(lambda: len(acked) >= 2000, 20, what="2000 acknowledged lines")
    agg.kill9()
    stop.set()
    t.join()
    n_acked = len(acked)

    agg.start()
    got = agg.lines('{app="crash"}', since_s=600, limit=1000000)
    lines = [l for _, _, l in got]
    have = set(lines)
    missing = [l for l in acked if l not in have]
    assert not missing, f"{len(missing)} of {n_acked} acknowledged lines lost: {missing[:5]}"
    assert len(lines) == len(have), "duplicates after WAL replay"
    assert "replay" in agg.logs().lower()


def test_wal_replay_twice_is_idempotent(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    now = time.time_ns()
    r = agg.push_json([{"stream": {"app": "idem"},
                        "values": [[str(now - 10**9 + i), f"l{i}"] for i in range(100)]}])
    assert r.status_code == 204, r.text
    for _ in range(2):
        assert agg.stop() == 0  # clean exit on SIGTERM
        agg.start()
        assert [l for _, _, l in agg.lines('{app="idem"}', since_s=60)] == \
            [f"l{i}" for i in range(100)]
    # a client retry of the same push is dropped silently
    r = agg.push_json([{"stream": {"app": "idem"},
                        "values": [[str(now - 10**9 + i), f"l{i}"] for i in range(100)]}])
    assert r.status_code == 204, r.text
    assert len(agg.lines('{app="idem"}', since_s=60)) == 100
