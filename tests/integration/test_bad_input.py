"""Malformed pushes and HTTP requests get a 4xx with a reason, valid entries of a
mixed push are kept, and the server keeps serving."""
import gzip
import json
import socket
import time

import msgpack
import pytest
import requests
import zstandard

from conftest import Aggregator, metric_value


def raw(port, data, read=65536, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                c = s.recv(read)
                if not c:
                    break
                chunks.append(c)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    return int(line.split()[1])


def native(streams, encoding="zstd"):
    body = msgpack.packb({"streams": streams}, use_bin_type=True)
    if encoding == "zstd":
        body = zstandard.ZstdCompressor(level=1).compress(body)
    elif encoding == "gzip":
        body = gzip.compress(body)
    headers = {"Content-Type": "application/x-msgpack"}
    if encoding != "none":
        headers["Content-Encoding"] = encoding
    return body, headers


@pytest.fixture
def agg(workdir, procs):
    a = Aggregator(workdir, extra=["--set", "server.max_request_bytes=1MiB"])
    procs.append(a)
    return a.start()


def test_native_push_all_encodings(agg):
    now = time.time_ns()
    for i, enc in enumerate(["zstd", "gzip", "none"]):
        body, headers = native([{"labels": {"app": "native", "enc": enc},
                                 "entries": [[now - 10**9 + i, f"via {enc}"],
                                             [now - 10**9 + i + 1, b"bin line",
                                              {"trace_id": "abc"}]]}], enc)
        r = requests.post(agg.url + "/api/v1/push", data=body, headers=headers, timeout=10)
        assert r.status_code == 204, (enc, r.text)
    got = agg.lines('{app="native"}', since_s=60)
    assert sorted(l for _, _, l in got) == sorted(
        ["via zstd", "via gzip", "via none", "bin line", "bin line", "bin line"])


@pytest.mark.parametrize("body,headers,fragment", [
    (b"not json", {"Content-Type": "application/json"}, "json"),
    (b'{"streams": 5}', {"Content-Type": "application/json"}, "streams"),
    (b'{"streams": [{"stream": {"app": "x"}, "values": [["abc", "line"]]}]}',
     {"Content-Type": "application/json"}, "timestamp"),
    (b'{"streams": [{"stream": {"app": "x"}, "values": [["1", 7]]}]}',
     {"Content-Type": "application/json"}, "line"),
    (b"\x1f\x8b garbage", {"Content-Type": "application/json", "Content-Encoding": "gzip"},
     "gzip"),
])
def test_bad_json_push_is_400_with_reason(agg, body, headers, fragment):
    r = requests.post(agg.url + "/loki/api/v1/push", data=body, headers=headers, timeout=10)
    assert r.status_code == 400, r.text
    assert fragment in r.text.lower()
    assert requests.get(agg.url + "/ready", timeout=5).status_code == 200


def test_bad_native_push_is_4xx_with_reason(agg):
    cases = [
        (b"\xc1\xc1\xc1", {"Content-Type": "application/x-msgpack"}, 400),
        (msgpack.packb({"streams": [{"labels": {"a": "b"}, "entries": [["x", "y"]]}]}),
         {"Content-Type": "application/x-msgpack"}, 400),
        (b"garbage", {"Content-Type": "application/x-msgpack", "Content-Encoding": "zstd"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"{}", {"Content-Type": "application/x-msgpack", "Content-Encoding": "br"}, 415),
    ]
    for body, headers, want in cases:
        r = requests.post(agg.url + "/api/v1/push", data=body, headers=headers, timeout=10)
        assert r.status_code == want, (body, r.status_code, r.text)
        assert r.text.strip(), "a 4xx must say why"


def test_mixed_push_keeps_valid_entries(agg):
    now = time.time_ns()
    streams = [
        {"stream": {"app": "good"}, "values": [[str(now - 10**9), "kept line"]]},
        {"stream": {"bad-name": "x"}, "values": [[str(now - 10**9), "bad label"]]},
        {"stream": {"app": "good"}, "values": [[str(now - 30 * 24 * 3600 * 10**9), "too old"]]},
    ]
    r = agg.push_json(streams)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["rejected"] == 2
    assert "label" in body["error"] and "old" in body["error"]
    assert [l for _, _, l in agg.lines('{app="good"}', since_s=60)] == ["kept line"]
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_lines_rejected_total") == 2
    assert metric_value(m, "sluice_aggregator_lines_received_total",
                        {"tenant": "anonymous"}) >= 1


def test_malformed_http_gets_4xx_and_server_keeps_serving(agg):
    assert status_of(raw(agg.port, b"GARBAGE\r\n\r\n")) == 400
    assert status_of(raw(agg.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000
                         + b"\r\n\r\n")) == 431
    resp = raw(agg.port, b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n")
    assert status_of(resp) == 413
    # a slow client does not hold the server: others are served meanwhile
    slow = socket.create_connection(("127.0.0.1", agg.port))
    slow.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n")
    assert requests.get(agg.url + "/ready", timeout=5).status_code == 200
    slow.close()
    r = requests.get(agg.url + "/loki/api/v1/query_range", params={"query": "{app="}, timeout=5)
    assert r.status_code == 400 and "parse error" in r.text
    r = requests.get(agg.url + "/loki/api/v1/query_range",
                     params={"query": '{app="x"}', "start": "yesterday"}, timeout=5)
    assert r.status_code == 400 and "start" in r.text
    now = time.time_ns()
    r = agg.push_json([{"stream": {"app": "after"}, "values": [[str(now - 10**9), "still up"]]}])
    assert r.status_code == 204
    assert [l for _, _, l in agg.lines('{app="after"}', since_s=60)] == ["still up"]


def test_tenants_are_separate(agg):
    now = time.time_ns()
    assert agg.push_json([{"stream": {"app": "t"}, "values": [[str(now - 10**9), "for a"]]}],
                         tenant="team-a").status_code == 204
    assert agg.push_json([{"stream": {"app": "t"}, "values": [[str(now - 10**9), "for b"]]}],
                         tenant="team-b").status_code == 204
    assert [l for _, _, l in agg.lines('{app="t"}', since_s=60, tenant="team-a")] == ["for a"]
    assert [l for _, _, l in agg.lines('{app="t"}', since_s=60, tenant="team-b")] == ["for b"]
    assert agg.lines('{app="t"}', since_s=60) == []
    r = agg.push_json([{"stream": {"app": "t"}, "values": [[str(now), "x"]]}], tenant="../etc")
    assert r.status_code == 400
