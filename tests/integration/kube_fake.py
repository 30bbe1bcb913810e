"""A stand-in for the Kubernetes API server, for tests only: no real API server
can be installed where these tests run. It serves the two requests the agent
makes, in the shapes the real server uses:

  GET /api/v1/pods?fieldSelector=spec.nodeName=N            -> a PodList
  GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=R
      -> chunked stream of {"type": ..., "object": {...}} lines

over HTTPS with a self-signed certificate made at start with the openssl CLI,
checking the bearer token. Pods are added/removed from the test; watchers get
ADDED/DELETED events. expire_watches() ends every watch with the ERROR event
(a 410 Status) a real server sends for a too old resourceVersion."""
import json
import os
import queue
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class KubeFake:
    def __init__(self, workdir, token="sluice-test-token"):
        self.dir = os.path.join(workdir, "kube")
        os.makedirs(self.dir, exist_ok=True)
        self.ca_file = os.path.join(self.dir, "ca.crt")
        self.key_file = os.path.join(self.dir, "tls.key")
        self.token_file = os.path.join(self.dir, "token")
        self.token = token
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", self.key_file, "-out", self.ca_file, "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.lock = threading.Lock()
        self.pods = {}  # uid -> Pod object
        self.rv = 1000
        self.watchers = []  # (queue, node)
        self.history = []  # (resourceVersion, event): a watch from R replays what came after R
        self.requests = []  # (path, authorization header)
        self.stopping = threading.Event()
        self.server = None
        self.port = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, type_, pod):
        node = pod["spec"]["nodeName"]
        ev = json.loads(json.dumps({"type": type_, "object": pod}))  # a snapshot
        self.history.append((int(pod["metadata"]["resourceVersion"]), ev))
        for q, want in self.watchers:
            if not want or want == node:
                q.put({"type": type_, "object": pod})

    def add_pod(self, uid, ns, name, node, labels):
        with self.lock:
            pod = {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": name, "namespace": ns, "uid": uid,
                                "resourceVersion": self._next_rv(), "labels": dict(labels),
                                "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
                   "status": {"phase": "Running"}}
            self.pods[uid] = pod
            self._emit("ADDED", pod)

    def delete_pod(self, uid):
        with self.lock:
            pod = self.pods.pop(uid)
            pod["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("DELETED", pod)

    def expire_watches(self):
        with self.lock:
            for q, _ in self.watchers:
                q.put({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "too old resource version", "reason": "Expired", "code": 410}})
                q.put(None)

    def count(self, pred):
        with self.lock:
            return sum(1 for r in self.requests if pred(r))

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send_json(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                with fake.lock:
                    fake.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self.send_json(401, {"kind": "Status", "code": 401,
                                                "reason": "Unauthorized"})
                if u.path != "/api/v1/pods":
                    return self.send_json(404, {"kind": "Status", "code": 404})
                node = ""
                fs = q.get("fieldSelector", "")
                if fs.startswith("spec.nodeName="):
                    node = fs.split("=", 1)[1]
                if q.get("watch") in ("1", "true"):
                    return self.watch(node, int(q.get("timeoutSeconds", "300")),
                                      int(q.get("resourceVersion") or 0))
                with fake.lock:
                    items = [p for p in fake.pods.values()
                             if not node or p["spec"]["nodeName"] == node]
                    rv = str(fake.rv)
                self.send_json(200, {"kind": "PodList", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": rv}, "items": items})

            def chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def watch(self, node, timeout_s, since_rv):
                # As the API server does, a watch from resourceVersion R first
                # delivers every event after R, so nothing between a list and
                # the watch that follows it is missed.
                q = queue.Queue()
                with fake.lock:
                    for rv, ev in fake.history:
                        if rv > since_rv and (not node or
                                              ev["object"]["spec"]["nodeName"] == node):
                            q.put(ev)
                    fake.watchers.append((q, node))
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    deadline = time.monotonic() + timeout_s
                    while not fake.stopping.is_set() and time.monotonic() < deadline:
                        try:
                            ev = q.get(timeout=0.1)
                        except queue.Empty:
                            continue
                        if ev is None:
                            break
                        self.chunk(json.dumps(ev).encode() + b"\n")
                    if not fake.stopping.is_set():
                        self.chunk(b"")  # the terminating zero-length chunk
                    self.close_connection = True
                except OSError:
                    pass
                finally:
                    with fake.lock:
                        fake.watchers = [w for w in fake.watchers if w[0] is not q]

        self.stopping.clear()
        srv = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        srv.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca_file, self.key_file)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        self.port = srv.server_address[1]
        self.server = srv
        self.thread = threading.Thread(target=srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """The API goes away: the listener closes and open watches are cut."""
        if self.server is None:
            return
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        self.thread.join(5)
