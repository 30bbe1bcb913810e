"""The agent's buffering during an aggregator outage.

buffer.type: disk keeps sealed batches in checksummed segment files, so
lines survive pod logs that the kubelet rotates and deletes while the
aggregator is down, and an agent killed with SIGKILL; a small buffer.max_size
drops the oldest batches (counted). The default memory mode stops reading
instead: its memory stays bounded while the files grow, and it catches up once
the aggregator is back."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (BIN, Agent, Aggregator, cri_line, metric_value, pod_log_path,
                      wait_for)

SEQ_RE = re.compile(r"seq=(\d+)")


def disk_agent(workdir, agg, pods_path, *extra):
    return Agent(workdir, agg.url, pods_path,
                 extra=("--set", "buffer.type=disk",
                        "--set", "read.rotate_wait=1s",
                        "--set", "client.backoff.max=1s",
                        *extra))


def agent_metric(agent, name, labels=None):
    return metric_value(agent.metrics(), name, labels) or 0.0


def seqs_in(agg, query, since_s=3600):
    out = []
    for _, _, line in agg.lines(query, since_s=since_s):
        m = SEQ_RE.search(line)
        assert m, f"line without a sequence number: {line!r}"
        out.append(int(m.group(1)))
    return out


def fixed_line(ts_ns, n, size=128):
    """A CRI line of exactly `size` bytes carrying seq=n."""
    line = cri_line(ts_ns, "stdout", "F", f"seq={n:06d} ")
    return line[:-1] + "p" * (size - len(line)) + "\n"


def buffer_dir(workdir):
    return os.path.join(workdir, "buffer")  # next to agent-positions.json


class RotatingWriter(threading.Thread):
    """Numbered CRI lines into several pod logs; every `rotate_every` lines a
    log is renamed to 0.log.<gen> (the runtime then writes a new 0.log) and the
    rotated file is deleted `delete_after` seconds later, as the kubelet does
    when it keeps no old files."""

    def __init__(self, paths, per_path, rotate_every, delete_after, base_ns):
        super().__init__(daemon=True)
        self.paths = paths
        self.per_path = per_path
        self.rotate_every = rotate_every
        self.delete_after = delete_after
        self.base = base_ns
        self.rotated = []
        self.bytes = 0
        self.error = None

    def run(self):
        try:
            gens = [0] * len(self.paths)
            pending = []  # (deadline, path)
            total = self.per_path * len(self.paths)
            for n in range(total):
                i = n % len(self.paths)
                k = n // len(self.paths)
                if k and k % self.rotate_every == 0:
                    gens[i] += 1
                    new = f"{self.paths[i]}.{gens[i]}"
                    os.rename(self.paths[i], new)  # the runtime writes a new 0.log
                    self.rotated.append(new)
                    pending.append((time.monotonic() + self.delete_after, new))
                line = cri_line(self.base + n * 1000, "stdout", "F",
                                f"seq={n:06d} pod={i} " + "y" * (n % 40))
                with open(self.paths[i], "a") as f:
                    f.write(line)
                self.bytes += len(line)
                now = time.monotonic()
                while pending and pending[0][0] <= now:
                    os.remove(pending.pop(0)[1])
                if n % 50 == 0:
                    time.sleep(0.02)
            for deadline, path in pending:
                time.sleep(max(0.0, deadline - time.monotonic()))
                os.remove(path)
        except Exception as e:  # surfaced by the test
            self.error = e


def test_disk_buffer_survives_outage_with_rotation(workdir, procs, pods_path):
    agg = Aggregator(workdir)  # down for the whole time the pods write
    procs.append(agg)
    agent = disk_agent(workdir, agg, pods_path, "--set", "client.batch_size=32KiB")
    procs.append(agent)
    agent.start()
    pods, per_pod = 3, 2000
    paths = [pod_log_path(pods_path, "buf", f"pod-{i}", f"uid-{i}", "app") for i in range(pods)]
    for p in paths:
        open(p, "w").close()
    total = pods * per_pod
    w = RotatingWriter(paths, per_pod, rotate_every=400, delete_after=0.3,
                       base_ns=time.time_ns() - 60 * 10**9)
    w.start()
    w.join(120)
    assert not w.is_alive() and w.error is None, w.error
    assert len(w.rotated) >= pods * 4
    # the rotated files are gone: only 0.log of each pod is left
    left = sorted(os.path.relpath(os.path.join(d, f), pods_path)
                  for d, _, fs in os.walk(pods_path) for f in fs)
    assert left == sorted(os.path.relpath(p, pods_path) for p in paths), left

    # Everything read and kept on disk while the aggregator is down.
    wait_for(lambda: agent_metric(agent, "sluice_agent_bytes_read_total") >= w.bytes, 60,
             what="agent read every byte")
    wait_for(lambda: agent_metric(agent, "sluice_agent_files_active") <= pods, 30,
             what="rotated files released")
    m = agent.metrics()
    assert metric_value(m, "sluice_agent_lines_read_total") == total
    assert (metric_value(m, "sluice_agent_lines_sent_total") or 0) == 0
    assert metric_value(m, "sluice_agent_buffer_records") > 0
    assert metric_value(m, "sluice_agent_buffer_bytes") > 0
    assert (metric_value(m, "sluice_agent_last_send_timestamp_seconds") or 0) == 0
    segs = [f for f in os.listdir(buffer_dir(workdir)) if f.endswith(".seg")]
    assert segs, os.listdir(buffer_dir(workdir))

    before = time.time()
    agg.start()
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_sent_total") >= total, 90,
             what="every buffered line sent")
    wait_for(lambda: agent_metric(agent, "sluice_agent_buffer_records") == 0, 30,
             what="buffer drained")
    got = seqs_in(agg, '{namespace="buf"}')
    assert len(got) == total, f"{len(got)} lines, want {total}"
    assert sorted(got) == list(range(total))
    m = agent.metrics()
    assert metric_value(m, "sluice_agent_buffer_bytes") == 0
    assert metric_value(m, "sluice_agent_last_send_timestamp_seconds") >= before - 1
    assert (metric_value(m, "sluice_agent_lines_dropped_total",
                         {"reason": "buffer_full"}) or 0) == 0
    # fully sent segments are deleted
    wait_for(lambda: len([f for f in os.listdir(buffer_dir(workdir))
                          if f.endswith(".seg")]) <= 1, 30, what="sent segments deleted")


def test_disk_buffer_survives_sigkill(workdir, procs, pods_path):
    agg = Aggregator(workdir)
    procs.append(agg)
    agent = disk_agent(workdir, agg, pods_path, "--set", "client.batch_size=16KiB")
    procs.append(agent)
    agent.start()
    path = pod_log_path(pods_path, "kill", "pod-0", "uid-0", "app")
    total = 3000
    base = time.time_ns() - 60 * 10**9
    with open(path, "w") as f:
        for n in range(total):
            f.write(fixed_line(base + n * 1000, n))
    size = os.path.getsize(path)
    wait_for(lambda: agent_metric(agent, "sluice_agent_bytes_read_total") >= size, 60,
             what="agent read the file")
    # positions advance once the lines are on disk: wait for the saved position
    positions = agent.positions

    def saved():
        with open(positions) as f:
            return [e["offset"] for e in json.load(f)["files"]] == [size]
    wait_for(saved, 30, what="positions saved at the end of the file")
    assert agent_metric(agent, "sluice_agent_buffer_records") > 0
    # The log file goes away: the disk buffer holds the only copy.
    os.remove(path)
    agent.kill9()

    agg.start()
    agent.start()
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_sent_total") >= total, 60,
             what="buffered lines sent after the restart")
    got = seqs_in(agg, '{namespace="kill"}')
    assert sorted(got) == list(range(total)), f"{len(got)} lines"
    assert "disk buffer opened" in agent.logs()


def test_disk_buffer_full_drops_oldest(workdir, procs, pods_path):
    agg = Aggregator(workdir)
    procs.append(agg)
    max_size = 1024 * 1024
    agent = disk_agent(workdir, agg, pods_path,
                       "--set", "client.batch_size=16KiB",
                       "--set", "client.compression=none",
                       "--set", f"buffer.max_size={max_size}")
    procs.append(agent)
    agent.start()
    path = pod_log_path(pods_path, "full", "pod-0", "uid-0", "app")
    total = 32768  # 4 MiB of lines: four times the buffer
    base = time.time_ns() - 60 * 10**9
    with open(path, "w") as f:
        for n in range(total):
            f.write(fixed_line(base + n * 1000, n))
    size = os.path.getsize(path)
    wait_for(lambda: agent_metric(agent, "sluice_agent_bytes_read_total") >= size, 60,
             what="agent read the file")
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_dropped_total",
                                  {"reason": "buffer_full"}) > 0, 30, what="drops counted")
    m = agent.metrics()
    dropped = metric_value(m, "sluice_agent_lines_dropped_total", {"reason": "buffer_full"})
    assert metric_value(m, "sluice_agent_buffer_dropped_bytes_total") > 0
    # max_size bounds the records waiting; the one being sent (one batch:
    # at most a 256 KiB read plus client.batch_size of lines) comes on top
    assert metric_value(m, "sluice_agent_buffer_bytes") <= max_size + 300 * 1024
    assert dropped < total
    log = agent.logs()
    assert "disk buffer full" in log and "records=" in log and "lines=" in log

    agg.start()
    # every line is either delivered or counted as dropped, none twice
    def accounted():
        m = agent.metrics()
        sent = metric_value(m, "sluice_agent_lines_sent_total") or 0
        dropped = metric_value(m, "sluice_agent_lines_dropped_total", {"reason": "buffer_full"})
        return sent + dropped == total and metric_value(m, "sluice_agent_buffer_records") == 0
    wait_for(accounted, 60, what="every line sent or counted as dropped")
    sent = agent_metric(agent, "sluice_agent_lines_sent_total")
    dropped = agent_metric(agent, "sluice_agent_lines_dropped_total", {"reason": "buffer_full"})
    got = seqs_in(agg, '{namespace="full"}')
    assert len(got) == sent
    assert len(set(got)) == len(got)
    newest = set(range(total - 200, total))
    assert newest <= set(got), "the newest lines must arrive"
    missing = set(range(total)) - set(got)
    assert len(missing) == dropped
    # the oldest records went, in one run (only the record already taken for
    # sending when the buffer filled up is older and still delivered)
    assert sorted(missing) == list(range(min(missing), max(missing) + 1))
    assert min(missing) < total // 4 and max(missing) < total - 200


def is_asan_build():
    with open(os.path.join(BIN, "sluice-agent"), "rb") as f:
        return b"__asan_init" in f.read()


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_bounded_memory_while_aggregator_down(workdir, procs, pods_path, mode):
    """~100 MiB written while the aggregator is down. Memory mode stops
    reading; disk mode reads it all into the disk buffer, streaming. Either
    way the agent's RSS stays small, and every line arrives afterwards."""
    agg = Aggregator(workdir, extra=("--set", "limits.ingestion_rate_mb=1000",
                                     "--set", "limits.ingestion_burst_size_mb=1000"))
    procs.append(agg)
    agent = Agent(workdir, agg.url, pods_path,
                  extra=("--set", "client.backoff.max=1s", "--set", f"buffer.type={mode}"))
    # ASan keeps freed memory in a quarantine (256 MiB by default), which would
    # measure the sanitizer rather than the agent: keep it small
    agent.env = {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=8"}
    procs.append(agent)
    agent.start()
    rss_start = vm_rss_kib(agent.proc.pid)
    path = pod_log_path(pods_path, "mem", "pod-0", "uid-0", "app")
    line_len = 8192
    total = 100 * 1024 * 1024 // line_len  # ~100 MiB
    base = time.time_ns() - 60 * 10**9
    with open(path, "w") as f:
        for n in range(total):
            f.write(fixed_line(base + n * 1000, n, line_len))
    size = os.path.getsize(path)

    # Memory mode: reading pauses, bytes_read stops growing far below the
    # file size. Disk mode: everything is read into the buffer.
    def settled():
        a = agent_metric(agent, "sluice_agent_bytes_read_total")
        time.sleep(2)
        b = agent_metric(agent, "sluice_agent_bytes_read_total")
        return a == b and b > 0
    wait_for(settled, 120, interval=0.5, what="reading paused or done")
    read = agent_metric(agent, "sluice_agent_bytes_read_total")
    if mode == "memory":
        assert read < 16 * 1024 * 1024, f"read {read} bytes with the aggregator down"
    else:
        assert read == size
        assert agent_metric(agent, "sluice_agent_buffer_records") > 0
    rss = vm_rss_kib(agent.proc.pid)
    bound = 160 * 1024 if is_asan_build() else 64 * 1024
    assert rss < bound, f"agent RSS {rss} KiB (at start {rss_start} KiB)"
    time.sleep(2)
    assert agent_metric(agent, "sluice_agent_bytes_read_total") == read

    agg.start()
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_sent_total") >= total, 300,
             interval=0.5, what="every line sent")
    assert agent_metric(agent, "sluice_agent_bytes_read_total") == size
    peak = vm_rss_kib(agent.proc.pid)
    assert peak < bound, f"agent RSS {peak} KiB after catching up"
    now = time.time_ns()
    r = agg.query_range('sum(count_over_time({namespace="mem"}[2h]))',
                        start=now - 3600 * 10**9, end=now, step="3600")
    assert r.status_code == 200, r.text
    vals = r.json()["data"]["result"]
    assert vals and int(float(vals[0]["values"][-1][1])) == total, vals
    # and the lines themselves: the first, one in the middle, the last
    for n in (0, total // 2, total - 1):
        got = agg.lines(f'{{namespace="mem"}} |= "seq={n:06d} "')
        assert len(got) == 1, (n, len(got))
        header = len(cri_line(base, "stdout", "F", ""))  # with the newline
        assert got[0][2].startswith(f"seq={n:06d} ")
        assert len(got[0][2]) == line_len - header


def test_disk_buffer_kept_across_reload(workdir, procs, pods_path):
    """SIGHUP rebuilds the shipper: the new one carries on with the same disk
    buffer (a record the old one was sending goes back to the front)."""
    agg = Aggregator(workdir)
    procs.append(agg)
    cfg = os.path.join(workdir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("buffer: {type: disk}\nclient: {batch_size: 16KiB}\n")
    agent = Agent(workdir, agg.url, pods_path,
                  extra=("--config", cfg, "--set", "client.backoff.max=1s"))
    procs.append(agent)
    agent.start()
    path = pod_log_path(pods_path, "reload", "pod-0", "uid-0", "app")
    base = time.time_ns() - 60 * 10**9
    with open(path, "w") as f:
        for n in range(5000):
            f.write(fixed_line(base + n * 1000, n))
    wait_for(lambda: agent_metric(agent, "sluice_agent_bytes_read_total") >= 5000 * 128, 60,
             what="agent read the file")
    wait_for(lambda: agent_metric(agent, "sluice_agent_buffer_records") > 0, 30,
             what="records in the buffer")
    for i in range(3):
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: agent.logs().count("configuration reloaded") > i, 30,
                 what="reload done")
    with open(path, "a") as f:
        for n in range(5000, 6000):
            f.write(fixed_line(base + n * 1000, n))
    agg.start()
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_sent_total") >= 6000, 90,
             what="every line sent")
    got = seqs_in(agg, '{namespace="reload"}')
    assert sorted(set(got)) == list(range(6000))
    assert len(got) == 6000
    assert agent_metric(agent, "sluice_agent_buffer_errors_total") == 0


def test_check_config_buffer_keys(workdir):
    agent = os.path.join(BIN, "sluice-agent")
    pos = os.path.join(workdir, "state", "positions.json")

    def check(*sets):
        # (with pods_path empty --check-config also prints a warning: agent/main.c
        # passes a NULL warning buffer to fwrite when there is none, which UBSan
        # reports; that is not what this test is about)
        args = [agent, "--check-config", "--set", f"positions.file={pos}",
                "--set", "kubernetes.pods_path="]
        for s in sets:
            args += ["--set", s]
        return subprocess.run(args, capture_output=True, text=True, timeout=30)

    r = check("buffer.type=disk")
    assert r.returncode == 0, r.stderr
    assert os.path.join(workdir, "state", "buffer") in r.stdout  # default: next to positions
    assert "max_size: 1GiB" in r.stdout
    r = check()
    assert r.returncode == 0 and "type: memory" in r.stdout
    r = check("buffer.type=tape")
    assert r.returncode == 1 and "buffer.type" in r.stderr
    r = check("buffer.type=disk", "client.batch_size=1MiB", "buffer.max_size=1MiB")
    assert r.returncode == 1 and "buffer.max_size" in r.stderr
    afile = os.path.join(workdir, "afile")
    open(afile, "w").close()
    r = check("buffer.type=disk", f"buffer.path={afile}")
    assert r.returncode == 1 and "buffer.path" in r.stderr


@pytest.mark.parametrize("protocol", ["loki-json", "loki-protobuf"])
def test_disk_buffer_loki_protocols(workdir, procs, pods_path, protocol):
    """Records keep their content type and encoding: Loki push bodies
    buffered during an outage are delivered as Loki push bodies."""
    agg = Aggregator(workdir)
    procs.append(agg)
    agent = disk_agent(workdir, agg, pods_path, "--set", f"client.protocol={protocol}",
                       "--set", f"client.url={agg.url}/loki/api/v1/push")
    procs.append(agent)
    agent.start()
    path = pod_log_path(pods_path, "lk", "pod-0", "uid-0", "app")
    base = time.time_ns() - 60 * 10**9
    with open(path, "w") as f:
        for n in range(3000):
            f.write(fixed_line(base + n * 1000, n))
    wait_for(lambda: agent_metric(agent, "sluice_agent_buffer_records") > 0, 30,
             what="records in the buffer")
    agg.start()
    wait_for(lambda: agent_metric(agent, "sluice_agent_lines_sent_total") >= 3000, 60,
             what="every line sent")
    got = seqs_in(agg, '{namespace="lk"}')
    assert sorted(got) == list(range(3000))
    assert agent_metric(agent, "sluice_agent_lines_dropped_total", {"reason": "rejected"}) == 0
