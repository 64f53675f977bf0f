#!/usr/bin/env bash
# relay load into PostgreSQL next to psql \copy of the same rows into the same
# kind of table, on a throwaway cluster. Usage: bench/load_vs_copy.sh [EVENTS]
# Prints rows/s of each and the ratio (target: relay load >= 90% of \copy, issue 32).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-500000}
relay=${RELAY_BENCH_BINARY:-target/release/relay}
pg_bin=${RELAY_PG_BIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d target/bench-load.XXXXXX)
work=$(cd "$work" && pwd)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown -R postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
trap 'as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null; kill $(jobs -p) 2>/dev/null || true' EXIT
psql="psql -h 127.0.0.1 -p $port -U postgres -At -q"

python3 - "$events" "$work/events.jsonl" "$work/events.csv" <<'PY'
import sys, uuid, random
n, jsonl, csv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
random.seed(7)
with open(jsonl, "w") as j, open(csv, "w") as c:
    for i in range(n):
        u = str(uuid.UUID(int=random.getrandbits(128), version=4))
        p, a = f"player-{i % 5000}", i % 10000
        j.write(f'{{"uuid":"{u}","player_id":"{p}","type":"purchase","amount":{a},"ts":"2026-11-22T00:00:00Z"}}\n')
        c.write(f"{u},{p},purchase,{a},2026-11-22T00:00:00Z,{u}\n")
PY

# The loader is its group's only member: its first rebalance need not wait
# (relay broker's default is Kafka's 3 s, which the timing would count).
printf '[broker]\ngroup_initial_rebalance_delay_ms = 0\n' > "$work/broker.toml"
$relay broker --config "$work/broker.toml" --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/broker.out" 2> "$work/broker.log" &
sleep 1
broker=$(sed -n 's/relay broker listening on \([^ ]*\).*/\1/p' "$work/broker.out")
$relay topics create events --partitions 4 --broker "$broker" >/dev/null
$relay produce --topic events --broker "$broker" "$work/events.jsonl" 2>/dev/null
cat > "$work/load.toml" <<TOML
[[load]]
topic = "events"
group = "bench"
warehouse = "postgres://postgres@127.0.0.1:$port/postgres"
table = "events"
batch_records_max = 50000
batch_wait_ms = 200
[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"
[[load.columns]]
name = "player_id"
pointer = "/player_id"
type = "text"
[[load.columns]]
name = "event_type"
pointer = "/type"
type = "text"
[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"
[[load.columns]]
name = "occurred_at"
pointer = "/ts"
type = "timestamptz"
TOML
start=$(date +%s.%N)
$relay load --config "$work/load.toml" --broker "$broker" 2> "$work/load.log" &
loader=$!
# RELAY_BENCH_PERF=FILE: a CPU profile of relay load alone while it loads.
if [ -n "${RELAY_BENCH_PERF:-}" ]; then
  perf record -F 999 -g -o "$RELAY_BENCH_PERF" -p $loader 2>/dev/null >/dev/null &
  perf_pid=$!
fi
until [ "$($psql -c "select coalesce(sum(next_offset),0) from relay_offsets" 2>/dev/null || echo 0)" = "$events" ]; do sleep 0.05; done
end=$(date +%s.%N)
if [ -n "${perf_pid:-}" ]; then kill -INT $perf_pid; wait $perf_pid || true; fi
kill -TERM $loader; wait $loader || true
load_rows=$($psql -c "select count(*) from events")

$psql -c "create table copied (like events including all)"
copy_start=$(date +%s.%N)
$psql -c "\\copy copied (uuid, player_id, event_type, amount, occurred_at, dedup_key) from '$work/events.csv' with (format csv)"
copy_end=$(date +%s.%N)
copy_rows=$($psql -c "select count(*) from copied")

python3 - "$events" "$start" "$end" "$copy_start" "$copy_end" "$load_rows" "$copy_rows" <<'PY'
import sys
n = int(sys.argv[1]); s, e, cs, ce = map(float, sys.argv[2:6])
load, copy = n / (e - s), n / (ce - cs)
print(f"relay load: {sys.argv[6]} rows in {e - s:.2f} s = {load:,.0f} rows/s")
print(f"psql \\copy: {sys.argv[7]} rows in {ce - cs:.2f} s = {copy:,.0f} rows/s")
print(f"relay load / \\copy = {load / copy:.0%} (target >= 90%)")
PY
