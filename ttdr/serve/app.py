"""`ttdr serve`'s HTTP API: the engine behind OpenAI's routes, and ttdr's own.

    GET  /v1/models            the one model served, with its ModelInfo and the limits
    POST /v1/chat/completions  `engine.generate` (or `engine.stream` with "stream": true)
    POST /v1/completions       a raw prompt continued: `engine.infill` with one span at its end
    (with batching on, greedy ones of both share forward passes: batcher.py)
    POST /v1/ttdr/infill       `engine.infill`: a document and its masked spans
    POST /v1/ttdr/rewrite      `engine.rewrite`: a document, one span and an instruction
    POST /v1/ttdr/score        `engine.score`: negative log-likelihood per token

These are the calls the agents make in-process, so a run through the `ttdr` backend gets the
same text as one that loads the model itself. Streams are OpenAI's server-sent events
(`data: {chunk}` lines, then `data: [DONE]`), block-granular for chat.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from ttdr.api import Span
from ttdr.serve.batcher import Batcher
from ttdr.serve.limits import Guard, ServeLimits
from ttdr.serve.runner import ClientGone, EngineRunner
from ttdr.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EditResponse,
    InfillRequest,
    ModelCard,
    ModelList,
    RewriteRequest,
    ScoreRequest,
    ScoreResponse,
    SpanIn,
    Stats,
    Usage,
    error_body,
)

DEFAULT_TOKENS = 512  # a request that names no max_tokens gets this much (or the limit)


class RequestRefused(Exception):
    """A request the engine must not run (over a limit, spans that do not fit)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(engine: Any, limits: ServeLimits, *, max_batch: int | None = None) -> Guard:
    """The ASGI app serving `engine`, wrapped in the limits' guard; with `max_batch`, up to
    that many greedy generation requests that queue up together share one engine call."""
    runner = EngineRunner(engine, limits.max_concurrent)
    batcher = Batcher(engine, runner, max_batch) if max_batch else None
    info = engine.info
    app = FastAPI(title="ttdr serve", version="1", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc), "invalid_request_error", str(exc.status)), exc.status
        )

    @app.exception_handler(ClientGone)
    async def gone(_: Request, exc: ClientGone) -> JSONResponse:
        # Nobody reads it: 499 (nginx's "client closed request") only names it in the log.
        return JSONResponse(error_body("the client went away", "client_closed", "499"), 499)

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises it after this answer, so uvicorn logs the traceback; the client
        # gets one line (a 5xx, which it may retry).
        message = f"the engine failed: {type(exc).__name__}: {exc}"
        return JSONResponse(error_body(message, "server_error", "500"), 500)

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(error_body(problems, "invalid_request_error", "422"), 422)

    def budget(requested: int | None) -> int:
        if requested is not None and requested > limits.max_tokens:
            raise RequestRefused(
                400, f"max_tokens {requested} is over this server's limit of {limits.max_tokens}"
            )
        return requested or min(DEFAULT_TOKENS, limits.max_tokens)

    def spans(given: list[SpanIn], document: str) -> list[Span]:
        out = []
        for span in given:
            if span.length != "auto":
                budget(span.length)
            if not span.start <= span.end <= len(document):
                raise RequestRefused(400, f"span {span.start}:{span.end} is outside the document")
            out.append(Span(span.start, span.end, span.length))
        return out

    async def edited(request: Request, method, *args) -> EditResponse:
        try:
            edit = await runner.call(method, *args, gone=request.is_disconnected)
        except ValueError as exc:  # the engine's own check: overlapping spans
            raise RequestRefused(400, str(exc)) from exc
        return EditResponse(
            text=edit.text, replacements=edit.replacements, stats=Stats.of(edit.stats)
        )

    async def generated(request: Request, messages, tokens: int, body: ChatCompletionRequest):
        """The reply, and how many requests shared its engine call."""
        if batcher is not None and body.temperature == 0:
            return await batcher.chat(messages, tokens)
        call = engine.generate, messages, tokens
        options = {"temperature": body.temperature, "seed": body.seed}
        return await runner.call(*call, gone=request.is_disconnected, **options), 1

    async def continued(request: Request, prompt: str, tokens: int):
        """The prompt's continuation as an `Edit`, and the batch size. Always greedy: the
        engine's infill takes no sampling settings, so every completion may be batched."""
        if batcher is not None:
            return await batcher.complete(prompt, tokens)
        end = len(prompt)
        at_end = [Span(end, end, tokens)]
        return await runner.call(engine.infill, prompt, at_end, gone=request.is_disconnected), 1

    @app.get("/health")
    async def health() -> dict[str, str | int]:
        return {"status": "ok", "calls_cut_short": runner.cut_short}

    @app.get("/v1/models")
    async def models() -> ModelList:
        facts = {
            "name": info.name,
            "family": info.family,
            "decoding": info.decoding,
            "device": info.device,
            "context_length": info.context_length,
            "max_tokens": limits.max_tokens,
        }
        return ModelList(data=[ModelCard(id=info.name, created=STARTED, ttdr=facts)])

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(
        body: ChatCompletionRequest, request: Request
    ) -> ChatCompletion | StreamingResponse:
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        tokens = budget(body.requested_tokens())
        if body.stream:
            pieces = runner.stream(
                lambda: engine.stream(
                    messages, tokens, temperature=body.temperature, seed=body.seed
                )
            )
            return sse(chat_chunks(info.name, pieces))
        generation, batched = await generated(request, messages, tokens, body)
        stats = generation.stats
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=info.name,
            choices=[
                ChatChoice(
                    message=AssistantMessage(content=generation.text),
                    finish_reason="length" if stats.tokens >= tokens else "stop",
                )
            ],
            usage=Usage.of(stats),
            ttdr_stats=Stats.of(stats, batched),
        )

    @app.post("/v1/completions", response_model=None)
    async def complete(body: CompletionRequest, request: Request) -> Completion | StreamingResponse:
        tokens = budget(body.requested_tokens())
        edit, batched = await continued(request, body.prompt, tokens)
        completion = Completion(
            id=f"cmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=info.name,
            choices=[
                CompletionChoice(
                    text=edit.replacements[0],
                    finish_reason="length" if edit.stats.tokens >= tokens else "stop",
                )
            ],
            usage=Usage.of(edit.stats),
            ttdr_stats=Stats.of(edit.stats, batched),
        )
        if body.stream:  # one chunk: the engine continues a raw prompt in one call
            return sse(completion_chunks(completion))
        return completion

    @app.post("/v1/ttdr/infill")
    async def infill(body: InfillRequest, request: Request) -> EditResponse:
        document = body.document
        return await edited(request, engine.infill, document, spans(body.spans, document))

    @app.post("/v1/ttdr/rewrite")
    async def rewrite(body: RewriteRequest, request: Request) -> EditResponse:
        (span,) = spans([body.span], body.document)
        return await edited(request, engine.rewrite, body.document, span, body.instruction)

    @app.post("/v1/ttdr/score")
    async def score(body: ScoreRequest) -> ScoreResponse:
        result = await runner.call(engine.score, body.text, samples=body.samples, seed=body.seed)
        return ScoreResponse(
            nll_per_token=result.nll_per_token, tokens=result.tokens, stats=Stats.of(result.stats)
        )

    return Guard(app, limits)


STARTED = int(time.time())


def sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        async for event in events:
            yield f"data: {json.dumps(event)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream")


async def chat_chunks(model: str, pieces: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """OpenAI's chunk sequence: the role, the text as it comes, then the finish reason."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    async for piece in pieces:
        yield chunk({"content": piece})
    yield chunk({}, "stop")


async def completion_chunks(completion: Completion) -> AsyncIterator[dict[str, Any]]:
    yield completion.model_dump(exclude={"usage", "ttdr_stats"})
