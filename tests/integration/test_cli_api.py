"""Read API extras and the `sluice` CLI over them: status/buildinfo,
index/stats (from memory and after /flush, from the store), gzip answers,
and the CLI's series, stats and metric query outputs, and its colours (on a
terminal only, logcli's palette, NO_COLOR, --color, --no-color)."""
import gzip
import json
import os
import subprocess
import time

import requests

from conftest import BIN, urlq

SEL = '{app="cli",env="t"}'


def push(agg, app, level, base_ns, n, step_ns=10**6):
    values = [[str(base_ns + i * step_ns), f"{level} line {i:04d}"] for i in range(n)]
    r = agg.push_json([{"stream": {"app": app, "env": "t", "level": level}, "values": values}])
    assert r.status_code == 204, r.text
    return sum(len(v[1]) for v in values)


def stats(agg, sel, **kw):
    r = requests.get(agg.url + "/loki/api/v1/index/stats", params={"query": sel, **kw},
                     timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def sluice(agg, *args):
    p = subprocess.run([os.path.join(BIN, "sluice"), "--addr", agg.url, *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_buildinfo_shape(aggregator):
    r = requests.get(aggregator.url + "/loki/api/v1/status/buildinfo", timeout=10)
    assert r.status_code == 200
    d = r.json()
    assert set(d) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    assert d["version"] and d["goVersion"] == ""
    v = subprocess.run([os.path.join(BIN, "sluice"), "--version"], capture_output=True,
                       text=True).stdout.split()[-1]
    assert d["version"] == v


def test_index_stats_memory_then_store(aggregator):
    base = time.time_ns() - 600 * 10**9
    b1 = push(aggregator, "cli", "info", base, 30)
    b2 = push(aggregator, "cli", "error", base, 12)
    push(aggregator, "other", "info", base, 5)
    want = {"streams": 2, "entries": 42, "bytes": b1 + b2}
    got = stats(aggregator, SEL)
    assert {k: got[k] for k in want} == want and got["chunks"] >= 2, got
    one = stats(aggregator, '{app="cli", level="error"}')
    assert (one["streams"], one["entries"], one["bytes"]) == (1, 12, b2)
    # the range is [start, end): only the first 10 info and error entries
    part = stats(aggregator, SEL, start=str(base), end=str(base + 10 * 10**6))
    assert (part["streams"], part["entries"]) == (2, 20), part
    none = stats(aggregator, '{app="nothing"}')
    assert none == {"streams": 0, "chunks": 0, "entries": 0, "bytes": 0}
    r = requests.post(aggregator.url + "/flush", timeout=120)
    assert r.status_code == 204, r.text
    after = stats(aggregator, SEL)
    assert {k: after[k] for k in want} == want, after
    r = requests.get(aggregator.url + "/loki/api/v1/index/stats", timeout=10)
    assert r.status_code == 400 and "query" in r.text
    r = requests.get(aggregator.url + "/loki/api/v1/index/stats?query=" + urlq("{app="),
                     timeout=10)
    assert r.status_code == 400 and "parse error" in r.text


def test_gzip_when_asked(aggregator):
    base = time.time_ns() - 60 * 10**9
    push(aggregator, "cli", "info", base, 200)
    url = aggregator.url + "/loki/api/v1/query_range?limit=200&query=" + urlq(SEL)
    raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30).raw
    assert raw.headers.get("Content-Encoding") == "gzip"
    body = gzip.decompress(raw.read(decode_content=False))
    assert len(json.loads(body)["data"]["result"][0]["values"]) == 200
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers
    assert json.loads(plain.content)["data"]["result"] == json.loads(body)["data"]["result"]
    no = requests.get(url, headers={"Accept-Encoding": "gzip;q=0"}, timeout=30)
    assert "Content-Encoding" not in no.headers
    # small answers go as they are
    small = requests.get(aggregator.url + "/loki/api/v1/labels",
                         headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert "Content-Encoding" not in small.headers and "app" in small.json()["data"]


def test_cli_series_stats_and_metric_outputs(aggregator):
    base = (time.time_ns() // 10**9 - 300) * 10**9
    b_info = push(aggregator, "cli", "info", base, 6, step_ns=10**9)
    push(aggregator, "cli", "error", base, 3, step_ns=10**9)
    out = sluice(aggregator, "series", SEL).splitlines()
    assert out == ['{app="cli", env="t", level="error"}', '{app="cli", env="t", level="info"}']
    st = dict(l.split(": ") for l in sluice(aggregator, "stats", '{level="info"}').splitlines())
    assert st["streams"] == "1" and st["entries"] == "6" and st["bytes"] == str(b_info)
    # instant (no range): at --to, one line per series
    q = f'sum by (level) (count_over_time({SEL}[10m]))'
    to = str(base + 10 * 10**9)
    assert sluice(aggregator, "query", "--to", to, q).splitlines() == \
        ['{level="error"} 3', '{level="info"} 6']
    rows = [json.loads(l) for l in sluice(aggregator, "query", "--to", to, "--output", "jsonl",
                                          q).splitlines()]
    assert [(r["labels"], r["value"]) for r in rows] == \
        [({"level": "error"}, "3"), ({"level": "info"}, "6")]
    raw = json.loads(sluice(aggregator, "query", "--to", to, "--output", "raw", q))
    assert raw[0]["metric"] == {"level": "error"} and raw[0]["value"][1] == "3"
    # range: {labels} then "<time> value" rows
    frm = str(base // 10**9)
    mq = f'sum by (level) (count_over_time({SEL}[2s]))'
    out = sluice(aggregator, "query", "--from", frm, "--to", str(base // 10**9 + 4),
                 "--step", "2s", mq).splitlines()
    assert out[0] == '{level="error"}', out
    assert out[1].endswith("Z 1") and out[2].endswith("Z 2"), out
    lvl = out.index('{level="info"}')
    assert [l.split()[1] for l in out[lvl + 1:]] == ["1", "2", "2"], out
    jl = [json.loads(l) for l in sluice(aggregator, "query", "--from", frm, "--to",
                                        str(base // 10**9 + 4), "--step", "2s", "--output",
                                        "jsonl", mq).splitlines()]
    assert len(jl) == len(out) - 2 and all(set(r) == {"labels", "timestamp", "value"} for r in jl)
    # a log query still prints entries
    logs = sluice(aggregator, "query", "--since", "1h", "--limit", "2", SEL).splitlines()
    assert len(logs) == 2 and logs[0].endswith("info line 0005")


PALETTE = ["96", "36", "92", "32", "95", "35", "93", "33", "91", "31"]  # logcli's, in order


def fnv32(s):
    h = 2166136261
    for b in s.encode():
        h = (h * 16777619) & 0xFFFFFFFF
        h ^= b
    return h


def run_on_tty(args, env=None, timeout=60):
    """Runs sluice with stdout on a pseudo-terminal; returns (rc, output)."""
    import pty
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["TERM"] = "xterm"
    e.update(env or {})
    p = subprocess.Popen([os.path.join(BIN, "sluice"), *args], stdout=slave,
                         stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout)
    return rc, out.decode().replace("\r\n", "\n")


def test_cli_colours_on_a_terminal_only(aggregator):
    base = time.time_ns() - 60 * 10**9
    push(aggregator, "cli", "info", base, 2)
    push(aggregator, "cli", "error", base, 1)
    args = ["--addr", aggregator.url, "query", "--since", "1h", "--forward", SEL]
    # piped: plain
    plain = sluice(aggregator, "query", "--since", "1h", "--forward", SEL)
    assert "\x1b[" not in plain and len(plain.splitlines()) == 3
    # on a terminal: timestamp blue, labels in their stream's colour, line as is
    rc, out = run_on_tty(args)
    assert rc == 0, out
    lines = out.splitlines()
    assert len(lines) == 3, out
    for line, want in zip(lines, plain.splitlines()):
        ts, labels, text = want.split(" ", 1)[0], *want.split(" ", 1)[1].rsplit("} ", 1)
        labels += "}"
        colour = PALETTE[fnv32(labels) % len(PALETTE)]
        assert line == f"\x1b[34m{ts}\x1b[0m \x1b[{colour}m{labels}\x1b[0m {text}", line
    # two streams, two colour codes (the hash differs)
    codes = {l.split("\x1b[")[3].split("m")[0] for l in lines}
    want_codes = {PALETTE[fnv32(f'{{app="cli", env="t", level="{lv}"}}') % 10]
                  for lv in ("info", "error")}
    assert codes == want_codes
    # NO_COLOR and --no-color turn colours off on a terminal; --color forces them in a pipe
    rc, out = run_on_tty(args, env={"NO_COLOR": "1"})
    assert rc == 0 and "\x1b[" not in out and len(out.splitlines()) == 3
    rc, out = run_on_tty(["--no-color", *args])
    assert rc == 0 and "\x1b[" not in out
    forced = sluice(aggregator, "query", "--color", "--since", "1h", "--forward", SEL)
    assert forced.splitlines() == lines
    # raw and jsonl are never coloured
    rc, out = run_on_tty([*args[:-1], "--output", "raw", SEL])
    assert rc == 0 and "\x1b[" not in out
    assert sorted(out.splitlines()) == ["error line 0000", "info line 0000", "info line 0001"]
