#!/usr/bin/env python3
"""Scaling curves for Relay: how time and memory grow with the amount of work.

Driven by bench/scale.sh (which sets the environment below, makes the scratch
directory and cleans up). Python 3 standard library only: the broker is
queried with a minimal Kafka wire client written here (Metadata v1 and
ListOffsets v1, no external package), and data is written with `relay produce`.

Components (SCALE_COMPONENTS, default "sender registry broker loader"):

  sender    N files (N in SCALE_NS) matching dir/*.log, each with one line at
            start, min(N, 1000) of them then growing (one line per file per
            SCALE_GROW_INTERVAL_MS, round robin). Start-up, peak RSS, CPU
            while growing and while idle, time to notice a new file, restart.
  registry  `relay send` over SCALE_REGISTRY tiny files (one line each) within
            SCALE_REGISTRY_BUDGET seconds, then stop, delete the files,
            restart on that registry: restart time and RSS.
  broker    one topic of N partitions, 2 records in each, kill -9, restart:
            time to serve, RSS, idle CPU, descriptors, index files on disk,
            Metadata and ListOffsets latency; then SIGTERM (clean stop time),
            restart (serving time), and kill -9 + restart again with nothing
            written since the clean stop (serving time, partitions rescanned).
  loader    one group over P partitions (SCALE_LOADER_PARTITIONS) loading
            SCALE_LOADER_RECORDS records into SQLite: join time and rows/s.

Output: human-readable lines and tables; one JSON line per (component, N),
each starting with {"scale":. Nothing else starts with "{".
"""

import json
import os
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

RELAY = os.environ.get("RELAY", "target/release/relay")
WORK = os.environ.get("SCALE_WORK") or sys.exit("SCALE_WORK is not set (run bench/scale.sh)")
NS = [int(n) for n in os.environ.get("SCALE_NS", "10 1000 10000").split()]
COMPONENTS = os.environ.get("SCALE_COMPONENTS", "sender registry broker loader").split()
REGISTRY_N = int(os.environ.get("SCALE_REGISTRY", "100000"))
REGISTRY_BUDGET = float(os.environ.get("SCALE_REGISTRY_BUDGET", "180"))
GROW_SECONDS = float(os.environ.get("SCALE_GROW_SECONDS", "10"))
GROW_INTERVAL = float(os.environ.get("SCALE_GROW_INTERVAL_MS", "1000")) / 1000.0
GROWING_MAX = 1000
IDLE_SECONDS = float(os.environ.get("SCALE_IDLE_SECONDS", "10"))
SEND_TIMEOUT = float(os.environ.get("SCALE_SEND_TIMEOUT", "600"))
BROKER_NS = [int(n) for n in os.environ.get("SCALE_BROKER_NS", " ".join(map(str, NS))).split()]
LOADER_PARTITIONS = [int(n) for n in os.environ.get("SCALE_LOADER_PARTITIONS", "4 1000").split()]
LOADER_RECORDS = int(os.environ.get("SCALE_LOADER_RECORDS", "100000"))
PIDS_FILE = os.path.join(WORK, "pids")
TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

# Targets of the issue, printed next to the figures.
SENDER_TARGET_N = 10000
SENDER_START_TARGET_S = 1.0
SENDER_RSS_TARGET_MIB = 128
IDLE_CPU_TARGET_PCT = 1.0  # "~0": at most 1 % of one core
BROKER_TARGET_N = 10000
BROKER_SERVE_TARGET_S = 2.0

RESULTS = []  # (component, row dict)


def say(text=""):
    """Human output: never starts with '{'."""
    for line in str(text).splitlines() or [""]:
        if line.startswith("{"):
            line = " " + line
        print(line, flush=True)


def emit(component, row):
    RESULTS.append((component, row))
    print(json.dumps({"scale": component, **row}, separators=(",", ":")), flush=True)


# ---------------------------------------------------------------- processes

CHILDREN = []


def note_pid(pid):
    with open(PIDS_FILE, "a") as f:
        f.write(f"{pid}\n")


class Proc:
    """A child `relay` process: stdout drained by a thread, stderr to a log."""

    def __init__(self, args, log, wait_line=True, timeout=120):
        self.args = args
        self.log = log
        self.lines = []
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [RELAY] + args,
            stdout=subprocess.PIPE,
            stderr=open(log, "w"),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        CHILDREN.append(self)
        note_pid(self.pid)
        self._got_line = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if wait_line and not self._got_line.wait(timeout):
            raise RuntimeError(f"relay {' '.join(args[:2])} printed no start line within {timeout} s; see {log}")
        if wait_line and not self.lines:
            raise RuntimeError(f"relay {' '.join(args[:2])} did not start; see {log}: {tail(log)}")

    def _drain(self):
        for raw in self.popen.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._got_line.set()
        self._got_line.set()

    @property
    def first_line(self):
        return self.lines[0] if self.lines else ""

    def address(self):
        # "relay broker listening on 127.0.0.1:PORT (...)"
        rest = self.first_line.split(" on ", 1)[1] if " on " in self.first_line else ""
        return rest.split()[0].rstrip(",") if rest else ""

    def metrics_address(self):
        line = self.first_line
        if "metrics on http://" not in line:
            return None
        return line.split("metrics on http://", 1)[1].split("/", 1)[0]

    def alive(self):
        return self.popen.poll() is None

    def status(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def rss(self):
        return self.status("VmRSS")

    def hwm(self):
        return self.status("VmHWM")

    def cpu_ticks(self):
        """utime + stime of the process (all threads), in clock ticks."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                text = f.read()
        except OSError:
            return None
        fields = text.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def kill9(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait()

    def terminate(self, timeout=120):
        """SIGTERM and wait; returns the seconds the stop took (SIGKILL after timeout)."""
        started = time.monotonic()
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return time.monotonic() - started


def kill_all():
    for child in CHILDREN:
        try:
            if child.alive():
                os.kill(child.pid, signal.SIGKILL)
                child.popen.wait(5)
        except Exception:
            pass


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


def tail(path, lines=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-lines:])
    except OSError:
        return ""


def relay_cli(args, timeout=600):
    """Runs a short `relay` command; (exit code, seconds, combined output)."""
    started = time.monotonic()
    done = subprocess.run([RELAY] + args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    output = (done.stdout + done.stderr).decode(errors="replace")
    return done.returncode, time.monotonic() - started, output


def cpu_percent(proc, seconds):
    """CPU % of one core used by proc over the next `seconds` (utime+stime delta)."""
    before, started = proc.cpu_ticks(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = proc.cpu_ticks(), time.monotonic() - started
    if before is None or after is None:
        return None, None
    ticks = after - before
    return round(100.0 * ticks / TICKS / elapsed, 2), ticks


def count_in_log(path, text):
    n = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if text in line:
                    n += 1
    except OSError:
        pass
    return n


# ------------------------------------------------------- minimal Kafka client


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        value = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return value

    def array(self, item):
        n = self.i32()
        return [item() for _ in range(max(n, 0))]


def kstr(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


class Kafka:
    """One connection; requests with header v1, responses with header v0."""

    METADATA, LIST_OFFSETS = 3, 2

    def __init__(self, address, timeout=30):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def request(self, api, version, body):
        self.correlation += 1
        header = struct.pack(">hhi", api, version, self.correlation) + kstr("relay-scale")
        payload = header + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        if struct.unpack_from(">i", data)[0] != self.correlation:
            raise ConnectionError("correlation id mismatch")
        return data[4:]

    def metadata(self):
        """Metadata v1 for all topics: ({topic: partition count}, response bytes)."""
        data = self.request(self.METADATA, 1, struct.pack(">i", -1))
        r = Reader(data)
        r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))  # brokers
        r.i32()  # controller

        def partition():
            r.i16(), r.i32(), r.i32()
            r.array(r.i32)
            r.array(r.i32)

        def topic():
            error, name, _internal = r.i16(), r.string(), r.i8()
            return name, error, len(r.array(partition))

        topics = {name: count for name, error, count in r.array(topic) if error == 0}
        return topics, len(data)

    def end_offsets(self, topic, partitions, timestamp=-1):
        """ListOffsets v1 (latest) for partitions 0..partitions-1: list of offsets."""
        body = struct.pack(">i", -1) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", partitions)
        body += b"".join(struct.pack(">iq", p, timestamp) for p in range(partitions))
        r = Reader(self.request(self.LIST_OFFSETS, 1, body))
        offsets = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                _p, error, _ts, offset = r.i32(), r.i16(), r.i64(), r.i64()
                offsets.append(offset if error == 0 else None)
        return offsets


def wait_serving(address, topic, partitions, started, timeout=300):
    """Polls until a TCP connect succeeds and until Metadata lists `topic` with
    all its partitions. Returns (seconds to accept, seconds to serve), from `started`."""
    accepted = None
    while time.monotonic() - started < timeout:
        try:
            conn = Kafka(address, timeout=timeout)
        except OSError:
            time.sleep(0.002)
            continue
        if accepted is None:
            accepted = time.monotonic() - started
        try:
            topics, _ = conn.metadata()
            if topics.get(topic) == partitions:
                return accepted, time.monotonic() - started
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()
        time.sleep(0.002)
    return accepted, None


def median_latency(fn, times=10):
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


# ------------------------------------------------------------ metrics scrape


def scrape(address, names):
    """Sums of the given series (over label sets) from GET /metrics."""
    sums = dict.fromkeys(names)
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as response:
            text = response.read().decode(errors="replace")
    except OSError:
        return sums
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0]
        if name in sums:
            sums[name] = (sums[name] or 0.0) + float(value)
    return sums


ACKED = "relay_sender_lines_acked_total"


def acked_lines(metrics):
    value = scrape(metrics, [ACKED])[ACKED]
    return int(value) if value is not None else None


# ------------------------------------------------------------------- broker


def start_broker(dir_, address="127.0.0.1:0", log_name="broker.log", config=None, wait_line=True):
    """Starts a broker; with wait_line (needed for port 0) returns once it
    printed its start line, which comes after its storage is open."""
    args = ["broker", "--listen", address, "--data-dir", os.path.join(dir_, "data")]
    if config:
        args += ["--config", config]
    return Proc(args, os.path.join(dir_, log_name), wait_line=wait_line)


def create_topic(address, topic, partitions):
    code, seconds, output = relay_cli(["topics", "create", topic, "--partitions", str(partitions), "--broker", address])
    return code, seconds, output.strip()


def line_of(i, seq, pad=40):
    return '{"file":%d,"seq":%d,"pad":"%s"}\n' % (i, seq, "x" * pad)


# ------------------------------------------------------------------- sender


def wait_end_offset(conn, topic, target, timeout, poll=0.01, started=None):
    """Seconds from `started` (default: now) until partition 0's end offset
    reaches `target`, or None; and the end offset."""
    started = time.monotonic() if started is None else started
    while time.monotonic() - started < timeout:
        offsets = conn.end_offsets(topic, 1)
        if offsets and offsets[0] is not None and offsets[0] >= target:
            return time.monotonic() - started, offsets[0]
        time.sleep(poll)
    return None, conn.end_offsets(topic, 1)[0]


def sender_scale(broker, n):
    base = os.path.join(WORK, f"send-{n}")
    logs, state = os.path.join(base, "logs"), os.path.join(base, "state")
    os.makedirs(logs)
    topic = f"scale-send-{n}"
    create_topic(broker, topic, 1)
    say(f"-- sender, N = {n:,} files: writing the files")
    paths = [os.path.join(logs, f"f{i:06d}.log") for i in range(n)]
    for i, path in enumerate(paths):
        with open(path, "w") as f:
            f.write(line_of(i, 0))
    conn = Kafka(broker)
    row = {"n": n, "growing_files": min(n, GROWING_MAX), "open_files_max": 256}
    log = os.path.join(base, "send.log")
    args = ["--log-format", "json", "send", "--broker", broker, "--topic", topic,
            "--path", os.path.join(logs, "*.log"), "--state-dir", state, "--metrics", "127.0.0.1:0"]

    # 1. Start-up: spawn -> every file's first line landed in the topic.
    started = time.monotonic()
    sender = Proc(args, log)
    metrics = sender.metrics_address()
    first, progress, last_print = None, [], started
    while True:
        elapsed = time.monotonic() - started
        landed = conn.end_offsets(topic, 1)[0] or 0
        if landed > 0 and first is None:
            first = elapsed
        if landed >= n:
            break
        if time.monotonic() - last_print >= 15:
            last_print = time.monotonic()
            progress.append((round(elapsed, 1), landed))
            say(f"   {elapsed:6.0f} s: {landed:,} of {n:,} files' first lines landed")
        if elapsed > SEND_TIMEOUT or not sender.alive():
            break
        time.sleep(0.02)
    startup = time.monotonic() - started
    all_landed = landed >= n
    acked_at_startup = None
    if all_landed:
        # Acknowledged (the sender's own view) follows landing by one produce response.
        t_ack = None
        while time.monotonic() - started < startup + 30:
            acked = acked_lines(metrics)
            if acked is not None and acked >= n:
                t_ack = time.monotonic() - started
                break
            time.sleep(0.05)
        acked_at_startup = t_ack
    row["startup_s"] = round(startup, 3) if all_landed else None
    row["startup_acked_s"] = round(acked_at_startup, 3) if acked_at_startup else None
    row["first_line_s"] = round(first, 3) if first is not None else None
    row["startup_landed"] = landed
    row["startup_progress"] = progress
    row["files_opened_at_startup"] = count_in_log(log, '"reading file"')
    row["rss_after_startup_mib"] = round((sender.rss() or 0) / MIB, 1)
    say(f"   start-up: {'%.3f s' % startup if all_landed else 'NOT DONE after %.0f s (%d of %d)' % (startup, landed, n)}"
        f" (first line {row['first_line_s']} s, opens {row['files_opened_at_startup']:,})")

    # 2. Growth: min(n, 1000) files get one line each per GROW_INTERVAL, round robin.
    growing = paths[:min(n, GROWING_MAX)]
    handles = [open(p, "a") for p in growing]
    rate = len(growing) / GROW_INTERVAL
    written = 0
    cpu_before, grow_started = sender.cpu_ticks(), time.monotonic()
    while True:
        now = time.monotonic() - grow_started
        if now >= GROW_SECONDS:
            break
        due = int(now * rate) + 1
        while written < due:
            k = written % len(handles)
            handles[k].write(line_of(k, 1 + written // len(handles)))
            handles[k].flush()
            written += 1
        time.sleep(max(0.0, (written / rate) - (time.monotonic() - grow_started)))
    grow_elapsed = time.monotonic() - grow_started
    cpu_grow = sender.cpu_ticks()
    for h in handles:
        h.close()
    target = n + written
    behind_at_end = target - (conn.end_offsets(topic, 1)[0] or 0)
    drain, _ = wait_end_offset(conn, topic, target, timeout=300, poll=0.05)
    row["grow_lines"] = written
    row["grow_rate_lines_s"] = round(rate, 1)
    row["grow_cpu_pct"] = round(100.0 * (cpu_grow - cpu_before) / TICKS / grow_elapsed, 1) if cpu_grow else None
    row["behind_at_grow_end_lines"] = behind_at_end
    row["drain_after_grow_s"] = round(drain, 3) if drain is not None else None
    row["opens_during_grow"] = count_in_log(log, '"reading file"') - row["files_opened_at_startup"]
    say(f"   growth: {written:,} lines at {rate:,.0f}/s over {len(growing):,} files; CPU {row['grow_cpu_pct']} %;"
        f" behind at end {behind_at_end:,} lines, drained {row['drain_after_grow_s']} s later;"
        f" {row['opens_during_grow']:,} file (re)opens")

    # 3. Idle: everything landed and acknowledged; CPU over IDLE_SECONDS.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (acked_lines(metrics) or 0) < target:
        time.sleep(0.1)
    time.sleep(1.0)
    row["idle_cpu_pct"], row["idle_cpu_ticks"] = cpu_percent(sender, IDLE_SECONDS)
    row["idle_seconds"] = IDLE_SECONDS
    row["idle_rss_mib"] = round((sender.rss() or 0) / MIB, 1)
    row["open_fds_idle"] = sender.fds()
    say(f"   idle: CPU {row['idle_cpu_pct']} % of a core over {IDLE_SECONDS:.0f} s ({row['idle_cpu_ticks']} ticks),"
        f" RSS {row['idle_rss_mib']} MiB, {row['open_fds_idle']} fds")

    # 4. A new file: one line; time until it lands in the topic (end offset grows)
    #    and until the sender counts it acknowledged.
    notices, acks = [], []
    expected = conn.end_offsets(topic, 1)[0]
    for k in range(3):
        acked_before = acked_lines(metrics)
        path = os.path.join(logs, f"new-{k}.log")
        created = time.monotonic()
        with open(path, "w") as f:
            f.write(line_of(10**7 + k, 0))
        landed_s = acked_s = None
        polls = 0
        while time.monotonic() - created < 120 and (landed_s is None or acked_s is None):
            if landed_s is None and (conn.end_offsets(topic, 1)[0] or 0) > expected:
                landed_s = time.monotonic() - created
            # /metrics is scraped every 100 ms only: its text grows with the files.
            if acked_s is None and polls % 10 == 0 and (acked_lines(metrics) or 0) > (acked_before or 0):
                acked_s = time.monotonic() - created
            polls += 1
            time.sleep(0.01)
        expected += 1
        notices.append(landed_s)
        acks.append(acked_s)
        time.sleep(0.7)  # new files at different points of the discovery cycle
    good = [x for x in notices if x is not None]
    good_acks = [x for x in acks if x is not None]
    row["new_file_landed_s"] = round(statistics.median(good), 3) if good else None
    row["new_file_acked_s"] = round(statistics.median(good_acks), 3) if good_acks else None
    row["new_file_samples_s"] = [round(x, 3) if x is not None else None for x in notices]
    say(f"   new file: landed in the topic after {row['new_file_samples_s']} s (median {row['new_file_landed_s']}),"
        f" acked (/metrics polled every 100 ms) median {row['new_file_acked_s']} s")
    row["peak_rss_mib"] = round((sender.hwm() or 0) / MIB, 1)

    # 5. Restart on the registry of N files (all acknowledged): spawn -> a new file's line landed.
    row["stop_s"] = round(sender.terminate(), 3)
    registry_lines = count_lines(os.path.join(state, "registry")) - 1
    row["registry_entries"] = registry_lines
    with open(os.path.join(logs, "after-restart.log"), "w") as f:
        f.write(line_of(10**8, 0))
    expected = conn.end_offsets(topic, 1)[0]
    started = time.monotonic()
    sender = Proc(args, os.path.join(base, "send-restart.log"))
    restart, _ = wait_end_offset(conn, topic, expected + 1, timeout=SEND_TIMEOUT, started=started)
    row["restart_to_new_line_s"] = round(restart, 3) if restart is not None else None
    row["restart_peak_rss_mib"] = round((sender.hwm() or 0) / MIB, 1)
    row["restart_idle_cpu_pct"], _ = cpu_percent(sender, min(IDLE_SECONDS, 5))
    sender.terminate()
    conn.close()
    say(f"   restart on a registry of {registry_lines:,} files: new file's line landed {row['restart_to_new_line_s']} s"
        f" after spawn; peak RSS {row['restart_peak_rss_mib']} MiB; then idle CPU {row['restart_idle_cpu_pct']} %")
    say(f"   peak RSS (VmHWM) of the first run: {row['peak_rss_mib']} MiB; stop (SIGTERM) took {row['stop_s']} s")
    emit("sender", row)
    remove_tree(base)


def elapsed_s(started):
    return time.monotonic() - started


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def remove_tree(path):
    subprocess.run(["rm", "-rf", path], check=False)


# ----------------------------------------------------------------- registry


def registry_scale(broker, n):
    base = os.path.join(WORK, f"registry-{n}")
    logs, state = os.path.join(base, "logs"), os.path.join(base, "state")
    os.makedirs(logs)
    topic = f"scale-registry-{n}"
    create_topic(broker, topic, 1)
    say(f"-- sender registry of {n:,} entries: writing {n:,} one-line files")
    for i in range(n):
        with open(os.path.join(logs, f"r{i:06d}.log"), "w") as f:
            f.write(line_of(i, 0, pad=8))
    conn = Kafka(broker)
    args = ["--log-format", "json", "send", "--broker", broker, "--topic", topic,
            "--path", os.path.join(logs, "*.log"), "--state-dir", state, "--metrics", "127.0.0.1:0"]
    log = os.path.join(base, "send.log")
    started = time.monotonic()
    sender = Proc(args, log)
    progress, landed = [], 0
    next_sample = started + 10
    while time.monotonic() - started < REGISTRY_BUDGET and sender.alive():
        landed = conn.end_offsets(topic, 1)[0] or 0
        if landed >= n:
            break
        if time.monotonic() >= next_sample:
            next_sample += 10
            progress.append((round(time.monotonic() - started), landed))
            say(f"   {time.monotonic() - started:5.0f} s: {landed:,} files sent")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    landed = conn.end_offsets(topic, 1)[0] or 0
    progress.append((round(elapsed), landed))
    row = {"n": n, "budget_s": REGISTRY_BUDGET, "first_run_s": round(elapsed, 1), "first_run_files_sent": landed,
           "first_run_progress": progress, "first_run_peak_rss_mib": round((sender.hwm() or 0) / MIB, 1),
           "emfile_warnings": count_in_log(log, "Too many open files"),
           "first_run_fds": sender.fds(), "first_run_died": not sender.alive()}
    if not sender.alive():
        lines = open(log, errors="replace").read().splitlines()
        fatal = [l for l in lines if "stopping the sender" in l] or [l for l in lines if l.startswith("relay send:")]
        try:
            row["first_run_error"] = json.loads(fatal[0]).get("error", fatal[0])[:300] if fatal else tail(log, 1)[:300]
        except ValueError:
            row["first_run_error"] = fatal[0][:300]
        say(f"   the sender EXITED after {elapsed_s(started):.1f} s: {row['first_run_error']}")
    # Files sent per second in each 10 s window: falls as the registry grows when
    # each new file costs a save of the whole registry.
    rates = []
    for (t0, c0), (t1, c1) in zip([(0, 0)] + progress[:-1], progress):
        if t1 > t0:
            rates.append((t1, round((c1 - c0) / (t1 - t0), 1)))
    row["first_run_rate_files_s"] = rates
    row["first_run_stop_s"] = round(sender.terminate(timeout=300), 1)
    registry = os.path.join(state, "registry")
    real_entries = count_lines(registry) - 1
    row["registry_entries_real"] = real_entries
    say(f"   first run: {landed:,} of {n:,} files sent in {elapsed:.0f} s; registry saved with {real_entries:,} entries;"
        f" files/s per 10 s window: {[r for _, r in rates]}")
    synthetic = real_entries < n
    if synthetic:
        extend_registry(registry, n, logs)
        say(f"   the first run did not reach {n:,} files: the registry is extended to {n:,} entries in the sender's own"
            f" format (copies of its real entries with unused inode numbers) -- SYNTHETIC")
    row["registry_synthetic"] = synthetic
    row["registry_bytes"] = os.path.getsize(registry)
    say("   deleting the files")
    remove_tree(logs)
    os.makedirs(logs)
    with open(os.path.join(logs, "probe.log"), "w") as f:
        f.write(line_of(-1, 0))
    expected = conn.end_offsets(topic, 1)[0]
    started = time.monotonic()
    sender = Proc(args, os.path.join(base, "send-restart.log"))
    metrics_up = time.monotonic() - started
    restart, _ = wait_end_offset(conn, topic, expected + 1, timeout=600, started=started)
    row["restart_metrics_up_s"] = round(metrics_up, 3)
    row["restart_to_new_line_s"] = round(restart, 3) if restart is not None else None
    row["restart_rss_mib"] = round((sender.rss() or 0) / MIB, 1)
    row["restart_peak_rss_mib"] = round((sender.hwm() or 0) / MIB, 1)
    row["restart_idle_cpu_pct"], _ = cpu_percent(sender, 5)
    row["restart_forgotten"] = count_in_log(os.path.join(base, "send-restart.log"), "is gone; forgetting it")
    sender.terminate(timeout=300)
    row["registry_entries_after"] = count_lines(registry) - 1
    conn.close()
    say(f"   restart on {n:,} entries{' (synthetic)' if synthetic else ''}: start line {metrics_up:.3f} s, a new file's"
        f" line landed {row['restart_to_new_line_s']} s after spawn; RSS {row['restart_rss_mib']} MiB"
        f" (peak {row['restart_peak_rss_mib']}); entries forgotten {row['restart_forgotten']:,}")
    emit("sender_registry", row)
    remove_tree(base)


def extend_registry(path, n, logs):
    with open(path) as f:
        lines = f.read().splitlines()
    header, entries = lines[0], lines[1:]
    if not entries:
        raise RuntimeError("the sender saved no entries to copy")
    out = [header] + entries
    i = 0
    while len(out) - 1 < n:
        fields = entries[i % len(entries)].split(" ", 7)
        fields[1] = str(10**12 + i)  # an inode no file has
        fields[5] = "%032x" % (0x5CA1E << 100 | i)  # a file id of its own
        fields[7] = os.path.join(logs, f"synthetic{i:06d}.log")
        out.append(" ".join(fields))
        i += 1
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ------------------------------------------------------------------- broker


def file_sizes(data_dir, suffixes):
    apparent = real = count = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            if name.endswith(suffixes):
                st = os.stat(os.path.join(root, name))
                apparent += st.st_size
                real += st.st_blocks * 512
                count += 1
    return count, apparent, real


def du(path, apparent):
    """Bytes as du reports them: --apparent-size (file lengths) or allocated blocks."""
    args = ["du", "-s", "--block-size=1"] + (["--apparent-size"] if apparent else []) + [path]
    try:
        return int(subprocess.run(args, capture_output=True, text=True).stdout.split()[0])
    except (IndexError, ValueError):
        return None


def broker_scale(n, nofile):
    base = os.path.join(WORK, f"broker-{n}")
    os.makedirs(base)
    topic = "scale"
    row = {"n": n, "layout": f"1 topic x {n} partitions", "nofile_limit": nofile}
    say(f"-- broker, N = {n:,} partitions")
    broker = start_broker(base)
    address = broker.address()
    started = time.monotonic()
    code, seconds, output = create_topic(address, topic, n)
    if code != 0 and "timed out" in output and broker.alive():
        # The CLI's request timeout (30 s) ran out; the broker goes on creating.
        row["cli_timed_out_s"] = round(seconds, 3)
        say(f"   `relay topics create` gave up after {seconds:.1f} s ({output.splitlines()[-1][:120]});"
            f" waiting for the broker to finish creating")
        while time.monotonic() - started < 1800 and broker.alive():
            try:
                conn = Kafka(address, timeout=600)
                topics, _ = conn.metadata()
                conn.close()
            except (OSError, ConnectionError, struct.error):
                topics = {}
            if topics.get(topic) == n:
                code = 0
                break
            refused = [l for l in open(os.path.join(base, "broker.log"), errors="replace") if "create topic refused" in l]
            if refused:
                output = "broker: " + refused[-1].split("error=", 1)[-1].strip()
                break
            time.sleep(0.2)
        seconds = time.monotonic() - started
    row["create_s"] = round(seconds, 3)
    row["fds_after_create"] = broker.fds()
    if code != 0:
        row["error"] = output.splitlines()[-1] if output else f"exit {code}"
        row["broker_alive"] = broker.alive()
        row["broker_log_tail"] = tail(os.path.join(base, "broker.log"), 2)[-400:]
        say(f"   topics create failed after {seconds:.1f} s: {row['error']}")
        say(f"   broker log: {row['broker_log_tail']}")
        broker.kill9()
        emit("broker", row)
        remove_tree(base)
        return False
    say(f"   created in {seconds:.2f} s; {row['fds_after_create']:,} fds")
    # Two records to every partition: relay produce sends records without a key round robin.
    lines_file = os.path.join(base, "records.jsonl")
    with open(lines_file, "w") as f:
        for i in range(2 * n):
            f.write(line_of(i, 0))
    code, seconds, output = relay_cli(["produce", "--broker", address, "--topic", topic, lines_file], timeout=1800)
    row["produce_2n_records_s"] = round(seconds, 3)
    conn = Kafka(address)
    offsets = conn.end_offsets(topic, n)
    conn.close()
    row["partitions_with_data"] = sum(1 for o in offsets if o and o > 0)
    row["records"] = sum(o for o in offsets if o)
    say(f"   {row['records']:,} records written in {seconds:.2f} s; {row['partitions_with_data']:,} partitions hold data")
    row["rss_before_kill_mib"] = round((broker.rss() or 0) / MIB, 1)

    # kill -9 and restart on the same address.
    broker.kill9()
    started = time.monotonic()
    broker = start_broker(base, address, "broker-restart.log", wait_line=False)
    accepted, serving = wait_serving(address, topic, n, started)
    row["restart_accept_s"] = round(accepted, 3) if accepted is not None else None
    row["restart_serving_s"] = round(serving, 3) if serving is not None else None
    conn = Kafka(address)
    t0 = time.monotonic()
    offsets = conn.end_offsets(topic, n)
    row["restart_offsets_s"] = round(serving + time.monotonic() - t0, 3) if serving is not None else None
    row["records_after_restart"] = sum(o for o in offsets if o)
    row["rss_after_start_mib"] = round((broker.rss() or 0) / MIB, 1)
    row["recovered_partitions_logged"] = count_in_log(os.path.join(base, "broker-restart.log"), "recovered partition")
    say(f"   kill -9 -> restart: accepting {row['restart_accept_s']} s, serving (Metadata lists all {n:,} partitions)"
        f" {row['restart_serving_s']} s, all end offsets {row['restart_offsets_s']} s"
        f" ({row['records_after_restart']:,} records); RSS {row['rss_after_start_mib']} MiB")

    # Idle: no client requests.
    conn.close()
    time.sleep(1.0)
    row["idle_cpu_pct"], row["idle_cpu_ticks"] = cpu_percent(broker, IDLE_SECONDS)
    row["idle_seconds"] = IDLE_SECONDS
    row["idle_rss_mib"] = round((broker.rss() or 0) / MIB, 1)
    row["fds"] = broker.fds()
    data_dir = os.path.join(base, "data")
    count, apparent, real = file_sizes(data_dir, (".index", ".timeindex"))
    row["index_files"] = count
    row["index_apparent_mib"] = round(apparent / MIB, 1)
    row["index_real_mib"] = round(real / MIB, 1)
    row["data_dir_apparent_mib"] = round((du(data_dir, True) or 0) / MIB, 1)
    row["data_dir_real_mib"] = round((du(data_dir, False) or 0) / MIB, 1)
    say(f"   idle: CPU {row['idle_cpu_pct']} % over {IDLE_SECONDS:.0f} s ({row['idle_cpu_ticks']} ticks), RSS"
        f" {row['idle_rss_mib']} MiB, {row['fds']:,} fds; {count:,} index files: {row['index_apparent_mib']:,} MiB"
        f" apparent, {row['index_real_mib']:,} MiB on disk (data dir {row['data_dir_apparent_mib']:,} apparent /"
        f" {row['data_dir_real_mib']:,} MiB real)")

    # Latencies on one connection: Metadata (all topics) and ListOffsets (every partition).
    conn = Kafka(address)
    _, size = conn.metadata()
    row["metadata_ms"] = round(median_latency(conn.metadata), 3)
    row["metadata_response_bytes"] = size
    row["list_offsets_ms"] = round(median_latency(lambda: conn.end_offsets(topic, n)), 3)
    conn.close()
    # The CLI's view, as an operator sees it (process start + connection + describe).
    code, seconds, _ = relay_cli(["topics", "describe", topic, "--broker", address])
    row["cli_topics_describe_s"] = round(seconds, 3) if code == 0 else None
    say(f"   Metadata (all topics) median {row['metadata_ms']} ms ({size:,} B); ListOffsets ({n:,} partitions) median"
        f" {row['list_offsets_ms']} ms; `relay topics describe` {row['cli_topics_describe_s']} s")

    # Clean stop and restart, for comparison with kill -9.
    row["clean_stop_s"] = round(broker.terminate(timeout=600), 3)
    started = time.monotonic()
    broker = start_broker(base, address, "broker-clean-restart.log", wait_line=False)
    _, serving = wait_serving(address, topic, n, started)
    row["clean_restart_serving_s"] = round(serving, 3) if serving is not None else None
    say(f"   SIGTERM stop {row['clean_stop_s']} s; restart after a clean stop serving {row['clean_restart_serving_s']} s")
    # kill -9 with nothing written since the clean stop: every segment is as
    # that stop's recovery checkpoint verified it, so none is rescanned.
    broker.kill9()
    started = time.monotonic()
    broker = start_broker(base, address, "broker-verified-restart.log", wait_line=False)
    _, serving = wait_serving(address, topic, n, started)
    row["verified_restart_serving_s"] = round(serving, 3) if serving is not None else None
    row["verified_restart_recovered_logged"] = count_in_log(
        os.path.join(base, "broker-verified-restart.log"), "recovered partition")
    broker.terminate(timeout=600)
    say(f"   kill -9 after the clean restart (nothing written since the clean stop) -> serving"
        f" {row['verified_restart_serving_s']} s; partitions rescanned {row['verified_restart_recovered_logged']:,}")
    emit("broker", row)
    remove_tree(base)
    return True


# ------------------------------------------------------------------- loader


def loader_scale(p, records):
    base = os.path.join(WORK, f"loader-{p}")
    os.makedirs(base)
    topic = "scale-load"
    say(f"-- loader, one group over {p:,} partitions, {records:,} records")
    # The loader is alone in its group: Kafka's 3 s initial rebalance delay
    # would only be counted as "join".
    broker_config = os.path.join(base, "broker.toml")
    with open(broker_config, "w") as f:
        f.write("[broker]\ngroup_initial_rebalance_delay_ms = 0\n")
    broker = start_broker(base, config=broker_config)
    address = broker.address()
    code, _, output = create_topic(address, topic, p)
    if code != 0:
        say(f"   topics create failed: {output}")
        broker.kill9()
        return
    lines_file = os.path.join(base, "records.jsonl")
    with open(lines_file, "w") as f:
        for i in range(records):
            f.write('{"id":%d,"player_id":"p%d","type":"bench","amount":%d,"pad":"%s"}\n'
                    % (i, i % 977, i, "y" * 40))
    relay_cli(["produce", "--broker", address, "--topic", topic, lines_file], timeout=1800)
    db = os.path.join(base, "warehouse.db")
    log = os.path.join(base, "load.log")
    started = time.monotonic()
    loader = Proc(["--log-format", "json", "load", "--broker", address, "--topic", topic, "--group", "scale",
                   "--warehouse", f"sqlite://{db}", "--table", "events", "--format", "json", "--from", "earliest",
                   "--until-end"], log, wait_line=False)
    joined = resumed = None
    peak = 0
    while loader.alive() and time.monotonic() - started < 1800:
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        if joined is None and '"joined group"' in text:
            joined = time.monotonic() - started
        if resumed is None and "resuming assigned partitions" in text:
            resumed = time.monotonic() - started
        peak = max(peak, loader.hwm() or 0)
        time.sleep(0.01 if resumed is None else 0.1)
    loader.popen.wait()
    done = time.monotonic() - started
    rows = None
    try:
        with sqlite3.connect(db) as c:
            rows = c.execute("select count(*) from events").fetchone()[0]
    except sqlite3.Error as error:
        say(f"   cannot count rows: {error}")
    row = {"partitions": p, "n": p, "records": records, "rows": rows, "exit_code": loader.popen.returncode,
           "joined_s": round(joined, 3) if joined else None, "resumed_s": round(resumed, 3) if resumed else None,
           "total_s": round(done, 3), "peak_rss_mib": round(peak / MIB, 1)}
    if rows and resumed:
        row["rows_per_s"] = round(rows / (done - resumed))
    say(f"   joined the group {row['joined_s']} s after spawn, partitions resumed {row['resumed_s']} s; {rows} rows in"
        f" {done:.2f} s -> {row.get('rows_per_s')} rows/s after the assignment; peak RSS {row['peak_rss_mib']} MiB")
    broker.terminate()
    emit("loader", row)
    remove_tree(base)


# ------------------------------------------------------------------- report


def fmt(value, suffix=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") + suffix
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return f"{value}{suffix}"


def table(headers, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    say("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    say("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        say("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def growth(rows, key, nkey="n"):
    """Exponent k of cost ~ N^k between consecutive points (1 = linear)."""
    import math
    out = []
    points = [(r[nkey], r.get(key)) for r in rows if r.get(key)]
    for (n0, v0), (n1, v1) in zip(points, points[1:]):
        if v0 and v1 and n1 > n0 and v0 > 0:
            out.append(f"{n0:,}->{n1:,}: x{v1 / v0:,.1f} for x{n1 / n0:,.0f} N (k={math.log(v1 / v0) / math.log(n1 / n0):.2f})")
    return "; ".join(out) or "-"


def short_error(text):
    if "Too many open files" in text:
        return "FAILED: EMFILE (open files limit)"
    if "timed out" in text:
        return "FAILED: timed out"
    return "FAILED: " + text[:40]


def verdict(ok):
    return "met" if ok else "MISSED"


def report():
    say()
    say("==================== summary ====================")
    senders = [r for c, r in RESULTS if c == "sender"]
    if senders:
        say()
        say("Sender (relay send): N files matching dir/*.log, one line each at start; open_files_max 256 (default)")
        table(["N files", "start-up s", "first line s", "peak RSS MiB", "idle CPU %", "grow CPU %",
               "behind at grow end", "(re)opens in grow", "new file s", "restart s", "idle CPU after restart %", "registry"],
              [[fmt(r["n"]), fmt(r["startup_s"]) if r["startup_s"] is not None else f"> {r['startup_progress'][-1][0] if r['startup_progress'] else '?'} ({fmt(r['startup_landed'])} sent)",
                fmt(r["first_line_s"]), fmt(r["peak_rss_mib"]), fmt(r["idle_cpu_pct"]), fmt(r["grow_cpu_pct"]),
                fmt(r["behind_at_grow_end_lines"]), fmt(r["opens_during_grow"]), fmt(r["new_file_landed_s"]),
                fmt(r["restart_to_new_line_s"]), fmt(r["restart_idle_cpu_pct"]), fmt(r["registry_entries"])] for r in senders])
        say(f"  growth of start-up time: {growth(senders, 'startup_s')}")
        say(f"  growth of idle CPU:      {growth(senders, 'idle_cpu_pct')}")
        say(f"  growth of idle CPU after restart (no file open, discovery only): {growth(senders, 'restart_idle_cpu_pct')}")
        say(f"  growth of peak RSS:      {growth(senders, 'peak_rss_mib')}")
        at = [r for r in senders if r["n"] == SENDER_TARGET_N]
        if at:
            r = at[0]
            say(f"  targets at {SENDER_TARGET_N:,} files: start < {SENDER_START_TARGET_S:g} s: {fmt(r['startup_s'])}"
                f" -> {verdict(r['startup_s'] is not None and r['startup_s'] < SENDER_START_TARGET_S)};"
                f" RSS < {SENDER_RSS_TARGET_MIB} MiB: {fmt(r['peak_rss_mib'])} -> {verdict(r['peak_rss_mib'] < SENDER_RSS_TARGET_MIB)};"
                f" idle CPU ~0 (<= {IDLE_CPU_TARGET_PCT:g} %): {fmt(r['idle_cpu_pct'])} ->"
                f" {verdict(r['idle_cpu_pct'] is not None and r['idle_cpu_pct'] <= IDLE_CPU_TARGET_PCT)}")
        else:
            say(f"  targets (at {SENDER_TARGET_N:,} files): start < 1 s, RSS < 128 MiB, idle CPU ~0 -- N not measured")
    regs = [r for c, r in RESULTS if c == "sender_registry"]
    for r in regs:
        say()
        say(f"Sender registry of {r['n']:,} entries{' (SYNTHETIC extension of a real registry)' if r['registry_synthetic'] else ''}:")
        if r.get("first_run_error"):
            say(f"  first run: the sender exited: {r['first_run_error']}")
        table(["first run files sent", "in s", "files/s per 10 s window", "restart -> new line s", "RSS MiB", "peak RSS MiB", "registry bytes"],
              [[fmt(r["first_run_files_sent"]), fmt(r["first_run_s"]), " ".join(str(x) for _, x in r["first_run_rate_files_s"]),
                fmt(r["restart_to_new_line_s"]), fmt(r["restart_rss_mib"]), fmt(r["restart_peak_rss_mib"]), fmt(r["registry_bytes"])]])
    brokers = [r for c, r in RESULTS if c == "broker"]
    if brokers:
        say()
        say("Broker: 1 topic of N partitions, 2 records each, kill -9, restart (fsync always)")
        table(["N partitions", "create s", "serving s", "offsets s", "RSS MiB", "idle CPU %", "idle ticks", "fds",
               "index apparent MiB", "index real MiB", "Metadata ms", "ListOffsets ms", "clean stop s", "clean restart s",
               "kill -9 after clean restart s"],
              [[fmt(r["n"]), fmt(r.get("create_s")), fmt(r.get("restart_serving_s")) if "error" not in r else short_error(r["error"]),
                fmt(r.get("restart_offsets_s")), fmt(r.get("rss_after_start_mib")), fmt(r.get("idle_cpu_pct")),
                fmt(r.get("idle_cpu_ticks")), fmt(r.get("fds")), fmt(r.get("index_apparent_mib")), fmt(r.get("index_real_mib")),
                fmt(r.get("metadata_ms")), fmt(r.get("list_offsets_ms")), fmt(r.get("clean_stop_s")),
                fmt(r.get("clean_restart_serving_s")), fmt(r.get("verified_restart_serving_s"))] for r in brokers])
        ok = [r for r in brokers if "error" not in r]
        say(f"  growth of serving time: {growth(ok, 'restart_serving_s')}")
        say(f"  growth of RSS:          {growth(ok, 'rss_after_start_mib')}")
        say(f"  growth of Metadata:     {growth(ok, 'metadata_ms')}")
        say(f"  growth of ListOffsets:  {growth(ok, 'list_offsets_ms')}")
        at = [r for r in brokers if r["n"] == BROKER_TARGET_N]
        if at:
            r = at[0]
            if "error" in r:
                say(f"  targets at {BROKER_TARGET_N:,} partitions: NOT MEASURABLE here: {short_error(r['error'])}: {r['error'][-160:]}")
                largest = max(ok, key=lambda x: x["n"], default=None)
                if largest and largest.get("restart_serving_s"):
                    guess = largest["restart_serving_s"] * BROKER_TARGET_N / largest["n"]
                    say(f"  largest measured: {largest['n']:,} partitions served {largest['restart_serving_s']} s after"
                        f" kill -9; linear extrapolation to {BROKER_TARGET_N:,}: ~{guess:.1f} s (target < {BROKER_SERVE_TARGET_S:g} s:"
                        f" {verdict(guess < BROKER_SERVE_TARGET_S)}); idle CPU {fmt(largest.get('idle_cpu_pct'))} %")
            else:
                say(f"  targets at {BROKER_TARGET_N:,} partitions: serving < {BROKER_SERVE_TARGET_S:g} s after kill -9:"
                    f" {fmt(r['restart_serving_s'])} -> {verdict(r['restart_serving_s'] is not None and r['restart_serving_s'] < BROKER_SERVE_TARGET_S)};"
                    f" no per-partition cost idle: CPU {fmt(r['idle_cpu_pct'])} % ->"
                    f" {verdict(r['idle_cpu_pct'] is not None and r['idle_cpu_pct'] <= IDLE_CPU_TARGET_PCT)}")
    loaders = [r for c, r in RESULTS if c == "loader"]
    if loaders:
        say()
        say("Loader: one group, relay load --until-end into SQLite")
        table(["partitions", "records", "rows", "joined s", "resumed s", "total s", "rows/s", "peak RSS MiB"],
              [[fmt(r["partitions"]), fmt(r["records"]), fmt(r["rows"]), fmt(r["joined_s"]), fmt(r["resumed_s"]),
                fmt(r["total_s"]), fmt(r.get("rows_per_s")), fmt(r["peak_rss_mib"])] for r in loaders])


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    say(f"relay: {RELAY}; N: {NS}; components: {COMPONENTS}; open files limit {soft}/{hard};"
        f" {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    try:
        if "sender" in COMPONENTS or "registry" in COMPONENTS:
            base = os.path.join(WORK, "send-broker")
            os.makedirs(base)
            broker = start_broker(base)
            address = broker.address()
            say(f"== sender (broker for it at {address})")
            if "sender" in COMPONENTS:
                for n in NS:
                    sender_scale(address, n)
            if "registry" in COMPONENTS and REGISTRY_N > 0:
                registry_scale(address, REGISTRY_N)
            broker.terminate()
            remove_tree(base)
        if "broker" in COMPONENTS:
            say("== broker")
            # Each partition holds 3 descriptors (.log, .index, .timeindex).
            feasible = max(1, (soft - 200) // 3)
            for n in BROKER_NS:
                ok = broker_scale(n, soft)
                if not ok and n > feasible:
                    fallback = (feasible // 1000) * 1000 or feasible
                    say(f"   {n:,} partitions need about {3 * n:,} descriptors; the limit here is {soft:,}:"
                        f" measuring {fallback:,} partitions instead")
                    broker_scale(fallback, soft)
        if "loader" in COMPONENTS:
            say("== loader")
            for p in LOADER_PARTITIONS:
                loader_scale(p, LOADER_RECORDS)
        report()
    finally:
        kill_all()


if __name__ == "__main__":
    main()
