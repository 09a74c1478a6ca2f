#!/usr/bin/env python3
"""Load generator for the ffmeasure servers.

  load.py seq  PORT N          N sequential requests (alternating /healthz, /metrics), one connection each
  load.py conc PORT N          N threads: connect, wait at a barrier, send GET, read the whole response, close
  load.py hold PORT N PID      open N connections, send GET /metrics on each, read every response while
                               keeping all N open, then print VmRSS/VmHWM of PID, then close them all
                               and read it again 2 s later
Every response is checked (status 200, Content-Length body fully read, expected size). Prints one JSON line.
"""
import json, socket, sys, threading, time

HOST = "127.0.0.1"

def expected(path):
    return 2 if path == "/healthz" else None  # /metrics: any length >= 4000

def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: ffmeasure\r\nAccept: */*\r\n\r\n".encode()

def read_response(sock, path):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise IOError("closed before head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    if length is None:
        raise IOError("no content-length")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise IOError("closed mid-body")
        body += chunk
    if status != 200:
        raise IOError(f"status {status}")
    want = expected(path)
    if (want is not None and len(body) != want) or (want is None and len(body) < 4000):
        raise IOError(f"body length {len(body)} for {path}")
    return len(body)

def one(port, path, timeout=30):
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(request_bytes(path))
        return read_response(s, path)
    finally:
        s.close()

def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out

def main():
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.time()
    ok, errors = 0, []
    if mode == "seq":
        for i in range(n):
            path = "/healthz" if i % 2 == 0 else "/metrics"
            try:
                one(port, path); ok += 1
            except Exception as e:
                errors.append(repr(e))
        print(json.dumps({"mode": mode, "n": n, "ok": ok, "errors": errors[:5], "secs": round(time.time() - t0, 2)}))
    elif mode == "conc":
        barrier = threading.Barrier(n)
        lock = threading.Lock()
        results = []
        def worker(i):
            path = "/healthz" if i % 2 == 0 else "/metrics"
            try:
                s = socket.create_connection((HOST, port), timeout=60)
            except Exception as e:
                barrier.wait(); results.append(repr(e)); return
            try:
                barrier.wait()  # all N connected before anyone sends
                s.sendall(request_bytes(path))
                read_response(s, path)
                with lock: results.append(None)
            except Exception as e:
                with lock: results.append(repr(e))
            finally:
                s.close()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads: t.start()
        for t in threads: t.join()
        ok = sum(1 for r in results if r is None)
        errors = [r for r in results if r is not None]
        print(json.dumps({"mode": mode, "n": n, "ok": ok, "errors": errors[:5], "secs": round(time.time() - t0, 2)}))
    elif mode == "hold":
        pid = int(sys.argv[4])
        socks = []
        for i in range(n):
            socks.append(socket.create_connection((HOST, port), timeout=60))
        connected = len(socks)
        during_connect = rss(pid)
        for s in socks:
            s.sendall(request_bytes("/metrics"))
        for s in socks:
            try:
                read_response(s, "/metrics"); ok += 1
            except Exception as e:
                errors.append(repr(e))
        time.sleep(0.5)
        held = rss(pid)  # all N still open on our side
        # how many of our connections the server still holds open (keep-alive) vs closed
        open_on_server = 0
        for s in socks:
            s.setblocking(False)
            try:
                data = s.recv(1)
                if data: open_on_server += 1  # unexpected extra bytes
            except BlockingIOError:
                open_on_server += 1
            except Exception:
                pass
        for s in socks: s.close()
        time.sleep(2)
        released = rss(pid)  # 2 s after we closed all N
        print(json.dumps({"mode": mode, "n": n, "connected": connected, "ok": ok, "errors": errors[:5],
                          "server_kept_open": open_on_server, "rss_after_connect": during_connect,
                          "rss_held": held, "rss_after_close": released, "secs": round(time.time() - t0, 2)}))
    else:
        sys.exit(__doc__)

if __name__ == "__main__":
    main()
