"""What an operator touches: --help, --check-config, /metrics that promtool accepts,
and the `sluice` CLI."""
import json
import os
import subprocess
import time

import requests

from conftest import BIN, cri_line, metric_value, pod_log_path, wait_for


def run(*args, env=None, check=False):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(list(args), capture_output=True, text=True, env=e, timeout=60,
                          check=check)


def test_help_lists_every_option():
    agg = run(os.path.join(BIN, "sluice-aggregator"), "--help")
    assert agg.returncode == 0
    for key in ("server.listen", "data_dir", "wal.fsync", "limits.max_line_size",
                "ingester.chunk_target_size", "storage.s3.bucket"):
        assert key in agg.stdout, key
    agent = run(os.path.join(BIN, "sluice-agent"), "--help")
    assert agent.returncode == 0
    for key in ("client.url", "positions.file", "kubernetes.pods_path", "read.max_line_size"):
        assert key in agent.stdout, key
    assert run(os.path.join(BIN, "sluice"), "--help").returncode == 0


def test_check_config(workdir):
    good = os.path.join(workdir, "good.yaml")
    with open(good, "w") as f:
        f.write("server:\n  listen: 127.0.0.1:3999\nlimits:\n  max_line_size: 128KiB\n"
                "storage:\n  filesystem:\n    dir: ${SLUICE_TEST_DIR:-/tmp/x}/store\n")
    r = run(os.path.join(BIN, "sluice-aggregator"), "--config", good, "--check-config",
            env={"SLUICE_TEST_DIR": "/srv/sluice"})
    assert r.returncode == 0, r.stderr
    assert "127.0.0.1:3999" in r.stdout and "/srv/sluice/store" in r.stdout
    assert "128KiB" in r.stdout
    bad = os.path.join(workdir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("server:\n  lisen: 1\n")
    r = run(os.path.join(BIN, "sluice-aggregator"), "--config", bad, "--check-config")
    assert r.returncode == 1
    assert "server.lisen" in r.stderr
    r = run(os.path.join(BIN, "sluice-agent"), "--check-config", "--set", "client.batch_wait=soon")
    assert r.returncode == 1
    assert "client.batch_wait" in r.stderr
    r = run(os.path.join(BIN, "sluice-aggregator"), "--config", "/nonexistent/x.yaml")
    assert r.returncode == 1 and "/nonexistent/x.yaml" in r.stderr


def promtool_ok(text, workdir, name):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"promtool rejected {name} /metrics:\n{p.stdout}\n{p.stderr}"


def test_metrics_are_valid_and_move(aggregator, agent, pods_path, workdir):
    now = time.time_ns()
    path = pod_log_path(pods_path, "m", "p", "u", "c")
    with open(path, "w") as f:
        for i in range(10):
            f.write(cri_line(now - 10**9 + i, "stdout", "F", f"metric line {i}"))
    wait_for(lambda: len(aggregator.lines('{namespace="m"}', since_s=60)) == 10, 15,
             what="10 lines")
    am = aggregator.metrics()
    promtool_ok(am, workdir, "aggregator")
    assert metric_value(am, "sluice_aggregator_lines_received_total", {"tenant": "anonymous"}) == 10
    assert metric_value(am, "sluice_aggregator_bytes_received_total", {"tenant": "anonymous"}) \
        == sum(len(f"metric line {i}") for i in range(10))
    assert metric_value(am, "sluice_aggregator_streams_active", {"tenant": "anonymous"}) == 1
    assert metric_value(am, "sluice_aggregator_wal_fsyncs_total") >= 1
    gm = wait_for(lambda: (lambda t: t if metric_value(t, "sluice_agent_lines_sent_total") == 10
                           else None)(agent.metrics()), 10, what="agent lines_sent 10")
    promtool_ok(gm, workdir, "agent")
    assert metric_value(gm, "sluice_agent_lines_read_total") == 10
    assert metric_value(gm, "sluice_agent_files_active") == 1
    assert metric_value(gm, "sluice_agent_bytes_read_total") == os.path.getsize(path)


def test_cli_query_and_labels(aggregator):
    now = time.time_ns()
    r = aggregator.push_json([{"stream": {"app": "cli", "level": "info"},
                               "values": [[str(now - 3 * 10**9), "first line"],
                                          [str(now - 2 * 10**9), "second line"],
                                          [str(now - 1 * 10**9), "third line"]]}])
    assert r.status_code == 204
    env = {"SLUICE_ADDR": aggregator.url}
    sl = os.path.join(BIN, "sluice")
    out = run(sl, "query", "--since", "1m", "--output", "raw", '{app="cli"}', env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["third line", "second line", "first line"]
    out = run(sl, "query", "--since", "1m", "--forward", "--limit", "2", "--output", "raw",
              '{app="cli"}', env=env)
    assert out.stdout.splitlines() == ["first line", "second line"]
    out = run(sl, "query", "--since", "1m", "--output", "jsonl", '{app="cli"} |= "second"',
              env=env)
    rows = [json.loads(l) for l in out.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["line"] == "second line"
    assert rows[0]["labels"] == {"app": "cli", "level": "info"}
    out = run(sl, "query", "--since", "1m", '{app="cli"} |= "third"', env=env)
    assert "third line" in out.stdout and 'app="cli"' in out.stdout
    out = run(sl, "labels", env=env)
    assert out.stdout.split() == ["app", "level"]
    out = run(sl, "labels", "app", env=env)
    assert out.stdout.split() == ["cli"]
    out = run(sl, "query", "{app=", env=env)
    assert out.returncode == 1 and "parse error" in (out.stderr + out.stdout)
    out = run(sl, "--addr", "http://127.0.0.1:1", "labels")
    assert out.returncode == 1 and out.stderr.strip()
