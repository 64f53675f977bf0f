#!/usr/bin/env bash
# The whole test suite in one command: sets up what the end-to-end tests need,
# then runs `cargo test --workspace`.
#
# - Python virtual environment with confluent-kafka and kafka-python (+ codecs)
#   in target/test-venv (RELAY_TEST_PYTHON points the tests at it);
# - kcat, installed with apt-get when running as root and missing
#   (RELAY_TEST_KCAT);
# - openssl, for the TLS tests' throwaway certificates (RELAY_TEST_OPENSSL);
# - PostgreSQL 15 server binaries (RELAY_PG_BIN); the tests start and stop
#   their own throwaway clusters in temporary directories.
# - cargo-deb (cargo install, pinned) and the .deb it builds, for the
#   package test;
# - prometheus and promtool, from Debian's prometheus package, for the alert
#   rules' tests and a real scrape of relay up;
# - FUSE, for the power-loss tests on relay-plugfs: /dev/fuse and root (the
#   mount is made directly, without fusermount); Debian's fuse3 is installed
#   with apt-get when root and missing, for its fusermount3 and the kernel
#   module's configuration.
#
# Outside CI a missing part is reported loudly and the tests that need it
# are skipped; with CI=true a missing part fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
note() { printf '\033[1;33m[test.sh]\033[0m %s\n' "$*" >&2; }

venv="${RELAY_TEST_VENV:-$PWD/target/test-venv}"
if ! "$venv/bin/python" -c 'import confluent_kafka, kafka, crc32c, lz4, snappy, zstandard' 2>/dev/null; then
    note "setting up Python Kafka clients in $venv"
    if python3 -m venv "$venv" \
        && "$venv/bin/pip" install --quiet --disable-pip-version-check \
            'confluent-kafka>=2.3' 'kafka-python[crc32c,lz4,snappy,zstd]>=2.0.3' \
        && "$venv/bin/python" -c 'import confluent_kafka, kafka'; then
        :
    else
        missing+=("python Kafka clients (confluent-kafka, kafka-python)")
    fi
fi
if "$venv/bin/python" -c 'import confluent_kafka, kafka' 2>/dev/null; then
    export RELAY_TEST_PYTHON="$venv/bin/python"
fi

if ! command -v kcat >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing kcat with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat) >/dev/null 2>&1
    fi
fi
if command -v kcat >/dev/null 2>&1; then
    export RELAY_TEST_KCAT="$(command -v kcat)"
else
    missing+=("kcat")
fi

# openssl makes the throwaway CA and server certificates of the TLS tests.
if command -v openssl >/dev/null 2>&1; then
    export RELAY_TEST_OPENSSL="$(command -v openssl)"
else
    missing+=("openssl")
fi

pg_bin="${RELAY_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$pg_bin/initdb" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing PostgreSQL 15 server binaries with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15) >/dev/null 2>&1
fi
if [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ]; then
    export RELAY_PG_BIN="$pg_bin"
else
    missing+=("PostgreSQL 15 server binaries in $pg_bin")
fi

# promtool checks and unit-tests the alert rules (deploy/prometheus).
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing prometheus (for promtool) with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus) >/dev/null 2>&1
fi
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    export RELAY_TEST_PROMTOOL="$(command -v promtool)"
    export RELAY_TEST_PROMETHEUS="$(command -v prometheus)"
else
    missing+=("prometheus and promtool (Debian's prometheus package)")
fi

if ! command -v fusermount3 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing fuse3 with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3) >/dev/null 2>&1
fi
if [ ! -e /dev/fuse ] && [ "$(id -u)" = 0 ]; then
    modprobe fuse >/dev/null 2>&1 || true
fi
if [ -e /dev/fuse ] && [ "$(id -u)" = 0 ]; then
    :
else
    missing+=("FUSE (/dev/fuse as root) for the power-loss tests")
fi

# The Debian package (cargo-deb, pinned), built from the test build of the
# relay binary; tests/debian_package.rs checks it (RELAY_TEST_DEB).
if ! cargo deb --version >/dev/null 2>&1; then
    note "installing cargo-deb"
    cargo install --quiet --locked cargo-deb --version 3.8.0 >/dev/null 2>&1
fi
if cargo deb --version >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    mkdir -p target/test-deb
    if cargo build --quiet -p relay && cargo deb --no-build --profile dev --no-strip --fast \
        -o target/test-deb/relay.deb >target/test-deb/build.log 2>&1; then
        export RELAY_TEST_DEB="$PWD/target/test-deb/relay.deb"
    else
        missing+=("the .deb (cargo deb failed: target/test-deb/build.log)")
    fi
else
    missing+=("cargo-deb and dpkg-deb, for the Debian package")
fi

if [ ${#missing[@]} -gt 0 ]; then
    for part in "${missing[@]}"; do
        note "MISSING: $part"
    done
    if [ "${CI:-}" = "true" ]; then
        note "CI=true: a missing test dependency is a failure"
        exit 1
    fi
    note "tests that need the parts above will report SKIPPED"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
