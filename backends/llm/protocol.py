"""The contract between the agent and whatever generates text.

Two capabilities, two protocols. Every generator is a `Generator`: chat messages in, text out.
A model that can edit a document in place (the dLLM engine; not an OpenAI-compatible server)
is also an `Editor`: it fills or rewrites spans of a document and scores text, and the agent
asks `isinstance(generator, Editor)` before it relies on that.

It is shaped for a diffusion engine, not only for autoregressive decoding: every call reports
forward passes as well as tokens, because tokens per forward is the figure block-parallel
decoding improves, and the agent stores it with each run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict, runtime_checkable


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass
class GenerationStats:
    tokens: int = 0
    prompt_tokens: int = 0
    forward_passes: int = 0
    seconds: float = 0.0
    calls: int = 0
    trimmed_prompt_tokens: int = 0  # cut from prompts to fit the model's context

    @property
    def tokens_per_forward(self) -> float:
        return self.tokens / self.forward_passes if self.forward_passes else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def __add__(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(
            tokens=self.tokens + other.tokens,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            forward_passes=self.forward_passes + other.forward_passes,
            seconds=self.seconds + other.seconds,
            calls=self.calls + other.calls,
            trimmed_prompt_tokens=self.trimmed_prompt_tokens + other.trimmed_prompt_tokens,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "forward_passes": self.forward_passes,
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "tokens_per_forward": round(self.tokens_per_forward, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class Generation:
    text: str
    stats: GenerationStats


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    decoding: str
    device: str = "cpu"
    path: str = ""
    context_length: int = 2048


class Generator(Protocol):
    """Anything that turns chat messages into text and says what it cost."""

    @property
    def info(self) -> ModelInfo: ...

    def generate(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: threading.Event | None = None,
    ) -> Generation:
        """`stop`, once set, ends the call early with `RunStopped` (between forward passes for
        the engine, at the next chunk for a remote server)."""
        ...


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a document; `length` in tokens, or "auto" to let the
    engine choose (a generous budget whose unused tail the model fills with end tokens)."""

    start: int
    end: int
    length: int | Literal["auto"] = "auto"


@dataclass
class Edit:
    """The edited document, and the new text of each span in order: `text` is the document
    with every span replaced by its `replacements` entry, and nothing else changed."""

    text: str
    replacements: list[str]
    stats: GenerationStats


@dataclass
class Score:
    nll_per_token: float
    tokens: int
    stats: GenerationStats


@runtime_checkable
class Editor(Protocol):
    """A model that edits a document in place and scores text."""

    def infill(
        self, document: str, spans: Sequence[Span], *, stop: threading.Event | None = None
    ) -> Edit:
        """Fill each span of `document`; text outside the spans is returned unchanged."""
        ...

    def rewrite(
        self,
        document: str,
        span: Span,
        instruction: str,
        *,
        stop: threading.Event | None = None,
    ) -> Edit:
        """Re-denoise one span under an instruction; only that span changes."""
        ...

    def score(self, text: str, *, samples: int = 8, seed: int = 0) -> Score:
        """Negative log-likelihood per token (lower is likelier), to rank variants."""
        ...
