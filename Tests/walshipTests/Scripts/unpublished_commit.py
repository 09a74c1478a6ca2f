#!/usr/bin/env python3
"""Commits one ledger transaction whose WAL sync never returns (run under strace with a delay
injected at fdatasync/fsync), so the test can kill this process after its commit frame is
written but before SQLite publishes it in the wal-index. Prints 'written' once the frames are in
the -wal file.

usage: unpublished_commit.py DB PAYLOAD_BYTES
"""
import os
import sqlite3
import sys
import threading
import time

path, payload = sys.argv[1], int(sys.argv[2])
before = os.path.getsize(path + "-wal")


def report():
    while os.path.getsize(path + "-wal") <= before:
        time.sleep(0.01)
    time.sleep(0.2)
    print("written", flush=True)


threading.Thread(target=report, daemon=True).start()
db = sqlite3.connect(path, isolation_level=None, timeout=10)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO ledger(id, payload) SELECT n + 1, randomblob(?) FROM counter", (payload,))
db.execute("UPDATE counter SET n = n + 1")
db.execute("COMMIT")
print("committed", flush=True)
