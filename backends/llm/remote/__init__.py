"""Models on another machine, behind the same `Generator` (and `Editor`) protocol the agent
uses for the engine in its own process.

    client.py          HTTP with timeouts, retries and one clear error
    ttdr_backend.py    a `ttdr serve`: generate, infill, rewrite, score
    openai_backend.py  any OpenAI-compatible server: generate only
"""

from __future__ import annotations

from typing import Literal

from backends.llm.protocol import Generator
from backends.llm.remote.client import RemoteClient, RemoteEndpoint, RemoteServerError

RemoteBackend = Literal["ttdr", "openai"]


def connect(
    backend: RemoteBackend, endpoint: RemoteEndpoint, model: str | None = None
) -> Generator:
    """The remote model, once its server has answered `/v1/models`."""
    from backends.llm.remote.openai_backend import OpenAIChatModel
    from backends.llm.remote.ttdr_backend import TtdrServerModel

    client = RemoteClient(endpoint)
    if backend == "ttdr":
        return TtdrServerModel(client)
    return OpenAIChatModel(client, model)


__all__ = ["RemoteBackend", "RemoteEndpoint", "RemoteServerError", "connect"]
