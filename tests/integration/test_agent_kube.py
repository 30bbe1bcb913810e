"""kubernetes.api.enabled against kube_fake.py, an HTTPS stand-in for the
Kubernetes API (list + watch shapes of the real server; no API server can be
installed here): allowlisted pod labels reach the streams, a pod announced by
a watch event gets them too, a 410 makes the agent list again, and with the
API gone lines keep flowing with path labels while the error counter moves;
a pod the API learns of only after its log was opened gets its labels on the
lines read from then on."""
import os
import signal
import time

import pytest

from conftest import Agent, cri_line, metric_value, pod_log_path, wait_for
from kube_fake import KubeFake


@pytest.fixture
def kube(workdir):
    k = KubeFake(workdir).start()
    yield k
    k.stop()


def start_agent(workdir, procs, aggregator, pods_path, kube):
    a = Agent(workdir, aggregator.url, pods_path, node="node-1", extra=(
        "--set", "kubernetes.api.enabled=true",
        "--set", f"kubernetes.api.host={kube.url}",
        "--set", f"kubernetes.api.token_file={kube.token_file}",
        "--set", f"kubernetes.api.ca_file={kube.ca_file}",
        "--set", "client.backoff.min=100ms",
    ))
    procs.append(a)
    return a.start()


def gauge(agent, name):
    return metric_value(agent.metrics(), name) or 0


def write(pods_path, ns, pod, uid, text, ts):
    with open(pod_log_path(pods_path, ns, pod, uid, "c"), "a") as f:
        f.write(cri_line(ts, "stdout", "F", text))


def stream_of(aggregator, pod, text):
    def find():
        for _, s, line in aggregator.lines(f'{{pod="{pod}"}}', since_s=600):
            if line == text:
                return s
        return None
    return wait_for(find, 20, interval=0.2, what=f"line {text!r} of {pod}")


def test_pod_labels_from_api(workdir, procs, aggregator, pods_path, kube):
    kube.add_pod("uid-a", "shop", "web-1", "node-1",
                 {"app.kubernetes.io/name": "web", "app": "web-app", "secret": "no"})
    kube.add_pod("uid-x", "shop", "elsewhere", "node-2", {"app": "other-node"})
    base = time.time_ns() - 30 * 10**9
    # A file there before the agent starts: opened once the first list answered.
    write(pods_path, "shop", "web-1", "uid-a", "from before the start", base - 1)
    agent = start_agent(workdir, procs, aggregator, pods_path, kube)
    wait_for(lambda: gauge(agent, "sluice_agent_kube_pods") == 1, 15, what="pods listed")
    assert kube.count(lambda r: "fieldSelector=spec.nodeName%3Dnode-1" in r[0]) >= 1
    assert kube.count(lambda r: r[1] != f"Bearer {kube.token}") == 0
    assert stream_of(aggregator, "web-1", "from before the start")["app"] == "web-app"

    write(pods_path, "shop", "web-1", "uid-a", "hello from web", base)
    s = stream_of(aggregator, "web-1", "hello from web")
    assert s["app_kubernetes_io_name"] == "web"
    assert s["app"] == "web-app"
    assert "secret" not in s
    assert s["namespace"] == "shop" and s["container"] == "c" and s["node"] == "node-1"

    # A pod announced by a watch event.
    kube.add_pod("uid-b", "shop", "late-1", "node-1", {"app": "late"})
    wait_for(lambda: gauge(agent, "sluice_agent_kube_pods") == 2, 15, what="watch ADDED")
    write(pods_path, "shop", "late-1", "uid-b", "late line", base + 1)
    s = stream_of(aggregator, "late-1", "late line")
    assert s["app"] == "late" and "app_kubernetes_io_name" not in s

    # 410 Gone on the watch: listed again, and a deletion is seen.
    lists = kube.count(lambda r: "watch=" not in r[0])
    kube.expire_watches()
    wait_for(lambda: kube.count(lambda r: "watch=" not in r[0]) > lists, 15, what="relist")
    kube.delete_pod("uid-b")
    wait_for(lambda: gauge(agent, "sluice_agent_kube_pods") == 1, 15, what="watch DELETED")
    # Known issue: the HTTP client may report one transient error ("select/poll
    # returned error") around the relist; it is retried, counted and logged. So
    # the count is taken as a baseline here rather than asserted to be zero.
    errors_before = gauge(agent, "sluice_agent_kube_api_errors_total")

    # The API goes away: lines keep flowing, errors are counted.
    kube.stop()
    wait_for(lambda: gauge(agent, "sluice_agent_kube_api_errors_total") > errors_before, 20,
             what="API errors counted")
    write(pods_path, "shop", "web-1", "uid-a", "still flowing", base + 2)
    s = stream_of(aggregator, "web-1", "still flowing")
    assert s["app"] == "web-app"  # labels of a file are kept
    write(pods_path, "shop", "new-1", "uid-c", "path labels only", base + 3)
    s = stream_of(aggregator, "new-1", "path labels only")
    assert "app" not in s and s["namespace"] == "shop"
    assert "kubernetes API request failed" in agent.logs()


def test_api_down_at_start(workdir, procs, aggregator, pods_path, kube):
    kube.add_pod("uid-a", "shop", "web-1", "node-1", {"app": "web-app"})
    kube.stop()
    write(pods_path, "shop", "web-1", "uid-a", "no API", time.time_ns() - 10**9)
    agent = start_agent(workdir, procs, aggregator, pods_path, kube)
    s = stream_of(aggregator, "web-1", "no API")
    assert "app" not in s and s["pod"] == "web-1"
    assert gauge(agent, "sluice_agent_kube_api_errors_total") >= 1
    assert gauge(agent, "sluice_agent_kube_pods") == 0


def test_pod_labels_that_come_after_the_file(workdir, procs, aggregator, pods_path, kube):
    """The API learns of a pod only after the agent opened its log (the pod
    was just created, or the API was slow): lines read before carry the path
    labels, lines read after the pod is known carry its labels too."""
    base = time.time_ns() - 30 * 10**9
    # There at start, its pod unknown to the first list.
    write(pods_path, "shop", "early-1", "uid-e", "early before", base)
    agent = start_agent(workdir, procs, aggregator, pods_path, kube)
    wait_for(lambda: kube.count(lambda r: "watch=" in r[0]) >= 1, 15, what="watch started")
    # Created while the agent runs, its pod still unknown.
    write(pods_path, "shop", "fresh-1", "uid-f", "fresh before", base + 1)
    assert "app" not in stream_of(aggregator, "early-1", "early before")
    assert "app" not in stream_of(aggregator, "fresh-1", "fresh before")
    assert gauge(agent, "sluice_agent_files_pod_labels_late_total") == 0

    kube.add_pod("uid-e", "shop", "early-1", "node-1", {"app": "early"})
    kube.add_pod("uid-f", "shop", "fresh-1", "node-1",
                 {"app": "fresh", "app.kubernetes.io/name": "f"})
    wait_for(lambda: gauge(agent, "sluice_agent_kube_pods") == 2, 15, what="watch ADDED")
    write(pods_path, "shop", "early-1", "uid-e", "early after", base + 2)
    write(pods_path, "shop", "fresh-1", "uid-f", "fresh after", base + 3)
    s = stream_of(aggregator, "early-1", "early after")
    assert s["app"] == "early" and s["pod"] == "early-1" and s["namespace"] == "shop"
    s = stream_of(aggregator, "fresh-1", "fresh after")
    assert s["app"] == "fresh" and s["app_kubernetes_io_name"] == "f" and s["container"] == "c"
    assert gauge(agent, "sluice_agent_files_pod_labels_late_total") == 2
    # Each line once: the early ones stay under the path labels.
    for pod in ("early-1", "fresh-1"):
        got = [(line, "app" in st) for _, st, line in aggregator.lines(f'{{pod="{pod}"}}', 600)]
        prefix = pod.split("-")[0]
        assert sorted(got) == [(f"{prefix} after", True), (f"{prefix} before", False)], got
    assert "pod labels arrived after the file was opened" in agent.logs()


def test_reload_changes_the_pod_label_allowlist(workdir, procs, aggregator, pods_path, kube):
    """kubernetes.api.pod_labels changed in the file + SIGHUP: the watcher
    lists again and the lines read after the reload carry the new set."""
    cfg = os.path.join(workdir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("kubernetes:\n  api:\n    pod_labels: [app]\n")
    kube.add_pod("uid-a", "shop", "web-1", "node-1", {"app": "web", "team": "core"})
    base = time.time_ns() - 30 * 10**9
    a = Agent(workdir, aggregator.url, pods_path, node="node-1", extra=(
        "--config", cfg,
        "--set", "kubernetes.api.enabled=true",
        "--set", f"kubernetes.api.host={kube.url}",
        "--set", f"kubernetes.api.token_file={kube.token_file}",
        "--set", f"kubernetes.api.ca_file={kube.ca_file}",
    ))
    procs.append(a)
    agent = a.start()
    write(pods_path, "shop", "web-1", "uid-a", "before the reload", base)
    s = stream_of(aggregator, "web-1", "before the reload")
    assert s["app"] == "web" and "team" not in s
    lists = kube.count(lambda r: "watch=" not in r[0])

    with open(cfg, "w") as f:
        f.write("kubernetes:\n  api:\n    pod_labels: [app, team]\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric_value(agent.metrics(), "sluice_agent_config_reloads_total",
                                  {"result": "success"}) == 1, 30, what="reload")
    wait_for(lambda: kube.count(lambda r: "watch=" not in r[0]) > lists, 15, what="relist")
    write(pods_path, "shop", "web-1", "uid-a", "after the reload", base + 1)
    s = stream_of(aggregator, "web-1", "after the reload")
    assert s["app"] == "web" and s["team"] == "core"
    got = [line for _, _, line in aggregator.lines('{pod="web-1"}', 600)]
    assert sorted(got) == ["after the reload", "before the reload"]
    assert "kube=restarted" in agent.logs()


def test_late_pod_labels_with_a_held_multiline_block(workdir, procs, aggregator, pods_path,
                                                      kube):
    """With a multiline stage, a block still held when the pod's labels arrive
    goes out under the path labels it was read with, whole and once; the
    blocks after it carry the pod labels."""
    cfg = os.path.join(workdir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("pipeline:\n  - multiline: {firstline: '^START', max_wait_time: 30s}\n")
    a = Agent(workdir, aggregator.url, pods_path, node="node-1", extra=(
        "--config", cfg,
        "--set", "kubernetes.api.enabled=true",
        "--set", f"kubernetes.api.host={kube.url}",
        "--set", f"kubernetes.api.token_file={kube.token_file}",
        "--set", f"kubernetes.api.ca_file={kube.ca_file}",
    ))
    procs.append(a)
    agent = a.start()
    wait_for(lambda: kube.count(lambda r: "watch=" in r[0]) >= 1, 15, what="watch started")
    base = time.time_ns() - 30 * 10**9
    for i, text in enumerate(["START one", "  one more", "START two", "  two more"]):
        write(pods_path, "shop", "ml-1", "uid-m", text, base + i)
    assert "app" not in stream_of(aggregator, "ml-1", "START one\n  one more")
    wait_for(lambda: metric_value(agent.metrics(), "sluice_agent_bytes_read_total") ==
             os.path.getsize(pod_log_path(pods_path, "shop", "ml-1", "uid-m", "c")), 15,
             what="block two read (and held)")
    kube.add_pod("uid-m", "shop", "ml-1", "node-1", {"app": "ml"})
    wait_for(lambda: gauge(agent, "sluice_agent_kube_pods") == 1, 15, what="watch ADDED")
    write(pods_path, "shop", "ml-1", "uid-m", "START three", base + 10)
    write(pods_path, "shop", "ml-1", "uid-m", "START four", base + 11)
    s = stream_of(aggregator, "ml-1", "START three")
    assert s["app"] == "ml"
    got = sorted((line, st.get("app")) for _, st, line in aggregator.lines('{pod="ml-1"}', 600))
    assert got == [("START one\n  one more", None), ("START three", "ml"),
                   ("START two\n  two more", None)], got
