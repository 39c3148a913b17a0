"""`ttdr serve` in a subprocess on a loopback port, with the tiny model: the official openai
client talks to it, ttdr's own routes edit documents, and every limit is refused with its
documented status and OpenAI's JSON error body."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import openai
import pytest

from tests.serving import TOKEN, Server

MESSAGES = [{"role": "user", "content": "How do diffusion language models decode text?"}]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(tiny_server: Server) -> Server:
    return tiny_server


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)


def post(server: Server, path: str, body: dict, headers=AUTH) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)


def test_the_openai_client_lists_the_model_with_its_facts(client) -> None:
    (model,) = client.models.list().data
    assert model.id == "tiny-llama"
    facts = model.model_extra["ttdr"]
    assert facts["family"] == "llama" and facts["context_length"] == 4096
    assert facts["max_tokens"] == 300


def test_chat_completions_streamed_and_not_give_the_same_text(client) -> None:
    # Sampled with a seed, so the random tiny model says something (greedy, it ends at once).
    kwargs = {"model": "tiny-llama", "messages": MESSAGES, "temperature": 0.7, "seed": 3}
    whole = client.chat.completions.create(max_tokens=24, **kwargs)
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 0
    stats = whole.model_extra["ttdr_stats"]
    assert stats["forward_passes"] >= 1 and stats["tokens_per_forward"] > 0

    chunks = list(client.chat.completions.create(max_tokens=24, stream=True, **kwargs))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 1  # block by block, not one piece at the end
    assert "".join(pieces) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_completions_continue_a_prompt_streamed_and_not(client) -> None:
    whole = client.completions.create(model="tiny-llama", prompt="The plan lists", max_tokens=8)
    assert whole.choices[0].text and whole.usage.completion_tokens <= 8
    streamed = client.completions.create(
        model="tiny-llama", prompt="The plan lists", max_tokens=8, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text


def test_infill_never_changes_text_outside_the_spans(server) -> None:
    document = "Title: \nThe draft is revised with evidence.\nSources:  and more.\nEnd."
    gaps = [document.index("Title: ") + 7, document.index("Sources: ") + 9]
    spans = [{"start": g, "end": g, "length": 6} for g in gaps]
    answer = post(server, "/v1/ttdr/infill", {"document": document, "spans": spans})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    first, second = body["replacements"]
    assert body["text"] == (
        document[: gaps[0]] + first + document[gaps[0] : gaps[1]] + second + document[gaps[1] :]
    )
    assert body["stats"]["forward_passes"] >= 1
    assert {"tokens_per_forward", "tokens_per_second"} <= body["stats"].keys()


def test_rewrite_changes_only_its_span_and_score_ranks_text(server) -> None:
    document = "Intro.\nDiffusion models denoise masked tokens.\nOutro."
    start = document.index("Diffusion")
    end = document.index("\nOutro")
    span = {"start": start, "end": end, "length": 12}
    answer = post(
        server,
        "/v1/ttdr/rewrite",
        {"document": document, "span": span, "instruction": "Say it in fewer words."},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["text"] == document[:start] + body["replacements"][0] + document[end:]
    score = post(server, "/v1/ttdr/score", {"text": "Retrieval finds passages."}).json()
    assert score["nll_per_token"] > 0 and score["stats"]["forward_passes"] == 1


def test_a_missing_or_wrong_token_is_401(server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = post(server, "/v1/chat/completions", {"messages": MESSAGES}, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200  # the readiness probe is open
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_an_oversized_body_is_413_whether_or_not_it_says_its_length(server) -> None:
    big = {"document": "x" * 1_100_000, "spans": [{"start": 0, "end": 1}]}
    answer = post(server, "/v1/ttdr/infill", big)
    assert answer.status_code == 413 and "1,048,576 bytes" in answer.json()["error"]["message"]

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 32_768

    answer = httpx.post(f"{server.url}/v1/ttdr/infill", content=chunked(), headers=AUTH)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "413"


def test_too_many_tokens_is_400_and_a_malformed_body_422(server) -> None:
    answer = post(server, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 301})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "max_tokens 301 is over this server's limit of 300"
    spans = [{"start": 0, "end": 1, "length": 5000}]
    assert post(server, "/v1/ttdr/infill", {"document": "ab", "spans": spans}).status_code == 400
    outside = post(server, "/v1/ttdr/infill", {"document": "ab", "spans": [{"start": 1, "end": 9}]})
    assert outside.status_code == 400 and "outside the document" in outside.text
    answer = post(server, "/v1/chat/completions", {"messages": []})
    assert answer.status_code == 422 and "messages" in answer.json()["error"]["message"]


def test_requests_past_the_concurrency_limit_are_429_and_the_rest_served(server) -> None:
    """Two may run or queue at once (--max-concurrent 2): twelve at once meet the limit."""
    start = threading.Barrier(12)
    statuses: list[int] = []
    bodies: list[dict] = []
    body = {"document": "The plan lists ", "spans": [{"start": 15, "end": 15, "length": 200}]}

    def call() -> None:
        start.wait()
        answer = post(server, "/v1/ttdr/infill", body)
        statuses.append(answer.status_code)
        bodies.append(answer.json())

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(statuses)
    assert set(counts) == {200, 429} and counts[200] >= 2, counts
    refused = [b for b, s in zip(bodies, statuses, strict=True) if s == 429]
    assert all("busy" in b["error"]["message"] for b in refused)
    # Each served answer is the one a lone request gets: the engine ran them one at a time.
    served = {b["text"] for b, s in zip(bodies, statuses, strict=True) if s == 200}
    assert served == {post(server, "/v1/ttdr/infill", body).json()["text"]}
