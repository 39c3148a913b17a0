"""Fact recall and evidence recall: did the run find, and did the report state, what a good
answer must say?

An eval item lists key facts, each with an exact quote from a named page. Three questions are
asked of every fact, because each one fails for a different reason:

- **page**: was the page among the run's sources? (Flattering: the right page can be read
  through the wrong passages.)
- **evidence**: did the run read a passage that holds the quote? (Retrieval and extraction.)
- **stated**: does the report (or a draft, or the answers) state it? (Writing.)

A text states a fact when a window of one or two of its sentences covers the quote's content
words at `STATED_THRESHOLD` or more, or the fact's own (shorter) wording at `OWN_THRESHOLD`.
Both were calibrated by hand on reports of the development set (examples/eval/README.md): at
0.6 for both, a sentence that merely names the fact's topic ("how to enable or disable git
rebase --autosquash … default") counted as stating it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from agents.attribution import content_words
from agents.citations import MARKER
from agents.text import split_sentences

STATED_THRESHOLD = 0.6
OWN_THRESHOLD = 0.8
READ_THRESHOLD = 0.8  # a passage holds a quote when it has this share of its content words
MIN_WORDS = 2


@dataclass(frozen=True)
class KeyFact:
    fact: str
    quote: str
    page: str = ""


@dataclass
class EvalItem:
    question: str
    facts: list[KeyFact] = field(default_factory=list)
    id: str = ""
    corpus: str = ""  # a folder corpora/<corpus> beside the questions file
    docs: str = ""  # or any folder, relative to the questions file
    split: str = "dev"


def coverage(wanted: set[str], text_words: set[str]) -> float:
    if len(wanted) < MIN_WORDS:
        return 0.0
    return len(wanted & text_words) / len(wanted)


def sentence_windows(text: str) -> list[set[str]]:
    """Content words of each sentence and of each pair of neighbouring sentences (a quote may
    run over a sentence break the report made)."""
    sentences = [content_words(MARKER.sub(" ", s)) for s in split_sentences(text)]
    pairs = [a | b for a, b in itertools.pairwise(sentences)]
    return sentences + pairs


def states(fact: KeyFact, windows: list[set[str]]) -> bool:
    quote, own = content_words(fact.quote), content_words(fact.fact)
    return any(
        coverage(quote, w) >= STATED_THRESHOLD or coverage(own, w) >= OWN_THRESHOLD for w in windows
    )


def holds(fact: KeyFact, passage: str) -> bool:
    """Whether a passage the run read holds the quote: verbatim (whitespace aside) or nearly
    all of its content words."""
    if _squash(fact.quote) in _squash(passage):
        return True
    return coverage(content_words(fact.quote), content_words(passage)) >= READ_THRESHOLD


def page_matches(fact: KeyFact, url: str) -> bool:
    return bool(fact.page) and url.rstrip("/").endswith("/" + fact.page.lstrip("/"))


def score_item(
    item: EvalItem,
    *,
    report: str,
    passages: list[tuple[str, str]],
    stages: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Per-fact verdicts and recall figures for one run.

    `passages` are (url, text) of what the run read; `stages` maps a stage name (R0, R1, …,
    answers) to its text, so the table shows where a fact was gained or lost.
    """
    if not item.facts:
        return {}
    report_windows = sentence_windows(report)
    stage_windows = {name: sentence_windows(text) for name, text in (stages or {}).items()}
    verdicts = []
    for fact in item.facts:
        verdicts.append(
            {
                "fact": fact.fact,
                "page_read": any(page_matches(fact, url) for url, _ in passages),
                "evidence_read": any(holds(fact, text) for _, text in passages),
                "stated": states(fact, report_windows),
                "stages": {name: states(fact, w) for name, w in stage_windows.items()},
            }
        )
    count = len(verdicts)

    def share(key: str) -> float:
        return round(sum(v[key] for v in verdicts) / count, 3)

    return {
        "facts": count,
        "fact_recall": share("stated"),
        "evidence_recall": share("evidence_read"),
        "page_recall": share("page_read"),
        "stage_fact_recall": {
            name: round(sum(v["stages"][name] for v in verdicts) / count, 3)
            for name in stage_windows
        },
        "verdicts": verdicts,
    }


def _squash(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))
