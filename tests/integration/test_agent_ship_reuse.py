"""The shipper reuses one finished batch's buffers for the next and keeps its
encoder memory across batches. With tiny batches (hundreds of them), two pods
whose lines interleave, lines of every length and a few far larger than a
batch (their buffers are freed, not kept), every line reaches the aggregator
once and byte for byte, in each protocol and with the disk buffer: nothing of
an earlier batch leaks into a later one."""
import collections
import time

import pytest

from conftest import Agent, Aggregator, cri_line, metric_value, pod_log_path, wait_for

PODS = 2
LINES = 3000   # per pod
BIG = 100_000  # bytes: more than 4 x batch_size + 64 KiB, so that batch is not kept
BIG_EVERY = 700
ROUNDS = 25     # LINES is a multiple


def text(pod, n):
    if n % BIG_EVERY == 350:
        body = "".join(chr(ord("A") + (n + k) % 26) for k in range(BIG))
    else:
        body = chr(ord("a") + (n * 7 + pod) % 26) * ((n * 37 + pod * 11) % 400)
    return f"seq={n:05d} pod={pod} {body}"


@pytest.mark.parametrize("mode", ["sluice", "loki-json", "loki-protobuf", "disk"])
def test_many_small_batches_every_line_once(workdir, procs, pods_path, mode):
    agg = Aggregator(workdir)
    procs.append(agg)
    agg.start()
    extra = ["--set", "client.batch_size=4KiB", "--set", "client.batch_wait=50ms"]
    if mode in ("loki-json", "loki-protobuf"):
        extra += ["--set", f"client.protocol={mode}",
                  "--set", f"client.url={agg.url}/loki/api/v1/push"]
    if mode == "disk":
        extra += ["--set", "buffer.type=disk", "--set", f"buffer.path={workdir}/buffer"]
    agent = Agent(workdir, agg.url, pods_path, extra=extra)
    procs.append(agent)
    agent.start()

    base = time.time_ns() - 120 * 10**9
    total = LINES * PODS
    paths = [pod_log_path(pods_path, "reuse", f"pod-{p}", f"uid-{p}", "app") for p in range(PODS)]

    def sent():
        return metric_value(agent.metrics(), "sluice_agent_lines_sent_total") or 0

    # In rounds, each sent before the next is written: at least one batch per
    # round whatever the timing, most rounds several (4 KiB batches).
    per_round = LINES // ROUNDS
    for r in range(ROUNDS):
        for p, path in enumerate(paths):
            with open(path, "a") as f:
                for n in range(r * per_round, (r + 1) * per_round):
                    f.write(cri_line(base + n * 1000 + p, "stdout", "F", text(p, n)))
        want = (r + 1) * per_round * PODS
        wait_for(lambda: sent() >= want, 60, interval=0.05, what=f"round {r} sent")
    m = agent.metrics()
    batches = metric_value(m, "sluice_agent_batches_sent_total")
    assert batches >= ROUNDS, f"only {batches} batches for {ROUNDS} rounds"
    assert not metric_value(m, "sluice_agent_lines_dropped_total")

    got = agg.lines('{namespace="reuse"}', since_s=600, limit=total * 2)
    seen = collections.Counter()
    for _, labels, line in got:
        p = int(labels["pod"].split("-")[1])
        n = int(line.split()[0][4:])
        assert line == text(p, n), f"pod {p} line {n} differs: {line[:80]!r}..."
        seen[(p, n)] += 1
    missing = [(p, n) for p in range(PODS) for n in range(LINES) if not seen[(p, n)]]
    assert not missing, f"{len(missing)} lines missing, first {missing[:5]}"
    dups = [k for k, c in seen.items() if c > 1]
    assert not dups, f"{len(dups)} lines twice, first {dups[:5]}"
