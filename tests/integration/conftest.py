"""Fixtures that run the real Sluice binaries on 127.0.0.1 with ephemeral ports
in temporary directories. Every process a test starts is stopped by PID at the
end, and its stderr is checked for sanitizer reports (the suite also runs
against the ASan+UBSan build)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build", "bin"))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (requests.ConnectionError, requests.Timeout, OSError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    """One daemon: started with a log file, stopped by PID."""

    def __init__(self, name, args, workdir, env=None):
        self.name = name
        self.args = args
        self.workdir = workdir
        self.env = env
        self.proc = None
        self.log_path = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.workdir, f"{self.name}.{self.starts}.log")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if self.env:
            env.update(self.env)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.workdir)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the process; returns its exit code (negative: killed by signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not exit within {timeout}s of {sig!r}")
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def logs(self):
        out = []
        for i in range(1, self.starts + 1):
            p = os.path.join(self.workdir, f"{self.name}.{i}.log")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "\n".join(out)

    def check_sanitizers(self):
        text = self.logs()
        for m in SANITIZER_MARKERS:
            assert m not in text, f"{self.name} reported a sanitizer error:\n{text[-6000:]}"


class Aggregator(Proc):
    def __init__(self, workdir, extra=()):
        self.port = free_port()
        self.data_dir = os.path.join(workdir, "agg-data")
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("aggregator", [os.path.join(BIN, "sluice-aggregator"),
                                        "--listen", f"127.0.0.1:{self.port}",
                                        "--data-dir", self.data_dir,
                                        # tests read whole streams back in one query
                                        "--set", "limits.max_entries_limit_per_query=1000000",
                                        *extra], workdir)

    def start(self, wait=True):
        super().start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        def ready():
            assert self.alive(), f"aggregator exited:\n{self.logs()[-3000:]}"
            return requests.get(self.url + "/ready", timeout=2).status_code == 200
        wait_for(ready, timeout, what="aggregator /ready")

    def query_range(self, query, start=None, end=None, limit=None, direction=None,
                    tenant=None, **params):
        p = {"query": query}
        if start is not None:
            p["start"] = str(start)
        if end is not None:
            p["end"] = str(end)
        if limit is not None:
            p["limit"] = str(limit)
        if direction is not None:
            p["direction"] = direction
        p.update(params)
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        r = requests.get(self.url + "/loki/api/v1/query_range", params=p, headers=headers,
                         timeout=30)
        return r

    def lines(self, query, since_s=3600, limit=100000, direction="forward", tenant=None):
        """All (ts, labels, line) for a log query over the last since_s, oldest first."""
        now = time.time_ns()
        r = self.query_range(query, start=now - since_s * 10**9, end=now + 10**9, limit=limit,
                             direction=direction, tenant=tenant)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success"
        assert body["data"]["resultType"] == "streams"
        out = []
        for s in body["data"]["result"]:
            for ts, line in s["values"]:
                out.append((int(ts), s["stream"], line))
        out.sort(key=lambda e: e[0])
        return out

    def push_json(self, streams, tenant=None, **kw):
        headers = {"Content-Type": "application/json"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        return requests.post(self.url + "/loki/api/v1/push", data=json.dumps({"streams": streams}),
                             headers=headers, timeout=30, **kw)

    def metrics(self):
        return requests.get(self.url + "/metrics", timeout=10).text


class Agent(Proc):
    def __init__(self, workdir, aggregator_url, pods_path, node="node-1", extra=()):
        self.port = free_port()
        self.pods_path = pods_path
        self.positions = os.path.join(workdir, "agent-positions.json")
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("agent", [os.path.join(BIN, "sluice-agent"),
                                   "--set", f"kubernetes.pods_path={pods_path}",
                                   "--set", f"kubernetes.node_name={node}",
                                   "--set", f"positions.file={self.positions}",
                                   "--set", "positions.sync_period=1s",
                                   "--set", f"server.listen=127.0.0.1:{self.port}",
                                   "--set", f"client.url={aggregator_url}/api/v1/push",
                                   "--set", "client.batch_wait=200ms",
                                   "--set", "read.sweep_period=1s",
                                   *extra], workdir)

    def start(self, wait=True):
        super().start()
        if wait:
            def ready():
                assert self.alive(), f"agent exited:\n{self.logs()[-3000:]}"
                return requests.get(self.url + "/ready", timeout=2).status_code == 200
            wait_for(ready, 30, what="agent /ready")
        return self

    def metrics(self):
        return requests.get(self.url + "/metrics", timeout=10).text


def metric_value(text, name, labels=None):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        mname, _, lbl = key.partition("{")
        if mname != name:
            continue
        if labels:
            pairs = dict(kv.split("=", 1) for kv in lbl.rstrip("}").split(",") if "=" in kv)
            pairs = {k: v.strip('"') for k, v in pairs.items()}
            if any(pairs.get(k) != v for k, v in labels.items()):
                continue
        total += float(value)
        found = True
    return total if found else None


def cri_line(ts_ns, stream, tag, text):
    secs, ns = divmod(ts_ns, 10**9)
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns:09d}Z"
    return f"{t} {stream} {tag} {text}\n"


def pod_log_path(pods_path, ns, pod, uid, container, n=0):
    d = os.path.join(pods_path, f"{ns}_{pod}_{uid}", container)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{n}.log")


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def procs():
    """Registry of started processes: all stopped (by PID) at teardown, and checked
    for sanitizer reports."""
    started = []
    yield started
    errors = []
    for p in reversed(started):
        try:
            p.stop()
        except AssertionError as e:
            errors.append(str(e))
        try:
            p.check_sanitizers()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def aggregator(workdir, procs):
    a = Aggregator(workdir)
    procs.append(a)
    return a.start()


@pytest.fixture
def pods_path(workdir):
    p = os.path.join(workdir, "pods")
    os.makedirs(p)
    return p


@pytest.fixture
def agent(workdir, procs, aggregator, pods_path):
    a = Agent(workdir, aggregator.url, pods_path)
    procs.append(a)
    return a.start()


def urlq(s):
    return urllib.parse.quote(s, safe="")
