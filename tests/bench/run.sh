#!/usr/bin/env bash
# Benchmarks. Prints figures beside this machine's own limits measured in the
# same run, so ratios hold on a noisy machine. Not a test: it asserts nothing.
#
#   tests/bench/run.sh [BIN_DIR]          (make bench)
#   BENCH_SIZE=200MiB  size of the generated pod log (default 200MiB)
#
# ship: a BENCH_SIZE CRI pod log, written before the agent starts, is read by
# sluice-agent from the head and shipped (msgpack + zstd) to sluice-aggregator
# (WAL on, fsync batch) on loopback. Reports CPU seconds per GB of log for
# each process (user + system, from /proc), wall-clock MB/s and peak RSS,
# beside `zstd -1` and `cat` over the same file. Then the same file again,
# shipped by a fresh agent to a sink that discards every push (sink.py), for
# the agent's own CPU and peak RSS with nothing else on the cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/bin}
size=${BENCH_SIZE:-200MiB}
tmp=$(mktemp -d /tmp/sluice-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_s() { # user+system seconds of a live pid
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
metric() { # metric URL NAME -> sum of samples
    curl -fsS "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d", s}'
}
timed_cpu() { # command... -> user+system seconds (bash's time keyword)
    local TIMEFORMAT='%U %S'
    { time "$@" >/dev/null; } 2>"$tmp/time"
    awk '{print $1 + $2}' "$tmp/time"
}

pods="$tmp/pods"
log="$pods/bench_gen-0_0000-uid/app/0.log"
mkdir -p "$(dirname "$log")"
start=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)
"$bin/sluice-loggen" --out "$log" --bytes "$size" --seed 42 --start "$start" --partial-every 50
bytes=$(stat -c %s "$log")
lines=$(wc -l <"$log")
gb=$(awk -v b="$bytes" 'BEGIN {print b / 1e9}')
echo "corpus: $(awk -v b="$bytes" 'BEGIN {printf "%.1f MiB", b / 1048576}'), $lines CRI lines, $tmp"

cat "$log" >/dev/null # warm the page cache, so every reader starts equal
zstd_cpu=$(timed_cpu zstd -1 -c -T1 "$log")
cat_cpu=$(timed_cpu cat "$log")

agg_port=$(free_port)
agent_port=$(free_port)
"$bin/sluice-aggregator" --listen "127.0.0.1:$agg_port" --data-dir "$tmp/agg" \
    --set limits.ingestion_rate_mb=100000 --set limits.ingestion_burst_size_mb=100000 \
    --set server.log_level=warn 2>"$tmp/agg.log" &
agg_pid=$!
pids+=("$agg_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$agg_port/ready" >/dev/null 2>&1 && break; sleep 0.1; done

t0=$(date +%s.%N)
"$bin/sluice-agent" --set kubernetes.pods_path="$pods" --set kubernetes.node_name=bench \
    --set positions.file="$tmp/positions.json" --set server.listen="127.0.0.1:$agent_port" \
    --set client.url="http://127.0.0.1:$agg_port/api/v1/push" \
    --set server.log_level=warn 2>"$tmp/agent.log" &
agent_pid=$!
pids+=("$agent_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$agent_port/ready" >/dev/null 2>&1 && break; sleep 0.1; done

deadline=$((SECONDS + 600))
while :; do
    read_b=$(metric "http://127.0.0.1:$agent_port" sluice_agent_bytes_read_total)
    read_l=$(metric "http://127.0.0.1:$agent_port" sluice_agent_lines_read_total)
    sent=$(metric "http://127.0.0.1:$agent_port" sluice_agent_lines_sent_total)
    if [ "$read_b" -ge "$bytes" ] && [ "$sent" -ge "$read_l" ] && [ "$read_l" -gt 0 ]; then break; fi
    if [ $SECONDS -gt $deadline ]; then echo "timed out: read $read_b of $bytes bytes, sent $sent of $read_l" >&2; exit 1; fi
    sleep 0.2
done
t1=$(date +%s.%N)
agent_cpu=$(cpu_s "$agent_pid")
agg_cpu=$(cpu_s "$agg_pid")
received=$(metric "http://127.0.0.1:$agg_port" sluice_aggregator_lines_received_total)

awk -v gb="$gb" -v bytes="$bytes" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    -v agent="$agent_cpu" -v agg="$agg_cpu" -v zstd="$zstd_cpu" -v cat="$cat_cpu" \
    -v arss="$(peak_rss_mib "$agent_pid")" -v grss="$(peak_rss_mib "$agg_pid")" \
    -v lines="$read_l" -v recv="$received" 'BEGIN {
    printf "\nship %.0f MiB pod log, agent -> aggregator (native msgpack+zstd, WAL fsync batch)\n", bytes / 1048576
    printf "  log lines (after joining partials)  %d read, %d received by the aggregator\n", lines, recv
    printf "  wall clock                          %.2f s  (%.1f MB/s)\n", wall, bytes / 1e6 / wall
    printf "  %-34s  %6.2f CPU s/GB   peak RSS %s MiB\n", "sluice-agent", agent / gb, arss
    printf "  %-34s  %6.2f CPU s/GB   peak RSS %s MiB\n", "sluice-aggregator", agg / gb, grss
    printf "  %-34s  %6.2f CPU s/GB\n", "zstd -1 (same file, this machine)", zstd / gb
    printf "  %-34s  %6.2f CPU s/GB\n", "cat (same file, this machine)", cat / gb
    printf "  agent / zstd -1 = %.2f   aggregator / zstd -1 = %.2f\n", agent / zstd, agg / zstd
}'

# ship to a discarding sink: the same pod log, read again from the head by a
# fresh agent that ships to tests/bench/sink.py (reads every body, answers
# 204). Only the agent runs on the cores, so its CPU and peak RSS are its own.
kill -TERM "$agent_pid" 2>/dev/null || true
wait "$agent_pid" 2>/dev/null || true
/usr/bin/python3 "$here/sink.py" "$tmp/sink.port" &
pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/sink.port" ] && break; sleep 0.1; done
sink_port=$(cat "$tmp/sink.port")
sink_agent_port=$(free_port)
t0=$(date +%s.%N)
"$bin/sluice-agent" --set kubernetes.pods_path="$pods" --set kubernetes.node_name=bench \
    --set positions.file="$tmp/sink-positions.json" --set server.listen="127.0.0.1:$sink_agent_port" \
    --set client.url="http://127.0.0.1:$sink_port/api/v1/push" \
    --set server.log_level=warn 2>"$tmp/sink-agent.log" &
sink_agent_pid=$!
pids+=("$sink_agent_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$sink_agent_port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
deadline=$((SECONDS + 600))
while :; do
    read_b=$(metric "http://127.0.0.1:$sink_agent_port" sluice_agent_bytes_read_total)
    read_l=$(metric "http://127.0.0.1:$sink_agent_port" sluice_agent_lines_read_total)
    sent=$(metric "http://127.0.0.1:$sink_agent_port" sluice_agent_lines_sent_total)
    if [ "$read_b" -ge "$bytes" ] && [ "$sent" -ge "$read_l" ] && [ "$read_l" -gt 0 ]; then break; fi
    if [ $SECONDS -gt $deadline ]; then echo "sink run timed out: read $read_b of $bytes bytes, sent $sent of $read_l" >&2; exit 1; fi
    sleep 0.2
done
t1=$(date +%s.%N)
awk -v gb="$gb" -v bytes="$bytes" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    -v agent="$(cpu_s "$sink_agent_pid")" -v zstd="$zstd_cpu" -v rss="$(peak_rss_mib "$sink_agent_pid")" \
    -v lines="$sent" -v sink="$(curl -fsS "http://127.0.0.1:$sink_port/stats")" 'BEGIN {
    split(sink, s, " ")
    printf "\nship %.0f MiB pod log, agent -> discarding sink (native msgpack+zstd, 204 for every push)\n", bytes / 1048576
    printf "  log lines acknowledged              %d in %d pushes, %.1f MiB on the wire\n", lines, s[1], s[2] / 1048576
    printf "  wall clock                          %.2f s  (%.1f MB/s)\n", wall, bytes / 1e6 / wall
    printf "  %-34s  %6.2f CPU s/GB   peak RSS %s MiB\n", "sluice-agent", agent / gb, rss
    printf "  %-34s  %6.2f CPU s/GB\n", "zstd -1 (same file, this machine)", zstd / gb
    printf "  agent / zstd -1 = %.2f\n", agent / zstd
}'

# idle: 1,000 quiet pod logs (one line each, already read) and the agent's
# default periods (read.sweep_period 10s, positions.sync_period 10s). Agent CPU
# over BENCH_IDLE_S seconds, as % of one core. Target: under 1%.
idle_s=${BENCH_IDLE_S:-20}
idle_pods="$tmp/idle-pods"
for i in $(seq 0 999); do
    d="$idle_pods/idle_quiet-${i}_u${i}/app"
    mkdir -p "$d"
    printf '%s stdout F quiet pod %d\n' "$start" "$i" >"$d/0.log"
done
idle_port=$(free_port)
"$bin/sluice-agent" --set kubernetes.pods_path="$idle_pods" --set kubernetes.node_name=bench \
    --set positions.file="$tmp/idle-positions.json" --set server.listen="127.0.0.1:$idle_port" \
    --set client.url="http://127.0.0.1:$agg_port/api/v1/push" \
    --set server.log_level=warn 2>"$tmp/idle-agent.log" &
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$idle_port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
deadline=$((SECONDS + 60))
while [ "$(metric "http://127.0.0.1:$idle_port" sluice_agent_lines_sent_total)" -lt 1000 ]; do
    if [ $SECONDS -gt $deadline ]; then echo "idle agent did not ship its 1,000 lines" >&2; exit 1; fi
    sleep 0.2
done
sleep 2 # let the first positions save pass
c0=$(cpu_s "$idle_pid")
sleep "$idle_s"
c1=$(cpu_s "$idle_pid")
awk -v c0="$c0" -v c1="$c1" -v s="$idle_s" -v files="$(metric "http://127.0.0.1:$idle_port" sluice_agent_files_active)" \
    -v rss="$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$idle_pid/status")" 'BEGIN {
    printf "\nidle: %d quiet files tailed, agent CPU over %d s\n", files, s
    printf "  %.3f CPU s = %.2f%% of a core   RSS %s MiB\n", c1 - c0, (c1 - c0) / s * 100, rss
}'

# Loki push bodies (JSON, JSON+gzip, protobuf+snappy) replayed into the aggregator.
/usr/bin/python3 "$here/loki_push.py" "$bin"
