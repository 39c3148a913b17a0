"""Batching in `ttdr serve --batch`: greedy requests that queue up together share forward passes,
and each still gets exactly the reply a lone call gives in-process (tiny model, float32); and
`ttdr bench serve` reports its JSON.

The model is a tiny SDAR (block-causal, blocks of 4) with weights that write text under greedy
decoding, so equal replies mean something (the tiny LLaMA ends its turn at once). The batching
tests serve the app in this process (httpx's ASGI transport: the same app, batcher and engine
as `ttdr serve`, without a second model load); the bench starts real servers, both modes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import torch
from typer.testing import CliRunner

from backends.llm.engine import DiffusionEngine
from backends.llm.loader import load_checkpoint
from backends.llm.tiny import write_tiny_checkpoint
from ttdr.api import Span, load_engine
from ttdr.cli import app
from ttdr.config import Settings
from ttdr.serve.app import create_app
from ttdr.serve.limits import ServeLimits

TOKEN = "batch-token-7c1d"

AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTIONS = [
    "How do tides work?",
    "Explain diffusion language models in detail, please.",
    "Why?",
    "List the causes of ocean tides and the roles of the Moon and the Sun.",
    "Retrieval finds passages.",
    "What is a block?",
    "Summarise the evidence on sea level.",
    "Name three planets and their moons, ordered by size.",
]


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("writer") / "tiny-sdar", "sdar", seed=5)


@pytest.fixture(scope="module")
def engine(writer: Path):
    """The engine `ttdr serve` loads, in this process: what a lone call gives."""
    return load_engine(Settings(dtype="float32", device="cpu"), str(writer))


@pytest.fixture(scope="module")
def batching_app(engine):
    limits = ServeLimits(max_tokens=64, max_concurrent=16, token=TOKEN)
    return create_app(engine, limits, max_batch=8)


def burst(app, requests: list[tuple[str, dict]]) -> list[dict]:
    """Every request at once; the answers in order."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ttdr") as client:
            sends = [client.post(path, json=body, headers=AUTH) for path, body in requests]
            return await asyncio.gather(*sends)

    answers = asyncio.run(send_all())
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    return [answer.json() for answer in answers]


def chat(question: str, max_tokens: int, **sampling) -> tuple[str, dict]:
    messages = [{"role": "user", "content": question}]
    return "/v1/chat/completions", {"messages": messages, "max_tokens": max_tokens, **sampling}


def test_concurrent_greedy_chats_are_batched_and_each_gets_its_lone_reply(
    batching_app, engine
) -> None:
    requests = [chat(q, 24) for q in QUESTIONS]
    requests += [chat(q, 12) for q in QUESTIONS[:3]]  # another budget: batched apart
    requests.append(chat(QUESTIONS[0], 16, temperature=0.8, seed=4))  # sampled: runs alone
    answers = burst(batching_app, requests)

    batched = []
    for (_, body), answer in zip(requests, answers, strict=True):
        sampling = {k: body[k] for k in ("temperature", "seed") if k in body}
        lone = engine.generate(body["messages"], body["max_tokens"], **sampling)
        assert answer["choices"][0]["message"]["content"] == lone.text
        assert answer["usage"]["completion_tokens"] == lone.stats.tokens
        batched.append(answer["ttdr_stats"]["batched"])
    assert all(answer["usage"]["completion_tokens"] > 0 for answer in answers)
    assert len({a["choices"][0]["message"]["content"] for a in answers[:8]}) > 1
    assert batched[-1] == 1  # the sampled one shared nothing
    assert max(batched) > 1, batched  # requests that queued together shared a call
    assert max(batched) <= 8


def test_concurrent_completions_are_batched_and_each_gets_its_lone_continuation(
    batching_app, engine
) -> None:
    prompts = ["The plan lists", "Tides rise twice a day because", "Sources:", "A block is"]
    requests = [("/v1/completions", {"prompt": p, "max_tokens": 10}) for p in prompts * 2]
    answers = burst(batching_app, requests)
    for (_, body), answer in zip(requests, answers, strict=True):
        end = len(body["prompt"])
        lone = engine.infill(body["prompt"], [Span(end, end, 10)])
        assert answer["choices"][0]["text"] == lone.replacements[0]
        assert answer["usage"]["completion_tokens"] == lone.stats.tokens
    assert max(answer["ttdr_stats"]["batched"] for answer in answers) > 1


def test_a_prompt_cut_to_fit_the_context_does_not_shorten_its_batch_mates(tmp_path) -> None:
    """A canvas has one budget: rows whose fitted budgets differ run as separate batches."""
    # Seed 1 answers "tides" at length (23 tokens), past the 16 the long prompt is left with.
    folder = write_tiny_checkpoint(tmp_path / "short", "sdar", seed=1, context_length=96)
    model = DiffusionEngine.from_loaded(load_checkpoint(folder, dtype=torch.float32))
    conversations = [
        [{"role": "user", "content": "tides"}],
        [{"role": "user", "content": " ".join(["tides and moons"] * 30)}],  # cut to fit
    ]
    together = model.generate_batch(conversations, 40)
    alone = [model.generate(c, 40) for c in conversations]
    assert [g.text for g in together] == [g.text for g in alone]
    assert alone[0].stats.tokens > 16  # more than the long prompt's budget: the test can fail
    assert together[1].stats.trimmed_prompt_tokens > 0


@pytest.mark.parametrize("family", ["sdar", "llada"])
def test_continue_batch_equals_infilling_each_documents_end(tmp_path, family) -> None:
    folder = write_tiny_checkpoint(tmp_path / family, family, seed=5)
    model = DiffusionEngine.from_loaded(load_checkpoint(folder, dtype=torch.float32))
    documents = ["The plan lists", "Tides rise twice a day because the Moon", "Sources:"]
    batch = model.continue_batch(documents, 12)
    for document, edit in zip(documents, batch, strict=True):
        lone = model.infill(document, [Span(len(document), len(document), 12)])
        assert (edit.text, edit.replacements) == (lone.text, lone.replacements)
        assert edit.text.startswith(document)


def test_serve_help_says_batching_is_off_by_default() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--batch" in result.stdout and "Off by default" in result.stdout
    assert "TTDR_SERVE_BATCH" in result.stdout


def test_bench_serve_prints_json_for_both_modes_at_each_level(writer, tmp_path) -> None:
    command = ["bench", "serve", "--model", str(writer), "--concurrency", "1,3"]
    command += ["--rounds", "1", "--tokens", "8"]
    result = CliRunner().invoke(app, command, env={"TTDR_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "tiny-sdar" and report["concurrency"] == [1, 3]
    assert set(report["modes"]) == {"no_batch", "batch"}
    for mode in report["modes"].values():
        assert set(mode) == {"1", "3"}
        for clients, level in mode.items():
            assert level["requests"] == int(clients)
            assert level["tokens"] > 0 and level["tokens_per_s"] > 0
            assert 0 < level["latency_p50_s"] <= level["latency_p95_s"] <= level["seconds"]
    assert all(level["mean_batch"] == 1.0 for level in report["modes"]["no_batch"].values())
    ratios = report["tokens_per_s_vs_one_at_a_time"]
    assert ratios["no_batch"]["1"] == 1.0 and ratios["batch"]["3"] > 0


def test_bench_serve_refuses_a_bad_concurrency_list() -> None:
    result = CliRunner().invoke(app, ["bench", "serve", "--concurrency", "1,zero"])
    assert result.exit_code == 2 and "--concurrency" in result.output
