#!/usr/bin/env python3
"""Creates a WAL-mode benchmark database of about SIZE_MB megabytes: rows of mixed text and
random blobs, like a typical application table with an index.

usage: bench/make-database.py PATH SIZE_MB
"""
import os
import sqlite3
import sys

path, size_mb = sys.argv[1], int(sys.argv[2])
if os.path.exists(path):
    os.remove(path)
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, note TEXT, data BLOB)")
db.execute("CREATE INDEX items_name ON items(name)")
rows_per_batch = 2000
while os.path.getsize(path) + os.path.getsize(path + "-wal") < size_mb * 1_000_000:
    with db:
        db.execute(
            f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows_per_batch})
                INSERT INTO items(name, note, data)
                SELECT hex(randomblob(8)), 'order ' || i || ' shipped to warehouse ' || (i % 17), randomblob(600)
                FROM n"""
        )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
