"""The agent's pipeline stages with real processes: JSON lines give the stream a
`level` label, a timestamp from a field and structured metadata; health checks
are dropped by regex and counted under their drop_counter_reason; Java stack
traces (stdout, and stderr flushed by max_wait_time) are joined into one entry
timestamped from a Go layout; a bad stage is a clear startup error."""
import json
import os
import subprocess
import time

from conftest import BIN, Agent, cri_line, metric_value, pod_log_path, wait_for

PIPELINE = r"""
pipeline:
  - multiline:
      firstline: '^(\{|\d{4}-\d{2}-\d{2} )'
      max_wait_time: 500ms
  - json:
      expressions: {level: level, msg: msg, ts: time, trace: trace_id}
  - labels: {level: ""}
  - structured_metadata: {trace_id: trace}
  - drop: {expression: 'GET /healthz', drop_counter_reason: healthcheck}
  - timestamp: {source: ts, format: RFC3339Nano, action_on_failure: skip}
  - regex:
      expression: '^(?P<jts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) (?P<jlevel>[A-Z]+) '
  - labels: {level: jlevel}
  - timestamp: {source: jts, format: "2006-01-02 15:04:05.000", action_on_failure: skip}
"""


def rfc3339(ns):
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def java_ts(ms):
    secs, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + f".{frac:03d}"


def start_agent(workdir, procs, aggregator, pods_path, config):
    path = os.path.join(workdir, "agent.yaml")
    with open(path, "w") as f:
        f.write(config)
    a = Agent(workdir, aggregator.url, pods_path, extra=("--config", path))
    procs.append(a)
    return a.start()


def test_pipeline_end_to_end(workdir, procs, aggregator, pods_path):
    agent = start_agent(workdir, procs, aggregator, pods_path, PIPELINE)
    now = time.time_ns()
    read_ts = now - 5 * 10**9  # the CRI timestamps: not what the stages pick
    t_err = now - 90 * 10**9
    t_done = now - 70 * 10**9
    java_ms = (now - 80 * 10**9) // 10**6
    err_ms = java_ms + 1500
    trace = [f"{java_ts(java_ms)} ERROR [main] request failed",
             "java.lang.IllegalStateException: boom",
             "\tat com.example.Service.call(Service.java:42)",
             "\tat com.example.Main.main(Main.java:7)",
             "Caused by: java.io.IOException: reset",
             "\t... 2 more"]
    lines = [
        ("stdout", json.dumps({"time": rfc3339(t_err), "level": "error", "msg": "db down",
                               "trace_id": "trace-abc123"})),
        ("stdout", json.dumps({"time": rfc3339(t_err + 1000), "level": "info",
                               "msg": "GET /healthz 200"})),
        *[("stdout", t) for t in trace],
        ("stdout", json.dumps({"time": rfc3339(t_done), "level": "info", "msg": "done"})),
        # a stack trace on stderr with nothing after it: out after max_wait_time
        ("stderr", f"{java_ts(err_ms)} WARN [io] slow"),
        ("stderr", "\tat com.example.Io.read(Io.java:3)"),
    ]
    path = pod_log_path(pods_path, "pipe", "api", "u1", "app")
    with open(path, "w") as f:
        for i, (stream, text) in enumerate(lines):
            f.write(cri_line(read_ts + i, stream, "F", text))

    def everything():
        got = aggregator.lines('{namespace="pipe"}', since_s=600)
        return got if any(line.endswith("Io.java:3)") for _, _, line in got) else None

    got = wait_for(everything, 20, what="the stderr block after max_wait_time")
    by_line = {line: (ts, labels) for ts, labels, line in got}
    assert len(got) == 4, got

    ts, labels = by_line['{"time": "%s", "level": "error", "msg": "db down", "trace_id": '
                         '"trace-abc123"}' % rfc3339(t_err)]
    assert labels["level"] == "error"
    assert ts == t_err  # from the "time" field, not the CRI timestamp
    assert labels["pod"] == "api" and labels["container"] == "app"

    ts, labels = by_line["\n".join(trace)]
    assert labels["level"] == "ERROR"
    assert ts == java_ms * 10**6

    ts, labels = by_line[f"{java_ts(err_ms)} WARN [io] slow\n\tat com.example.Io.read(Io.java:3)"]
    assert labels["level"] == "WARN"
    assert ts == err_ms * 10**6

    done = [(ts, labels) for ts, labels, line in got if '"msg": "done"' in line]
    assert done == [(t_done, done[0][1])] and done[0][1]["level"] == "info"
    assert not any("healthz" in line for _, _, line in got)

    # the label is a stream label: a selector finds exactly the error line
    errs = aggregator.lines('{namespace="pipe", level="error"}', since_s=600)
    assert [line for _, _, line in errs] == [got[0][2]]

    m = agent.metrics()
    assert metric_value(m, "sluice_agent_lines_dropped_total", {"reason": "healthcheck"}) == 1
    assert metric_value(m, "sluice_agent_lines_read_total") == len(lines)
    # every entry acknowledged, so the position reaches the end of the file
    size = os.path.getsize(path)

    def position_at_end():
        try:
            with open(agent.positions) as f:
                text = f.read()
        except FileNotFoundError:
            return False
        return str(size) in text
    wait_for(position_at_end, 10, what="the position at the end of the file")

    # structured metadata reached the aggregator: it filters like a label of the entry
    # there, without being a stream label
    meta = aggregator.lines('{namespace="pipe"} | trace_id="trace-abc123"', since_s=600)
    assert [line for _, _, line in meta] == [got[0][2]]
    assert meta[0][1]["trace_id"] == "trace-abc123"
    assert aggregator.lines('{namespace="pipe", trace_id="trace-abc123"}', since_s=600) == []


def test_bad_stage_is_a_startup_error(workdir):
    path = os.path.join(workdir, "agent.yaml")
    with open(path, "w") as f:
        f.write("pipeline:\n  - json: {expressions: {a: b}}\n  - regex: {expression: '(a'}\n")
    r = subprocess.run([os.path.join(BIN, "sluice-agent"), "--config", path, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "pipeline[1] (regex): line 3: expression:" in r.stderr, r.stderr
