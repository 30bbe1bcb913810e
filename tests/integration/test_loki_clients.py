"""Loki push compatibility both ways: real Loki client libraries (pino-loki
sends JSON, winston-loki protobuf + snappy) push to the aggregator and their
lines come back with their labels; the agent ships to /loki/api/v1/push in
loki-json and loki-protobuf; protobuf details (structured metadata, one bad
stream among good ones, content types, compression) against the real binary."""
import gzip
import os
import shutil
import subprocess
import time
import uuid

import msgpack
import pytest
import requests

from conftest import ROOT, Agent, cri_line, metric_value, pod_log_path, wait_for
from loki_proto import push_request, snappy_compress, wal_records

TESTS = os.path.join(ROOT, "tests")
NODE = shutil.which("node")


def run_client(script, aggregator, run_id, count, tenant=None):
    if not NODE:
        pytest.skip("node is not installed (Debian package nodejs): cannot drive the npm "
                    "Loki clients")
    assert os.path.isdir(os.path.join(TESTS, "node_modules", "winston-loki")), \
        "tests/node_modules is missing: run scripts/deps.sh test (npm install in tests/)"
    args = [NODE, os.path.join(TESTS, "clients", script), aggregator.url, run_id, str(count)]
    if tenant:
        args.append(tenant)
    p = subprocess.run(args, cwd=TESTS, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{script} failed:\n{p.stdout}\n{p.stderr}"


def test_winston_loki_protobuf(aggregator):
    run_id = uuid.uuid4().hex[:8]
    run_client("winston_loki.js", aggregator, run_id, 40, tenant="winston")
    got = wait_for(lambda: (lambda g: g if len(g) == 40 else None)(
        aggregator.lines(f'{{run="{run_id}"}}', since_s=120, tenant="winston")),
        what="40 winston-loki lines")
    for _, labels, line in got:
        assert labels["app"] == "winston-test" and labels["run"] == run_id
        i = int(line.split()[2])
        assert labels["level"] == ("warn" if i % 2 else "info")
        assert line.startswith(f"winston line {i} of {run_id}")
    assert sorted(int(l.split()[2]) for _, _, l in got) == list(range(40))
    # the tenant header was honoured
    assert aggregator.lines(f'{{run="{run_id}"}}', since_s=120) == []


def test_pino_loki_json(aggregator):
    run_id = uuid.uuid4().hex[:8]
    run_client("pino_loki.js", aggregator, run_id, 30)
    got = wait_for(lambda: (lambda g: g if len(g) == 30 else None)(
        aggregator.lines(f'{{app="pino-test", run="{run_id}"}}', since_s=120)),
        what="30 pino-loki lines")
    seqs = []
    for _, labels, line in got:
        assert labels["level"] == "info"  # pino-loki's level label
        assert f"pino line" in line and run_id in line
        seqs.append(int(line.split("pino line ")[1].split()[0]))
    assert sorted(seqs) == list(range(30))


def post_proto(agg, body, tenant=None, content_type="application/x-protobuf", encoding=None):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    if encoding:
        headers["Content-Encoding"] = encoding
    return requests.post(agg.url + "/loki/api/v1/push", data=body, headers=headers, timeout=10)


def test_protobuf_metadata_bad_stream_and_encodings(aggregator):
    now = time.time_ns() - 5 * 10**9
    body = push_request([
        ('{app="pb", env="prod"}', [(now, "first", {"trace_id": "t-1", "user": "ann"}),
                                    (now + 1, "second")]),
        ('{app="pb", env=prod}', [(now + 2, "unparsable labels")]),
        ('{app="pb", env="dev"}', [(now + 3, "third")]),
    ])
    r = post_proto(aggregator, snappy_compress(body))
    assert r.status_code == 400, r.text
    assert r.json()["rejected"] == 1
    assert "invalid_labels" in r.json()["error"] and "env=prod" in r.json()["error"]
    got = aggregator.lines('{app="pb"}', since_s=60)
    assert [(l, s["env"]) for _, s, l in got] == [("first", "prod"), ("second", "prod"),
                                                  ("third", "dev")]
    # structured metadata reached the write-ahead log with the entry
    recs = [msgpack.unpackb(p[3 + int.from_bytes(p[1:3], "little"):], raw=False)
            for p in wal_records(os.path.join(aggregator.data_dir, "wal"))]
    metas = [e[2] for rec in recs for s in rec["streams"] for e in s["entries"] if len(e) > 2]
    assert {"trace_id": "t-1", "user": "ann"} in metas

    # no Content-Type is protobuf (as in Loki); gzip around snappy is undone first
    one = snappy_compress(push_request([('{app="pb2"}', [(now, "no content type")])]))
    assert post_proto(aggregator, one, content_type=None).status_code == 204
    two = snappy_compress(push_request([('{app="pb2"}', [(now + 1, "gzip outside")])]))
    assert post_proto(aggregator, gzip.compress(two), encoding="gzip").status_code == 204
    assert [l for _, _, l in aggregator.lines('{app="pb2"}', since_s=60)] == \
        ["no content type", "gzip outside"]

    # refusals name the problem
    r = post_proto(aggregator, body)  # not snappy-compressed
    assert r.status_code == 400 and "snappy" in r.text
    r = post_proto(aggregator, snappy_compress(b"\x0a\x05{}"))
    assert r.status_code == 400 and "protobuf" in r.text
    r = post_proto(aggregator, snappy_compress(body), content_type="text/plain")
    assert r.status_code == 415 and "application/x-protobuf" in r.text
    m = aggregator.metrics()
    assert metric_value(m, "sluice_aggregator_lines_rejected_total",
                        {"reason": "invalid_labels"}) == 1


@pytest.mark.parametrize("protocol,compression", [("loki-json", "gzip"),
                                                  ("loki-protobuf", "zstd")])
def test_agent_ships_loki_push(workdir, procs, aggregator, pods_path, protocol, compression):
    path = pod_log_path(pods_path, "lokins", "web-0", "u-1", "app")
    now = time.time_ns() - 10 * 10**9
    with open(path, "w") as f:
        for i in range(200):
            f.write(cri_line(now + i, "stdout", "F", f"{protocol} line {i}"))
    token = os.path.join(workdir, "token")
    with open(token, "w") as f:
        f.write("s3cret\n")
    agent = Agent(workdir, aggregator.url, pods_path, extra=[
        "--set", f"client.url={aggregator.url}/loki/api/v1/push",
        "--set", f"client.protocol={protocol}",
        "--set", f"client.compression={compression}",
        "--set", "client.tenant=loki-out",
        "--set", f"client.bearer_token_file={token}",
    ])
    procs.append(agent)
    agent.start()
    got = wait_for(lambda: (lambda g: g if len(g) == 200 else None)(
        aggregator.lines('{namespace="lokins"}', since_s=120, tenant="loki-out")),
        what="200 lines shipped through the Loki push API")
    assert [l for _, _, l in got] == [f"{protocol} line {i}" for i in range(200)]
    assert [ts for ts, _, _ in got] == [now + i for i in range(200)]
    labels = got[0][1]
    assert labels["pod"] == "web-0" and labels["container"] == "app" and \
        labels["node"] == "node-1"
    wait_for(lambda: metric_value(agent.metrics(), "sluice_agent_lines_sent_total") == 200,
             what="agent counted the lines as sent")
