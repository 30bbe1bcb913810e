"""Stand-ins for AWS in the integration tests, all on 127.0.0.1:

- S3rver: @20minutes/s3rver (npm), a signature-checking S3 implementation, run
  by tests/integration/s3rver.js. Its only credentials: S3RVER / S3RVER.
- FakeSts: stands in for AWS STS AssumeRoleWithWebIdentity (what IRSA uses),
  answering with the XML shapes AWS documents.
- FakeImds: stands in for the EC2 instance metadata service, IMDSv2 (a PUT for a
  session token, then GETs carrying it), with the JSON shapes AWS documents.

These are test doubles for AWS, not AWS; nothing here talks to the network."""
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_MODULES = os.path.join(ROOT, "tests", "node_modules")
S3RVER_JS = os.path.join(ROOT, "tests", "integration", "s3rver.js")
S3RVER_KEY = "S3RVER"  # s3rver's access key id and secret


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3rver:
    """One s3rver process serving `bucket` from a directory; stop() and start()
    again keep the port and the data."""

    def __init__(self, workdir, bucket="logs", port=None, extra=()):
        if not os.path.isdir(os.path.join(NODE_MODULES, "@20minutes", "s3rver")):
            raise RuntimeError("@20minutes/s3rver is not installed in tests/node_modules: "
                               "run scripts/deps.sh test")
        self.dir = os.path.join(workdir, "s3rver-data")
        os.makedirs(self.dir, exist_ok=True)
        self.bucket = bucket
        self.port = port or _free_port()
        self.extra = list(extra)
        self.log_path = os.path.join(workdir, "s3rver.log")
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        node = shutil.which("node")
        # s3rver encrypts ListObjectsV2 continuation tokens with a cipher that
        # OpenSSL 3 only has in its legacy provider.
        args = [node, "--openssl-legacy-provider", S3RVER_JS, "--dir", self.dir, "--port", str(self.port),
                "--bucket", self.bucket, *self.extra]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log,
                                     cwd=os.path.dirname(S3RVER_JS))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"s3rver listening"):
                return self
        self.stop()
        raise RuntimeError(f"s3rver did not start; see {self.log_path}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def object_keys(self):
        """Keys stored in the bucket, read from s3rver's directory (not through S3)."""
        root = os.path.join(self.dir, self.bucket)
        keys = []
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith("._S3rver_object"):
                    rel = os.path.relpath(os.path.join(d, f), root)
                    keys.append(rel[: -len("._S3rver_object")])
        return sorted(keys)


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class _Fake:
    """A ThreadingHTTPServer on 127.0.0.1 in a thread, recording requests."""

    def __init__(self):
        self.requests = []  # (method, path, headers dict, body bytes)
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with fake.lock:
                    fake.requests.append((self.command, self.path, dict(self.headers), body))
                status, ctype, out = fake.respond(self.command, self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls(self, method=None, path_prefix=""):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r[0] == method) and r[1].startswith(path_prefix)]


class FakeSts(_Fake):
    """AssumeRoleWithWebIdentity: checks the role and the token, returns
    temporary credentials (s3rver's key pair, a numbered session token) that
    expire `lifetime` seconds from now."""

    def __init__(self, role_arn, token, lifetime=3600):
        self.role_arn = role_arn
        self.token = token
        self.lifetime = lifetime
        self.issued = 0
        super().__init__()

    def respond(self, method, path, headers, body):
        form = urllib.parse.parse_qs(body.decode())
        get = lambda k: form.get(k, [""])[0]
        if method != "POST" or get("Action") != "AssumeRoleWithWebIdentity":
            return 400, "text/xml", self._error("InvalidAction", "Could not find operation")
        if get("WebIdentityToken") != self.token:
            return 400, "text/xml", self._error(
                "InvalidIdentityToken", "Couldn't retrieve verification key from your identity "
                "provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
        if get("RoleArn") != self.role_arn:
            return 403, "text/xml", self._error("AccessDenied", "Not authorized to perform "
                                                "sts:AssumeRoleWithWebIdentity")
        self.issued += 1
        exp = _iso(time.time() + self.lifetime)
        xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:logging:sluice</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/sluice/{get("RoleSessionName")}</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:{get("RoleSessionName")}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzEXAMPLE-session-{self.issued}</SessionToken>
      <SecretAccessKey>{S3RVER_KEY}</SecretAccessKey>
      <Expiration>{exp}</Expiration>
      <AccessKeyId>{S3RVER_KEY}</AccessKeyId>
    </Credentials>
    <SourceIdentity>sluice</SourceIdentity>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""
        return 200, "text/xml", xml.encode()

    @staticmethod
    def _error(code, msg):
        return f"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>{code}</Code>
    <Message>{msg}</Message>
  </Error>
  <RequestId>c1d5e7f3-EXAMPLE</RequestId>
</ErrorResponse>
""".encode()


class FakeImds(_Fake):
    """IMDSv2: PUT /latest/api/token (with the TTL header) gives a token; the
    metadata GETs need it (401 without, as EC2 answers when IMDSv2 is required)."""

    TOKEN = "AQAEAFakeImdsTokenEXAMPLE=="

    def __init__(self, role="sluice-node-role", lifetime=21600):
        self.role = role
        self.lifetime = lifetime
        self.issued = 0
        super().__init__()

    def respond(self, method, path, headers, body):
        if method == "PUT" and path == "/latest/api/token":
            if not headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return 400, "text/plain", b""
            return 200, "text/plain", self.TOKEN.encode()
        if headers.get("X-aws-ec2-metadata-token") != self.TOKEN:
            return 401, "text/plain", b""
        base = "/latest/meta-data/iam/security-credentials/"
        if method == "GET" and path == base:
            return 200, "text/plain", self.role.encode()
        if method == "GET" and path == base + self.role:
            self.issued += 1
            doc = {
                "Code": "Success",
                "LastUpdated": _iso(time.time()),
                "Type": "AWS-HMAC",
                "AccessKeyId": S3RVER_KEY,
                "SecretAccessKey": S3RVER_KEY,
                "Token": f"IQoJb3JpZ2luX2VjEXAMPLE-{self.issued}",
                "Expiration": _iso(time.time() + self.lifetime),
            }
            return 200, "text/plain", json.dumps(doc, indent=2).encode()
        return 404, "text/plain", b""
