#!/usr/bin/env bash
# The single-node demo stack, in the foreground (started by `make run`):
#   sluice-aggregator on 127.0.0.1:PORT storing in ./data (local filesystem),
#   sluice-agent tailing ./data/demo/var/log/pods,
#   sluice-loggen writing a few demo pods' logs there.
# Ctrl-C stops all three in order (generator, agent, aggregator: SIGTERM by PID,
# waiting for each), so the agent delivers what it read before the aggregator goes.
set -u
# Job control puts each daemon in its own process group: Ctrl-C reaches only this
# script, which then stops them in order.
set -m
cd "$(dirname "$0")/.."
port=${1:-3100}
agent_port=${AGENT_PORT:-$((port + 1))}
bin=${SLUICE_BIN:-build/bin}
data=${DATA_DIR:-./data}
pods="$data/demo/var/log/pods"
mkdir -p "$pods" "$data/agent"

pids=()
stop() {
    trap - INT TERM
    echo
    echo "stopping"
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null
        wait "${pids[$i]}" 2>/dev/null
    done
    exit 0
}
trap stop INT TERM

"$bin/sluice-aggregator" --listen "127.0.0.1:$port" --data-dir "$data" &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "sluice-aggregator did not start (is port $port free? try: make run PORT=3200)" >&2
        exit 1
    fi
    sleep 0.1
done

"$bin/sluice-agent" \
    --set kubernetes.pods_path="$pods" \
    --set kubernetes.node_name="$(hostname)" \
    --set positions.file="$data/agent/positions.json" \
    --set server.listen="127.0.0.1:$agent_port" \
    --set client.url="http://127.0.0.1:$port/api/v1/push" &
pids+=($!)

"$bin/sluice-loggen" --pods-dir "$pods" --pods 4 --rate 20 &
pids+=($!)

cat <<MSG

Sluice is running: aggregator http://127.0.0.1:$port, agent metrics http://127.0.0.1:$agent_port/metrics
Demo pods write to $pods. In another terminal, try:

  SLUICE_ADDR=http://127.0.0.1:$port $bin/sluice query --since 5m '{namespace="shop"} |= "error"'
  SLUICE_ADDR=http://127.0.0.1:$port $bin/sluice labels namespace
  curl -s 'http://127.0.0.1:$port/loki/api/v1/query_range' --data-urlencode 'query={container="checkout"}' -G

Grafana: add a Loki data source with URL http://127.0.0.1:$port. Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
echo "a process exited; stopping the rest" >&2
stop
