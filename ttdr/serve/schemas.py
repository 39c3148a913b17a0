"""The wire format of `ttdr serve`: OpenAI's chat and completion shapes, and ttdr's own
infill, rewrite and score bodies.

Requests ignore fields they do not use (the official clients send `top_p`, `n`, `user`…), so
any OpenAI client can talk to the server; answers carry the engine's own figures in
`ttdr_stats` beside OpenAI's `usage`, which clients that do not know it skip.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Request):
    type: Literal["text"] = "text"
    text: str


class ChatMessageIn(_Request):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        """OpenAI allows content as a list of parts; the engine reads text only."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class _Sampling(_Request):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer clients' name for it
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int | None = None
    stream: bool = False

    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessageIn] = Field(min_length=1)


class CompletionRequest(_Sampling):
    prompt: str


class SpanIn(_Request):
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    length: int | Literal["auto"] = "auto"


class InfillRequest(_Request):
    document: str
    spans: list[SpanIn] = Field(min_length=1)


class RewriteRequest(_Request):
    document: str
    span: SpanIn
    instruction: str


class ScoreRequest(_Request):
    text: str = Field(min_length=1)
    samples: int = Field(8, ge=1, le=64)
    seed: int = 0


class Stats(BaseModel):
    """The engine's account of one call (`GenerationStats`), with its two rates. A batched
    request's forward passes and seconds are those of the call it shared with `batched - 1`
    others (so its tokens per forward count its own tokens only)."""

    tokens: int
    prompt_tokens: int
    forward_passes: int
    seconds: float
    calls: int
    trimmed_prompt_tokens: int = 0
    tokens_per_forward: float = 0.0
    tokens_per_second: float = 0.0
    batched: int = 1  # requests that shared this call's forward passes (1: it ran alone)

    @classmethod
    def of(cls, stats: Any, batched: int = 1) -> Stats:
        return cls(
            batched=batched,
            tokens=stats.tokens,
            prompt_tokens=stats.prompt_tokens,
            forward_passes=stats.forward_passes,
            seconds=stats.seconds,
            calls=stats.calls,
            trimmed_prompt_tokens=stats.trimmed_prompt_tokens,
            tokens_per_forward=round(stats.tokens_per_forward, 3),
            tokens_per_second=round(stats.tokens_per_second, 2),
        )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, stats: Any) -> Usage:
        return cls(
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.tokens,
            total_tokens=stats.prompt_tokens + stats.tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    ttdr_stats: Stats


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    ttdr_stats: Stats


class EditResponse(BaseModel):
    """`text` is the document with each span replaced by its `replacements` entry, in order."""

    text: str
    replacements: list[str]
    stats: Stats


class ScoreResponse(BaseModel):
    nll_per_token: float
    tokens: int
    stats: Stats


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ttdr"
    ttdr: dict[str, Any] = Field(description="The engine's ModelInfo and this server's limits.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, so an OpenAI client shows the server's own message."""
    return {"error": {"message": message, "type": kind, "code": code}}
