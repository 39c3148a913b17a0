"""Evidence for one search task, gathered without trusting the model's query.

A small model's search query is often its own babble, so it only competes: beside it stand
queries made from the question alone (the question verbatim; its key terms, identifiers first)
and from the plan (the section's title and key question with the question's key terms). Each
candidate is searched, judged by retrieval feedback (do its top hits share the question's and
the section's key terms, and how much of them is new to this run), and the rankings are fused
by reciprocal rank weighted by that feedback. The evidence budget grows with the question: more
distinct key terms, more passages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agents.attribution import content_words
from agents.language import QUESTION_WORDS as OTHER_QUESTION_WORDS
from agents.state import Evidence
from backends.search.types import Passage, SearchOutcome

# Words that make a question a question, not what it is about.
QUESTION_WORDS = frozenset(
    "how what which when where why who does work works explain describe difference between "  # noqa: SIM905
    "use used using possible way ways happen happens kind kinds there their something "
    "someone give list tell know need want".split()
)
IDENTIFIER = re.compile(
    r"(?:(?<![\w-])--?[a-z][\w-]*|\[[A-Z][\w=,]*\]|[\w.]*[_.:/][\w.:/]+|[a-z]+[A-Z]\w*"
    r"|[A-Z][a-z]+[A-Z]\w*|\b[A-Z]{2,}\b)"
)
SEARCH_DEPTH = 12  # hits asked of each candidate query
DEEP_SEARCH_DEPTH = 40  # ... when the first round found too little that is new
DEEP_PER_PAGE = 8
FEEDBACK_TOP = 5  # hits whose key-term overlap judges a candidate
RRF_K = 60
BASE_BUDGET = 8
TOP_PAGE_PASSAGES = 10
MAX_BUDGET = 12
FOCUS_PASSAGES = 3  # more passages each step from the page the run has read most
FOCUS_DEPTH = 100  # passages of that page ranked to find the unread ones
EVIDENCE_CHARS = 1600  # of a passage kept as evidence (a passage is at most ~180 words)


@dataclass(frozen=True)
class QueryCandidate:
    text: str
    origin: str  # model | question | key terms | section


@dataclass(frozen=True)
class QueryFeedback:
    candidate: QueryCandidate
    relevance: float  # mean share of the wanted key terms in its top hits
    novelty: float  # share of its top hits not read before in this run

    @property
    def score(self) -> float:
        return self.relevance * (0.5 + 0.5 * self.novelty)


@dataclass
class Gathered:
    passages: list[Passage]
    feedback: list[QueryFeedback]
    warnings: list[str]
    backend: str


def key_terms(text: str) -> list[str]:
    """The words a passage about `text` must contain, identifiers (options, names with
    punctuation or inner capitals) first, in order of appearance, without repeats."""
    identifiers = [m.group(0).strip(".:/[]") for m in IDENTIFIER.finditer(text)]
    words = [w for w in re.findall(r"[^\W_][\w'-]*", text) if _is_content(w)]
    seen: dict[str, None] = {}
    for term in [*identifiers, *words]:
        if len(term) > 1 and term.lower() not in {s.lower() for s in seen}:
            seen[term] = None
    return list(seen)


def _is_content(word: str) -> bool:
    lower = word.lower()
    if lower in QUESTION_WORDS or lower in OTHER_QUESTION_WORDS:
        return False
    return len(lower) > 2 and bool(content_words(lower))


def evidence_budget(question: str, base: int = BASE_BUDGET) -> int:
    """More distinct key terms mean more aspects to find evidence for."""
    return max(base, min(MAX_BUDGET, base + len(key_terms(question)) // 3))


def candidate_queries(
    question: str,
    section_title: str,
    section_question: str,
    model_query: str | None,
    form_query: str | None = None,
) -> list[QueryCandidate]:
    terms = key_terms(question)
    section_terms = [t for t in key_terms(f"{section_title} {section_question}") if t not in terms]
    raw = [
        QueryCandidate(question, "question"),
        QueryCandidate(" ".join(terms), "key terms"),
        QueryCandidate(" ".join([*section_terms[:6], *terms[:6]]), "section"),
    ]
    if model_query:
        raw.append(QueryCandidate(model_query, "model"))
    if form_query:
        raw.append(QueryCandidate(form_query, "form"))
    unique: dict[str, QueryCandidate] = {}
    for candidate in raw:
        key = " ".join(candidate.text.lower().split())
        if key and key not in unique:
            unique[key] = candidate
    return list(unique.values())


def passage_key(passage: Passage) -> str:
    """Identity of a passage across searches: its page and its opening words."""
    return f"{passage.url}#{opening(passage.text)}"


def opening(text: str) -> str:
    return " ".join(text.split()[:24])


def read_checker(excerpts: dict[str, str]) -> Callable[[Passage], bool]:
    """Whether a passage was read before, from what the run's sources hold (url → excerpt)."""
    squashed = {url: " ".join(text.split()) for url, text in excerpts.items()}
    return lambda p: p.url in squashed and opening(p.text) in squashed[p.url]


def gather(
    search: Callable[[str, int, int], SearchOutcome],
    candidates: list[QueryCandidate],
    wanted: Iterable[str],
    is_read: Callable[[Passage], bool],
    budget: int,
    *,
    per_page: int = 3,
    depth: int = SEARCH_DEPTH,
) -> Gathered:
    """Search every candidate `depth` deep, weigh it by feedback, fuse, and keep `budget` new
    passages.

    `search(query, k, per_document)`. When the usual depth finds fewer than half the budget
    in new passages (a later step over a small corpus, where the top hits were read already),
    the candidates are searched again deeper, with more passages allowed per document."""
    gathered = _gather_at(search, candidates, wanted, is_read, budget, per_page, depth)
    if len(gathered.passages) * 2 < budget:
        deep = max(depth, DEEP_SEARCH_DEPTH)
        deeper = _gather_at(
            search, candidates, wanted, is_read, budget, per_page, deep, DEEP_PER_PAGE
        )
        if len(deeper.passages) > len(gathered.passages):
            return deeper
    return gathered


def _gather_at(
    search: Callable[[str, int, int], SearchOutcome],
    candidates: list[QueryCandidate],
    wanted: Iterable[str],
    is_read: Callable[[Passage], bool],
    budget: int,
    per_page: int,
    depth: int,
    per_document: int = 3,
) -> Gathered:
    wanted_words = content_words(" ".join(wanted))
    outcomes: list[tuple[QueryFeedback, list[Passage]]] = []
    warnings: list[str] = []
    backend = "none"
    for candidate in candidates:
        outcome = search(candidate.text, depth, per_document)
        warnings += [w for w in outcome.warnings if w not in warnings]
        backend = outcome.backend if outcome.passages else backend
        feedback = judge_query(candidate, outcome.passages, wanted_words, is_read)
        outcomes.append((feedback, outcome.passages))
    fused: dict[str, float] = {}
    by_key: dict[str, Passage] = {}
    for feedback, passages in outcomes:
        for rank, passage in enumerate(passages):
            key = passage_key(passage)
            by_key.setdefault(key, passage)
            fused[key] = fused.get(key, 0.0) + (0.05 + feedback.score) / (RRF_K + rank + 1)
    chosen: list[Passage] = []
    pages: dict[str, int] = {}
    ranked = sorted(fused, key=lambda k: -fused[k])
    # The page the queries agree on most (a feature's own manual page) is read deeper.
    top_page = by_key[ranked[0]].url if ranked else ""
    for key in ranked:
        passage = by_key[key]
        cap = TOP_PAGE_PASSAGES if passage.url == top_page else per_page
        if is_read(passage) or pages.get(passage.url, 0) >= cap:
            continue
        pages[passage.url] = pages.get(passage.url, 0) + 1
        chosen.append(passage)
        if len(chosen) == budget:
            break
    feedback = sorted((f for f, _ in outcomes), key=lambda f: -f.score)
    return Gathered(chosen, feedback, warnings, backend)


def focus_page(read_counts: dict[str, int], new: Iterable[Passage]) -> str | None:
    """The page this run has read most, this step's passages included (ties: the earlier read).

    A question about one feature is answered across that feature's own page, and the whole-corpus
    ranking only ever reaches that page's passages that repeat the question's words."""
    counts = Counter(read_counts)
    counts.update(p.url for p in new)
    most = counts.most_common(1)
    return most[0][0] if most else None


def read_closely(
    page_search: Callable[[str, str, int], SearchOutcome],
    page: str,
    question: str,
    is_read: Callable[[Passage], bool],
    taken: Iterable[Passage],
    count: int = FOCUS_PASSAGES,
) -> tuple[list[Passage], SearchOutcome]:
    """`count` more passages of `page`, the best unread ones for the question, beside `taken`
    (this step's own). `page_search(query, url, k)`. Returns them and the search's outcome
    (its skipped sources and warnings are the caller's to report)."""
    outcome = page_search(question, page, FOCUS_DEPTH)
    skip = {passage_key(p) for p in taken}
    extra: list[Passage] = []
    for passage in outcome.passages:
        if len(extra) == count:
            break
        key = passage_key(passage)
        if key not in skip and not is_read(passage):
            skip.add(key)
            extra.append(passage)
    return extra, outcome


@dataclass
class StepEvidence:
    """What one search task found: the fused gathering, then the passages read closely from
    the run's most-read page (`page`)."""

    gathered: Gathered
    closer: list[Passage]
    page: str | None
    warnings: list[str]

    @property
    def passages(self) -> list[Passage]:
        return [*self.gathered.passages, *self.closer]


def search_step(
    search: Callable[[str, int, int], SearchOutcome],
    page_search: Callable[[str, str, int], SearchOutcome],
    question: str,
    candidates: list[QueryCandidate],
    wanted: Iterable[str],
    read: dict[str, str],
    budget: int,
    depth: int = SEARCH_DEPTH,
) -> StepEvidence:
    """One search task's evidence: `gather`, then `read_closely` on the page the run (`read`:
    url → one line per passage read) and this step have read most."""
    is_read = read_checker(read)
    gathered = gather(search, candidates, wanted, is_read, budget, depth=depth)
    counts = {url: max(1, len(text.splitlines())) for url, text in read.items()}
    page = focus_page(counts, gathered.passages)
    closer, outcome = (
        read_closely(page_search, page, question, is_read, gathered.passages)
        if page
        else ([], SearchOutcome())
    )
    return StepEvidence(gathered, closer, page, [*gathered.warnings, *outcome.warnings])


def judge_query(
    candidate: QueryCandidate,
    passages: list[Passage],
    wanted: set[str],
    is_read: Callable[[Passage], bool],
) -> QueryFeedback:
    top = passages[:FEEDBACK_TOP]
    if not top or not wanted:
        return QueryFeedback(candidate, 0.0, 0.0)
    relevance = sum(
        len(wanted & content_words(f"{p.title} {p.text}")) / len(wanted) for p in top
    ) / len(top)
    novelty = sum(not is_read(p) for p in top) / len(top)
    return QueryFeedback(candidate, round(relevance, 3), round(novelty, 3))


def keep_evidence(ctx, section: int, passages: list[Passage]) -> list[Evidence]:
    """Register the passages as the run's sources (a page keeps its first number and gathers
    its passages' text, which its citations are checked against) and as the section's
    evidence."""
    evidence: list[Evidence] = []
    for passage in passages:
        text = passage.text[:EVIDENCE_CHARS]
        source = ctx.store.add_source(
            ctx.run_id, url=passage.url, title=passage.title, kind=passage.kind, excerpt=text
        )
        evidence.append(Evidence(section=section, source=source.number, text=text))
    return evidence
