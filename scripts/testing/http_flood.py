#!/usr/bin/env python3
"""Opens N connections to a walship HTTP endpoint at once and sends a request on each: most ask
for a page (GET PATH), some are malformed (garbage, no target, an unknown method, a head larger
than the server reads, a bare request line), and SLOW of them send half a request and stall.
Waits until every connection is answered or closed, then prints a JSON summary:
{"connections", "answered": {status: count}, "closed_unanswered", "unfinished", "seconds"}.

usage: http_flood.py PORT N SLOW PATH [DEADLINE_SECONDS]
"""
import json
import resource
import selectors
import socket
import sys
import time

port, n, slow, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
deadline_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 100:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))

MALFORMED = [
    b"\x00\xff\xfe garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"BREW /pot HTCPCP/1.0\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
]
good = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

started = time.monotonic()
selector = selectors.DefaultSelector()
kinds = {}
for i in range(n):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    if i < slow:
        kind, payload = "slow", good[: len(good) // 2]
    elif i % 10 == 5:
        kind, payload = "malformed", MALFORMED[(i // 10) % len(MALFORMED)]
    else:
        kind, payload = "good", good
    sock.sendall(payload)
    sock.setblocking(False)
    kinds[sock] = kind
    selector.register(sock, selectors.EVENT_READ, bytearray())

answered, closed_unanswered, good_statuses = {}, 0, {}
open_count = n
deadline = started + deadline_seconds
while open_count and time.monotonic() < deadline:
    for key, _ in selector.select(timeout=1):
        sock, buffer = key.fileobj, key.data
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BlockingIOError):
            chunk = b""
        if chunk:
            buffer += chunk
            continue
        selector.unregister(sock)
        sock.close()
        open_count -= 1
        if buffer.startswith(b"HTTP/1.1 "):
            status = buffer[9:12].decode()
            answered[status] = answered.get(status, 0) + 1
            if kinds[sock] == "good":
                good_statuses[status] = good_statuses.get(status, 0) + 1
        else:
            closed_unanswered += 1

print(json.dumps({
    "connections": n,
    "good": sum(1 for k in kinds.values() if k == "good"),
    "good_answered": good_statuses,
    "answered": answered,
    "closed_unanswered": closed_unanswered,
    "unfinished": open_count,
    "seconds": round(time.monotonic() - started, 2),
}))
