"""Loki push compatibility both ways: real Loki client libraries (pino-loki
sends JSON, winston-loki protobuf + snappy) push to the aggregator and their
lines come back with their labels; the agent ships to /loki/api/v1/push in
loki-json and loki-protobuf; protobuf details (structured metadata, one bad
stream among good ones, content types, compression) against the real binary."""
import concurrent.futures
import gzip
import json
import os
import shutil
import subprocess
import time
import uuid

import msgpack
import pytest
import requests

from conftest import ROOT, Agent, Aggregator, cri_line, metric_value, pod_log_path, wait_for
from loki_proto import push_request, snappy_compress, wal_records

TESTS = os.path.join(ROOT, "tests")
NODE = shutil.which("node")


def test_several_senders_per_stream_out_of_order_and_retries(workdir, procs):
    """Four senders share two streams and push interleaved timestamps (JSON and
    protobuf), so entries arrive out of order within the window and land in
    overlapping blocks (small blocks: many are cut). Then every sender retries
    every push, and the aggregator is killed and restarted (WAL replay). Each
    line comes back exactly once, in time order; the retries are counted as
    duplicates; blocks are decompressed for the duplicate check about once
    each, not once per entry."""
    agg = Aggregator(workdir, extra=["--set", "ingester.chunk_block_size=4KiB"])
    procs.append(agg)
    agg.start()
    senders, batches, per = 4, 15, 40
    base = time.time_ns() - 120 * 10**9
    total = senders * batches * per

    def entries(k, b):
        # sender k, batch b: entries n = (b * per + i) * senders + k
        out = []
        for i in range(per):
            n = (b * per + i) * senders + k
            out.append((base + n * 1000, f"sender={k} n={n} " + "x" * (n % 50)))
        return out

    def push(k, b):
        es = entries(k, b)
        app = "shared-" + str(b % 2)
        if (k + b) % 2:
            body = {"streams": [{"stream": {"app": app}, "values": [[str(t), l] for t, l in es]}]}
            r = requests.post(agg.url + "/loki/api/v1/push", data=json.dumps(body),
                              headers={"Content-Type": "application/json"}, timeout=30)
        else:
            r = post_proto(agg, snappy_compress(push_request([(f'{{app="{app}"}}', es)])))
        assert r.status_code == 204, r.text

    def sender(k):
        for b in range(batches):
            push(k, b)

    with concurrent.futures.ThreadPoolExecutor(senders) as ex:
        for f in [ex.submit(sender, k) for k in range(senders)]:
            f.result()
    m = agg.metrics()
    blocks = metric_value(m, "sluice_aggregator_ingester_blocks_cut_total")
    reads = metric_value(m, "sluice_aggregator_ingester_dedup_block_reads_total")
    assert blocks > 20
    assert reads is not None and reads <= blocks + 20, (reads, blocks)
    with concurrent.futures.ThreadPoolExecutor(senders) as ex:
        for f in [ex.submit(sender, k) for k in range(senders)]:
            f.result()
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_lines_duplicate_total") == total
    assert metric_value(m, "sluice_aggregator_lines_rejected_total") in (None, 0)

    def check():
        got = agg.lines('{app=~"shared-.*"}', since_s=600)
        assert len(got) == total
        want = sorted(t for k in range(senders) for b in range(batches) for t, _ in entries(k, b))
        assert [t for t, _, _ in got] == want
        assert len({l for _, _, l in got}) == total
    check()
    agg.kill9()
    agg.start()
    check()


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


class _LokiSink:
    """A Loki push endpoint over HTTPS (self-signed certificate) that records
    what it is sent: the agent's TLS options against a real TLS peer."""

    def __init__(self, workdir):
        import http.server
        import ssl
        import threading
        self.cert = os.path.join(workdir, "cert.pem")
        key = os.path.join(workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", self.cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        self.pushes = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.pushes.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_agent_loki_protobuf_over_tls_with_ca_file(workdir, procs, pods_path):
    from loki_proto import parse_push_request, snappy_uncompress
    sink = _LokiSink(workdir)
    try:
        path = pod_log_path(pods_path, "tlsns", "api-0", "u-2", "srv")
        now = time.time_ns() - 10**9
        with open(path, "w") as f:
            for i in range(50):
                f.write(cri_line(now + i, "stdout", "F", f"tls line {i}"))
        token = os.path.join(workdir, "token")
        with open(token, "w") as f:
            f.write("tok-123\n")
        common = ["--set", f"client.url={sink.url}/loki/api/v1/push",
                  "--set", "client.protocol=loki-protobuf", "--set", "client.tenant=team-a",
                  "--set", f"client.bearer_token_file={token}",
                  "--set", "client.backoff.min=100ms", "--set", "client.backoff.max=200ms",
                  "--set", "client.timeout=2s"]  # also bounds the stop of the first agent
        # without the CA the certificate is refused: nothing delivered, retries counted
        agent = Agent(workdir, "http://unused", pods_path, extra=common)
        procs.append(agent)
        agent.start()
        wait_for(lambda: (metric_value(agent.metrics(), "sluice_agent_batch_retries_total")
                          or 0) >= 1, what="TLS failures retried")
        assert sink.pushes == []
        agent.stop()
        # with client.tls.ca_file it verifies and delivers
        agent = Agent(workdir, "http://unused", pods_path,
                      extra=common + ["--set", f"client.tls.ca_file={sink.cert}"])
        procs.append(agent)
        agent.start()
        wait_for(lambda: metric_value(agent.metrics(), "sluice_agent_lines_sent_total") == 50,
                 what="50 lines sent over TLS")
        lines = []
        for p, headers, body in sink.pushes:
            assert p == "/loki/api/v1/push"
            assert headers["Content-Type"] == "application/x-protobuf"
            assert "Content-Encoding" not in headers
            assert headers["X-Scope-OrgID"] == "team-a"
            assert headers["Authorization"] == "Bearer tok-123"
            for labels, entries in parse_push_request(snappy_uncompress(body)):
                assert 'namespace="tlsns"' in labels and 'pod="api-0"' in labels
                lines += [(ts, line) for ts, line, _ in entries]
        assert sorted(lines) == [(now + i, f"tls line {i}") for i in range(50)]
    finally:
        sink.close()
