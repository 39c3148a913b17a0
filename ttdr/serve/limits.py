"""What `ttdr serve` refuses, before a request reaches the engine, and with which status.

    401  a bearer token is set and the request's is missing or wrong
    413  the body is longer than `max_body_bytes`
    429  `max_concurrent` requests are already admitted (running or queued for the engine)
    400  `max_tokens` (or a span's length) over the server's limit (checked by the routes)
    422  a body that is not the documented shape (FastAPI's validation, same error shape)

Every refusal has OpenAI's JSON error body. One ASGI middleware does the first three, in that
order, so a stranger learns nothing about the server's load and an oversized body is never
read past its limit.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from ttdr.serve.schemas import error_body

# Paths any client may read without using the engine: a readiness probe must not queue.
OPEN_PATHS = ("/health",)
LIGHT_PATHS = ("/health", "/v1/models")


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 1_048_576
    max_tokens: int = 2048
    max_concurrent: int = 8
    token: str | None = None  # never logged; compared in constant time

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_tokens", "max_concurrent"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        token = "set" if self.token else "none"
        return (
            f"ServeLimits(max_body_bytes={self.max_body_bytes}, max_tokens={self.max_tokens}, "
            f"max_concurrent={self.max_concurrent}, token={token})"
        )


class Guard:
    """ASGI middleware: token, admission, body size; counts admitted requests until their
    response is fully sent (a stream holds its slot until its last chunk)."""

    def __init__(self, app, limits: ServeLimits) -> None:
        self.app = app
        self.limits = limits
        self.admitted = 0  # one event loop: no lock needed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.limits.token and path not in OPEN_PATHS and not self._authorised(scope):
            await _refuse(send, 401, "missing or wrong bearer token", "authentication_error")
            return
        if path in LIGHT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.admitted >= self.limits.max_concurrent:
            await _refuse(
                send,
                429,
                f"the server is busy: {self.limits.max_concurrent} requests are already "
                "running or queued; retry later",
                "rate_limit_error",
                headers=[(b"retry-after", b"1")],
            )
            return
        self.admitted += 1
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await _refuse(
                    send,
                    413,
                    f"the request body is over this server's limit of "
                    f"{self.limits.max_body_bytes:,} bytes",
                    "invalid_request_error",
                )
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.admitted -= 1

    def _authorised(self, scope) -> bool:
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"").decode("latin-1")
        expected = f"Bearer {self.limits.token}"
        return hmac.compare_digest(given.encode(), expected.encode())

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None once it passes the limit (by its Content-Length or by
        what arrived): the limit is small, so buffering it is cheap."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @property
    def _limit(self) -> int:
        return self.limits.max_body_bytes


def _replay(body: bytes, receive):
    """The body once, then the client's own messages: a streaming response listens on them
    for the client going away."""
    sent = False

    async def replayed():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send, status: int, message: str, kind: str, headers=()) -> None:
    payload = json.dumps(error_body(message, kind, str(status))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
