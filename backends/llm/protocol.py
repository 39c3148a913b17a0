"""The contract between the agent and whatever generates text.

It is shaped for a diffusion engine, not only for autoregressive decoding: every call reports
forward passes as well as tokens, because tokens per forward is the figure block-parallel
decoding improves, and the agent stores it with each run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict


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
    finish_reason: Literal["eos", "length", "repetition"] = "eos"


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
    ) -> Generation: ...
