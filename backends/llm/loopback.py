"""A free port on 127.0.0.1, for the benchmarks that start a server of their own (`ttdr serve`,
llama.cpp's `llama-server`) beside the process that measures it."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
