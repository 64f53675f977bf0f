#!/usr/bin/env bash
# Kafka compatibility measured by librdkafka's own integration tests
# (docs/compatibility.md says what and how).
#
#   bash scripts/kafka-compat.sh            # the CI subset (ci=yes in scripts/kafka-compat/tests.tsv)
#   bash scripts/kafka-compat.sh --all      # every applicable test; rewrites docs/compatibility.md
#   bash scripts/kafka-compat.sh --only 0082,0102   # these tests, applicable or not
#   bash scripts/kafka-compat.sh --redoc    # docs/compatibility.md again from the last --all
#                                           # results (after editing tests.tsv's reasons)
#   options: --quick (librdkafka's quick mode), --timeout S (per test group,
#            default 300), --keep (keep the brokers' data dirs), --jobs N (test
#            groups side by side, each with its own broker: 1, or 2 with --all)
#
# 1. librdkafka's source comes from Debian's source package (`apt-get source
#    librdkafka`, with a deb-src entry for the same Debian release added under
#    /etc/apt/sources.list.d/) into target/kafka-compat/src, reused when there;
# 2. librdkafka (no SSL, SASL, zstd, curl; -O0, no debug symbols) and its test
#    runner are built in target/kafka-compat/build-<version>, once;
# 3. scripts/kafka-compat/run.py runs each test group against a fresh
#    `relay broker` (target/debug/relay, built first) on a free 127.0.0.1 port.
#
# Outside CI a missing part (no apt, no network, no compiler) is reported
# loudly and the run is skipped; with CI=true it is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

# Relay advertises the kafka-protocol crate's full version ranges, generated
# from Apache Kafka 4.1.0 (Fetch v18, Produce v13, ListOffsets v10): the tests
# gate on the broker version they are told.
KAFKA_VERSION=4.1.0
root="$PWD/target/kafka-compat"
mode=ci
run_args=()
only=
jobs=
redoc=
while [ $# -gt 0 ]; do
    case "$1" in
        --all) mode=all ;;
        --only) run_args+=(--only "$2"); only=1; shift ;;
        --timeout) run_args+=(--timeout "$2"); shift ;;
        --quick) run_args+=(--quick) ;;
        --keep) run_args+=(--keep) ;;
        --jobs) jobs=$2; shift ;;
        --redoc) mode=all; redoc=1 ;;
        -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "kafka-compat.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

note() { printf '\033[1;33m[kafka-compat]\033[0m %s\n' "$*" >&2; }
skip() {
    note "MISSING: $*"
    if [ "${CI:-}" = "true" ]; then
        note "CI=true: a missing part is a failure"
        exit 1
    fi
    note "SKIPPED: librdkafka's tests did not run"
    exit 0
}
as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# The deb-src twin of the deb entries for Debian's archive (same URIs, suites,
# keys), so `apt-get source` finds the release's own librdkafka.
add_deb_src() {
    local list=/etc/apt/sources.list.d/debian.sources src=/etc/apt/sources.list.d/relay-deb-src.sources
    [ -f "$src" ] && return 0
    grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && return 0
    [ -f "$list" ] || return 1
    awk 'BEGIN { RS = ""; ORS = "\n\n" } /Types: deb/ { sub(/Types: deb/, "Types: deb-src"); print }' \
        "$list" >"$src"
}

fetch_source() {
    src_dir=$(ls -d "$root"/src/librdkafka-*/ 2>/dev/null | head -1)
    if [ -n "$src_dir" ] && [ -d "$src_dir/tests" ]; then
        return 0
    fi
    as_root || skip "librdkafka's source (apt-get source needs root and apt)"
    command -v dpkg-source >/dev/null 2>&1 \
        || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev) >/dev/null 2>&1 \
        || skip "dpkg-dev (apt-get install failed)"
    add_deb_src || skip "a deb-src entry (no /etc/apt/sources.list.d/debian.sources to copy)"
    note "fetching librdkafka's source package into $root/src"
    mkdir -p "$root/src"
    (apt-get update -qq && cd "$root/src" && apt-get source -qq librdkafka) >"$root/fetch.log" 2>&1 \
        || skip "librdkafka's source (apt-get source failed: $root/fetch.log)"
    src_dir=$(ls -d "$root"/src/librdkafka-*/ 2>/dev/null | head -1)
    [ -n "$src_dir" ] || skip "librdkafka's source (nothing unpacked in $root/src)"
}

# Only what the tests that run need: plaintext, gzip (zlib), snappy and lz4
# (built in); -O0 without debug symbols compiles fastest.
CONFIGURE_ARGS="--no-download --disable-ssl --disable-gssapi --disable-zstd --disable-curl
 --disable-lz4-ext --disable-optimization --disable-debug-symbols --disable-syslog"

build_runner() {
    version=$(basename "$src_dir" | sed 's/^librdkafka-//')
    build="$root/build-$version"
    local stamp="$build/.relay-built"
    if [ -x "$build/tests/test-runner" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$CONFIGURE_ARGS" ]; then
        return 0
    fi
    for tool in cc c++ make; do
        command -v "$tool" >/dev/null 2>&1 || skip "$tool, to build librdkafka"
    done
    note "building librdkafka $version and its test runner in $build"
    local start=$(date +%s)
    rm -rf "$build" && cp -a "$src_dir" "$build"
    # shellcheck disable=SC2086
    if (cd "$build" && ./configure $CONFIGURE_ARGS && make -j"$(nproc)" libs \
        && make -C tests -j"$(nproc)" test-runner) >"$root/build.log" 2>&1; then
        echo "$CONFIGURE_ARGS" >"$stamp"
        note "built in $(( $(date +%s) - start )) s"
    else
        skip "librdkafka's test runner (build failed: $root/build.log)"
    fi
}

if [ -n "$redoc" ]; then
    version=$(ls -d "$root"/src/librdkafka-*/ | head -1 | xargs basename | sed 's/^librdkafka-//')
    exec python3 scripts/kafka-compat/run.py --redoc --mode all --list scripts/kafka-compat/tests.tsv \
        --runner-dir /nonexistent --relay /nonexistent --workdir "$root/run-all" \
        --kafka-version "$KAFKA_VERSION" --librdkafka-version "$version" \
        --doc docs/compatibility.md --header scripts/kafka-compat/header.md
fi

mkdir -p "$root"
command -v python3 >/dev/null 2>&1 || skip "python3"
fetch_source
build_runner
if [ -z "${RELAY_BIN:-}" ]; then
    cargo build --quiet -p relay || { note "cargo build -p relay failed"; exit 1; }
    RELAY_BIN="$PWD/target/debug/relay"
fi
# A copy: the shared target/debug/relay may be rebuilt while the tests run.
cp "$RELAY_BIN" "$root/relay" || { note "cannot copy $RELAY_BIN"; exit 1; }

# --all waits on many rebalance and session timers: two groups at a time.
[ -z "$jobs" ] && { [ "$mode" = all ] && jobs=2 || jobs=1; }
# Side by side, a test whose timing budget is tight may fail: run those again alone.
[ "$jobs" -gt 1 ] && run_args+=(--retry)
doc_args=()
run_name=$mode
[ -n "$only" ] && run_name=only
if [ "$mode" = all ] && [ -z "$only" ]; then
    doc_args=(--doc docs/compatibility.md --header scripts/kafka-compat/header.md)
fi
exec python3 scripts/kafka-compat/run.py --mode "$mode" --list scripts/kafka-compat/tests.tsv \
    --runner-dir "$build/tests" --relay "$root/relay" --workdir "$root/run-$run_name" \
    --kafka-version "$KAFKA_VERSION" --librdkafka-version "$version" --jobs "$jobs" \
    "${doc_args[@]}" "${run_args[@]}"
