#!/usr/bin/env bash
# Runs every fuzz target in BUILD/fuzz over its seed corpus for SECONDS each.
# New inputs go to a scratch corpus, so the checked-in seeds stay small.
set -u
build=${1:-build/fuzz}
secs=${2:-10}
pass=0
fail=0
for f in "$build"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    seeds="tests/fuzz/corpus/${name#fuzz_}"
    scratch=$(mktemp -d)
    args=("$scratch")
    [ -d "$seeds" ] && args+=("$seeds")
    if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$build/" "${args[@]}" >"$build/$name.log" 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $name (see $build/$name.log)"
        tail -30 "$build/$name.log"
    fi
    rm -rf "$scratch"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
