"""Per-tenant limits on the push path: the ingestion rate limit answers 429
with Retry-After and keeps nothing, counted as rate_limited; pushes pass again
once the bucket has refilled; tenants have their own buckets; a mixed-validity
push keeps its good lines (also as protobuf)."""
import time

import pytest
import requests

from conftest import Aggregator, metric_value, wait_for
from loki_proto import push_request, snappy_compress

KB = 1024


@pytest.fixture
def limited(workdir, procs):
    # 0.25 MB/s with a 0.25 MB burst: fractions, as Loki allows
    a = Aggregator(workdir, extra=["--set", "limits.ingestion_rate_mb=0.25",
                                   "--set", "limits.ingestion_burst_size_mb=0.25"])
    procs.append(a)
    return a.start()


def batch(tag, n, size, t0):
    return [{"stream": {"app": "burst", "tag": tag},
             "values": [[str(t0 + i), f"{tag} {i:06d} " + "x" * (size - 16)] for i in range(n)]}]


def test_rate_limit_429_retry_after_then_passes(limited):
    t0 = time.time_ns() - 10**9
    # 200 KiB fits in the 256 KiB burst
    r = limited.push_json(batch("a", 100, 2 * KB, t0))
    assert r.status_code == 204, r.text
    # the next 200 KiB does not: 429, Retry-After, nothing kept
    r = limited.push_json(batch("b", 100, 2 * KB, t0 + 10**6))
    assert r.status_code == 429, r.text
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 2  # ~144 KiB missing at 256 KiB/s
    body = r.json()
    assert body["rejected"] == 100 and "rate limit" in body["error"]
    assert limited.lines('{tag="b"}', since_s=60) == []
    m = limited.metrics()
    assert metric_value(m, "sluice_aggregator_lines_rejected_total",
                        {"tenant": "anonymous", "reason": "rate_limited"}) == 100
    # another tenant has its own bucket
    r = limited.push_json(batch("c", 100, 2 * KB, t0 + 2 * 10**6), tenant="other")
    assert r.status_code == 204, r.text
    # after Retry-After the same push passes (bounded retries, not a fixed sleep)
    deadline = time.monotonic() + 10
    while True:
        r = limited.push_json(batch("b", 100, 2 * KB, t0 + 10**6))
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(int(r.headers["Retry-After"]))
    assert r.status_code == 204, r.text
    assert len(limited.lines('{tag="b"}', since_s=60)) == 100
    assert len(limited.lines('{app="burst"}', since_s=60)) == 200


def test_burst_of_small_pushes_gets_429(limited):
    t0 = time.time_ns() - 10**9
    codes = []
    for k in range(40):  # 40 x 16 KiB = 640 KiB in well under a second
        r = limited.push_json(batch(f"s{k}", 8, 2 * KB, t0 + k * 100))
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    assert codes[0] == 204 and 429 in codes, codes
    kept = sum(8 for c in codes if c == 204)
    assert len(limited.lines('{app="burst"}', since_s=60)) == kept
    assert metric_value(limited.metrics(), "sluice_aggregator_lines_rejected_total",
                        {"reason": "rate_limited"}) == 8 * codes.count(429)


def test_zero_rate_means_no_limit(workdir, procs):
    a = Aggregator(workdir, extra=["--set", "limits.ingestion_rate_mb=0"])
    procs.append(a)
    a.start()
    t0 = time.time_ns() - 10**9
    for k in range(5):  # 5 x 2 MiB, far over the default burst if it applied
        r = a.push_json(batch(f"z{k}", 64, 32 * KB, t0 + k * 1000))
        assert r.status_code == 204, r.text


def test_bad_rate_is_a_clear_config_error(workdir, procs):
    import subprocess
    from conftest import BIN
    import os
    p = subprocess.run([os.path.join(BIN, "sluice-aggregator"), "--check-config",
                        "--set", "limits.ingestion_rate_mb=fast"],
                       capture_output=True, text=True, timeout=20, cwd=workdir)
    assert p.returncode == 1
    assert "limits.ingestion_rate_mb" in p.stderr + p.stdout


def test_mixed_protobuf_push_keeps_good_lines(limited):
    now = time.time_ns() - 10**9
    body = push_request([
        ('{app="mixed"}', [(now, "good one"), (now + 1, "y" * (300 * KB))]),  # too long
        ('{app="mixed", 0bad="x"}', [(now + 2, "bad label name")]),
        ('{app="mixed"}', [(now - 30 * 24 * 3600 * 10**9, "too old"), (now + 3, "good two")]),
    ])
    r = requests.post(limited.url + "/loki/api/v1/push", data=snappy_compress(body),
                      headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["rejected"] == 3
    for reason in ("line_too_long: 1", "invalid_labels: 1", "greater_than_max_sample_age: 1"):
        assert reason in err["error"], err["error"]
    got = wait_for(lambda: limited.lines('{app="mixed"}', since_s=60), what="good lines")
    assert [l for _, _, l in got] == ["good one", "good two"]


def test_structured_metadata_limits(workdir, procs):
    a = Aggregator(workdir, extra=["--set", "limits.max_structured_metadata_entries_count=2",
                                   "--set", "limits.max_structured_metadata_size=32"])
    procs.append(a)
    a.start()
    now = time.time_ns() - 10**9
    r = a.push_json([{"stream": {"app": "meta"}, "values": [
        [str(now), "fits", {"trace_id": "abc", "user": "7"}],
        [str(now + 1), "too many", {"a": "1", "b": "2", "c": "3"}],
        [str(now + 2), "too large", {"trace_id": "x" * 40}],
        [str(now + 3), "none"],
    ]}])
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["rejected"] == 2
    assert "structured_metadata_too_many: 1" in err["error"], err["error"]
    assert "structured_metadata_too_large: 1" in err["error"], err["error"]
    assert "limits.max_structured_metadata_size" in err["error"], err["error"]
    got = wait_for(lambda: a.lines('{app="meta"}', since_s=60), what="the kept lines")
    assert sorted(l for _, _, l in got) == ["fits", "none"]
    m = a.metrics()
    assert metric_value(m, "sluice_aggregator_lines_rejected_total",
                        {"reason": "structured_metadata_too_many"}) == 1
    assert metric_value(m, "sluice_aggregator_lines_rejected_total",
                        {"reason": "structured_metadata_too_large"}) == 1
