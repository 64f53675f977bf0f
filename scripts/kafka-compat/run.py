#!/usr/bin/env python3
"""Runs librdkafka's integration tests against fresh `relay broker`s.

Called by scripts/kafka-compat.sh once the test runner is built. Reads the
checked-in list (tests.tsv), runs the selected rows one group at a time (one
test number, one scenario, one SUBTESTS filter) with a fresh broker on a free
127.0.0.1 port and a throwaway data dir, records passed / failed / timeout /
skipped and the tail of the output, and with --doc writes docs/compatibility.md
whole.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

TAIL_LINES_MAX = 40
BROKER_TAIL_LINES_MAX = 10
BROKER_START_S_MAX = 30
BROKER_STOP_S_MAX = 15
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\(B")
SUMMARY_ROW = re.compile(r"^\|\s*(\d{4}_\w+)\s*\|\s*([A-Z]+)\s*\|\s*([0-9.]+)s\s*\|\s*(.*)$")


@dataclass
class Row:
    test: str
    scenario: str
    subtests: str
    applies: bool
    ci: bool
    timeout_s: int
    reason: str
    status: str = "not run"
    seconds: float = 0.0
    note: str = ""
    retried: bool = False

    @property
    def number(self):
        return self.test[:4]

    @property
    def label(self):
        return f"{self.test} [{self.subtests}]" if self.subtests else self.test


@dataclass
class Group:
    number: str
    scenario: str
    subtests: str
    timeout_s: int
    rows: list = field(default_factory=list)

    @property
    def slug(self):
        sub = re.sub(r"\W+", "_", self.subtests).strip("_")
        return "_".join(p for p in (self.number, self.scenario, sub) if p)


def read_list(path, default_timeout_s):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if n == 1 or not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 7:
                sys.exit(f"{path}:{n}: expected 7 tab-separated columns, got {len(cols)}")
            test, scenario, subtests, applies, ci, timeout_s, reason = cols
            if applies not in ("yes", "no") or ci not in ("yes", "no"):
                sys.exit(f"{path}:{n}: applies and ci must be yes or no")
            if applies == "no" and not reason:
                sys.exit(f"{path}:{n}: a test that does not apply needs its reason")
            rows.append(Row(test, scenario or "default", subtests, applies == "yes",
                            ci == "yes", int(timeout_s or default_timeout_s), reason))
    return rows


def select(rows, mode, only):
    if only:
        # A test's applicable rows (its SUBTESTS rows when it applies only in
        # parts); a test that does not apply at all runs whole.
        chosen = []
        for token in only.split(","):
            matching = [r for r in rows if token in (r.number, r.test)]
            chosen += [r for r in matching if r.applies] or matching
        return chosen
    if mode == "ci":
        return [r for r in rows if r.ci]
    return [r for r in rows if r.applies]


def group_rows(rows):
    groups = {}
    for row in rows:
        key = (row.number, row.scenario, row.subtests)
        if key not in groups:
            groups[key] = Group(row.number, row.scenario, row.subtests, row.timeout_s)
        groups[key].rows.append(row)
        groups[key].timeout_s = max(groups[key].timeout_s, row.timeout_s)
    return list(groups.values())


class Broker:
    """One `relay broker` on a free port with its own data dir and log."""

    def __init__(self, relay, workdir, auto_create):
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "broker.log")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        config = os.path.join(workdir, "relay.toml")
        with open(config, "w") as f:
            f.write("[broker]\n"
                    'listen = "127.0.0.1:0"\n'
                    f'data_dir = "{os.path.join(workdir, "data")}"\n'
                    "default_partitions = 4\n"
                    f"auto_create_topics = {'true' if auto_create else 'false'}\n")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, RELAY_LOG_FORMAT="text")
        self.proc = subprocess.Popen([relay, "broker", "--config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_port()

    def _wait_port(self):
        deadline = time.monotonic() + BROKER_START_S_MAX
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"relay broker did not start; see {self.log_path}")

    def stop(self):
        """Stops the broker; returns a note when it crashed or logged ERROR."""
        crashed = self.proc.poll()
        if crashed is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(BROKER_STOP_S_MAX)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        notes = []
        if crashed is not None:
            notes.append(f"broker exited on its own (status {crashed}) during the test")
        with open(self.log_path, errors="replace") as f:
            errors = [ANSI.sub("", l).strip() for l in f if " ERROR " in ANSI.sub("", l)]
        if errors:
            notes.append(f"broker logged {len(errors)} ERROR line(s), first: {errors[0][:300]}")
        return "; ".join(notes)


def run_group(group, args, logdir, attempt=1):
    """Runs one group against a fresh broker; sets each row's status."""
    workdir = os.path.join(args.workdir, group.slug + ("" if attempt == 1 else f".{attempt}"))
    broker = Broker(args.relay, workdir, auto_create=group.scenario != "noautocreate")
    conf = os.path.join(workdir, "test.conf")
    with open(conf, "w") as f:
        f.write(f"metadata.broker.list=127.0.0.1:{broker.port}\n")
    env = dict(os.environ, RDKAFKA_TEST_CONF=conf, TEST_KAFKA_VERSION=args.kafka_version,
               TESTS=group.number, LD_LIBRARY_PATH=f"{args.runner_dir}/../src:"
                                                  f"{args.runner_dir}/../src-cpp")
    env.pop("CI", None)  # CI=1 makes librdkafka's runner run tests in parallel
    env.pop("SUBTESTS", None)
    if group.subtests:
        env["SUBTESTS"] = group.subtests
    cmd = ["./test-runner", "-L", "-p1", "-s", group.scenario] + (["-Q"] if args.quick else [])
    log_path = os.path.join(logdir, group.slug + ("" if attempt == 1 else f".{attempt}") + ".log")
    start = time.monotonic()
    timed_out = False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=args.runner_dir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(group.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - start
    broker_note = broker.stop()
    if proc.returncode is not None and proc.returncode < 0 and not timed_out:
        broker_note = "; ".join(filter(None, [
            f"the test runner died of signal {-proc.returncode}", broker_note]))
    with open(log_path, errors="replace") as f:
        output = [ANSI.sub("", l.rstrip("\n")) for l in f]
    rows = [m for m in map(SUMMARY_ROW.match, output) if m]
    results = {m.group(1): (m.group(2), float(m.group(3))) for m in rows}
    skip_reasons = {m.group(1): m.group(4).strip().rstrip("|").strip() for m in rows}
    ran_subtests = [l for l in output if "[ " in l and ": PASS (" in l]
    for row in group.rows:
        status, secs = results.get(row.test, (None, seconds))
        if status is None:  # a failure aborts the runner before its summary
            marks = (f'### Test "{row.test} (', f'### Test "{row.test}"')
            status = ("FAILED" if any(m in l for l in output for m in marks)
                      else "TIMEOUT" if timed_out else "NO RESULT")
        if status == "PASSED" and row.subtests and not ran_subtests:
            status = "NO SUBTEST"  # a filter matching nothing must not pass
        row.status = status.lower()
        row.seconds = secs if status != "TIMEOUT" else seconds
        row.note = broker_note
        if status == "SKIPPED":
            row.note = "; ".join(filter(None, [skip_reasons.get(row.test), broker_note]))
    if not args.keep:
        shutil.rmtree(os.path.join(workdir, "data"), ignore_errors=True)
    return output, seconds, log_path, os.path.join(workdir, "broker.log")


def retry_alone(groups, args, logdir):
    """Runs failed groups once more, one at a time: a test whose timing
    budget is tight may fail beside another group and pass alone. Both
    outcomes are kept in the row's note."""
    for group in groups:
        first = {id(r): (r.status, r.note) for r in group.rows}
        print(f"[kafka-compat] {group.slug}: again, alone", flush=True)
        print_group(group, *run_group(group, args, logdir, attempt=2))
        for row in group.rows:
            status, note = first[id(row)]
            row.note = "; ".join(filter(None, [
                f"{status} on the first run (beside another group), {row.status} when run again alone",
                note if row.status == "passed" else row.note]))
            row.retried = True


def failed(row):
    return row.status != "passed"


def print_group(group, output, seconds, log_path, broker_log):
    for row in group.rows:
        colour = "32" if not failed(row) else "31"
        print(f"\033[1;{colour}m[kafka-compat]\033[0m {row.label:55} {row.status:10} "
              f"{row.seconds:7.1f}s {row.note}", flush=True)
    if any(failed(r) for r in group.rows):
        print(f"  --- last {TAIL_LINES_MAX} lines of {log_path} (broker log: {broker_log}):")
        for line in output[-TAIL_LINES_MAX:]:
            print("  | " + line)
        print(f"  --- last {BROKER_TAIL_LINES_MAX} lines of {broker_log}:")
        with open(broker_log, errors="replace") as f:
            for line in f.readlines()[-BROKER_TAIL_LINES_MAX:]:
                print("  | " + ANSI.sub("", line.rstrip("\n")))
        sys.stdout.flush()


def write_results(path, rows):
    with open(path, "w") as f:
        f.write("test\tscenario\tsubtests\tstatus\tseconds\tnote\n")
        for r in rows:
            f.write(f"{r.test}\t{r.scenario}\t{r.subtests}\t{r.status}\t{r.seconds:.1f}\t{r.note}\n")


def read_results(path, rows):
    """Puts the statuses of an earlier run (write_results) back on the rows."""
    by_key = {(r.test, r.scenario, r.subtests): r for r in rows}
    with open(path) as f:
        for line in list(f)[1:]:
            test, scenario, subtests, status, seconds, note = line.rstrip("\n").split("\t")
            row = by_key.get((test, scenario, subtests))
            if row:
                row.status, row.seconds, row.note = status, float(seconds), note
                row.retried = "when run again alone" in note


def status_text(row):
    if not row.applies:
        return "not applicable"
    return {"passed": "passed", "failed": "**failed**", "timeout": "**timeout**",
            "skipped": "skipped by the test"}.get(row.status, f"**{row.status}**")


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu})"


def relay_version():
    """The commit the broker was built from, and whether its code differed."""
    commit = subprocess.run(["git", "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "broker",
                            "vendor", "src", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    return f"`{commit[:100]}`" + (" plus uncommitted changes to the broker" if dirty else "")


def write_doc(path, rows, args, wall_s, relay, date):
    applicable = [r for r in rows if r.applies]
    passed = [r for r in applicable if r.status == "passed"]
    retried = len([r for r in passed if r.retried])
    with open(args.header) as f:
        header = f.read()
    lines = [header.rstrip("\n"), "",
             "## Last measurement", "",
             f"- librdkafka {args.librdkafka_version} (Debian bookworm source package), "
             f"test runner built by `scripts/kafka-compat.sh`",
             f"- command: `bash scripts/kafka-compat.sh --all`"
             f"{' (quick mode)' if args.quick else ' (full mode, not quick)'}, "
             f"`TEST_KAFKA_VERSION={args.kafka_version}`",
             f"- Relay (debug build) at {relay}",
             f"- machine: {machine()}",
             f"- date: {date}; the applicable tests ran in {wall_s / 60:.1f} min",
             "",
             f"**{len(passed)} of {len(applicable)} applicable tests pass**"
             + (f" ({retried} of them only when run again alone)" if retried else "") + "; "
             f"{len(rows) - len(applicable)} of the {len(rows)} rows do not apply to Relay "
             "(a test that applies only in parts has one row per part, `[SUBTESTS filter]`; "
             "CI runs the rows marked CI).",
             "",
             "| test | scenario | status | seconds | CI | reason / note |",
             "|---|---|---|---:|---|---|"]
    for r in rows:
        note = r.reason if not r.applies else "; ".join(filter(None, [r.reason, r.note]))
        secs = f"{r.seconds:.1f}" if r.applies and r.status != "not run" else ""
        note = note.replace("|", "\\|")
        ci = "CI" if r.ci else ""
        lines.append(f"| {r.label} | {r.scenario} | {status_text(r)} | {secs} | {ci} | {note} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--list", required=True)
    p.add_argument("--runner-dir", required=True)
    p.add_argument("--relay", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--mode", choices=("ci", "all"), default="ci")
    p.add_argument("--only", help="comma-separated test numbers or names (their applicable rows, "
                                  "or the whole test when none applies)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per test group")
    p.add_argument("--kafka-version", required=True)
    p.add_argument("--librdkafka-version", default="?")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="test groups run side by side")
    p.add_argument("--retry", action="store_true", help="run failed groups once more, alone")
    p.add_argument("--redoc", action="store_true",
                   help="rewrite --doc from the last run's results (after editing the list)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--doc")
    p.add_argument("--header")
    args = p.parse_args()

    rows = read_list(args.list, args.timeout)
    results_path = os.path.join(args.workdir, f"results-{args.mode}.tsv")
    if args.redoc:  # the list's reasons edited: the last run's results, written again
        read_results(results_path, rows)
        with open(results_path + ".json") as f:
            meta = json.load(f)
        write_doc(args.doc, rows, args, meta["wall_s"], meta["relay"], meta["date"])
        print(f"kafka-compat: wrote {args.doc} from {results_path}")
        return 0
    chosen = select(rows, args.mode, args.only)
    groups = group_rows(chosen)
    logdir = os.path.join(args.workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    relay = relay_version()
    start = time.monotonic()
    # Groups are independent (one broker each) and mostly wait on timers, so
    # a few may run side by side; the longest start first.
    groups.sort(key=lambda g: -g.timeout_s)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        running = {pool.submit(run_group, g, args, logdir): g for g in groups}
        for done in concurrent.futures.as_completed(running):
            print_group(running[done], *done.result())
    if args.retry:
        retry_alone([g for g in groups if any(failed(r) for r in g.rows)], args, logdir)
    wall_s = time.monotonic() - start
    write_results(results_path, chosen)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(results_path + ".json", "w") as f:
        json.dump({"wall_s": wall_s, "relay": relay, "date": date}, f)
    bad = [r for r in chosen if failed(r)]
    print(f"kafka-compat: {len(chosen) - len(bad)} of {len(chosen)} passed in {wall_s:.0f} s"
          + (f"; not passed: {', '.join(r.label for r in bad)}" if bad else ""))
    if args.doc:
        write_doc(args.doc, rows, args, wall_s, relay, date)
        print(f"kafka-compat: wrote {args.doc}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
