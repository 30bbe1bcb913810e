"""Operating the agent: SIGHUP reloads its configuration file (labels, pipeline
stages, sources and client settings change; every line goes out exactly once;
a broken file keeps the running configuration and is counted), and
sluice_agent_file_bytes_behind{path} / sluice_agent_bytes_behind say how far
the receiver is behind each file. Lines are raw (timestamped when read), so a
line read twice would show up twice: the aggregator cannot fold it away."""
import os
import signal
import subprocess
import threading
import time

from conftest import BIN, Agent, free_port, metric_value, wait_for

TAGS = ("keep", "drop-a", "drop-b", "keep", "keep")


def config(path, env, drop, includes, url, extra=""):
    inc = ", ".join(f'"{i}"' for i in includes)
    text = (f"files:\n  - include: [{inc}]\n    format: raw\n    labels: {{job: reload}}\n"
            f"pipeline:\n  - static_labels: {{env: {env}}}\n"
            f"  - drop: {{expression: '{drop}', drop_counter_reason: reload_test}}\n"
            "client:\n  batch_wait: 200ms\n  timeout: 2s\n  backoff: {min: 100ms, max: 1s}\n")
    text += f"  url: {url}\n"
    text += extra
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)  # the agent never reads half a file


def start_agent(workdir, procs, aggregator, cfg_path, pods_path):
    """The agent with only --config plus ports and paths, so the file decides
    everything a reload may change."""
    a = Agent(workdir, aggregator.url, pods_path)
    a.args = [os.path.join(BIN, "sluice-agent"), "--config", cfg_path,
              "--set", f"server.listen=127.0.0.1:{a.port}",
              "--set", f"positions.file={a.positions}",
              "--set", "positions.sync_period=1s",
              "--set", f"kubernetes.pods_path={pods_path}",
              "--set", "kubernetes.node_name=node-1",
              "--set", "read.sweep_period=1s"]
    procs.append(a)
    return a.start()


def metric(agent, name, labels=None):
    return metric_value(agent.metrics(), name, labels) or 0


def reloads(agent, result):
    return metric(agent, "sluice_agent_config_reloads_total", {"result": result})


def received(aggregator):
    """{n: [(env, line), ...]} of every numbered line stored."""
    out = {}
    for _, s, line in aggregator.lines('{job="reload"}', since_s=900, limit=1000000):
        if line.startswith("n="):
            n = int(line.split()[0][2:])
            out.setdefault(n, []).append((s.get("env"), line))
    return out


class Writer(threading.Thread):
    """Appends numbered lines n=<i> tag=<t> to one file, ~200 a second."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.n = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()

    def run(self):
        with open(self.path, "a") as f:
            while not self.stop_ev.is_set():
                with self.lock:
                    for _ in range(4):
                        f.write(f"n={self.n} tag={TAGS[self.n % len(TAGS)]}\n")
                        self.n += 1
                    f.flush()
                time.sleep(0.02)

    def written(self):
        with self.lock:
            return self.n

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        with open(self.path, "a") as f:  # up to a last line every configuration keeps
            while TAGS[self.n % len(TAGS)] != "keep":
                f.write(f"n={self.n} tag={TAGS[self.n % len(TAGS)]}\n")
                self.n += 1
            f.write(f"n={self.n} tag=keep last\n")
        self.n += 1
        return self.n


def test_sighup_reload_mid_stream(workdir, procs, aggregator, pods_path):
    logs = os.path.join(workdir, "logs")
    other = os.path.join(workdir, "other")
    os.makedirs(logs)
    os.makedirs(other)
    cfg = os.path.join(workdir, "agent.yaml")
    push = f"{aggregator.url}/api/v1/push"
    config(cfg, "blue", "drop-a", [f"{logs}/*.log"], push)
    # Not configured before the reload: read only after it.
    with open(os.path.join(other, "b.log"), "w") as f:
        f.write("second source line\n")
    agent = start_agent(workdir, procs, aggregator, cfg, pods_path)
    assert metric(agent, "sluice_agent_config_last_reload_success_timestamp_seconds") > 0

    w = Writer(os.path.join(logs, "a.log"))
    w.start()
    wait_for(lambda: len(received(aggregator)) >= 150, 30, interval=0.2, what="150 lines")
    # Every line up to the newest one stored was read under the first configuration.
    before = max(received(aggregator))

    config(cfg, "green", "drop-b", [f"{logs}/*.log", f"{other}/*.log"], push)
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(agent, "success") == 1, 30, what="reload counted")
    after = w.written()  # lines from here on were read under the second one
    time.sleep(1.5)

    # A broken file: the agent keeps running on the second configuration.
    with open(cfg, "a") as f:
        f.write("read:\n  rotate_wait: soon\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(agent, "failure") == 1, 30, what="failed reload counted")
    assert agent.alive()
    assert reloads(agent, "success") == 1
    assert metric(agent, "sluice_agent_config_last_reload_successful") == 0
    assert "read.rotate_wait" in agent.logs()
    assert "configuration reload failed" in agent.logs()
    time.sleep(1)
    total = w.finish()

    def all_in():
        got = received(aggregator)
        return got if total - 1 in got else None
    got = wait_for(all_in, 30, interval=0.3, what="the last line")
    assert after > before + 1
    for n in range(total):
        tag = TAGS[n % len(TAGS)]
        seen = got.get(n, [])
        assert len(seen) <= 1, f"line {n} arrived {len(seen)} times: {seen}"
        env = seen[0][0] if seen else None
        if n <= before:  # first configuration: env=blue, drop-a dropped
            assert (env == "blue") if tag != "drop-a" else not seen, (n, tag, seen)
        elif n >= after:  # second configuration: env=green, drop-b dropped
            assert (env == "green") if tag != "drop-b" else not seen, (n, tag, seen)
        else:  # read around the reload: under one of the two, consistently
            if tag == "keep":
                assert env in ("blue", "green"), (n, seen)
            elif seen:
                assert env == ("green" if tag == "drop-a" else "blue"), (n, tag, seen)
    # The new source is read, under the new labels.
    b = [s for _, s, line in aggregator.lines('{job="reload"}', since_s=900)
         if line == "second source line"]
    assert len(b) == 1 and b[0]["env"] == "green"
    # Drops of both configurations were counted under their reason.
    dropped = metric(agent, "sluice_agent_lines_dropped_total", {"reason": "reload_test"})
    assert dropped == sum(1 for n in range(total) if TAGS[n % len(TAGS)] != "keep"
                          and n not in got)
    assert "configuration reloaded" in agent.logs()
    assert agent.stop() == 0


def test_reload_client_url_and_bytes_behind(workdir, procs, aggregator, pods_path):
    """The agent starts pointed at a port where nothing listens: nothing is
    acknowledged, so each file is behind by its size. A reload with the right
    URL delivers every line once and the gauges fall to 0; a deleted file's
    series goes once it is released."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    dead = f"http://127.0.0.1:{free_port()}/api/v1/push"
    cfg = os.path.join(workdir, "agent.yaml")
    config(cfg, "blue", "never-matches", [f"{logs}/*.log"], dead)
    paths = [os.path.join(logs, f"{name}.log") for name in ("x", "y")]
    for i, p in enumerate(paths):
        with open(p, "w") as f:
            for k in range(50 * (i + 1)):
                f.write(f"n={i * 1000 + k} tag=keep {'x' * k}\n")
    agent = start_agent(workdir, procs, aggregator, cfg, pods_path)
    sizes = [os.path.getsize(p) for p in paths]
    wait_for(lambda: metric(agent, "sluice_agent_bytes_read_total") == sum(sizes), 20,
             what="files read")
    text = agent.metrics()
    for p, size in zip(paths, sizes):
        assert metric_value(text, "sluice_agent_file_bytes_behind", {"path": p}) == size
    assert metric_value(text, "sluice_agent_bytes_behind") == sum(sizes)
    promtool_ok(text)

    config(cfg, "blue", "never-matches", [f"{logs}/*.log"], f"{aggregator.url}/api/v1/push")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(agent, "success") == 1, 30, what="reload counted")
    wait_for(lambda: metric(agent, "sluice_agent_bytes_behind") == 0, 30, what="caught up")
    got = received(aggregator)
    assert sorted(got) == sorted([k for k in range(50)] + [1000 + k for k in range(100)])
    assert all(len(v) == 1 for v in got.values()), "a line arrived twice"
    text = agent.metrics()
    assert metric_value(text, "sluice_agent_file_bytes_behind", {"path": paths[0]}) == 0
    promtool_ok(text)

    os.unlink(paths[0])
    wait_for(lambda: metric_value(agent.metrics(), "sluice_agent_file_bytes_behind",
                                  {"path": paths[0]}) is None, 20, what="series removed")
    assert metric_value(agent.metrics(), "sluice_agent_file_bytes_behind",
                        {"path": paths[1]}) == 0

    # A name the text format must escape.
    odd = os.path.join(logs, 'we"ird\\name.log')
    with open(odd, "w") as f:
        f.write("n=5000 tag=keep\n")
    wait_for(lambda: 5000 in received(aggregator), 20, what="the odd file's line")
    sample = 'path="' + odd.replace("\\", "\\\\").replace('"', '\\"') + '"} 0\n'
    text = wait_for(lambda: (lambda t: t if sample in t else None)(agent.metrics()), 20,
                    what="the odd file's series, escaped")
    promtool_ok(text)


def promtool_ok(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"promtool rejected the agent's /metrics:\n{p.stdout}\n{p.stderr}"
    for name in ("sluice_agent_config_reloads_total",
                 "sluice_agent_config_last_reload_success_timestamp_seconds",
                 "sluice_agent_file_bytes_behind", "sluice_agent_bytes_behind"):
        assert f"# TYPE {name} " in text, name


def test_reload_with_disk_buffer(workdir, procs, aggregator, pods_path):
    """buffer.type disk, receiver unreachable: batches wait in the buffer (the
    files count as read). A reload pointing at the aggregator hands the buffer
    to the new shipper, which delivers every line once; a new buffer.path in
    the file is refused with a warning (its batches would be stranded)."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    buf = os.path.join(workdir, "buffer")
    disk = f"buffer:\n  type: disk\n  path: {buf}\n"
    cfg = os.path.join(workdir, "agent.yaml")
    config(cfg, "blue", "never-matches", [f"{logs}/*.log"],
           f"http://127.0.0.1:{free_port()}/api/v1/push", extra=disk)
    with open(os.path.join(logs, "a.log"), "w") as f:
        for k in range(300):
            f.write(f"n={k} tag=keep\n")
    agent = start_agent(workdir, procs, aggregator, cfg, pods_path)
    size = os.path.getsize(os.path.join(logs, "a.log"))
    # On disk counts as acknowledged for positions: nothing is behind.
    wait_for(lambda: metric(agent, "sluice_agent_bytes_read_total") == size
             and metric(agent, "sluice_agent_bytes_behind") == 0, 20, what="buffered")
    assert len(received(aggregator)) == 0

    config(cfg, "green", "never-matches", [f"{logs}/*.log"], f"{aggregator.url}/api/v1/push",
           extra=f"buffer:\n  type: disk\n  path: {buf}-elsewhere\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(agent, "success") == 1, 30, what="reload counted")
    wait_for(lambda: len(received(aggregator)) == 300, 30, interval=0.3, what="300 lines")
    wait_for(lambda: metric(agent, "sluice_agent_buffer_records") == 0, 20, what="buffer empty")
    got = received(aggregator)
    assert sorted(got) == list(range(300))
    assert all(len(v) == 1 for v in got.values()), "a line arrived twice"
    # Read before the reload: the lines keep the labels they were read with.
    assert {v[0][0] for v in got.values()} == {"blue"}
    assert "buffer.path cannot change without a restart" in agent.logs()
    assert not os.path.exists(f"{buf}-elsewhere")


def reload_done(log):
    """True if the last reload event in the log is a finished reload."""
    events = [ln for ln in log.splitlines()
              if any(m in ln for m in ("SIGHUP received", "reloading configuration",
                                       "configuration reloaded"))]
    return bool(events) and "configuration reloaded" in events[-1]


def test_reload_storm_loses_and_repeats_nothing(workdir, procs, aggregator, pods_path):
    """SIGHUPs in quick succession while a file grows (some arrive during a
    reload and run after it): every line arrives exactly once, and the lines
    written after the last reload carry its labels."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    cfg = os.path.join(workdir, "agent.yaml")
    push = f"{aggregator.url}/api/v1/push"
    config(cfg, "v0", "never-matches", [f"{logs}/*.log"], push)
    agent = start_agent(workdir, procs, aggregator, cfg, pods_path)
    w = Writer(os.path.join(logs, "a.log"))
    w.start()
    wait_for(lambda: len(received(aggregator)) >= 50, 30, interval=0.2, what="50 lines")
    for i in range(1, 9):
        config(cfg, f"v{i}", "never-matches", [f"{logs}/*.log"], push)
        agent.proc.send_signal(signal.SIGHUP)
        time.sleep(0.01 if i % 2 else 0.4)
    wait_for(lambda: reload_done(agent.logs()), 30, what="the last reload done")
    after = w.written()
    time.sleep(1)
    total = w.finish()
    got = wait_for(lambda: (lambda g: g if total - 1 in g else None)(received(aggregator)), 30,
                   interval=0.3, what="the last line")
    assert sorted(got) == list(range(total)), "lines missing"
    assert all(len(v) == 1 for v in got.values()), "a line arrived twice"
    assert {got[n][0][0] for n in range(after, total)} == {"v8"}
    ok = metric(agent, "sluice_agent_config_reloads_total", {"result": "success"})
    assert 2 <= ok <= 8
    assert metric(agent, "sluice_agent_config_reloads_total", {"result": "failure"}) == 0


def test_reload_keeps_a_rotated_file_draining(workdir, procs, aggregator, pods_path):
    """A file renamed away (rotation) is still read until read.rotate_wait
    passes without new bytes; a reload in that time keeps following it, so
    lines the writer still adds to the old file arrive, once."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    cfg = os.path.join(workdir, "agent.yaml")
    push = f"{aggregator.url}/api/v1/push"
    wait = "read:\n  rotate_wait: 30s\n"
    config(cfg, "blue", "never-matches", [f"{logs}/*.log"], push, extra=wait)
    agent = start_agent(workdir, procs, aggregator, cfg, pods_path)
    path = os.path.join(logs, "a.log")
    old = open(path, "a")
    old.write("n=0 tag=keep\n")
    old.flush()
    wait_for(lambda: 0 in received(aggregator), 20, what="line 0")
    os.rename(path, path + ".1")
    with open(path, "w") as f:
        f.write("n=1 tag=keep\n")
    wait_for(lambda: 1 in received(aggregator), 20, what="line 1 from the new file")

    config(cfg, "green", "never-matches", [f"{logs}/*.log"], push, extra=wait)
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(agent, "success") == 1, 30, what="reload counted")
    old.write("n=2 tag=keep\n")  # the runtime had the old file open still
    old.flush()
    old.close()
    with open(path, "a") as f:
        f.write("n=3 tag=keep\n")
    got = wait_for(lambda: (lambda g: g if {2, 3} <= set(g) else None)(received(aggregator)),
                   20, interval=0.3, what="lines 2 and 3")
    assert sorted(got) == [0, 1, 2, 3]
    assert all(len(v) == 1 for v in got.values()), got
    assert got[2][0][0] == "green" and got[3][0][0] == "green"
    assert metric(agent, "sluice_agent_files_active") == 2
    assert metric(agent, "sluice_agent_files_rotated_total") == 1  # not again at the reload
