"""Rotation torture: a writer appends numbered CRI lines to several pod logs and
rotates them the way the kubelet does (rename 0.log -> 0.log.<n>, then gzip and
delete the older rotated file) or the way logrotate's copytruncate does (copy,
truncate in place), while the agent is SIGKILLed and restarted twice and the
aggregator is stopped for a few seconds once. Afterwards every numbered line
is queryable exactly once."""
import collections
import gzip
import os
import shutil
import threading
import time

from conftest import Agent, Aggregator, cri_line, metric_value, pod_log_path, wait_for

PODS = 3
PER_POD = 5000
ROTATE_EVERY = 1200  # lines per pod between rotations (about every 3 s)
RATE = 1200          # lines per second, all pods together
AGG_OUTAGE_S = 10    # the aggregator is down for 10 s once, as the issue asks


class Writer(threading.Thread):
    def __init__(self, paths, mode, base_ns):
        super().__init__(daemon=True)
        self.paths = paths
        self.mode = mode
        self.base = base_ns
        self.rotations = 0
        self.progress = 0
        self.error = None

    def rotate(self, path, gen):
        old = f"{path}.{gen - 1}"
        new = f"{path}.{gen}"
        if self.mode == "rename":
            os.rename(path, new)  # the runtime reopens: next write creates 0.log
        else:
            shutil.copyfile(path, new)
            os.truncate(path, 0)
        if os.path.exists(old):  # the kubelet compresses all but the newest
            with open(old, "rb") as src, gzip.open(old + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.remove(old)
        self.rotations += 1

    def run(self):
        try:
            gens = [0] * len(self.paths)
            for n in range(PER_POD * len(self.paths)):
                i = n % len(self.paths)
                k = n // len(self.paths)
                if k and k % ROTATE_EVERY == 0:
                    gens[i] += 1
                    self.rotate(self.paths[i], gens[i])
                # Reopened per write in append mode: like a runtime after
                # ReopenContainerLog, and correct after copytruncate.
                with open(self.paths[i], "a") as f:
                    text = f"seq={n:06d} pod={i} " + "x" * (n % 50)
                    if n % 101 == 7:  # a partial line: two pieces
                        f.write(cri_line(self.base + n * 1000, "stdout", "P", text + " half1"))
                        f.write(cri_line(self.base + n * 1000 + 1, "stdout", "F", " half2"))
                    else:
                        f.write(cri_line(self.base + n * 1000, "stdout", "F", text))
                self.progress = n + 1
                if n % 60 == 0:
                    time.sleep(60 / RATE)
        except Exception as e:  # surfaced by the test
            self.error = e


def run_torture(workdir, procs, pods_path, mode):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    agent = Agent(workdir, agg.url, pods_path, extra=("--set", "read.rotate_wait=1s"))
    procs.append(agent)
    agent.start()
    paths = [pod_log_path(pods_path, "rot", f"pod-{i}", f"uid-{i}", "app") for i in range(PODS)]
    total = PER_POD * PODS
    w = Writer(paths, mode, time.time_ns() - 300 * 10**9)
    w.start()

    def reached(frac):
        return lambda: w.progress >= total * frac or not w.is_alive()

    # Counters of every agent process of the run (each restart starts at zero).
    counted = collections.Counter()

    def kill_and_restart():
        m = agent.metrics()
        for name in ("sluice_agent_files_rotated_total", "sluice_agent_bytes_missed_total"):
            counted[name] += metric_value(m, name) or 0
        agent.kill9()
        agent.start()

    wait_for(reached(0.2), 60, what="writer at 20%")
    kill_and_restart()
    wait_for(reached(0.45), 60, what="writer at 45%")
    agg.stop()
    time.sleep(AGG_OUTAGE_S)  # the outage itself, not a wait for a condition
    agg.start()
    # The backlog of the outage is delivered before the next crash: lines the
    # agent holds only in memory when it dies are read again from their files,
    # and those must not have been rotated away meanwhile (no disk buffer).
    backlog = w.progress
    wait_for(lambda: len(agg.lines('{namespace="rot"}', since_s=900, limit=total * 2)) >=
             backlog, 60, interval=0.3, what="the outage's backlog delivered")
    wait_for(reached(0.7), 60, what="writer at 70%")
    kill_and_restart()
    w.join(120)
    assert not w.is_alive() and w.error is None, w.error
    assert w.rotations >= PODS * 3

    state = {"got": []}

    def all_there():
        state["got"] = agg.lines('{namespace="rot"}', since_s=900, limit=total * 2)
        return len(state["got"]) >= total

    try:
        wait_for(all_there, 30, interval=0.5, what=f"{total} lines")
    except AssertionError:
        pass  # reported below, with what is missing
    got = state["got"]
    seqs = collections.Counter(int(line.split()[0][4:]) for _, _, line in got)
    missing = [n for n in range(total) if seqs[n] == 0]
    dups = [n for n, c in seqs.items() if c > 1]
    assert not missing, f"{len(missing)} lines missing, first {missing[:10]}\n" + \
        agent.logs()[-4000:]
    assert not dups, f"{len(dups)} lines duplicated, first {dups[:10]}"
    assert len(got) == total
    halves = [line for _, _, line in got if "half1" in line]
    assert halves and all(line.endswith(" half1 half2") for line in halves)
    m = agent.metrics()
    for name in ("sluice_agent_files_rotated_total", "sluice_agent_bytes_missed_total"):
        counted[name] += metric_value(m, name) or 0
    assert counted["sluice_agent_files_rotated_total"] >= 1
    assert counted["sluice_agent_bytes_missed_total"] == 0
    return agent


def test_rotation_kubelet_rename(workdir, procs, pods_path):
    agent = run_torture(workdir, procs, pods_path, "rename")
    assert "file rotated, draining" in agent.logs()


def test_rotation_copytruncate(workdir, procs, pods_path):
    agent = run_torture(workdir, procs, pods_path, "copytruncate")
    assert "reading the rest from its copy" in agent.logs() or \
        "file truncated" in agent.logs()
