"""Any OpenAI-compatible server (SGLang, vLLM, llama.cpp's server, Ollama, a hosted API) as
the agent's `Generator`.

It can only generate: it is not an `Editor`, so the agent asks it in free text where it
would infill a form, and revises sections by prompt instead of in place (the run says so
once). It reports tokens from the server's `usage`; forward passes are not something such a
server tells, so they stay 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from backends.llm.protocol import ChatMessage, Generation, GenerationStats, ModelInfo
from backends.llm.remote.client import RemoteClient

DEFAULT_CONTEXT = 4096  # when the server does not say (vLLM's max_model_len is read if given)


class OpenAIChatModel:
    def __init__(self, client: RemoteClient, model: str | None = None) -> None:
        self.client = client
        card = client.get("/v1/models", lambda answer: _card(answer, model))
        self.model = model or str(card["id"])
        self._info = ModelInfo(
            name=self.model,
            family="remote",
            decoding="OpenAI-compatible server: generation only",
            device=client.endpoint.root,
            path=client.endpoint.root,
            context_length=int(card.get("max_model_len") or DEFAULT_CONTEXT),
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def generate(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: threading.Event | None = None,
    ) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed
        started = time.perf_counter()
        text, usage = self.client.post("/v1/chat/completions", body, _reply, stop=stop)
        stats = GenerationStats(
            tokens=int(usage.get("completion_tokens", 0)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            seconds=time.perf_counter() - started,
            calls=1,
        )
        return Generation(text=text, stats=stats)


def _card(answer: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The named model's entry in /v1/models, else the first; a server that lists none
    still serves a named model (some hosted APIs hide the list)."""
    cards = answer.get("data") or []
    for card in cards:
        if model is None or card.get("id") == model:
            return card
    if model is not None:
        return {"id": model}
    raise KeyError("no model in /v1/models: set TTDR_REMOTE_MODEL")


def _reply(answer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = answer["choices"][0]["message"]["content"] or ""
    if not isinstance(text, str):
        raise TypeError("message content is not text")
    return text, answer.get("usage") or {}
