#!/usr/bin/env bash
# relay send next to a real shipper, rsyslog (imfile -> omkafka), in the same
# run, against the same relay broker, on the same file, one after the other.
#
#   bash bench/peers.sh [LINES]        (default 2,000,000 lines of 106 bytes)
#
# Environment: RELAY (relay binary, default target/release/relay),
# PEERS_PARTITIONS (partitions of both topics, default 1),
# PEERS_TIMEOUT (seconds before a run is given up as failed, default 600),
# PEERS_KEEP=1 (keep the scratch directory, for a look at the logs),
# PEERS_RSYSLOG_ACTION_PARAMS (extra parameters of the omkafka action, to try
# other settings, e.g. 'queue.type="LinkedList" queue.size="4000000"').
#
# Each run is timed from the shipper's process start until the end offset of
# its topic reaches LINES, polled every 50 ms from the broker's /metrics
# (relay_broker_log_end_offset) by one long-lived python3 process (a ~1 ms
# HTTP GET per poll, no process spawned per poll). Peak RSS is the shipper's
# VmHWM read from /proc just before it is stopped. Afterwards every record of
# each topic is read back with `relay consume` and compared with the file.
#
# Needs rsyslogd and its omkafka module: installed with apt-get when missing
# and running as root, else the benchmark prints SKIPPED and exits 0. Our own
# rsyslogd runs in the foreground with a private config and work directory;
# the system's rsyslog service and /etc/rsyslog.conf are never used. (On a
# systemd machine the package's own postinst enables and starts the system
# rsyslog service when apt installs it; this script does not touch it.)
#
# Prints human readable lines, then one JSON line (the only line starting
# with "{"): lines, line_bytes, partitions, rsyslog_seconds,
# rsyslog_lines_per_second, rsyslog_peak_rss_mib, relay_seconds,
# relay_lines_per_second, relay_peak_rss_mib, ratio (relay lines/s over
# rsyslog lines/s), rsyslog_version, plus rsyslog_status/relay_status ("ok",
# "timeout", "exited", ...), rsyslog_end_offset/relay_end_offset and
# rsyslog_identical/relay_identical (every record byte-identical to its line,
# in order), rsyslog_produce_requests/relay_produce_requests (Produce
# requests the broker answered during the run, stop included) and
# rsyslog_topic_bytes/relay_topic_bytes (the topic's log size on the broker:
# relay send adds source headers to each record, rsyslog sends the bare
# line). A failed run has null figures.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
relay=${RELAY:-target/release/relay}
partitions=${PEERS_PARTITIONS:-1}
timeout=${PEERS_TIMEOUT:-600}
line_bytes=106

case $lines in '' | *[!0-9]* | 0) echo "usage: bash bench/peers.sh [LINES]" >&2; exit 2 ;; esac
[ -x "$relay" ] || { echo "no relay binary at $relay (set RELAY)" >&2; exit 2; }
relay=$(cd "$(dirname "$relay")" && pwd)/$(basename "$relay")

# --- rsyslog and omkafka -------------------------------------------------------
omkafka_present() {
  [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ] && return 0
  compgen -G '/usr/lib/*/rsyslog/omkafka.so' >/dev/null || compgen -G '/usr/lib/rsyslog/omkafka.so' >/dev/null
}
rsyslogd_bin=$(command -v rsyslogd || true)
[ -z "$rsyslogd_bin" ] && [ -x /usr/sbin/rsyslogd ] && rsyslogd_bin=/usr/sbin/rsyslogd
if [ -z "$rsyslogd_bin" ] || ! omkafka_present; then
  if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: rsyslog with omkafka is not installed (apt-get install rsyslog rsyslog-kafka as root)"
    exit 0
  fi
  echo "== installing rsyslog and rsyslog-kafka (apt-get)"
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rsyslog rsyslog-kafka; }
  if ! apt_install >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    apt_install >/dev/null
  fi
  rsyslogd_bin=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
  if [ ! -x "$rsyslogd_bin" ] || ! omkafka_present; then
    echo "SKIPPED: rsyslog or omkafka still missing after apt-get install"
    exit 0
  fi
fi
rsyslog_version=$("$rsyslogd_bin" -v 2>/dev/null | sed -n '1s/^rsyslogd *\([^ ]*\).*/\1/p')
librdkafka_version=$(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null || echo unknown)

# --- scratch directory, cleanup --------------------------------------------------
mkdir -p target/bench-data
work=$(mktemp -d target/bench-data/peers.XXXXXX)
work=$(cd "$work" && pwd)
pids=()
stop() { # stop PID: TERM, up to 5 s, then KILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  if [ -n "${PEERS_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the file ------------------------------------------------------------------------
file=$work/peers.jsonl
echo "== writing $lines lines of $line_bytes bytes to $file"
# {"n":000000000001,"event":"bench","pad":"xxx...x"} = 105 characters + newline.
awk -v n="$lines" 'BEGIN {
  pad = sprintf("%62s", ""); gsub(/ /, "x", pad)
  for (i = 1; i <= n; i++) printf "{\"n\":%012d,\"event\":\"bench\",\"pad\":\"%s\"}\n", i, pad
}' > "$file"
size=$(stat -c %s "$file")
if [ "$size" != $((lines * line_bytes)) ]; then
  echo "generated file is $size bytes, expected $((lines * line_bytes))" >&2; exit 1
fi
file_md5=$(md5sum < "$file" | cut -d' ' -f1)

# --- the broker --------------------------------------------------------------------
"$relay" broker --listen 127.0.0.1:0 --data-dir "$work/data" --metrics 127.0.0.1:0 \
  > "$work/broker.out" 2> "$work/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/broker.out" 2>/dev/null && break; sleep 0.1; done
broker=$(sed -n 's/relay broker listening on \([^ ]*\).*/\1/p' "$work/broker.out")
metrics=$(sed -n 's/.*metrics on \(http[^ ]*\).*/\1/p' "$work/broker.out")
[ -n "$broker" ] && [ -n "$metrics" ] || { echo "the broker did not start:" >&2; cat "$work/broker.log" >&2; exit 1; }
for topic in peer-rsyslog peer-relay; do
  "$relay" topics create "$topic" --partitions "$partitions" --broker "$broker" >/dev/null
done
echo "broker $broker, topics peer-rsyslog and peer-relay with $partitions partition(s) each"
echo "rsyslog $rsyslog_version (librdkafka $librdkafka_version), $("$relay" --version)"

# Waits until TOPIC's end offset reaches LINES or PID exits or the timeout,
# then prints "STATUS SECONDS END_OFFSET VMHWM_KIB" (SECONDS since T0, the
# shell's $EPOCHREALTIME taken just before the shipper was started).
watch_run() { # watch_run TOPIC PID T0
  python3 - "$metrics" "$1" "$lines" "$2" "$3" "$timeout" <<'PY'
import re, sys, time, urllib.request
url, topic, lines, pid, t0, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
pattern = re.compile(r'^relay_broker_log_end_offset\{topic="%s",partition="\d+"\} (\d+)' % re.escape(topic), re.M)
def end_offset():
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return sum(int(v) for v in pattern.findall(r.read().decode()))
    except OSError:
        return -1
def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
status, end = "timeout", 0
while True:
    end = end_offset()
    now = time.time()
    if end >= lines:
        status = "ok"
        break
    if not alive():
        status = "exited"
        break
    if now - t0 > timeout:
        break
    time.sleep(0.05)
hwm = 0
try:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
except OSError:
    pass
print(status, f"{now - t0:.3f}", end, hwm)
PY
}

# Sum of a broker metric's samples whose labels match LABELS (a regex), e.g.
# the Produce requests answered so far, or a topic's bytes on disk.
broker_metric() { # broker_metric NAME LABELS
  python3 -c 'import re, sys, urllib.request
t = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
print(sum(int(float(v)) for v in re.findall(r"^%s\{%s\} (\S+)" % (sys.argv[2], sys.argv[3]), t, re.M)))' \
    "$metrics" "$1" "$2" 2>/dev/null || echo 0
}
produce_requests() { broker_metric relay_broker_requests_total 'api="Produce"'; }
topic_bytes() { broker_metric relay_broker_log_size_bytes "topic=\"$1\",partition=\"\\d+\""; }

# Reads TOPIC back and compares it with the file; sets $check to "identical",
# "reordered" (the same lines in another order) or "different".
check_topic() { # check_topic TOPIC
  local got
  got=$("$relay" consume --topic "$1" --broker "$broker" --format raw 2>/dev/null | tee "$work/readback" | md5sum | cut -d' ' -f1)
  if [ "$got" = "$file_md5" ]; then check=identical
  elif [ "$(LC_ALL=C sort -S 25% "$work/readback" | md5sum)" = "$(LC_ALL=C sort -S 25% "$file" | md5sum)" ]; then check=reordered
  else check=different; fi
  echo "  first record read back from $1: $(head -1 "$work/readback" | cut -c1-110)"
  echo "  all $(wc -l < "$work/readback") records of $1 vs the file's lines: $check"
  rm -f "$work/readback"
}

# --- run A: rsyslog imfile -> omkafka -------------------------------------------------
mkdir -p "$work/rsyslog"
IFS=: read -r broker_host broker_port <<< "$broker"
cat > "$work/rsyslog.conf" <<CONF
# Private config: no imuxsock, no imklog, no include of /etc/rsyslog.d, no /dev/log.
global(
  workDirectory="$work/rsyslog"        # imfile's state file lives here
  maxMessageSize="64k"                 # lines are 105 bytes; well above, so nothing is truncated
  processInternalMessages="on"         # rsyslogd's own messages stay in this instance (not sent to /dev/log)
)
# Main queue: in memory, large enough to hold the whole burst that imfile reads
# (no back pressure on the reader from a small queue; the price: when omkafka
# falls behind, e.g. on a busy machine, the lines wait here and rsyslogd's RSS
# grows, 40 MiB quiet, up to ~230 MiB measured under load), big dequeue batches so
# the worker hands omkafka many messages per call. One worker: omkafka's call
# only hands the message to librdkafka's own in-memory queue and its threads.
main_queue(queue.type="LinkedList" queue.size="4000000" queue.dequeueBatchSize="4096" queue.workerThreads="1")
module(load="imfile" mode="inotify")
module(load="omkafka")
# The line exactly as read, without the newline: what relay send ships too.
template(name="raw" type="string" string="%rawmsg%")
# Whole file from its start (readMode 0 = one line per message); no metadata
# fields added to each message (nothing of it is sent).
# Bound to its own ruleset, so that only the file's lines reach omkafka (not
# rsyslogd's own start/stop messages); the ruleset has no queue of its own,
# so the lines go through the main queue.
input(type="imfile" file="$file" tag="peers" readMode="0" freshStartTail="off" addMetadata="off" ruleset="kafka")
# omkafka: librdkafka with the same delivery guarantee as relay send (acks=all,
# idempotent producer); batching as librdkafka's defaults (linger 5 ms,
# 10,000 messages or 1 MB a batch), no compression (relay send does not
# compress either), and librdkafka's local queue raised from 100,000
# messages to 4,000,000 so that a full local queue never throttles it.
# The action runs directly on the main queue's worker (default "Direct"
# action queue): a second in-memory queue in front of omkafka only adds a
# copy and a thread hand-off on this 2-core machine (measured slower).
ruleset(name="kafka") {
action(type="omkafka" broker=["$broker_host:$broker_port"] topic="peer-rsyslog" template="raw"
  partitions.auto="on"
  confParam=["enable.idempotence=true", "linger.ms=5", "batch.num.messages=10000", "batch.size=1000000",
             "queue.buffering.max.messages=4000000", "queue.buffering.max.kbytes=2097152",
             "compression.codec=none", "socket.nagle.disable=true"]
  topicConfParam=["acks=all"]
  errorFile="$work/rsyslog/omkafka-errors.json"
  ${PEERS_RSYSLOG_ACTION_PARAMS:-})
}
# The default ruleset only sees rsyslogd's own messages: to a private file.
action(type="omfile" file="$work/rsyslog/internal.log")
CONF
"$rsyslogd_bin" -N1 -f "$work/rsyslog.conf" > "$work/rsyslog-check.log" 2>&1 || {
  echo "rsyslog rejects the config:" >&2; cat "$work/rsyslog-check.log" >&2; exit 1; }

echo "== run A: rsyslogd imfile -> omkafka -> topic peer-rsyslog"
requests_before=$(produce_requests)
t0=$EPOCHREALTIME
"$rsyslogd_bin" -n -f "$work/rsyslog.conf" -i "$work/rsyslog/rsyslogd.pid" > "$work/rsyslogd.out" 2>&1 &
rs_pid=$!
pids+=($rs_pid)
read -r rs_status rs_seconds rs_end rs_hwm < <(watch_run peer-rsyslog "$rs_pid" "$t0" || echo "error 0 0 0")
stop "$rs_pid"
rs_requests=$(( $(produce_requests) - requests_before ))
rs_bytes=$(topic_bytes peer-rsyslog)
echo "rsyslog: $rs_status after $rs_seconds s, end offset $rs_end of $lines, peak RSS $((rs_hwm / 1024)) MiB, $rs_requests produce requests, $rs_bytes bytes in the topic's log"
if [ "$rs_status" != ok ]; then
  echo "  rsyslogd output:"
  for log in "$work/rsyslogd.out" "$work/rsyslog/internal.log"; do
    [ -f "$log" ] && tail -5 "$log" | sed 's/^/  /'
  done
fi
if [ -s "$work/rsyslog/omkafka-errors.json" ]; then
  echo "  omkafka error file: $(wc -l < "$work/rsyslog/omkafka-errors.json") entries"
fi
check_topic peer-rsyslog
rs_check=$check

# --- run B: relay send -----------------------------------------------------------------
echo "== run B: relay send -> topic peer-relay"
requests_before=$(produce_requests)
t0=$EPOCHREALTIME
"$relay" send --broker "$broker" --topic peer-relay --path "$file" --state-dir "$work/send-state" \
  > "$work/send.out" 2> "$work/send.log" &
rl_pid=$!
pids+=($rl_pid)
read -r rl_status rl_seconds rl_end rl_hwm < <(watch_run peer-relay "$rl_pid" "$t0" || echo "error 0 0 0")
stop "$rl_pid"
rl_requests=$(( $(produce_requests) - requests_before ))
rl_bytes=$(topic_bytes peer-relay)
echo "relay send: $rl_status after $rl_seconds s, end offset $rl_end of $lines, peak RSS $((rl_hwm / 1024)) MiB, $rl_requests produce requests, $rl_bytes bytes in the topic's log"
if [ "$rl_status" != ok ]; then
  echo "  relay send log:"
  [ -f "$work/send.log" ] && tail -5 "$work/send.log" | sed 's/^/  /'
fi
check_topic peer-relay
rl_check=$check

# --- report --------------------------------------------------------------------------------
python3 - "$lines" "$line_bytes" "$partitions" "$rsyslog_version" \
  "$rs_status" "$rs_seconds" "$rs_end" "$rs_hwm" "$rs_check" "$rs_requests" "$rs_bytes" \
  "$rl_status" "$rl_seconds" "$rl_end" "$rl_hwm" "$rl_check" "$rl_requests" "$rl_bytes" <<'PY'
import json, sys
(lines, line_bytes, partitions, version, rs_status, rs_s, rs_end, rs_hwm, rs_check, rs_req, rs_bytes,
 rl_status, rl_s, rl_end, rl_hwm, rl_check, rl_req, rl_bytes) = sys.argv[1:]
lines = int(lines)
def figures(status, seconds, hwm):
    if status != "ok":
        return None, None, None
    s = float(seconds)
    return round(s, 3), round(lines / s), round(int(hwm) / 1024, 1)
rs = figures(rs_status, rs_s, rs_hwm)
rl = figures(rl_status, rl_s, rl_hwm)
ratio = round(rl[1] / rs[1], 2) if rs[1] and rl[1] else None
def show(name, f, status, log_bytes):
    if f[0] is None:
        return f"{name:10} FAILED ({status})"
    return (f"{name:10} {f[0]:8.3f} s  {f[1]:>10,} lines/s  {f[1] * int(line_bytes) / 1e6:6.1f} MB/s of file"
            f"  {int(log_bytes) / f[0] / 1e6:6.1f} MB/s into the log  peak RSS {f[2]:6.1f} MiB")
print(f"== {lines:,} lines of {line_bytes} B, {partitions} partition(s) per topic, same broker")
print(show("rsyslog", rs, rs_status, rs_bytes))
print(show("relay send", rl, rl_status, rl_bytes))
print(f"relay send / rsyslog lines/s: {ratio if ratio is not None else 'n/a'}")
print(json.dumps({
    "lines": lines, "line_bytes": int(line_bytes), "partitions": int(partitions),
    "rsyslog_seconds": rs[0], "rsyslog_lines_per_second": rs[1], "rsyslog_peak_rss_mib": rs[2],
    "relay_seconds": rl[0], "relay_lines_per_second": rl[1], "relay_peak_rss_mib": rl[2],
    "ratio": ratio, "rsyslog_version": version or None,
    "rsyslog_status": rs_status, "relay_status": rl_status,
    "rsyslog_end_offset": int(rs_end), "relay_end_offset": int(rl_end),
    "rsyslog_identical": rs_check == "identical", "relay_identical": rl_check == "identical",
    "rsyslog_produce_requests": int(rs_req), "relay_produce_requests": int(rl_req),
    "rsyslog_topic_bytes": int(rs_bytes), "relay_topic_bytes": int(rl_bytes),
}))
PY
