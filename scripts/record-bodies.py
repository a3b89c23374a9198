#!/usr/bin/env python3
"""A logging unix-socket proxy for recording the JSON request bodies real clients send.

    scripts/record-bodies.py LISTEN.sock UPSTREAM.sock OUT.jsonl

Point a client at LISTEN.sock (DOCKER_HOST=unix://LISTEN.sock) while a daemon serves
UPSTREAM.sock: every request with a JSON body is appended to OUT.jsonl as
{"method", "path", "user_agent", "body"}, and the bytes are relayed unchanged both ways.
Requests with a chunked body, and connections after an Upgrade, are relayed without parsing.
Used to record crates/api-types/tests/fixtures/.
"""
import json
import os
import socket
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def client_side(client, upstream, out, lock):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = client.recv(65536)
                if not data:
                    upstream.shutdown(socket.SHUT_WR)
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            upstream.sendall(head + b"\r\n\r\n")
            if "chunked" in headers.get("transfer-encoding", "") or "upgrade" in headers:
                upstream.sendall(buf)
                pipe(client, upstream)
                return
            n = int(headers.get("content-length", "0") or 0)
            while len(buf) < n:
                data = client.recv(65536)
                if not data:
                    break
                buf += data
            body, buf = buf[:n], buf[n:]
            upstream.sendall(body)
            if body and "json" in headers.get("content-type", ""):
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = body.decode("utf-8", "replace")
                rec = {"method": method, "path": path,
                       "user_agent": headers.get("user-agent", ""), "body": parsed}
                with lock:
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
    except OSError:
        pass


def main():
    listen, upstream_path, out_path = sys.argv[1:4]
    if os.path.exists(listen):
        os.unlink(listen)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(listen)
    srv.listen(64)
    out = open(out_path, "a")
    lock = threading.Lock()
    while True:
        client, _ = srv.accept()
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(upstream_path)
        threading.Thread(target=client_side, args=(client, upstream, out, lock), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
