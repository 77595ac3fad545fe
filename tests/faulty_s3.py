"""An S3 endpoint that fails the way networks and S3 do: a proxy in front of the embedded endpoint.

Each object GET under the landing prefix goes through a cycle of faults before it succeeds: ``503 SlowDown``,
``500 InternalError``, a connection reset before any answer, a body cut off halfway (``Content-Length``
announced, half the bytes sent, the connection closed), then a 2-second delay before the real answer.
LIST requests get one ``503`` out of every four. Everything else passes through unchanged.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

FAULTS = ("slow_down", "internal_error", "reset", "truncated_body", "delay", None)
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
INTERNAL = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"


class FaultyS3(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, *, prefix: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urlparse(upstream)
        self.prefix = prefix
        self.attempts: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FaultyS3:
        threading.Thread(target=self.serve_forever, daemon=True, name="faulty-s3").start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def fault_for(self, method: str, path: str, query: str) -> str | None:
        with self.lock:
            if method == "GET" and self.prefix in path and "list-type" not in query:
                attempt = self.attempts[path]
                self.attempts[path] += 1
                fault = FAULTS[attempt] if attempt < len(FAULTS) else None
            elif method == "GET" and "list-type" in query:
                self.attempts["LIST"] += 1
                fault = "slow_down" if self.attempts["LIST"] % 4 == 1 else None
            else:
                fault = None
            if fault:
                self.injected[fault] += 1
            return fault


class _Handler(BaseHTTPRequestHandler):
    server: FaultyS3
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass

    def _forward(self) -> None:
        parsed = urlparse(self.path)
        fault = self.server.fault_for(self.command, parsed.path, parsed.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        if fault in ("slow_down", "internal_error"):
            payload = SLOW_DOWN if fault == "slow_down" else INTERNAL
            self.send_response(503 if fault == "slow_down" else 500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if fault == "delay":
            time.sleep(2.0)
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncated_body":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815 - http.server's names
