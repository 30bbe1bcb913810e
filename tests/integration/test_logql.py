"""LogQL end to end: lines pushed through the real aggregator (Loki JSON push)
are read back over HTTP with parsers, label filters, line_format, metric
queries (range and instant), vector aggregations, topk, binary operators,
and the `vector(1)+vector(1)` Grafana's health check runs."""
import os
import shutil
import time

import pytest
import requests

from conftest import Aggregator


@pytest.fixture
def loaded(workdir, procs):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    base = (int(time.time()) - 1200) // 60 * 60  # a minute boundary, 20 minutes ago
    api = []
    for i in range(60):
        err = i % 3 == 0
        api.append([str((base + i) * 10**9),
                    f'level={"error" if err else "info"} status={500 if err else 200} '
                    f'dur={i * 10}ms msg="request {i}"'])
    web = []
    for i in range(30):
        web.append([str((base + 2 * i) * 10**9),
                    '{"level":"%s","status":%d,"user":"u%d"}' % (
                        "warn" if i % 2 else "info", 404 if i % 2 else 200, i % 3)])
    r = agg.push_json([{"stream": {"app": "api", "env": "prod"}, "values": api},
                       {"stream": {"app": "web", "env": "prod"}, "values": web}])
    assert r.status_code == 204, r.text
    return agg, base


def streams(agg, base, query):
    r = agg.query_range(query, start=(base - 1) * 10**9, end=(base + 120) * 10**9, limit=1000,
                        direction="forward")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "streams"
    return data["result"]


def instant(agg, query, t):
    r = requests.get(agg.url + "/loki/api/v1/query", params={"query": query, "time": str(t)},
                     timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def by(result, label):
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in result}


def test_parsers_and_label_filters(loaded):
    agg, base = loaded
    res = streams(agg, base, '{app="api"} | logfmt | level="error" | status >= 500')
    lines = [v for s in res for v in s["values"]]
    assert len(lines) == 20
    # one stream per label set after the parser
    assert all(s["stream"]["level"] == "error" and s["stream"]["status"] == "500" for s in res)
    assert all(s["stream"]["app"] == "api" for s in res)
    res = streams(agg, base, '{app="web"} | json | status == 404 | user="u1" | keep app, user')
    assert [s["stream"] for s in res] == [{"app": "web", "user": "u1"}]
    # i odd and i % 3 == 1: 1, 7, 13, 19, 25
    assert len(res[0]["values"]) == 5
    # a parse error is a label, not a dropped line
    res = streams(agg, base, '{app="api"} | json | __error__="JSONParserErr" | keep app')
    assert len(res[0]["values"]) == 60


def test_line_format(loaded):
    agg, base = loaded
    res = streams(agg, base, '{app="api"} | logfmt | dur > 550ms | line_format '
                             '"{{.level | ToUpper}} {{.status}} {{.msg}}" | drop dur, msg')
    lines = [v[1] for s in sorted(res, key=lambda s: s["stream"]["level"]) for v in s["values"]]
    assert lines[0] == "ERROR 500 request 57"
    assert sorted(lines)[-1] == "INFO 200 request 59"
    assert len(lines) == 4  # 56..59 ms*10 > 550


def test_metric_queries(loaded):
    agg, base = loaded
    t = base + 59  # the window (base-1, base+59] holds every line
    data = instant(agg, 'sum by (level) (count_over_time({app="api"} | logfmt [1m]))', t)
    assert data["resultType"] == "vector"
    assert by(data["result"], "level") == {"error": 20.0, "info": 40.0}
    assert data["result"][0]["value"][0] == t
    data = instant(agg, 'sum by (app) (rate({env="prod"}[1m]))', t)
    assert by(data["result"], "app") == {"api": 1.0, "web": 0.5}
    data = instant(agg, 'topk(1, sum by (app) (count_over_time({env="prod"}[1m])))', t)
    assert [s["metric"] for s in data["result"]] == [{"app": "api"}]
    data = instant(agg, 'sum(count_over_time({app="web"}[1m])) / '
                        'sum(count_over_time({app="api"}[1m]))', t)
    assert data["result"] == [{"metric": {}, "value": [t, "0.5"]}]
    # without an aggregation, every label set after json is its own series
    data = instant(agg, 'count_over_time({app="web"} | json | status >= 400 [1m])', t)
    assert sorted(s["metric"]["user"] for s in data["result"]) == ["u0", "u1", "u2"]
    assert all(s["value"][1] == "5" for s in data["result"])
    data = instant(agg, 'sum(count_over_time({app="web"} | json | status >= 400 [1m])) > 10', t)
    assert len(data["result"]) == 1 and data["result"][0]["value"][1] == "15"


def test_range_query_matrix(loaded):
    agg, base = loaded
    r = agg.query_range('count_over_time({app="api"}[30s])', start=(base + 30) * 10**9,
                        end=(base + 90) * 10**9, step="30s")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    assert [s["metric"] for s in data["result"]] == [{"app": "api", "env": "prod"}]
    # (base, base+30] holds 30 lines, (base+30, base+60] 29; nothing after
    assert data["result"][0]["values"] == [[base + 30, "30"], [base + 60, "29"]]
    assert "stats" in data and data["stats"]["summary"]["totalLinesProcessed"] >= 59


def test_grafana_health_check_and_errors(loaded):
    agg, base = loaded
    data = instant(agg, "vector(1)+vector(1)", base)
    assert data == {"resultType": "vector", "result": [{"metric": {}, "value": [base, "2"]}],
                    "stats": data["stats"]}
    data = instant(agg, "1 + 1", base)
    assert data["resultType"] == "scalar" and data["result"] == [base, "2"]
    r = requests.get(agg.url + "/loki/api/v1/query", params={"query": '{app="api"}'}, timeout=30)
    assert r.status_code == 400
    assert "log queries are not supported as an instant query type" in r.text
    r = requests.get(agg.url + "/loki/api/v1/query",
                     params={"query": 'sum by (level) (count_over_time({app="api"} | json [1m]))',
                             "time": str(base + 59)}, timeout=30)
    assert r.status_code == 400
    assert "pipeline error: 'JSONParserErr'" in r.text
    r = agg.query_range('rate({app="api"}[1m])', start=base * 10**9, end=(base + 60) * 10**9,
                        step="0")
    assert r.status_code == 400 and "zero or negative query resolution step" in r.text
    r = agg.query_range('{app="api"} | distinct level', start=base * 10**9,
                        end=(base + 60) * 10**9)
    assert r.status_code == 400 and 'unsupported in this version: stage "distinct"' in r.text


def test_same_answers_from_the_store(loaded):
    """After /flush and a restart without the WAL, the data comes from the
    store alone: the answers must not change."""
    agg, base = loaded
    t = base + 59
    queries = ['sum by (level) (count_over_time({app="api"} | logfmt [1m]))',
               'sum by (app) (rate({env="prod"}[1m]))',
               'topk(1, sum by (user) (count_over_time({app="web"} | json [1m])))']
    before = [instant(agg, q, t)["result"] for q in queries]
    logs_before = streams(agg, base, '{app="web"} | json | status == 404 | keep app, user')
    r = requests.post(agg.url + "/flush", timeout=120)
    assert r.status_code == 204, r.text
    agg.kill9()
    shutil.rmtree(os.path.join(agg.data_dir, "wal"))
    agg.start()
    assert [instant(agg, q, t)["result"] for q in queries] == before
    assert streams(agg, base, '{app="web"} | json | status == 404 | keep app, user') == logs_before


def bad_query(agg, query, t):
    r = requests.get(agg.url + "/loki/api/v1/query", params={"query": query, "time": str(t)},
                     timeout=30)
    assert r.status_code == 400, r.text
    return r.text


def test_loki_semantics_end_to_end(loaded):
    """Behaviours where Loki differs from a naive (or Prometheus-like)
    reading, checked over HTTP against answers computed from the pushed
    data."""
    agg, base = loaded
    t = base + 59
    api = [{"err": i % 3 == 0, "dur": i * 10} for i in range(60)]
    # `,` takes the rest of the filter as its right operand, `and` binds
    # tighter than `or`, and a pipe starts a new stage
    want_comma = sum(1 for a in api if a["err"] and (False or a["dur"] >= 500))
    want_and = sum(1 for a in api if (a["err"] and False) or a["dur"] >= 500)
    assert want_comma != want_and
    for query, want in [
            ('level="error", status="200" or dur >= 500ms', want_comma),
            ('level="error" status="200" or dur >= 500ms', want_comma),
            ('level="error" and status="200" or dur >= 500ms', want_and),
            ('(level="error", status="200") or dur >= 500ms', want_and),
            ('status="200" or dur >= 500ms | level="error"',
             sum(1 for a in api if a["err"] and a["dur"] >= 500))]:
        data = instant(agg, 'sum(count_over_time({app="api"} | logfmt | %s [1m]))' % query, t)
        got = float(data["result"][0]["value"][1]) if data["result"] else 0
        assert got == want, query
    # a zero divisor gives NaN, scalar comparisons give 0/1 without bool
    data = instant(agg, "vector(1) / 0", t)
    assert data["result"] == [{"metric": {}, "value": [t, "NaN"]}]
    data = instant(agg, "sum(count_over_time({app=\"api\"}[1m])) % 0", t)
    assert data["result"][0]["value"][1] == "NaN"
    data = instant(agg, "7 > 2", t)
    assert data["resultType"] == "scalar" and data["result"] == [t, "1"]
    # sort_desc keeps its order through an operation with a scalar
    data = instant(agg, 'sort_desc(sum by (level) (count_over_time({app="api"} | logfmt '
                        '| drop dur, msg, status [1m]))) * 2', t)
    assert [(s["metric"]["level"], s["value"][1]) for s in data["result"]] == \
        [("info", "80"), ("error", "40")]
    # errors: Loki's wording and position
    assert "parse error at line 1, col 2: syntax error: unexpected IDENTIFIER, expecting " \
        "NUMBER" in bad_query(agg, '-rate({app="api"}[1m])', t)
    assert "__error__ is a string label and cannot be compared with __error__>0" in \
        bad_query(agg, 'count_over_time({app="api"} | logfmt | __error__ > 0 [1m])', t)
    assert "parse error at line 1, col 38: syntax error: unexpected $end, expecting STRING" in \
        bad_query(agg, 'count_over_time({app="api"} | json x=', t)
    assert "found duplicate series on the right hand-side" in bad_query(
        agg, 'sum by (app) (count_over_time({env="prod"}[1m])) / ignoring (app) '
             'sum by (app) (count_over_time({env="prod"}[1m]))', t)


def test_duplicate_keys_and_conversions(workdir, procs):
    """A key repeated in a line keeps its first value; conversion errors carry
    Go's messages."""
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    base = (int(time.time()) - 600) // 60 * 60
    lines = [[str((base + 1) * 10**9), '{"k":"first","k":"second","n":"1"}'],
             [str((base + 2) * 10**9), 'k=one k=two d=90'],
             [str((base + 3) * 10**9), 'k=x d=1500ms']]
    r = agg.push_json([{"stream": {"app": "dup"}, "values": lines}])
    assert r.status_code == 204, r.text
    t = base + 10
    data = instant(agg, 'count_over_time({app="dup"} |= "first" | json | keep k [1m])', t)
    assert [s["metric"] for s in data["result"]] == [{"k": "first"}]
    data = instant(agg, 'count_over_time({app="dup"} |= "one" | logfmt | keep k [1m])', t)
    assert [s["metric"] for s in data["result"]] == [{"k": "one"}]
    text = bad_query(agg, 'max_over_time({app="dup"} != "{" | logfmt | unwrap duration(d) [1m])', t)
    assert "SampleExtractionErr" in text
    assert 'time: missing unit in duration \\"90\\"' in text
    data = instant(agg, 'max_over_time({app="dup"} != "{" | logfmt | unwrap duration(d) '
                        '| __error__="" [1m]) by (app)', t)
    assert data["result"] == [{"metric": {"app": "dup"}, "value": [t, "1.5"]}]


def test_default_step_and_step_alignment(loaded):
    """Without `step`, Loki uses max(floor((end - start) / 250), 1) seconds;
    steps start at `start` and the last one is <= `end`."""
    agg, base = loaded
    q = 'sum(count_over_time({app="api"}[1s]))'
    # 1000 s: a 4 s step, points only where a line falls in (t - 1s, t]
    r = agg.query_range(q, start=(base - 3) * 10**9, end=(base + 997) * 10**9)
    assert r.status_code == 200, r.text
    ts = [p[0] for p in r.json()["data"]["result"][0]["values"]]
    # lines at base .. base + 59, one per second; steps at base - 3 + 4k
    assert ts == [base - 3 + 4 * k for k in range(1, 16)]
    # under 250 s: a 1 s step
    r = agg.query_range(q, start=(base + 10) * 10**9, end=(base + 14) * 10**9)
    assert r.status_code == 200, r.text
    assert [p[0] for p in r.json()["data"]["result"][0]["values"]] == [
        base + 10, base + 11, base + 12, base + 13, base + 14]
    # a step that does not divide the range: the last step is before `end`
    r = agg.query_range(q, start=base * 10**9, end=(base + 10) * 10**9, step="3")
    assert [p[0] for p in r.json()["data"]["result"][0]["values"]] == [
        base, base + 3, base + 6, base + 9]
