#!/usr/bin/env bash
# Scaling curves: how the cost of relay send, relay broker and relay load
# grows with the amount of work (files, registry entries, partitions).
#
#   bash bench/scale.sh
#   SCALE_NS="10 1000 10000" RELAY=/path/to/relay bash bench/scale.sh
#
# Environment (defaults):
#   RELAY                    relay binary (target/release/relay); not built here
#   SCALE_NS                 sizes N: sender files, broker partitions ("10 1000 10000")
#   SCALE_COMPONENTS         "sender registry broker loader"
#   SCALE_BROKER_NS          broker sizes (SCALE_NS); a size needing more descriptors
#                            than the open-files limit (3 per partition) is tried,
#                            reported FAILED, and the largest multiple of 1,000
#                            that fits is measured instead
#   SCALE_REGISTRY           registry entries for the sender restart test (100000; 0 skips)
#   SCALE_REGISTRY_BUDGET    seconds the sender gets to register them (180)
#   SCALE_GROW_SECONDS       seconds of growth (10); SCALE_GROW_INTERVAL_MS per growing file (1000)
#   SCALE_IDLE_SECONDS       CPU sampling while idle (10)
#   SCALE_SEND_TIMEOUT       longest sender start-up waited for (600)
#   SCALE_LOADER_PARTITIONS  "4 1000"; SCALE_LOADER_RECORDS 100000
#
# Prints human-readable lines and tables, and one JSON line per (component, N)
# starting with {"scale": (the only lines starting with "{"), for bench/run.sh.
# Everything runs on 127.0.0.1; scratch data lives under target/bench-data/
# and is removed on exit, with every process started here.
set -euo pipefail
cd "$(dirname "$0")/.."
export RELAY=${RELAY:-target/release/relay}
if [ ! -x "$RELAY" ]; then
  echo "no relay binary at $RELAY (build it, or set RELAY)" >&2
  exit 2
fi
# Each broker partition holds 3 descriptors and each sender discovery pass
# holds one per matching file: use the hard limit (the docs' units set 65536).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p target/bench-data
work=$(mktemp -d "$PWD/target/bench-data/scale.XXXXXX")
export SCALE_WORK=$work
cleanup() {
  if [ -n "${driver:-}" ]; then kill -TERM "$driver" 2>/dev/null || true; wait "$driver" 2>/dev/null || true; fi
  # Children the driver started (it records their ids), should it have died first.
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      # Only a process still running one of ours (its arguments name $work).
      if tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -qF "$work"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done < "$work/pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
python3 -u bench/scale.py &
driver=$!
status=0
wait "$driver" || status=$?
driver=
exit $status
