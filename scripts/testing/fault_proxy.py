#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an S3-compatible server, for the torture test.

Each request is forwarded to the upstream with its headers unchanged (so SigV4 signatures made
for the proxy's address still verify). Request number n draws its fate from a generator seeded
with (seed, n), so a seed replays the same fault schedule by request count:

  slowdown   503 SlowDown without forwarding
  error      500 InternalError without forwarding
  lost       forward, then answer 500 (the request took effect, the client must not care)
  reset      forward, then send half of the response and reset the connection
  drop       read the request, then reset the connection without forwarding
  delay      forward after a delay of 0.2 to 1.5 s

Faults stop while the file named by --off exists. Counts go to --stats (JSON) after every
request. Prints the port it listens on to --port-file once it is ready.

Controls for deterministic tests:

  --control DIR   while DIR/hold exists, the first PUT whose path contains its text is read in
                  full and held: the proxy writes the path to DIR/held and waits until DIR/release
                  exists (then forwards it and writes the upstream status to DIR/landed) or
                  DIR/discard exists (then drops it). So a request can land after the client that
                  sent it was killed and restarted. While DIR/delete-keep exists, DeleteObjects
                  is answered 200 with every key reported deleted and nothing deleted (as R2 has
                  been seen to do); while DIR/delete-deny exists, with AccessDenied per key.
  --head-length-zero
                  answer HEAD with "Content-Length: 0", the length of its (empty) body, as a
                  proxy that recomputes the length of what it forwards does; clients must not
                  take a HEAD's length as proof of what an object holds.

usage: fault_proxy.py --upstream http://127.0.0.1:PORT --seed S --rate R --port-file F --stats F --off F
                      [--control DIR] [--head-length-zero]
"""
import argparse
import http.client
import http.server
import json
import os
import re
import random
import socket
import struct
import threading
import time
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("--upstream", required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--rate", type=float, default=0.15)
parser.add_argument("--port-file", required=True)
parser.add_argument("--stats", required=True)
parser.add_argument("--off", required=True)
parser.add_argument("--control")
parser.add_argument("--head-length-zero", action="store_true")
args = parser.parse_args()
upstream = urllib.parse.urlparse(args.upstream)

lock = threading.Lock()
counter = 0
stats = {"requests": 0, "slowdown": 0, "error": 0, "lost": 0, "reset": 0, "drop": 0, "delay": 0}
FATES = [("slowdown", 0.3), ("error", 0.15), ("lost", 0.15), ("reset", 0.15), ("drop", 0.1), ("delay", 0.15)]


def fate_of(number):
    if os.path.exists(args.off):
        return None
    generator = random.Random(args.seed * 1_000_003 + number)
    if generator.random() >= args.rate:
        return None
    pick = generator.random()
    for name, weight in FATES:
        if pick < weight:
            return name
        pick -= weight
    return None


def hold_if_asked(method, path):
    """Holds a matching PUT until the test releases or discards it: returns None for a request
    that was not held, "release" or "discard"."""
    if not args.control or method != "PUT":
        return None
    hold = os.path.join(args.control, "hold")
    with lock:
        try:
            with open(hold) as file:
                text = file.read().strip()
        except FileNotFoundError:
            return None
        if text not in path:
            return None
        os.remove(hold)
    with open(os.path.join(args.control, "held.tmp"), "w") as file:
        file.write(path)
    os.replace(os.path.join(args.control, "held.tmp"), os.path.join(args.control, "held"))
    while True:
        if os.path.exists(os.path.join(args.control, "release")):
            return "release"
        if os.path.exists(os.path.join(args.control, "discard")):
            return "discard"
        time.sleep(0.01)


def delete_answer(method, path, body):
    """While DIR/delete-keep exists, a DeleteObjects request is answered 200 with every key
    reported deleted and nothing forwarded (as R2 has been seen to do); while DIR/delete-deny
    exists, with an AccessDenied error per key. Otherwise None (forwarded as usual)."""
    if not args.control or method != "POST" or "delete" not in path.split("?", 1)[-1]:
        return None
    keep = os.path.exists(os.path.join(args.control, "delete-keep"))
    deny = os.path.exists(os.path.join(args.control, "delete-deny"))
    if not keep and not deny:
        return None
    keys = re.findall(rb"<Key>(.*?)</Key>", body)
    if keep:
        items = b"".join(b"<Deleted><Key>" + key + b"</Key></Deleted>" for key in keys)
    else:
        items = b"".join(b"<Error><Key>" + key + b"</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" for key in keys)
    return b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + items + b"</DeleteResult>"


def error_body(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *arguments):
        pass

    def reset(self):
        # SO_LINGER with a zero timeout makes close() send an RST.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def answer(self, status, headers, body, length=None):
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        global counter
        with lock:
            counter += 1
            number = counter
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fate = fate_of(number)
        with lock:
            stats["requests"] += 1
            if fate:
                stats[fate] += 1
            with open(args.stats + ".tmp", "w") as file:
                json.dump(stats, file)
            os.replace(args.stats + ".tmp", args.stats)
        if fate == "slowdown":
            return self.answer(503, [("Content-Type", "application/xml")], error_body("SlowDown", "Please reduce your request rate."))
        if fate == "error":
            return self.answer(500, [("Content-Type", "application/xml")], error_body("InternalError", "injected"))
        if fate == "drop":
            return self.reset()
        if fate == "delay":
            time.sleep(random.Random(number).uniform(0.2, 1.5))
        deletes = delete_answer(self.command, self.path, body)
        if deletes is not None:
            return self.answer(200, [("Content-Type", "application/xml")], deletes)
        held = hold_if_asked(self.command, self.path)
        if held == "discard":
            return self.reset()
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in ("expect", "connection")}
        connection.request(self.command, self.path, body=body if length else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        if held == "release":
            with open(os.path.join(args.control, "landed.tmp"), "w") as file:
                file.write(str(response.status))
            os.replace(os.path.join(args.control, "landed.tmp"), os.path.join(args.control, "landed"))
        if fate == "lost":
            return self.answer(500, [("Content-Type", "application/xml")], error_body("InternalError", "injected after"))
        if fate == "reset" and len(data) > 1:
            self.send_response_only(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.reset()
        if fate == "reset":
            return self.reset()
        if self.command == "HEAD":
            length = "0" if args.head_length_zero else response.getheader("Content-Length", "0")
            return self.answer(response.status, response.getheaders(), b"", length)
        self.answer(response.status, response.getheaders(), data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(args.port_file + ".tmp", "w") as file:
    file.write(str(server.server_address[1]))
os.replace(args.port_file + ".tmp", args.port_file)
server.serve_forever()
