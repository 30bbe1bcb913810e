"""A line written to a pod log comes back from a LogQL query: the agent tails the
kubelet layout, ships to the aggregator, and /loki/api/v1/query_range returns exactly
the lines, in order, with the path labels."""
import os
import time

from conftest import cri_line, pod_log_path, wait_for


def write(path, text):
    with open(path, "a") as f:
        f.write(text)
        f.flush()


def test_lines_and_partial_lines_come_back_in_order(aggregator, agent, pods_path):
    path = pod_log_path(pods_path, "shop", "web-7d9f8-x2k4p", "0b5c6f1e-aaaa-4bbb-8ccc-1234567890ab",
                        "web")
    base = time.time_ns() - 60 * 10**9
    expected = []  # (ts, line) in time order
    text = ""
    for i in range(200):
        t = base + i * 10**6
        stream = "stderr" if i % 7 == 0 else "stdout"
        if i % 10 == 3:
            # a long line the runtime split in three pieces, with a full stderr line
            # arriving between the pieces: the pieces join per stream
            text += cri_line(t, "stdout", "P", f"part-one-{i} ")
            text += cri_line(t + 1000, "stderr", "F", f"stderr between pieces {i}")
            text += cri_line(t + 2000, "stdout", "P", f"part-two-{i} ")
            text += cri_line(t + 3000, "stdout", "F", f"part-three-{i}")
            expected.append((t, f"part-one-{i} part-two-{i} part-three-{i}"))
            expected.append((t + 1000, f"stderr between pieces {i}"))
        else:
            line = f"line {i} level=info msg=\"hello world\" key=value-{i}"
            text += cri_line(t, stream, "F", line)
            expected.append((t, line))
    # written in several appends, as a container would
    chunks = [text[i:i + 4096] for i in range(0, len(text), 4096)]
    for c in chunks:
        write(path, c)

    q = '{namespace="shop", pod="web-7d9f8-x2k4p", container="web"}'
    got = wait_for(lambda: (lambda r: r if len(r) >= len(expected) else None)(
        aggregator.lines(q, since_s=600)), 20, what="all lines queryable")
    assert [line for _, _, line in got] == [line for _, line in expected]
    assert [ts for ts, _, _ in got] == [ts for ts, _ in expected]
    for _, labels, _ in got:
        assert labels == {"namespace": "shop", "pod": "web-7d9f8-x2k4p", "container": "web",
                          "node": "node-1"}


def test_new_pod_is_picked_up_and_filters_apply(aggregator, agent, pods_path):
    now = time.time_ns()
    a = pod_log_path(pods_path, "payments", "ledger-0", "uid-ledger", "ledger")
    write(a, cri_line(now - 3 * 10**9, "stdout", "F", "GET /healthz 200")
          + cri_line(now - 2 * 10**9, "stdout", "F", "POST /charge 500 error=timeout")
          + cri_line(now - 1 * 10**9, "stdout", "F", "POST /charge 201"))
    # a pod that appears after the agent started
    b = pod_log_path(pods_path, "payments", "ledger-1", "uid-ledger-1", "ledger")
    write(b, cri_line(now - 10**9 // 2, "stdout", "F", "POST /refund 500 error=declined"))

    errors = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
        aggregator.lines('{namespace="payments"} |= "500"', since_s=60)), 15,
        what="filtered lines")
    assert [l for _, _, l in errors] == ["POST /charge 500 error=timeout",
                                        "POST /refund 500 error=declined"]
    assert {lbl["pod"] for _, lbl, _ in errors} == {"ledger-0", "ledger-1"}

    got = aggregator.lines('{namespace="payments", pod=~"ledger-.*"} != "healthz" |~ "POST /(charge|refund)" !~ "20[01]"', since_s=60)
    assert [l for _, _, l in got] == ["POST /charge 500 error=timeout",
                                     "POST /refund 500 error=declined"]

    # backward with a limit gives the newest first, as Loki does
    r = aggregator.query_range('{namespace="payments"}', start=now - 60 * 10**9,
                               end=now + 10**9, limit=2, direction="backward")
    assert r.status_code == 200, r.text
    vals = sorted((v for s in r.json()["data"]["result"] for v in s["values"]),
                  key=lambda v: -int(v[0]))
    assert [v[1] for v in vals] == ["POST /refund 500 error=declined", "POST /charge 201"]


def test_labels_and_series_endpoints(aggregator, agent, pods_path):
    now = time.time_ns()
    write(pod_log_path(pods_path, "kube-system", "coredns-5d78c9869d-abcde", "uid-c", "coredns"),
          cri_line(now - 10**9, "stdout", "F", "[INFO] plugin/reload: Running configuration"))
    wait_for(lambda: aggregator.lines('{namespace="kube-system"}', since_s=60), 15,
             what="line queryable")
    import requests
    r = requests.get(aggregator.url + "/loki/api/v1/labels", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "success",
                        "data": ["container", "namespace", "node", "pod"]}
    r = requests.get(aggregator.url + "/loki/api/v1/label/namespace/values", timeout=10)
    assert r.json()["data"] == ["kube-system"]
    r = requests.get(aggregator.url + "/loki/api/v1/series",
                     params={"match[]": '{container="coredns"}'}, timeout=10)
    assert r.json()["data"] == [{"container": "coredns", "namespace": "kube-system",
                                 "node": "node-1", "pod": "coredns-5d78c9869d-abcde"}]


def test_catching_up_on_a_large_file_loses_no_line(aggregator, workdir, procs, pods_path):
    """A file written before the agent starts is read in full buffers: lines cut at
    the end of a buffer (anywhere, also inside the CRI header) are read whole."""
    from conftest import Agent, metric_value
    path = pod_log_path(pods_path, "batch", "etl-0", "uid-etl-0", "etl")
    base = time.time_ns() - 120 * 10**9
    n = 24000  # about 5 MiB: many 256 KiB reads, each ending inside some line
    parts = []
    for i in range(n):
        pad = "x" * ((i * 37) % 300)
        parts.append(cri_line(base + i * 1000, "stdout", "F", f"seq={i} {pad}"))
    write(path, "".join(parts))
    agent = Agent(workdir, aggregator.url, pods_path)
    procs.append(agent)
    agent.start()
    q = '{namespace="batch", pod="etl-0"}'
    got = wait_for(lambda: (lambda r: r if len(r) >= n else None)(
        aggregator.lines(q, since_s=600, limit=n + 10)), 60, what="every line queryable")
    seqs = [int(line.split(" ", 1)[0][4:]) for _, _, line in got]
    assert seqs == list(range(n))
    m = agent.metrics()
    assert not metric_value(m, "sluice_agent_lines_dropped_total", {"reason": "malformed"})
    assert metric_value(m, "sluice_agent_lines_read_total") == n
