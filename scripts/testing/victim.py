#!/usr/bin/env python3
"""An application process that commits one transaction and is killed inside COMMIT: run under
strace with a long delay injected at fsync/fdatasync, it prints 'committing' just before COMMIT,
then writes its frames and hangs in the WAL sync until the torture driver kills it.

usage: victim.py DB K
"""
import sqlite3
import sys

path, k = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None, timeout=10)
db.execute("PRAGMA synchronous=FULL")
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO items(name, data) VALUES ('victim', randomblob(7000))")
db.execute("UPDATE meta SET k = ?", (k,))
print("committing", flush=True)
db.execute("COMMIT")
print("committed", flush=True)
