"""Split documents into passages and rank passages against a query with SQLite FTS5 BM25,
fused with embedding similarity by reciprocal rank when an embedder is given.

Web pages (ranked per search, in memory) and the local index (ranked from its own FTS5 table)
share `fts_match_query`, `BM25_WEIGHTS` and `fuse_rankings`, so a passage is ranked the same way
wherever it came from.
Passages are ~100-180 words: long enough to carry a claim with its context, short enough that a
handful fit in a small model's prompt.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.search.embeddings import Embedder

MIN_WORDS = 100
MAX_WORDS = 180
# A heading (a `#` line from extraction) starts a new passage once the current one has this
# many words, so a passage is about one section and knows its heading.
HEADING_BREAK_WORDS = 40
FTS_TOKENIZER = "porter unicode61"
# bm25() weights for the (title, body) columns: a title match says which document is on topic,
# the body decides which of its passages.
BM25_WEIGHTS = (0.5, 1.0)
_MAX_QUERY_TERMS = 32

# Words that match nearly every passage; without them OR-queries rank on the words that matter
# (and the citation ledger in agents/attribution.py compares the words that carry content).
STOPWORDS = frozenset(
    """a about above after also among an and another any are as at be because been before being
    between both but by can could did do does doing down during each either every for from
    further had has have having here how i if in into is it its itself just many may might more
    most much must not of on or our should so such than that the their them then there these
    they this those through to under until up upon very was we were what when where which while
    who whom whose why will with within without would you your""".split()  # noqa: SIM905 -- a word list reads better as prose
)


@dataclass(frozen=True)
class TextSpan:
    """A passage of a document: `text == document[start:end]`."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class RankedPassage:
    """Index into the candidates given to `rank_passages`, with a higher-is-better score."""

    index: int
    score: float


def split_passages(
    text: str, *, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS
) -> list[TextSpan]:
    """Pack sentences into passages, closing one at a paragraph break once it has `min_words`
    and before it would exceed `max_words`; a sentence longer than `max_words` is cut by words."""
    spans: list[TextSpan] = []
    start = end = words = 0
    for unit_start, unit_end, unit_words, opens_paragraph in _units(text, max_words):
        heading = opens_paragraph and text.startswith("#", unit_start)
        if words and (
            words + unit_words > max_words
            or (opens_paragraph and words >= min_words)
            or (heading and words >= min(HEADING_BREAK_WORDS, min_words))
        ):
            spans.append(TextSpan(text[start:end], start, end))
            words = 0
        if not words:
            start = unit_start
        end = unit_end
        words += unit_words
    if words:
        spans.append(TextSpan(text[start:end], start, end))
    return spans


def fts_match_query(query: str) -> str | None:
    """FTS5 MATCH expression: each distinct word quoted (so `-`, `:`, `AND` are not syntax),
    OR-ed so a passage needs only some of the words; None when the query has no words."""
    terms = list(dict.fromkeys(word.lower() for word in re.findall(r"\w+", query)))
    content = [term for term in terms if term not in STOPWORDS] or terms
    if not content:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in content[:_MAX_QUERY_TERMS])


def bm25_score_sql(table: str) -> str:
    """SQL for a higher-is-better score; FTS5's bm25() is negative with lower meaning better."""
    title_weight, body_weight = BM25_WEIGHTS
    return f"-bm25({table}, {title_weight}, {body_weight})"


def rank_passages(
    query: str,
    candidates: Sequence[tuple[str, str]],
    limit: int | None = None,
    *,
    embedder: Embedder | None = None,
) -> list[RankedPassage]:
    """Rank (title, body) candidates against `query`, best first; non-matching ones are left out.

    BM25 over a throwaway in-memory FTS5 table (so IDF is computed over exactly these
    candidates). With an `embedder`, the BM25 ranking and the ranking by cosine similarity are
    fused by reciprocal rank (k=60), and the score is the fused score; a candidate then needs
    either a shared word or a similar meaning.
    """
    ranked = _bm25_ranking(query, candidates)
    if embedder is None or not candidates:
        return ranked if limit is None else ranked[:limit]
    from backends.search.embeddings import similarity_ranking

    vectors = embedder.encode([query, *(passage_text(t, b) for t, b in candidates)])
    similar = [i for i, _ in similarity_ranking(vectors[0], vectors[1:])]
    fused = fuse_rankings([r.index for r in ranked], similar)
    out = [RankedPassage(index=index, score=score) for index, score in fused]
    return out if limit is None else out[:limit]


def fuse_rankings(*rankings: Sequence[int]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (k=60) of best-first rankings of ids; best first."""
    from backends.search.embeddings import reciprocal_rank_fusion

    return reciprocal_rank_fusion(rankings)


def passage_text(title: str, body: str) -> str:
    """What the embedder sees of a passage: the title gives the passage its topic."""
    return f"{title}\n{body}" if title else body


def _bm25_ranking(query: str, candidates: Sequence[tuple[str, str]]) -> list[RankedPassage]:
    match = fts_match_query(query)
    if match is None or not candidates:
        return []
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE VIRTUAL TABLE p USING fts5(title, body, tokenize='{FTS_TOKENIZER}')")
        db.executemany(
            "INSERT INTO p(rowid, title, body) VALUES (?, ?, ?)",
            ((i, title, body) for i, (title, body) in enumerate(candidates)),
        )
        rows = db.execute(
            f"SELECT rowid, {bm25_score_sql('p')} AS score FROM p WHERE p MATCH ? "
            "ORDER BY score DESC, rowid",
            (match,),
        ).fetchall()
    return [RankedPassage(index=int(rowid), score=float(score)) for rowid, score in rows]


def _units(text: str, max_words: int) -> Iterator[tuple[int, int, int, bool]]:
    """(start, end, words, opens_paragraph) for each sentence, or each word-window of a sentence
    too long to keep whole (PDF text often has no full stops)."""
    for para_start, para_end in _spans(text, r"\n[ \t]*\n\s*", 0, len(text)):
        opens_paragraph = True
        for sent_start, sent_end in _spans(text, r"(?<=[.!?])\s+", para_start, para_end):
            words = [m.span() for m in re.finditer(r"\S+", text[sent_start:sent_end])]
            for i in range(0, len(words), max_words):
                window = words[i : i + max_words]
                yield (
                    sent_start + window[0][0],
                    sent_start + window[-1][1],
                    len(window),
                    opens_paragraph,
                )
                opens_paragraph = False


def _spans(text: str, separator: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Non-blank pieces of text[start:end] between matches of `separator`, trimmed."""
    piece_start = start
    pattern = re.compile(separator)
    for match in pattern.finditer(text, start, end):
        yield from _trimmed(text, piece_start, match.start())
        piece_start = match.end()
    yield from _trimmed(text, piece_start, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        offset = start + (len(piece) - len(piece.lstrip()))
        yield offset, offset + len(stripped)
