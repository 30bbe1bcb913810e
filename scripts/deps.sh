#!/usr/bin/env bash
# Installs what a purpose needs, from Debian packages (and npm for test peers).
#   scripts/deps.sh build|test|fuzz
# As root, missing packages are installed with apt-get; otherwise the exact
# apt-get line is printed and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs="gcc make pkg-config curl libuv1-dev libcurl4-openssl-dev libhttp-parser-dev
libmsgpack-dev libzstd-dev zlib1g-dev libyaml-dev libxxhash-dev libssl-dev
libpcre2-dev libjansson-dev libsnappy-dev libyajl-dev"
test_pkgs="libcmocka-dev python3-pytest python3-requests python3-msgpack python3-zstandard
python3-boto3 python3-websocket
prometheus zstd curl clang-format"
fuzz_pkgs="clang libclang-rt-14-dev"

want="$build_pkgs"
case "${1:-build}" in
build) ;;
test) want="$want $test_pkgs $fuzz_pkgs" ;;
fuzz) want="$want $fuzz_pkgs" ;;
*) echo "usage: $0 build|test|fuzz" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "deps: installing:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "deps: missing Debian packages. Run:" >&2
        echo "  sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

if [ "${1:-build}" = test ] && ! command -v node >/dev/null; then
    # Node runs the npm test peers (s3rver, pino-loki, winston-loki); the machine
    # image normally has Node 20, otherwise take the distribution's.
    if [ "$(id -u)" = 0 ]; then
        echo "deps: installing nodejs npm" >&2
        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
        echo "deps: Node.js is missing. Run:  sudo apt-get install -y nodejs npm" >&2
        exit 1
    fi
fi

if [ "${1:-build}" = test ] && [ -f tests/package.json ]; then
    if [ ! -d tests/node_modules ] || [ tests/package.json -nt tests/node_modules ]; then
        echo "deps: npm install in tests/" >&2
        (cd tests && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        touch tests/node_modules
    fi
fi
