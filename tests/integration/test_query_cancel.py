"""A query whose client goes away is canceled, as Loki cancels the query's
context: the aggregator stops spending CPU on it within a second or two,
counts it in sluice_aggregator_queries_cancelled_total{reason="client_gone"}
and keeps serving other requests. A client that only half-closes (shuts
down its sending side) still gets the answer, 499, before the connection
closes; keep-alive and pipelined requests are unaffected."""
import os
import socket
import time
from urllib.parse import urlencode

import requests

from conftest import Aggregator, metric_value, wait_for

# Every line costs the regex its whole match limit (exponential backtracking),
# so this query runs for many seconds over the pushed lines.
SLOW_QUERY = 'sum(count_over_time({app="slow"} |~ "(a|aa)+d" [1h]))'
LINES = 40000


def start_slow(workdir, procs):
    agg = Aggregator(workdir, extra=["--set", "limits.query_timeout=10m",
                                     "--set", "limits.ingestion_rate_mb=0",
                                     "--set", "querier.max_concurrency=1"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 600 * 10**9
    for k in range(0, LINES, 5000):
        values = [[str(base + i * 1000), "a" * 40 + f"c d {i}"] for i in range(k, k + 5000)]
        assert agg.push_json([{"stream": {"app": "slow"}, "values": values}]).status_code == 204
    return agg, base


def cpu_seconds(pid):
    """utime + stime of the process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_request(agg, path, params):
    s = socket.create_connection(("127.0.0.1", agg.port), timeout=60)
    s.sendall(f"GET {path}?{urlencode(params)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def cancelled(agg):
    return metric_value(agg.metrics(), "sluice_aggregator_queries_cancelled_total",
                        {"reason": "client_gone"}) or 0


def cpu_used_over(pid, seconds):
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - c0


def wait_busy(agg):
    """Polls until the query is visibly burning CPU (it has started)."""
    wait_for(lambda: cpu_used_over(agg.proc.pid, 0.5) > 0.1, 30, interval=0,
             what="the query using CPU")


def test_client_hangup_stops_the_query(workdir, procs):
    agg, base = start_slow(workdir, procs)
    pid = agg.proc.pid
    s = raw_request(agg, "/loki/api/v1/query", {"query": SLOW_QUERY, "time": base + 300 * 10**9})
    wait_busy(agg)
    s.close()
    t0 = time.monotonic()
    wait_for(lambda: cancelled(agg) == 1, 20, what="the query counted as cancelled")
    # The CPU stops being used: over a full second, next to nothing (a
    # running query uses a whole core).
    wait_for(lambda: cpu_used_over(pid, 1.0) < 0.15, 20, interval=0, what="the CPU going idle")
    took = time.monotonic() - t0
    print(f"CPU idle {took:.2f}s after the client left")
    assert took < 6, "the query went on long after the client left"
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_queries_total",
                        {"endpoint": "query", "code": "499"}) == 1, m
    assert "reason=client_gone" in agg.logs()
    # The server goes on serving, queries included.
    r = requests.get(agg.url + "/loki/api/v1/query_range", timeout=30, params={
        "query": '{app="slow"} |= "c d 7"', "start": base, "end": base + 10**9, "limit": 5})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]["result"][0]["values"]) == 5
    assert requests.get(agg.url + "/ready", timeout=10).status_code == 200


def test_half_closed_client_still_gets_the_answer(workdir, procs):
    agg, base = start_slow(workdir, procs)
    s = raw_request(agg, "/loki/api/v1/query", {"query": SLOW_QUERY, "time": base + 300 * 10**9})
    wait_busy(agg)
    t0 = time.monotonic()
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert time.monotonic() - t0 < 20
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 499 "), data[:300]
    assert b"client canceled request" in body
    assert cancelled(agg) == 1


def test_keep_alive_and_pipelining_still_work(workdir, procs):
    agg, base = start_slow(workdir, procs)
    q = urlencode({"query": '{app="slow"} |= "c d 12"', "start": base,
                   "end": base + 10**9, "limit": 3})
    req = f"GET /loki/api/v1/query_range?{q} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    s = socket.create_connection(("127.0.0.1", agg.port), timeout=60)
    s.sendall(req * 3)  # pipelined: three answers in order on one connection
    data = b""
    deadline = time.monotonic() + 30
    while data.count(b"HTTP/1.1 200 OK") < 3 and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3, data[:500]
    s.sendall(req)  # and the connection is still open for more
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200 OK"), data[:300]
    s.close()
    assert cancelled(agg) == 0


def test_timeout_is_counted_as_a_cancellation(workdir, procs):
    agg = Aggregator(workdir, extra=["--set", "limits.query_timeout=1s",
                                     "--set", "limits.ingestion_rate_mb=0"])
    procs.append(agg)
    agg.start()
    base = time.time_ns() - 600 * 10**9
    values = [[str(base + i * 1000), "a" * 40 + f"c d {i}"] for i in range(5000)]
    assert agg.push_json([{"stream": {"app": "slow"}, "values": values}]).status_code == 204
    r = requests.get(agg.url + "/loki/api/v1/query", timeout=60, params={
        "query": SLOW_QUERY, "time": base + 300 * 10**9})
    assert r.status_code == 504, r.text
    m = agg.metrics()
    assert metric_value(m, "sluice_aggregator_queries_cancelled_total",
                        {"reason": "timeout"}) == 1, m
    assert metric_value(m, "sluice_aggregator_queries_cancelled_total",
                        {"reason": "client_gone"}) == 0
