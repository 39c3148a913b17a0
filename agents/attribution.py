"""The citation ledger: a sentence may cite a source only if that source supports it.

Support is lexical: the share of the sentence's content words that occur in the source's
retrieved text. It is a floor, not proof, but it catches what small models do most — cite a
source for a sentence they made up, or cite the wrong one — and it works for any model.
Answers are attributed sentence by sentence here, and `CitationLedger` re-checks the final
report and keeps its counts; agents/citations.py only parses and renumbers the markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.citations import MARKER, cited_numbers
from agents.text import split_sentences
from backends.search.passages import STOPWORDS

SUPPORT_THRESHOLD = 0.6
MIN_CONTENT_WORDS = 3


def content_words(text: str) -> set[str]:
    # Letters of any alphabet: "Größe" is one word, not "gr" and "e".
    words = re.findall(r"[^\W_](?:[^\W_]|-)+", MARKER.sub(" ", text.lower()))
    return {_stem(w) for w in words if len(w) > 3 and w not in STOPWORDS}


def _stem(word: str) -> str:
    """Enough stemming to match 'models'/'model' and 'decoded'/'decodes' across a paraphrase."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def support(sentence: str, source_text: str) -> float:
    wanted = content_words(sentence)
    if len(wanted) < MIN_CONTENT_WORDS:
        return 0.0
    return len(wanted & content_words(source_text)) / len(wanted)


@dataclass
class Attribution:
    text: str
    cited: list[int] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # sentences no source backs


def attribute(text: str, sources: dict[int, str], *, keep_unsupported: bool) -> Attribution:
    """Give each sentence the source that supports it best, if any supports it enough.

    Markers the model wrote are kept only when their source supports the sentence. With
    `keep_unsupported=False` (answers, which must come from the sources) unsupported sentences
    are dropped; with True (draft prose from the model's knowledge) they stay, uncited.
    """
    kept: list[str] = []
    result = Attribution(text="")
    for sentence in split_sentences(text):
        claimed = [n for n in cited_numbers(sentence) if n in sources]
        bare = MARKER.sub("", sentence).replace(" .", ".").strip()
        backing = [n for n in claimed if support(bare, sources[n]) >= SUPPORT_THRESHOLD]
        if not backing and sources:
            best = max(sources, key=lambda n: support(bare, sources[n]))
            if support(bare, sources[best]) >= SUPPORT_THRESHOLD:
                backing = [best]
        if backing:
            kept.append(with_markers(bare, backing))
            result.cited += [n for n in backing if n not in result.cited]
        else:
            result.unsupported.append(bare)
            if keep_unsupported:
                kept.append(bare)
    result.text = " ".join(kept)
    return result


def with_markers(sentence: str, numbers: list[int]) -> str:
    markers = "".join(f"[{n}]" for n in numbers)
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} {markers}{sentence[-1]}"
    return f"{sentence} {markers}"


def extractive_answer(question: str, sources: dict[int, str], sentences: int = 2) -> Attribution:
    """When the model's answer has no supported sentence, quote the sources' best sentences."""
    wanted = content_words(question)
    scored = [
        (len(content_words(s) & wanted), -order, number, s)
        for order, (number, text) in enumerate(sources.items())
        for s in split_sentences(text)
        if len(content_words(s)) >= MIN_CONTENT_WORDS
    ]
    best = sorted(scored, reverse=True)[:sentences]
    best.sort(key=lambda item: -item[1])  # back in source order, so the answer reads in order
    text = " ".join(with_markers(s, [n]) for _, _, n, s in best)
    return Attribution(text=text, cited=list(dict.fromkeys(n for _, _, n, _ in best)))


class CitationLedger:
    """Re-checks every cited sentence against the text its source actually gave this run."""

    def __init__(self, excerpts: dict[int, str]) -> None:
        self.excerpts = excerpts
        self.markers = self.kept = self.moved = self.unsupported = 0

    def check(self, text: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            claimed = cited_numbers(paragraph)
            result = attribute(paragraph, self.excerpts, keep_unsupported=True)
            self.markers += sum(len(cited_numbers(s)) for s in _sentences_with_markers(paragraph))
            self.kept += len(set(claimed) & set(result.cited))
            self.moved += len(set(result.cited) - set(claimed))
            self.unsupported += len(set(claimed) - set(result.cited))
            paragraphs.append(result.text if result.text else paragraph)
        return "\n\n".join(p for p in paragraphs if p.strip())

    def counts(self) -> dict[str, int | float]:
        valid = self.kept / (self.kept + self.unsupported) if self.kept + self.unsupported else 1.0
        return {
            "markers": self.markers,
            "kept": self.kept,
            "moved": self.moved,
            "unsupported": self.unsupported,
            "validity_rate": round(valid, 3),
        }


def _sentences_with_markers(paragraph: str) -> list[str]:
    return [s for s in split_sentences(paragraph) if cited_numbers(s)]
