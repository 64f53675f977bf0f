#!/usr/bin/env bash
# The standard benchmark suite on this machine (issue 32's targets: one row per target). Builds the
# release binaries, measures the disk, runs every benchmark, prints the
# results and appends a dated section to bench/RESULTS.md with each result as
# a fraction of its target and of the physical limit. Sizes can be cut for a
# quick look:
#   RELAY_BENCH_GIB=1 RELAY_BENCH_RECORDS=4000000 RELAY_BENCH_SCALE=0 bash bench/run.sh
# Needs PostgreSQL 15's server binaries for the load benchmark (RELAY_PG_BIN),
# and root (apt-get) or an installed rsyslog + rsyslog-kafka for the peer run.
# RELAY_BENCH_SCALE=0 skips the scale curves (bench/scale.sh, the longest part).
# librdkafka as a second producer client uses confluent-kafka from the test venv
# (target/test-venv, set up by scripts/test.sh; RELAY_TEST_PYTHON overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${RELAY_BENCH_GIB:-10}
records=${RELAY_BENCH_RECORDS:-20000000}
load_events=${RELAY_BENCH_LOAD_EVENTS:-500000}
peer_lines=${RELAY_BENCH_PEER_LINES:-2000000}
scale=${RELAY_BENCH_SCALE:-1}
mkdir -p target/bench-data
work=$(mktemp -d target/bench-data/run.XXXXXX)
out="$work/results.jsonl"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work/data" "$work"/dd.*' EXIT

echo "== building (release)"
cargo build --release -p relay -p relay-bench 2>&1 | tail -1
relay=target/release/relay
bench=target/release/relay-bench

echo "== machine and disk"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
cores=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
kernel=$(uname -r)
fs=$(df -T target/bench-data | awk 'NR==2 {print $2" on "$1}')
dd_out=$(dd if=/dev/zero of="$work/dd.seq" bs=1M count=2000 conv=fdatasync 2>&1 | tail -1)
dd_mbs=$(python3 -c "import re,sys; m=re.search(r'(\d+) bytes.* s, ', sys.argv[1]); t=re.search(r', ([\d.]+) s,', sys.argv[1]); print(round(int(m.group(1))/float(t.group(1))/1e6))" "$dd_out")
rm -f "$work/dd.seq"
echo "$cpu, $cores cores, $mem, $fs, kernel $kernel; dd conv=fdatasync: $dd_mbs MB/s"

# Shows a benchmark's output and keeps its JSON line, tagged with the benchmark's name.
record() { tee "$work/$1.txt"; grep '^{' "$work/$1.txt" | sed "s/^{/{\"bench\":\"$1\",/" >> "$out"; }

echo "== produce, fsync always, 4 producers, 4 partitions, max rate (send_batch of 1,000)"
$relay broker --listen 127.0.0.1:0 --data-dir "$work/data" --metrics 127.0.0.1:0 > "$work/broker.out" 2> "$work/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q listening "$work/broker.out" 2>/dev/null && break; sleep 0.1; done
broker=$(sed -n 's/relay broker listening on \([^ ]*\).*/\1/p' "$work/broker.out")
metrics=$(sed -n 's/.*metrics on http:\/\/\([^/]*\).*/\1/p' "$work/broker.out")
$bench produce --broker "$broker" --topic bench --partitions 4 --producers 4 --records "$records" | record produce_max
max_rate=$(grep '^{' "$work/produce_max.txt" | head -1 | python3 -c "import json,sys; print(int(json.loads(sys.stdin.readline())['records_per_second']))")
half_rate=$((max_rate / 2))
echo "== produce at half the max rate ($half_rate records/s) for latency"
$bench produce --broker "$broker" --topic bench-half --partitions 4 --producers 4 --records $((records / 2)) --rate "$half_rate" --broker-metrics "$metrics" | record produce_half
echo "== the same max-rate run through the record-at-a-time API (for comparison)"
$bench produce --broker "$broker" --topic bench-record --partitions 4 --producers 4 --records $((records / 2)) --api record | record produce_record
echo "== consume from earliest"
$bench consume --broker "$broker" --topic bench | record consume
python_bin=${RELAY_TEST_PYTHON:-target/test-venv/bin/python}
if "$python_bin" -c 'import confluent_kafka' 2>/dev/null; then
  echo "== librdkafka (confluent-kafka) as a second producer, acks=all, idempotent, 4 partitions"
  $relay topics create bench-librdkafka --partitions 4 --broker "$broker" >/dev/null
  "$python_bin" bench/librdkafka_produce.py "$broker" bench-librdkafka $((records / 4)) | record librdkafka_produce
else
  echo "SKIPPED: librdkafka producer (no confluent-kafka in $python_bin: bash scripts/test.sh sets it up)"
fi
kill -TERM $broker_pid; wait $broker_pid || true
rm -rf "$work/data"

echo "== relay send next to rsyslog imfile -> omkafka, $peer_lines lines, same broker, one after the other"
RELAY=$relay bash bench/peers.sh "$peer_lines" | record peers

echo "== end to end: file -> relay up -> SQLite, 10,000 lines/s"
$bench e2e --relay $relay --rate 10000 --seconds 15 --dir "$work" | record e2e

echo "== relay load vs psql \\copy ($load_events events)"
if [ -x "${RELAY_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
  bash bench/load_vs_copy.sh "$load_events" | tee "$work/load.txt"
else
  echo "SKIPPED: no PostgreSQL server binaries" | tee "$work/load.txt"
fi

echo "== restart after kill -9 with $gib GiB in 10 partitions"
$bench restart --relay $relay --gib "$gib" --partitions 10 --dir "$work" | record restart

echo "== relay send on a $gib GiB file"
$bench send --relay $relay --gib "$gib" --dir "$work" | record send
send_rss=$(sed -n 's/peak RSS of relay send: \([0-9.]*\) MiB/\1/p' "$work/send.txt")

if [ "$scale" != 0 ]; then
  echo "== scale curves (bench/scale.sh)"
  RELAY=$relay bash bench/scale.sh | record scale
fi

python3 - "$out" "$work/load.txt" "$dd_mbs" "$cpu" "$cores" "$mem" "$fs" "$kernel" "$gib" "$records" "$send_rss" >> bench/RESULTS.md <<'PY'
import json, re, sys, datetime
out, load_txt, dd, cpu, cores, mem, fs, kernel, gib, records, send_rss = sys.argv[1:]
dd = float(dd)
rows = {}
for line in open(out):
    row = json.loads(line)
    rows.setdefault(row["bench"], []).append(row)
def get(name, key, index=0):
    found = rows.get(name, [])
    return found[index].get(key) if len(found) > index else None
load = open(load_txt).read()
m = re.search(r"relay load: .*?= ([\d,]+) rows/s.*?copy: .*?= ([\d,]+) rows/s", load, re.S)
lines = []
w = lines.append
w(f"\n## {datetime.date.today()} — standard suite (`bash bench/run.sh`)\n")
w(f"Machine: {cpu}, {cores} cores, {mem}, {fs}, Linux {kernel}. Client and broker on the same machine.")
w(f"Disk: `dd if=/dev/zero bs=1M count=2000 conv=fdatasync` = {dd:.0f} MB/s. Release build. Records of 100 B, batches of 1,000, fsync always.\n")
w("| benchmark | target | measured | vs target | vs physical limit |")
w("|---|---|---|---|---|")
def frac(a, b):
    return f"{100*a/b:.0f}%" if a is not None and b else "-"
def num(v, fmt="{:,.0f}"):
    return fmt.format(v) if v is not None else "-"
# Issue 32's rows, each against its target.
peer = rows.get("peers", [{}])[0]
ratio = peer.get("ratio")
w(f"| relay send vs tuned rsyslog imfile→omkafka (acks=all, idempotent), {num(peer.get('lines'))} lines of {peer.get('line_bytes', '-')} B, same file, broker and run | ≥ 3× rsyslog, RSS ≤ 64 MiB | relay {num(peer.get('relay_lines_per_second'))} lines/s ({peer.get('relay_peak_rss_mib', '-')} MiB), rsyslog {peer.get('rsyslog_version', '')} {num(peer.get('rsyslog_lines_per_second'))} lines/s ({peer.get('rsyslog_peak_rss_mib', '-')} MiB): **{ratio}×** | {frac(ratio, 3)} | - |")
lines_n = peer.get("lines")
per_line = (peer.get("relay_topic_bytes") or 0) / lines_n if lines_n else None
rs_line = (peer.get("rsyslog_topic_bytes") or 0) / lines_n if lines_n else None
w(f"| bytes into the log per {peer.get('line_bytes', '-')}-byte line (topic size / lines) | ≤ 130 B | relay {num(per_line, '{:.1f}')} B, rsyslog {num(rs_line, '{:.1f}')} B | {'met' if per_line is not None and per_line <= 130 else 'missed'} | the line itself: {peer.get('line_bytes', '-')} B |")
c = get("consume", "records_per_second")
w(f"| consume from earliest, own client | ≥ 8,000,000 rec/s | {num(c)} rec/s ({get('consume','mb_per_second')} MB/s) | {frac(c, 8e6)} | - |")
if m:
    lr, cr = float(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))
    w(f"| relay load into PostgreSQL vs psql \\copy, same rows, same run | ≥ 90% of \\copy | {lr:,.0f} vs {cr:,.0f} rows/s = {100*lr/cr:.0f}% | {frac(lr/cr, 0.9)} | \\copy is the limit |")
else:
    w("| relay load into PostgreSQL vs psql \\copy | ≥ 90% of \\copy | skipped (no PostgreSQL) | - | - |")
h = get("produce_half", "p99_ms", 1)
stages = {r["broker_stage"]: r for r in rows.get("produce_half", []) if "broker_stage" in r}
breakdown = ", ".join(f"{k} p99 {v.get('p99_ms')}" for k, v in stages.items())
w(f"| produce p99 per request (send_batch → acknowledged) at half the max rate | ≤ 3 ms, explained per ms | p50 {get('produce_half','p50_ms',1)} / p99 {h} / p99.9 {get('produce_half','p999_ms',1)} ms at {num(get('produce_half','records_per_second'))} rec/s; broker stages (ms): {breakdown or '-'} | {'met' if h is not None and h <= 3 else 'missed'} | - |")
scale = {}
for row in rows.get("scale", []):
    scale[(row.get("scale"), row.get("n"))] = row
def scale_row(component, n, key):
    row = scale.get((component, n)) or {}
    return row.get(key)
# The largest broker size measured (a size past the open-files limit is reported failed, without figures).
bn = max((n for (comp, n), row in scale.items() if comp == "broker" and isinstance(n, int) and row.get("restart_serving_s") is not None), default=None)
if bn:
    rs, cs = scale_row("broker", bn, "restart_serving_s"), scale_row("broker", bn, "clean_stop_s")
    w(f"| broker restart after kill -9 / clean stop, {bn:,} partitions | < 2 s / < 10 s (10,000 partitions) | {rs} s / {cs} s; after a clean stop {scale_row('broker', bn, 'clean_restart_serving_s')} s; kill -9 with nothing written since {scale_row('broker', bn, 'verified_restart_serving_s')} s | {'met' if rs is not None and cs is not None and rs < 2 and cs < 10 else 'missed'} | - |")
sn = max((n for (comp, n) in scale if comp == "sender" and isinstance(n, int)), default=None)
if sn:
    st, ic = scale_row("sender", sn, "startup_s"), scale_row("sender", sn, "idle_cpu_pct")
    w(f"| sender start-up / idle CPU, {sn:,} files | < 1 s / < 2 % (10,000 files) | {st} s / {ic} % | {'met' if st is not None and ic is not None and st < 1 and ic < 2 else 'missed'} | - |")
l4, l1000 = scale_row("loader", 4, "rows_per_s"), scale_row("loader", 1000, "rows_per_s")
if l4 and l1000:
    w(f"| loader into SQLite, 1,000 partitions vs 4 | ≥ 80 % | {l1000:,} vs {l4:,} rows/s = {100*l1000/l4:.0f}% | {frac(l1000/l4, 0.8)} | - |")
p = get("produce_max", "records_per_second")
pm = get("produce_max", "mb_per_second")
w(f"| produce 4 × 4, fsync always, send_batch ({int(records):,} records of 100 B) | ≥ 4,000,000 rec/s | {num(p)} rec/s ({pm} MB/s of values) | {frac(p, 4e6)} | {frac(pm, dd)} of dd MB/s |")
pr = get("produce_record", "records_per_second")
w(f"| (same, record-at-a-time `send`) | - | {num(pr)} rec/s | {frac(pr, 4e6)} | {frac(get('produce_record','mb_per_second'), dd)} of dd |")
lk = get("librdkafka_produce", "records_per_second")
w(f"| librdkafka producer (confluent-kafka, acks=all, idempotent) into Relay, fsync always | ahead of Tansu in memory (0.97–0.99 M rec/s in the issue; Tansu is not on this machine) | {num(lk)} rec/s, {get('librdkafka_produce', 'failed')} failed | {'ahead' if lk and lk > 0.99e6 else 'behind' if lk else '-'} | client-bound: one Python process |")
e = get("e2e", "p99_ms")
w(f"| end to end, file line → SQLite row visible, 10,000 lines/s | p99 ≤ 50 ms | p50 {get('e2e','p50_ms')} / p99 {e} / max {get('e2e','max_ms')} ms | {'met' if e is not None and e <= 50 else 'missed'} | - |")
r = get("restart", "seconds")
w(f"| restart after kill -9, {gib} GiB in 10 partitions | serving ≤ 2 s | {num(r, '{:.3f}')} s | {'met' if r is not None and r <= 2 else 'missed'} | - |")
s_ = get("send", "mb_per_second")
w(f"| relay send, {gib} GiB file, read and acknowledged | ≥ 300 MB/s (issue 9), RSS < 64 MiB | {s_} MB/s ({num(get('send','records_per_second'))} lines/s), peak RSS {send_rss} MiB | {frac(s_, 300)} | {frac(s_, dd)} of dd |")
for row in rows.get("scale", []):
    fields = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("bench", "scale"))
    w(f"| scale: {row.get('scale')} | see above | {fields} | - | - |")
w("\nRaw JSON lines:\n\n```")
for line in open(out):
    w(line.rstrip())
w("```")
print("\n".join(lines))
PY
echo "== appended to bench/RESULTS.md"
tail -20 bench/RESULTS.md
