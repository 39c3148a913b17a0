"""A small real HTTP server on 127.0.0.1 serving scripted pages: for the retrieval benchmark
(`ttdr bench retrieval`) and the tests, which exercise the fetcher against real sockets.

Each path maps to a `Route` (status, headers, body, delays) or to a function of how many times
the path was requested before (so "429, then 200" is one route). The server records every
request (path, Host header, User-Agent) and the most requests it had in flight at once, overall
and per Host.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0  # before answering
    chunk_size: int = 64 * 1024
    chunk_delay_s: float = 0.0  # between chunks of the body


@dataclass(frozen=True)
class SeenRequest:
    path: str
    host: str
    user_agent: str


RouteSpec = Route | Callable[[int], Route]
NOT_FOUND = Route(404, {"Content-Type": "text/plain"}, b"not found")


class LoopbackSite:
    """`with LoopbackSite(routes) as site:` → `site.url("/page")`; `site.hits("/page")`."""

    def __init__(
        self,
        routes: dict[str, RouteSpec] | None = None,
        *,
        latency_s: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.routes: dict[str, RouteSpec] = dict(routes or {})
        self.latency_s = latency_s
        self.ssl_context = ssl_context  # serve HTTPS with this (server-side) context
        self.requests: list[SeenRequest] = []
        self.max_in_flight = 0
        self.max_in_flight_per_host: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the site first"
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return self.url("")

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def start(self) -> LoopbackSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackSite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        host = handler.headers.get("Host", "")
        with self._lock:
            seen_before = sum(1 for request in self.requests if request.path == path)
            self.requests.append(SeenRequest(path, host, handler.headers.get("User-Agent", "")))
            self._in_flight[host] += 1
            self._in_flight["*"] += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight["*"])
            self.max_in_flight_per_host[host] = max(
                self.max_in_flight_per_host[host], self._in_flight[host]
            )
        try:
            spec = self.routes.get(path) or self.routes.get(path.split("?", 1)[0], NOT_FOUND)
            route = spec(seen_before) if callable(spec) else spec
            delay = self.latency_s + route.delay_s
            if delay:
                time.sleep(delay)
            handler.send_response(route.status)
            for name, value in route.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(route.body)))
            handler.end_headers()
            for start in range(0, len(route.body), route.chunk_size):
                handler.wfile.write(route.body[start : start + route.chunk_size])
                if route.chunk_delay_s:
                    handler.wfile.flush()
                    time.sleep(route.chunk_delay_s)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client stopped reading (a cut body, a timeout)
        finally:
            with self._lock:
                self._in_flight[host] -= 1
                self._in_flight["*"] -= 1


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (cut bodies, timeouts, idle keep-alive) are expected here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
