"""Grounded writing: a section of the final report stands on the passages read for it.

A small model's revisions lose or corrupt the facts it was given, and verbatim source sentences
were the only accurate content of its reports. So a section is built as:

1. the draft's own sentences that a retrieved passage supports (the ledger attaches their
   source), and, with `grounding="marked"`, its unsupported ones visibly flagged (with
   `"off"`, kept as they are; with the default `"strict"`, removed);
2. then the best evidence sentences that the kept text does not already state: ranked by their
   share of the question's and the section's key terms (rarer terms weigh more), chosen with a
   redundancy penalty (maximal marginal relevance), put back in source order and grouped into
   short paragraphs so they read as prose, each with its citation.

Short fragments (a table row such as "Default: | On", a one-line definition) are prefixed with
the heading they stand under, so they still say what they are about.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass

from agents.attribution import attribute, content_words, with_markers
from agents.evidence import key_terms
from agents.text import split_sentences

LENGTH_SENTENCES = {"short": 4, "medium": 8, "long": 14}
SUMMARY_SENTENCES = {"short": 2, "medium": 3, "long": 4}
STATED = 0.6  # a candidate the kept text covers this much adds nothing new
# A model sentence is kept only when one passage holds nearly all of its words beyond the
# question's own: lexical support at the ledger's 0.6 lets fluent inventions through.
MODEL_SUPPORT = 0.8
CONTEXT = 0.6  # share of a sentence's relevance lent to the next one of its passage
REDUNDANCY = 0.5  # weight of the similarity penalty in maximal marginal relevance
MIN_WORDS, MAX_WORDS = 5, 70
FRAGMENT_WORDS = 9
PARAGRAPH_SENTENCES = 3
UNSOURCED_MARK = " *(unsourced)*"
QUALIFIERS = frozenset(
    "not never only unless except default defaults must cannot always no none instead "  # noqa: SIM905
    "deprecated requires required disabled enabled".split()
)


@dataclass(frozen=True)
class EvidenceSentence:
    text: str
    source: int
    order: int  # position among all candidates, for putting chosen sentences back in order
    passage: int = 0  # which passage it came from (neighbours share a topic)


LABEL = re.compile(r"^([^\s:][^:]{0,60}?):\s")
# A book's navigation, not content: "Chapter 4. Sharing development: Table of Contents".
NAVIGATION = re.compile(r"\btable of contents\b", re.IGNORECASE)
INNER_STOP = re.compile(r"(?<=\w)\.\s+")


def evidence_sentences(evidence: list[tuple[int, str]]) -> list[EvidenceSentence]:
    """Sentences of the passages, fragments given what they are about (the term of the
    definition they continue, else their heading), code and noise left out."""
    out: list[EvidenceSentence] = []
    seen: set[str] = set()
    for number, (source, passage) in enumerate(evidence):
        heading = ""
        for raw in re.split(r"\n[ \t]*\n", passage):
            if _looks_like_code(raw):
                continue  # code blocks do not read as prose
            block = raw.strip()
            if block.startswith("#"):
                heading = block.lstrip("#").strip()
                continue
            label = LABEL.match(block)
            if label and len(label.group(1).split()) <= 4 and " | " not in block:
                heading = label.group(1)  # a definition: what follows is about its term
            for sentence in split_sentences(block):
                sentence = re.sub(r":?\s+\|\s+", ": ", sentence).strip()
                words = sentence.split()
                if not MIN_WORDS - 2 <= len(words) <= MAX_WORDS:
                    continue
                if len(words) < FRAGMENT_WORDS and heading and not sentence.startswith(heading):
                    # "Chapter 4. Sharing" as a prefix would read as two sentences.
                    sentence = f"{INNER_STOP.sub(' ', heading)}: {sentence}"
                if len(content_words(sentence)) < 3 or sentence.endswith(":"):
                    continue  # too little to say, or the lead-in of a list or example
                if NAVIGATION.search(sentence):
                    continue
                key = " ".join(sorted(content_words(sentence)))
                if key in seen:
                    continue
                seen.add(key)
                if sentence[-1:] not in ".!?:":
                    sentence += "."
                out.append(EvidenceSentence(sentence, source, len(out), number))
    return out


def _looks_like_code(block: str) -> bool:
    """A fenced or indented block (extraction keeps a page's <pre> text line by line, and
    markdown indents or fences its code), or one dense with code punctuation; a prose
    paragraph hard-wrapped over several lines is not code."""
    lines = [ln for ln in block.splitlines() if ln.strip()]
    if not lines or lines[0].lstrip().startswith(("```", "~~~")):
        return bool(lines)
    if sum(ln.startswith(("    ", "\t")) for ln in lines) >= len(lines) / 2:
        return True
    symbols = sum(block.count(c) for c in "{}<>;=$\\")
    return symbols > max(4, len(block) // 12)


def choose_sentences(
    candidates: list[EvidenceSentence],
    focus: list[tuple[str, float]],
    count: int,
    already: list[str] | None = None,
) -> list[EvidenceSentence]:
    """The `count` most relevant, least redundant candidates that no sentence of `already`
    states."""
    if count <= 0 or not candidates:
        return []
    words = [content_words(c.text) for c in candidates]
    relevance = [
        score * (1.15 if _fact_bearing(c.text) else 1.0)
        for score, c in zip(focus_relevance(words, focus), candidates, strict=True)
    ]
    # A sentence that continues a relevant one ("As a fall-back, partial matches … work,
    # too.") is on its topic even without its words.
    for i in range(1, len(candidates)):
        if candidates[i].passage == candidates[i - 1].passage:
            relevance[i] += CONTEXT * relevance[i - 1]
    chosen: list[int] = []
    stated = [content_words(s) for s in already or []]
    while len(chosen) < count:
        best, best_value = None, 0.0
        for i, ws in enumerate(words):
            if i in chosen or relevance[i] <= 0:
                continue
            if any(len(ws & w) >= STATED * len(ws) for w in stated):
                continue  # said already, here or in another section (or by the draft)
            overlap = max((_jaccard(ws, words[j]) for j in chosen), default=0.0)
            value = relevance[i] * (1 - REDUNDANCY * overlap)
            if value > best_value:
                best, best_value = i, value
        if best is None:
            break
        chosen.append(best)
        stated.append(words[best])  # the same fact from a second page is not said twice
    return sorted((candidates[i] for i in chosen), key=lambda c: (c.source, c.order))


def focus_relevance(words: list[set[str]], focus: list[tuple[str, float]]) -> list[float]:
    """Each sentence's (its content words') share of the focus texts' words, rarer words (among
    these sentences) weighing more, each focus text by its weight."""
    frequency = Counter(w for ws in words for w in ws)
    idf = {w: math.log(1 + len(words) / n) for w, n in frequency.items()}
    weights: dict[str, float] = {}
    for text, weight in focus:
        for w in content_words(text):
            weights[w] = max(weights.get(w, 0.0), weight)
    return [
        sum(weights.get(w, 0.0) * idf.get(w, 0.0) for w in ws) / (math.sqrt(len(ws)) or 1.0)
        for ws in words
    ]


def on_topic(text: str, candidates: list[EvidenceSentence], question: str, room: int) -> str:
    """The sentences of `text` (supported model sentences) that answer the question as well as
    the `room`-th best evidence sentence does: a small model's summary often copies a true but
    unrelated sentence of its sources, which the evidence the question ranks first would beat."""
    sentences = split_sentences(text)
    if not sentences or not candidates:
        return text
    words = [content_words(s) for s in sentences] + [content_words(c.text) for c in candidates]
    scores = focus_relevance(words, [(question, 1.0)])
    own, evidence = scores[: len(sentences)], sorted(scores[len(sentences) :], reverse=True)
    bar = evidence[min(room, len(evidence)) - 1]
    return " ".join(s for s, score in zip(sentences, own, strict=True) if score >= bar)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _fact_bearing(sentence: str) -> bool:
    """Numbers, identifiers, qualifiers: the kind of content a paraphrase loses first."""
    if re.search(r"\d", sentence):
        return True
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    return bool(words & QUALIFIERS) or len(key_terms(sentence)) > len(content_words(sentence))


def fact_bearing_sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if _fact_bearing(s)]


def informative(text: str, question: str, sources: dict[int, str] | None = None) -> str:
    """Supported model sentences that say something beyond the question, and (given the
    sources) whose words beyond the question a few consecutive sentences of one source
    nearly all hold. A sentence that restates the question ("The research question is: …"),
    announces ("In this section I will explain …"), or recombines a long page's common words
    into a claim the page never makes, is "supported" by a whole page's vocabulary and tells
    the reader nothing true."""
    asked = content_words(question)
    windows = [w for t in (sources or {}).values() for w in source_windows(t)]
    kept = []
    for sentence in split_sentences(text):
        new = content_words(sentence) - asked
        if len(new) < 2 or ANNOUNCEMENT.search(sentence):
            continue
        if sources and not any(len(new & w) >= MODEL_SUPPORT * len(new) for w in windows):
            continue
        kept.append(sentence)
    return " ".join(kept)


@functools.lru_cache(maxsize=256)
def source_windows(text: str, size: int = 3) -> list[set[str]]:
    """Content words of every run of `size` consecutive sentences of a source. Cached: every
    section of a report (and its summary) checks its sentences against the same sources."""
    words = [content_words(s) for s in split_sentences(text)]
    return [set().union(*words[i : i + size]) for i in range(max(1, len(words) - size + 1))]


ANNOUNCEMENT = re.compile(
    r"\b(research question|this (section|report)|I will|we will|let'?s|in summary)\b", re.I
)


def as_prose(sentences: list[EvidenceSentence]) -> str:
    """Cited sentences grouped in short paragraphs, in source order."""
    cited = [with_markers(s.text, [s.source]) for s in sentences]
    paragraphs = [
        " ".join(cited[i : i + PARAGRAPH_SENTENCES])
        for i in range(0, len(cited), PARAGRAPH_SENTENCES)
    ]
    return "\n\n".join(paragraphs)


def grounded_section(
    draft: str,
    evidence: list[tuple[int, str]],
    sources: dict[int, str],
    focus: list[tuple[str, float]],
    *,
    sentences: int,
    grounding: str = "strict",
    used: set[str] | None = None,
) -> str:
    """The section's text: supported draft sentences, then evidence sentences up to
    `sentences` in all. `used` holds sentences other sections already quote (kept up to date)."""
    checked = attribute(draft, sources, keep_unsupported=False) if draft.strip() else None
    kept = informative(checked.text, focus[0][0], sources) if checked else ""
    room = max(0, sentences - len(split_sentences(kept)))
    used = used if used is not None else set()
    candidates = [c for c in evidence_sentences(evidence) if c.text not in used]
    chosen = choose_sentences(candidates, focus, room, already=[*split_sentences(kept), *used])
    used.update(split_sentences(kept))
    used.update(c.text for c in chosen)
    parts = [p for p in (kept, as_prose(chosen)) if p]
    if grounding != "strict" and checked and checked.unsupported:
        mark = UNSOURCED_MARK if grounding == "marked" else ""
        parts.append(" ".join(s.rstrip() + mark for s in checked.unsupported))
    return "\n\n".join(parts)
