#!/usr/bin/env python3
"""An application writing to a ledger database from its own process, for walship's tests.

Each transaction k inserts ledger row k and sets counter.n = k in one commit (the invariant
LedgerDatabase checks). Runs until SIGTERM or --seconds, then prints the number of commits.

usage: ledger_writer.py DB [--interval-ms N] [--payload BYTES] [--seconds S] [--latency-file F]
"""
import argparse
import signal
import sqlite3
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("db")
parser.add_argument("--interval-ms", type=float, default=10)
parser.add_argument("--payload", type=int, default=200)
parser.add_argument("--seconds", type=float, default=3600)
parser.add_argument("--latency-file")
parser.add_argument("--times-file", help="write the wall-clock time after each commit")
args = parser.parse_args()

# Foundation's Process starts children with signals blocked; take SIGTERM back.
signal.pthread_sigmask(signal.SIG_SETMASK, [])
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
db = sqlite3.connect(args.db, timeout=10, isolation_level=None)
commits = 0
latencies = []
times = []
deadline = time.monotonic() + args.seconds
while not stop and time.monotonic() < deadline:
    started = time.monotonic()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO ledger(id, payload) SELECT n + 1, randomblob(?) FROM counter", (args.payload,))
    db.execute("UPDATE counter SET n = n + 1")
    db.execute("COMMIT")
    latencies.append(time.monotonic() - started)
    times.append(time.time())
    commits += 1
    if args.interval_ms > 0:
        time.sleep(args.interval_ms / 1000)
db.close()
if args.latency_file:
    with open(args.latency_file, "w") as f:
        f.write("\n".join(f"{x:.6f}" for x in latencies))
if args.times_file:
    with open(args.times_file, "w") as f:
        f.write("\n".join(f"{x:.6f}" for x in times))
print(commits, flush=True)
