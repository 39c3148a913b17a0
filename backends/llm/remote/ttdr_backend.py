"""A `ttdr serve` elsewhere, as the agent's `Generator` and `Editor`: every call is the same
engine call made over HTTP, so infill and rewrite stay in place and a run gets the text it
would get with the model in its own process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from backends.llm.protocol import (
    ChatMessage,
    Edit,
    Generation,
    GenerationStats,
    ModelInfo,
    Score,
    Span,
)
from backends.llm.remote.client import RemoteClient


class TtdrServerModel:
    """Generator and Editor backed by a `ttdr serve` at `client`'s address."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client
        # Asked once at connection: a server that is down fails the run before any work.
        self._info = client.get("/v1/models", lambda answer: _model_info(answer, client))

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
        body = {
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        return self.client.post("/v1/chat/completions", body, _generation, stop=stop)

    def infill(
        self, document: str, spans: Sequence[Span], *, stop: threading.Event | None = None
    ) -> Edit:
        body = {"document": document, "spans": [_span(s) for s in spans]}
        return self.client.post("/v1/ttdr/infill", body, _edit, stop=stop)

    def rewrite(
        self,
        document: str,
        span: Span,
        instruction: str,
        *,
        stop: threading.Event | None = None,
    ) -> Edit:
        body = {"document": document, "span": _span(span), "instruction": instruction}
        return self.client.post("/v1/ttdr/rewrite", body, _edit, stop=stop)

    def score(self, text: str, *, samples: int = 8, seed: int = 0) -> Score:
        body = {"text": text, "samples": samples, "seed": seed}
        return self.client.post("/v1/ttdr/score", body, _score)


def _model_info(answer: dict[str, Any], client: RemoteClient) -> ModelInfo:
    facts = answer["data"][0]["ttdr"]
    return ModelInfo(
        name=str(facts["name"]),
        family=str(facts["family"]),
        decoding=str(facts["decoding"]),
        device=f"{facts['device']} at {client.endpoint.root}",
        path=client.endpoint.root,
        context_length=int(facts["context_length"]),
    )


def _span(span: Span) -> dict[str, Any]:
    return {"start": span.start, "end": span.end, "length": span.length}


def stats_of(body: dict[str, Any]) -> GenerationStats:
    return GenerationStats(
        tokens=int(body["tokens"]),
        prompt_tokens=int(body["prompt_tokens"]),
        forward_passes=int(body["forward_passes"]),
        seconds=float(body["seconds"]),
        calls=int(body["calls"]),
        trimmed_prompt_tokens=int(body.get("trimmed_prompt_tokens", 0)),
    )


def _generation(answer: dict[str, Any]) -> Generation:
    text = answer["choices"][0]["message"]["content"]
    if not isinstance(text, str):
        raise TypeError("message content is not text")
    return Generation(text=text, stats=stats_of(answer["ttdr_stats"]))


def _edit(answer: dict[str, Any]) -> Edit:
    replacements = [str(r) for r in answer["replacements"]]
    return Edit(
        text=str(answer["text"]), replacements=replacements, stats=stats_of(answer["stats"])
    )


def _score(answer: dict[str, Any]) -> Score:
    return Score(
        nll_per_token=float(answer["nll_per_token"]),
        tokens=int(answer["tokens"]),
        stats=stats_of(answer["stats"]),
    )
