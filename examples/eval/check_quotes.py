"""Check that every fact's quote in questions.jsonl is on its page, and whether ttdr keeps it.

    cd /work/main && .venv/bin/python examples/eval/check_quotes.py [--verbose] [--show PAGE]

For each fact: is the quote in the page's visible HTML text (whitespace collapsed, case-sensitive)?
And is it in the text ttdr's own extractor (`backends.search.extract.extract_document`) makes of
that page? The first must hold for every quote (exit 1 otherwise); the second tells which facts
the current extraction loses before retrieval can even see them. Pages are named relative to
examples/eval/corpora/<corpus>/ (run fetch_corpora.sh first).

--show PAGE prints a page's visible text (PAGE as corpus/path, e.g. git/git-rebase.html), which
is what quotes must be copied from.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPORA = HERE / "corpora"
QUESTIONS = HERE / "questions.jsonl"

# Elements whose boundaries separate words in the rendered page; text_content() would glue
# "<dt>foo</dt><dd>bar</dd>" into "foobar".
_BLOCK_TAGS = frozenset(
    (  # noqa: SIM905 (a word list reads better than 36 quoted strings)
        "address article aside blockquote br caption dd div dl dt figcaption figure footer h1 h2 "
        "h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead tr ul"
    ).split()
)
_INVISIBLE_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template"})


def normalise(text: str) -> str:
    """Collapse every run of whitespace (incl. non-breaking spaces) to one space."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


# The HTML structure a quote sits in, by the nearest enclosing element of each kind.
_STRUCTURES = (
    ("list", frozenset({"li", "ul", "ol"})),
    ("definition list", frozenset({"dd", "dt", "dl"})),
    ("table", frozenset({"td", "th", "tr", "tbody", "thead", "table"})),
    ("preformatted", frozenset({"pre"})),
)


def _tag(element) -> str:
    return element.tag.lower() if isinstance(element.tag, str) else ""


def _element_text(element, texts: dict | None = None) -> str:
    """Visible text of one element's subtree (without its tail); fills `texts` per element."""
    tag = _tag(element)
    if tag in _INVISIBLE_TAGS or not tag:  # comments, processing instructions
        return ""
    block = tag in _BLOCK_TAGS
    parts = [" "] if block else []
    if element.text:
        parts.append(element.text)
    for child in element:
        parts.append(_element_text(child, texts))
        if child.tail:
            parts.append(child.tail)
    if block:
        parts.append(" ")
    text = "".join(parts)
    if texts is not None:
        texts[element] = text
    return text


def _parse(data: bytes):
    import lxml.html

    return lxml.html.document_fromstring(data)


def visible_text(data: bytes) -> str:
    """The text a browser shows: no head/script/style, a space at each block boundary."""
    return normalise(_element_text(_parse(data)))


class Page:
    """One corpus page: its visible text, ttdr's text of it, and where a quote sits."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        root = _parse(data)
        texts: dict = {}
        self.text = normalise(_element_text(root, texts))
        self._texts = {element: normalise(text) for element, text in texts.items()}
        self.ttdr = ttdr_text(data, path.name)
        self._ttdr_words = " " + " ".join(_words(self.ttdr)) + " "

    def structure(self, quote: str) -> str:
        """list / definition list / table / preformatted / paragraph: the nearest structural
        element around the smallest element whose text holds the whole quote."""
        holders = [e for e, text in self._texts.items() if quote in text]
        if not holders:
            return "?"
        element = min(holders, key=lambda e: len(self._texts[e]))
        while element is not None:
            for name, tags in _STRUCTURES:
                if _tag(element) in tags:
                    return name
            element = element.getparent()
        return "paragraph"

    def in_ttdr(self, quote: str) -> str:
        """verbatim, words (same words in order, punctuation or markup differs) or lost."""
        if quote in self.ttdr:
            return "verbatim"
        if " " + " ".join(_words(quote)) + " " in self._ttdr_words:
            return "words"
        return "lost"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def ttdr_text(data: bytes, name: str) -> str:
    """What ttdr's index stores for this page ('' when it cannot extract it)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from backends.search.extract import ExtractionError, extract_document

    try:
        return normalise(extract_document(data, name=name).text)
    except ExtractionError:
        return ""


def load_questions(path: Path) -> list[dict]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                questions.append(json.loads(line))
            except json.JSONDecodeError as error:
                sys.exit(f"{path.name}:{number}: not JSON ({error})")
    return questions


def check_format(questions: list[dict]) -> list[str]:
    """Shape problems: missing keys, duplicate ids, quote length outside 8-40 words."""
    problems, seen = [], set()
    for question in questions:
        qid = question.get("id", "?")
        for key in ("id", "corpus", "split", "question", "facts"):
            if key not in question:
                problems.append(f"{qid}: missing {key!r}")
        if qid in seen:
            problems.append(f"{qid}: duplicate id")
        seen.add(qid)
        if question.get("split") not in {"dev", "heldout"}:
            problems.append(f"{qid}: split must be dev or heldout")
        facts = question.get("facts", [])
        if not 6 <= len(facts) <= 10:
            problems.append(f"{qid}: {len(facts)} facts (want 6-10)")
        for index, fact in enumerate(facts, 1):
            for key in ("fact", "quote", "page"):
                if not fact.get(key):
                    problems.append(f"{qid} fact {index}: missing {key!r}")
            words = len(normalise(fact.get("quote", "")).split())
            if not 8 <= words <= 40:
                problems.append(f"{qid} fact {index}: quote has {words} words (want 8-40)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--verbose", "-v", action="store_true", help="list every quote")
    parser.add_argument("--show", metavar="PAGE", help="print visible text of corpus/path")
    args = parser.parse_args()

    if args.show:
        print(visible_text((CORPORA / args.show).read_bytes()))
        return 0

    questions = load_questions(args.questions)
    problems = check_format(questions)
    pages: dict[Path, Page] = {}
    # corpus -> counts of: quotes, html, verbatim, words, lost
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_structure: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reformatted: list[str] = []
    lost: list[str] = []

    for question in questions:
        corpus = question.get("corpus", "?")
        for index, fact in enumerate(question.get("facts", []), 1):
            label = f"{question.get('id', '?')} fact {index} ({fact.get('page')})"
            path = CORPORA / corpus / fact.get("page", "")
            totals[corpus]["quotes"] += 1
            if not path.is_file():
                problems.append(f"{label}: no such page {path.relative_to(HERE)}")
                continue
            if path not in pages:
                pages[path] = Page(path)
            page = pages[path]
            quote = normalise(fact.get("quote", ""))
            if quote not in page.text:
                problems.append(f"{label}: quote not in page text: {quote!r}")
                if args.verbose:
                    print(f"[not in HTML] {label}: {quote[:70]}")
                continue
            totals[corpus]["html"] += 1
            structure = page.structure(quote)
            kept = page.in_ttdr(quote)
            totals[corpus][kept] += 1
            by_structure[structure]["quotes"] += 1
            by_structure[structure][kept] += 1
            if kept == "words":
                reformatted.append(f"{label} [{structure}]: {quote[:90]!r}")
            elif kept == "lost":
                lost.append(f"{label} [{structure}]: {quote!r}")
            if args.verbose:
                print(f"[{kept:<8}] [{structure}] {label}: {quote[:70]}")

    if reformatted:
        print(
            f"\nIn ttdr's extraction only with other punctuation/markup between the words "
            f"({len(reformatted)}):"
        )
        for line in reformatted:
            print(f"  {line}")
    if lost:
        print(f"\nLost by ttdr's extraction ({len(lost)}):")
        for line in lost:
            print(f"  {line}")
    if problems:
        print(f"\nProblems ({len(problems)}):")
        for line in problems:
            print(f"  {line}")

    header = "quotes  in HTML  ttdr verbatim  ttdr same words  ttdr lost"
    print(f"\n{'corpus':<16} questions  {header}")
    rows = [(corpus, totals[corpus]) for corpus in sorted(totals)]
    total: dict[str, int] = defaultdict(int)
    for _, counts in rows:
        for key, value in counts.items():
            total[key] += value
    for name, counts in [*rows, ("total", total)]:
        count = sum(1 for q in questions if name in ("total", q.get("corpus")))
        print(
            f"{name:<16} {count:>9}  {counts['quotes']:>6}  {counts['html']:>7}  "
            f"{counts['verbatim']:>13}  {counts['words']:>15}  {counts['lost']:>9}"
        )
    print(f"\n{'structure':<16} {'':>9}  {header}")
    for name in sorted(by_structure):
        counts = by_structure[name]
        print(
            f"{name:<16} {'':>9}  {counts['quotes']:>6}  {counts['quotes']:>7}  "
            f"{counts['verbatim']:>13}  {counts['words']:>15}  {counts['lost']:>9}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
