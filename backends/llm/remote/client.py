"""HTTP to a model server: JSON in and out, timeouts, retries with backoff, one clear error.

A research run makes hundreds of calls over minutes; a server that restarts, sheds load
(429) or answers one request badly must not end the run, and a server that is gone must end
it with a message that names the URL, not a traceback. Retries are tenacity's (exponential
backoff with jitter); what is retried is decided here: connection errors, timeouts, 429, 5xx
and answers that are not the JSON the caller expects. Any other refusal (a wrong token, a
request over the server's limits) is final at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ttdr.errors import RemoteServerError, RunStopped

T = TypeVar("T")
STOP_POLL_S = 0.1  # how often a call in flight looks at the run's stop event


class _Retryable(Exception):
    """A failure that a later attempt may not meet; its text says what happened."""


@dataclass(frozen=True)
class RemoteEndpoint:
    """Where a model server is and how to talk to it. The key never appears in a repr."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    attempts: int = 4
    backoff_s: float = 0.5

    @property
    def root(self) -> str:
        """The address without a trailing `/v1`, so both spellings users know work."""
        root = self.base_url.rstrip("/")
        return root.removesuffix("/v1")


class RemoteClient:
    def __init__(self, endpoint: RemoteEndpoint) -> None:
        if not endpoint.base_url.startswith(("http://", "https://")):
            raise RemoteServerError(
                f"the model server's address {endpoint.base_url!r} is not an http(s) URL: set "
                "TTDR_BASE_URL to e.g. http://gpu-box:8000"
            )
        self.endpoint = endpoint
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        timeout = httpx.Timeout(endpoint.timeout_s, connect=min(10.0, endpoint.timeout_s))
        self._http = httpx.Client(base_url=endpoint.root, headers=headers, timeout=timeout)
        # Parallel search branches share one client; each waiting call holds one thread.
        self._waiters = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ttdr-remote")

    def get(self, path: str, parse: Callable[[Any], T]) -> T:
        return self._call("GET", path, None, parse, None)

    def post(
        self,
        path: str,
        body: dict[str, Any],
        parse: Callable[[Any], T],
        *,
        stop: threading.Event | None = None,
    ) -> T:
        """The parsed answer to `body`; `parse` raising KeyError, TypeError or ValueError
        counts as a malformed answer (retried). `stop`, once set, ends the call with
        `RunStopped`, also while it waits for an answer."""
        return self._call("POST", path, body, parse, stop)

    def close(self) -> None:
        self._waiters.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _send(self, method, path, body, stop) -> httpx.Response:
        """The request; with a `stop` event, one that hangs up within `STOP_POLL_S` of a stop.

        Hanging up is what tells the server (`ttdr serve` stops the call at its next forward
        pass): an abandoned blocking request would keep its connection, and the server its
        engine, until the answer came. A blocking socket read cannot be cut short from
        another thread, so the call runs on an asyncio loop of its own in a worker thread,
        where cancelling the request closes its connection.
        """
        if stop is None:
            return self._http.request(method, path, json=body)
        call = self._until_stopped(method, path, body, stop)
        return self._waiters.submit(asyncio.run, call).result()

    async def _until_stopped(self, method, path, body, stop: threading.Event) -> httpx.Response:
        http = httpx.AsyncClient(
            base_url=self.endpoint.root, headers=self._http.headers, timeout=self._http.timeout
        )
        async with http:
            request = asyncio.ensure_future(http.request(method, path, json=body))
            while not request.done():
                await asyncio.wait({request}, timeout=STOP_POLL_S)
                if not request.done() and stop.is_set():
                    request.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await request
                    raise RunStopped("the run was stopped")
            return request.result()

    def _call(self, method, path, body, parse, stop) -> Any:
        url = f"{self.endpoint.root}{path}"
        started = time.monotonic()
        backoff = self.endpoint.backoff_s
        retrying = Retrying(
            stop=stop_after_attempt(max(self.endpoint.attempts, 1)),
            # backoff, 2×backoff, 4×… (at most 16×), each plus up to one backoff of jitter so
            # runs sharing a server do not retry in step.
            wait=wait_exponential(multiplier=backoff, max=backoff * 16) + wait_random(0, backoff),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, body, parse, stop, url)
        except _Retryable as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            times = "once" if tries == 1 else f"{tries} times"
            raise RemoteServerError(
                f"the model server at {url} {exc} (tried {times} over "
                f"{time.monotonic() - started:.1f}s). Check that it is running and that "
                "TTDR_BASE_URL points at it."
            ) from None

    def _attempt(self, method, path, body, parse, stop, url) -> Any:
        if stop is not None and stop.is_set():
            raise RunStopped("the run was stopped")
        try:
            response = self._send(method, path, body, stop)
        except httpx.TimeoutException:
            raise _Retryable(f"did not answer within {self.endpoint.timeout_s:g}s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"could not be reached ({_why(exc)})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"answered HTTP {response.status_code}: {_message(response)}")
        if response.status_code in (401, 403):
            raise RemoteServerError(
                f"the model server at {url} refused the credentials (HTTP "
                f"{response.status_code}: {_message(response)}): set TTDR_API_KEY to its token"
            )
        if response.status_code >= 400:
            raise RemoteServerError(
                f"the model server at {url} refused the request (HTTP "
                f"{response.status_code}: {_message(response)})"
            )
        try:
            payload = response.json()
        except ValueError:
            raise _Retryable(
                f"answered something that is not JSON ({_short(response.text, 80)!r})"
            ) from None
        try:
            return parse(payload)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise _Retryable(
                f"answered JSON without what was asked for ({type(exc).__name__}: "
                f"{_short(str(exc), 120)})"
            ) from None


def _message(response: httpx.Response) -> str:
    """The server's own error message (OpenAI's shape), else the start of its body."""
    try:
        error = response.json().get("error")
        text = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        text = None
    return _short(str(text or response.text or response.reason_phrase))


def _why(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    return _short(str(exc) or type(exc).__name__)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
