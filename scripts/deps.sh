#!/usr/bin/env bash
# Installs what salesops needs to build, run and (with --test) test, on Debian 12.
# Idempotent: packages already installed are not touched, and when nothing is missing no network is used.
# As root it installs with apt-get; otherwise it prints what to install and exits 1.
#
#   scripts/deps.sh          build and run needs
#   scripts/deps.sh --test   plus what only the test suite needs
set -euo pipefail

want_test=0
for arg in "$@"; do
    case $arg in
        --test) want_test=1 ;;
        -h | --help)
            sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            printf 'deps.sh: unknown argument %s\n' "$arg" >&2
            exit 2
            ;;
    esac
done

packages=(
    meson ninja-build pkg-config gcc libc6-dev
    libmicrohttpd-dev libjansson-dev libpq-dev libcriterion-dev libcurl4-openssl-dev libssl-dev
    postgresql postgresql-contrib
    python3 curl jq
)
# A node/npm already on PATH (e.g. installed outside apt) is kept: never install Debian's over it.
if ! command -v node >/dev/null 2>&1; then
    packages+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
fi
if [ "$want_test" = 1 ]; then
    # python3-yaml: OpenAPI helper scripts; the sanitizer runtimes come with gcc but are named so that a
    # trimmed image still gets them.
    # clang with its runtimes (libclang-rt-14-dev holds libFuzzer and the sanitizers clang links) and
    # llvm-14 (llvm-symbolizer, readable traces): scripts/fuzz.sh. postgresql-contrib: pgbench in bench/.
    # chromium: the headless browser tests/e2e/dashboard.sh drives through playwright-core. nginx-light:
    # scripts/check_deploy.sh runs docker/nginx.conf in front of two instances (bench/run compares with it too).
    packages+=(python3-yaml libasan8 libubsan1 clang libclang-rt-14-dev llvm-14 wrk chromium nginx-light)
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != installed ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    printf 'deps: missing packages: %s\n' "${missing[*]}" >&2
    printf 'deps: install them with:\n  sudo apt-get install -y %s\n' "${missing[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
echo "deps: done"
