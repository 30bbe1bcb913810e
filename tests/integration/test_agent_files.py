"""Discovery and formats with real processes: 1,000 pod logs picked up within
seconds, partial CRI lines interleaved on stdout and stderr, lines longer than
read.max_line_size split (not cut), Docker json-file with escapes, and files:
glob sources with formats and static labels."""
import json
import os
import time

from conftest import Agent, cri_line, metric_value, pod_log_path, wait_for


def start_agent(workdir, procs, aggregator, pods_path, *sets, config=None):
    extra = []
    for s in sets:
        extra += ["--set", s]
    if config is not None:
        path = os.path.join(workdir, "agent.yaml")
        with open(path, "w") as f:
            f.write(config)
        extra += ["--config", path]
    a = Agent(workdir, aggregator.url, pods_path, extra=tuple(extra))
    procs.append(a)
    return a.start()


def test_thousand_pods(workdir, procs, aggregator, pods_path):
    n = 1000
    base = time.time_ns() - 60 * 10**9
    for i in range(n):
        with open(pod_log_path(pods_path, "many", f"p{i}", f"u{i}", "c"), "w") as f:
            f.write(cri_line(base + i, "stdout", "F", f"before pod={i}"))
    t0 = time.monotonic()
    agent = start_agent(workdir, procs, aggregator, pods_path)
    # Half the pods get a line after the start: found through inotify.
    for i in range(0, n, 2):
        with open(pod_log_path(pods_path, "many", f"p{i}", f"u{i}", "c"), "a") as f:
            f.write(cri_line(base + n + i, "stdout", "F", f"after pod={i}"))

    def all_in():
        got = aggregator.lines('{namespace="many"}', since_s=600, limit=10000)
        return got if len(got) >= n + n // 2 else None

    got = wait_for(all_in, 30, interval=0.25, what="a line from every pod")
    elapsed = time.monotonic() - t0
    pods = {s["pod"] for _, s, _ in got}
    assert len(pods) == n
    assert len(got) == n + n // 2
    assert elapsed < 20, f"took {elapsed:.1f}s"
    m = agent.metrics()
    assert metric_value(m, "sluice_agent_files_active") == n


def test_partial_lines_interleaved_and_long_lines(workdir, procs, aggregator, pods_path):
    agent = start_agent(workdir, procs, aggregator, pods_path, "read.max_line_size=1KiB")
    path = pod_log_path(pods_path, "mix", "web", "u1", "app")
    base = time.time_ns() - 30 * 10**9
    with open(path, "w") as f:
        # stdout and stderr pieces interleaved: never mixed up.
        f.write(cri_line(base + 1, "stdout", "P", "out-a "))
        f.write(cri_line(base + 2, "stderr", "P", "err-a "))
        f.write(cri_line(base + 3, "stdout", "P", "out-b "))
        f.write(cri_line(base + 4, "stderr", "F", "err-b"))
        f.write(cri_line(base + 5, "stdout", "F", "out-c"))
        # 2,500 bytes joined from pieces: 1024 + 1024 + 452, nothing lost.
        long = "".join(chr(ord("a") + i % 26) for i in range(2500))
        f.write(cri_line(base + 10, "stdout", "P", long[:1000]))
        f.write(cri_line(base + 11, "stdout", "F", long[1000:]))
        # one physical line longer than the size too
        f.write(cri_line(base + 20, "stderr", "F", "Z" * 3000))
        f.write(cri_line(base + 30, "stdout", "F", "tail"))

    def got_all():
        got = aggregator.lines('{namespace="mix"}', since_s=600)
        return got if any(line == "tail" for _, _, line in got) else None

    got = wait_for(got_all, 20, what="the last line")
    lines = [line for _, _, line in got]
    assert "out-a out-b out-c" in lines
    assert "err-a err-b" in lines
    pieces = [line for ts, _, line in got if base + 10 <= ts <= base + 10 + 2]
    assert sorted(len(p) for p in pieces) == [452, 1024, 1024]
    assert "".join(p for p in lines if p and p[0] in "abcdefghijklmnopqrstuvwxyz" and
                   len(p) in (1024, 452)) == long
    zs = [line for ts, _, line in got if base + 20 <= ts <= base + 20 + 2]
    assert sorted(len(z) for z in zs) == [952, 1024, 1024]
    m = agent.metrics()
    assert metric_value(m, "sluice_agent_lines_split_total") == 6


def test_docker_json_file_with_escapes(workdir, procs, aggregator, pods_path):
    logdir = os.path.join(workdir, "docker", "abc123")
    os.makedirs(logdir)
    path = os.path.join(logdir, "abc123-json.log")
    config = f"""
files:
  - include: ["{workdir}/docker/*/*-json.log"]
    format: docker
    labels: {{job: docker, team: infra}}
"""
    agent = start_agent(workdir, procs, aggregator, "", config=config)
    now = time.time()

    def ts(i):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 30)) + f".{i:09d}Z"

    texts = ['quote " backslash \\ tab \t done', "unicode é ☃ 😀 end", "ctl \u0001\u001f x",
             '{"nested": "json"}']
    with open(path, "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"log": t + "\n", "stream": "stdout", "time": ts(i + 1)}) + "\n")
        # Docker's 16 KiB pieces: only the last ends with a newline; stderr in between.
        f.write(json.dumps({"log": "A" * 16384, "stream": "stdout", "time": ts(10)}) + "\n")
        f.write(json.dumps({"log": "on stderr\n", "stream": "stderr", "time": ts(11)}) + "\n")
        f.write(json.dumps({"log": "B" * 100 + "\n", "stream": "stdout", "time": ts(12)}) + "\n")
        # extra attrs and spacing: decoded by the general parser
        f.write('{"log": "with attrs\\n", "attrs": {"a": "b"}, "stream": "stderr", '
                f'"time": "{ts(13)}"}}\n')
        f.write("not json\n")
        f.write(json.dumps({"log": "last\n", "stream": "stdout", "time": ts(14)}) + "\n")

    def got_all():
        got = aggregator.lines('{job="docker"}', since_s=600)
        return got if any(line == "last" for _, _, line in got) else None

    got = wait_for(got_all, 20, what="docker lines")
    lines = [line for _, _, line in got]
    for t in texts:
        assert t in lines
    assert "A" * 16384 + "B" * 100 in lines
    assert "on stderr" in lines and "with attrs" in lines
    labels = got[0][1]
    assert labels["job"] == "docker" and labels["team"] == "infra"
    assert labels["filename"] == path
    m = agent.metrics()
    assert metric_value(m, "sluice_agent_lines_dropped_total", {"reason": "malformed"}) == 1


def test_files_globs_formats_and_excludes(workdir, procs, aggregator, pods_path):
    app = os.path.join(workdir, "var", "app")
    os.makedirs(app)
    config = f"""
files:
  - include: ["{app}/*.log"]
    exclude: ["{app}/debug-*.log"]
    labels: {{job: app}}
  - include: "{workdir}/var/cri/*/*.log"
    format: cri
    labels: {{job: cri}}
"""
    agent = start_agent(workdir, procs, aggregator, pods_path, config=config)
    with open(os.path.join(app, "main.log"), "w") as f:
        f.write("raw line one\nraw line two\n")
    with open(os.path.join(app, "debug-1.log"), "w") as f:
        f.write("excluded\n")
    with open(os.path.join(app, "notes.txt"), "w") as f:
        f.write("not matched\n")
    # A directory created after the start, matched by a wildcard level.
    os.makedirs(os.path.join(workdir, "var", "cri", "late"))
    base = time.time_ns() - 10 * 10**9
    with open(os.path.join(workdir, "var", "cri", "late", "x.log"), "w") as f:
        f.write(cri_line(base, "stdout", "F", "cri via glob"))
    # Plus an ordinary pod, so both kinds of discovery run together.
    with open(pod_log_path(pods_path, "ns", "pod", "u", "c"), "w") as f:
        f.write(cri_line(base + 1, "stdout", "F", "pod line"))

    def got_all():
        a = aggregator.lines('{job="app"}', since_s=600)
        c = aggregator.lines('{job="cri"}', since_s=600)
        p = aggregator.lines('{namespace="ns"}', since_s=600)
        return (a, c, p) if len(a) >= 2 and c and p else None

    a, c, p = wait_for(got_all, 20, what="lines of every source")
    assert sorted(line for _, _, line in a) == ["raw line one", "raw line two"]
    assert a[0][1]["filename"] == os.path.join(app, "main.log")
    assert [line for _, _, line in c] == ["cri via glob"]
    assert c[0][0] == base
    assert [line for _, _, line in p] == ["pod line"]
    everything = aggregator.lines('{filename=~".+"}', since_s=600)
    assert not [e for e in everything if e[2] in ("excluded", "not matched")]
    # Appended raw lines follow through inotify.
    with open(os.path.join(app, "main.log"), "a") as f:
        f.write("raw line three\n")
    wait_for(lambda: len(aggregator.lines('{job="app"}', since_s=600)) == 3, 10,
             what="appended raw line")
    assert agent.alive()
