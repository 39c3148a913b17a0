"""Issue 11's parts, each on real inputs: a manual page's structure survives extraction, a run
searches only its own documents, queries made from the question compete with the model's,
sections are written from evidence sentences, the judge is checked, and the eval scores facts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agents.evidence import (
    candidate_queries,
    focus_page,
    gather,
    key_terms,
    opening,
    read_checker,
    read_closely,
)
from agents.grounded import evidence_sentences, grounded_section, on_topic
from agents.plan import outline_title
from agents.text import split_sentences
from backends.search.extract import extract_document
from backends.search.local_index import LocalIndex
from backends.search.passages import split_passages
from backends.search.retriever import Retriever
from backends.search.types import Passage, SearchOutcome
from ttdr.evaluation import read_questions
from ttdr.fact_recall import EvalItem, KeyFact, score_item

FIXTURES = Path(__file__).parent / "fixtures"
MANUAL = FIXTURES / "manual" / "mod_example.html"


def manual_text() -> str:
    return extract_document(MANUAL.read_bytes(), name=MANUAL.name).text


def test_list_items_keep_their_text_and_wrapped_lines_are_rejoined() -> None:
    text = manual_text()

    assert "Startup of a worker takes under 5 milliseconds." in text
    assert "Modules that are not thread safe must not be loaded." in text
    assert (
        "The pooled design has a number of advantages that were measured on busy servers." in text
    )


def test_definitions_stay_with_their_terms_and_table_rows_with_their_labels() -> None:
    text = manual_text()

    assert "--pool-size, -p: Sets how many workers the pool keeps ready; the default is 16." in text
    assert "--drain: Finishes open requests before a worker is retired." in text
    assert "Default: | PoolIdleTimeout 300" in text


def test_headings_are_kept_and_page_furniture_is_not() -> None:
    text = manual_text()

    assert "## PoolIdleTimeout Directive" in text
    assert "## Why pooled workers" in text
    assert "Downloads" not in text and "Copyright" not in text and "FAQ" not in text
    assert "¶" not in text


def test_a_heading_starts_a_passage_that_knows_its_section(tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "ttdr.db")
    index.add(MANUAL)

    passages = index.search("PoolIdleTimeout default", 3, per_document=3)
    advantages = index.search("advantages startup milliseconds", 3, per_document=3)

    assert passages, "the directive's passage is found"
    assert passages[0].title == "Apache Module mod_example › Options"
    assert "PoolIdleTimeout 300" in passages[0].text
    assert advantages[0].title == "Apache Module mod_example › Why pooled workers"
    words = " ".join(f"word{i}" for i in range(50)) + "."
    spans = split_passages(f"## First\n\n{words}\n\n## Second\n\n{words}")
    assert [s.text.split("\n")[0] for s in spans] == ["## First", "## Second"]


def test_a_run_searches_only_the_documents_it_was_given(tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "ttdr.db")
    index.add(FIXTURES / "corpus")  # indexed for an earlier run
    index.add(MANUAL)

    scoped = Retriever("auto", index, scope=[MANUAL.parent])
    everything = Retriever("local", index)

    assert scoped.mode == "local"  # documents given: auto searches them, not the web
    hits = scoped.search("tides moon gravity workers", 8).passages
    assert hits and all(h.url == MANUAL.as_uri() for h in hits)
    assert any("tides" in h.url for h in everything.search("tides moon gravity", 8).passages)


def test_an_older_extraction_is_redone_on_the_next_add(tmp_path: Path) -> None:
    import sqlite3

    index = LocalIndex(tmp_path / "ttdr.db")
    index.add(MANUAL)
    with sqlite3.connect(tmp_path / "ttdr.db") as db:
        db.execute("UPDATE index_meta SET value = 'old' WHERE key = 'extractor'")

    report = LocalIndex(tmp_path / "ttdr.db").add(MANUAL)

    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)


def test_question_queries_compete_with_babble_and_win_by_feedback() -> None:
    pages = {
        "file:///m/autosquash.html": "--autosquash: moves fixup commits after their target.",
        "file:///m/other.html": "The answer to the first line is in a single sentence.",
    }

    def search(query: str, k: int, per_document: int) -> SearchOutcome:
        words = set(query.lower().split())
        hits = [
            Passage(url, "t", text, 1.0, "local")
            for url, text in pages.items()
            if words & set(text.lower().replace(".", "").split())
        ]
        return SearchOutcome(passages=hits[:k], backend="local")

    question = "How does git rebase --autosquash move fixup commits?"
    candidates = candidate_queries(question, "Overview", "", "The answer to the first line")
    gathered = gather(search, candidates, [question], read_checker({}), budget=1)

    assert "--autosquash" in key_terms(question)
    assert gathered.passages[0].url == "file:///m/autosquash.html"
    assert gathered.feedback[0].candidate.origin != "model"
    already = read_checker({"file:///m/autosquash.html": pages["file:///m/autosquash.html"]})
    again = gather(search, candidates, [question], already, budget=2)
    assert all(p.url != "file:///m/autosquash.html" for p in again.passages)


def test_the_most_read_page_is_read_closely_for_what_the_corpus_ranking_missed(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # The feature's page: one option per section, most of them sharing no word with the
    # question beyond the command's name.
    options = "".join(
        f"<h2>--option-{i}</h2><p>{'Some unrelated explanation here. ' * 20}{fact}</p>"
        for i, fact in enumerate(
            ["bisect exits with code 125 to skip.", "Uses BISECT_HEAD instead.", "Merges."]
            + [f"Detail number {i} of the command." for i in range(8)]
        )
    )
    (docs / "bisect.html").write_text(
        f"<html><head><title>git-bisect</title></head><body>{options}</body></html>"
    )
    (docs / "other.html").write_text(
        "<html><head><title>other</title></head><body><p>bisect once.</p></body></html>"
    )
    index = LocalIndex(tmp_path / "ttdr.db")
    index.add(docs)
    retriever = Retriever("local", index, scope=[docs])
    question = "How does git bisect skip a commit?"
    page = (docs / "bisect.html").resolve().as_uri()
    taken = retriever.page_passages(question, page, 2).passages
    read = {page: opening(taken[0].text)}

    focus = focus_page({page: 1, (docs / "other.html").resolve().as_uri(): 1}, taken[1:])
    extra, outcome = read_closely(
        retriever.page_passages, page, question, read_checker(read), taken[1:], count=4
    )

    assert focus == page  # counted this step's passages too
    assert outcome.backend == "local" and len(extra) == 4
    assert all(p.url == page for p in extra)
    keys = {opening(p.text) for p in [*taken, *extra]}
    assert len(keys) == 6  # neither what was read before nor this step's own again
    outside = Retriever("local", index, scope=[tmp_path / "elsewhere"])
    assert not outside.page_passages(question, page, 4).passages  # the run's scope holds


def test_a_section_is_built_from_evidence_sentences_with_citations() -> None:
    passage = extract_document(MANUAL.read_bytes(), name=MANUAL.name).text
    sources = {1: passage}
    invented = "Pooled workers were invented in 1850 by sailors on the Atlantic."

    body = grounded_section(
        invented,
        [(1, passage)],
        sources,
        [("What is the default pool size and idle timeout?", 1.0)],
        sentences=4,
    )
    marked = grounded_section(
        invented, [(1, passage)], sources, [("pool size", 1.0)], sentences=2, grounding="marked"
    )

    assert "1850" not in body  # strict: an unsupported sentence is removed
    assert "the default is 16. [1]" in body or "the default is 16 [1]." in body
    assert all("[1]" in s for s in body.replace("\n\n", " ").split(". ") if s.strip())
    assert "1850" in marked and "*(unsourced)*" in marked
    fragments = [s.text for s in evidence_sentences([(1, passage)])]
    assert "PoolIdleTimeout Directive: Default: PoolIdleTimeout 300." in fragments


def test_a_summary_keeps_the_model_sentences_that_answer_and_drops_true_but_unrelated_ones() -> (
    None
):
    evidence = [
        (1, "The special exit code 125 marks a commit that cannot be tested; it is skipped."),
        (1, "Exit code 0 marks the commit good, and codes 1 to 127 except 125 mark it bad."),
        (2, "You can run make test-lint to check test numbers are unique."),
        (2, "The documentation is built with asciidoc and has a print version."),
    ]
    candidates = evidence_sentences(evidence)
    question = "Which exit codes of a bisect run script mark a commit good, bad or untestable?"
    written = (
        "You can run make test-lint to check test numbers are unique [2]. "
        "The special exit code 125 marks a commit that cannot be tested; it is skipped [1]."
    )

    kept = on_topic(written, candidates, question, room=2)

    assert "125" in kept
    assert "test-lint" not in kept
    assert on_topic("", candidates, question, room=2) == ""


def test_navigation_is_not_evidence_and_a_numbered_heading_does_not_split_its_fragment() -> None:
    passage = (
        "# Chapter 4. Sharing development with others\n\nTable of Contents\n\n"
        "# Chapter 5. Rewriting history\n\nRebase moves commits elsewhere.\n\n"
        "A refspec maps remote refs to local refs for fetch and push."
    )

    texts = [s.text for s in evidence_sentences([(1, passage)])]

    assert not any("Table of Contents" in t for t in texts)
    assert "Chapter 5 Rewriting history: Rebase moves commits elsewhere." in texts
    assert all(len(split_sentences(t)) == 1 for t in texts)  # each reads as one cited sentence


def test_outline_titles_come_from_headings() -> None:
    assert outline_title("git-rebase(1) Manual Page › OPTIONS") == "git-rebase(1): Options"
    assert (
        outline_title("Apache Module mod_deflate › Enabling Compression") == "Enabling Compression"
    )


def test_fact_recall_evidence_recall_and_page_recall_are_told_apart() -> None:
    item = EvalItem(
        question="q",
        facts=[
            KeyFact(
                "default pool size 16",
                "Sets how many workers the pool keeps ready; the default is 16.",
                "mod_example.html",
            ),
            KeyFact("idle timeout 300", "PoolIdleTimeout 300", "mod_example.html"),
            KeyFact(
                "never read",
                "Workers are recycled after ten thousand requests each.",
                "mod_other.html",
            ),
        ],
    )
    passages = [(MANUAL.as_uri(), manual_text())]
    report = (
        "The pool keeps 16 workers ready by default, as it sets how many workers stay ready [1]."
    )

    scores = score_item(item, report=report, passages=passages, stages={"R0": "nothing"})

    assert scores["evidence_recall"] == round(2 / 3, 3)
    assert scores["page_recall"] == round(2 / 3, 3)
    assert scores["fact_recall"] == round(1 / 3, 3)
    assert scores["stage_fact_recall"] == {"R0": 0.0}


def test_eval_items_with_facts_and_a_missing_corpus_are_read_or_refused(tmp_path: Path) -> None:
    import pytest

    from ttdr.evaluation import EvalInputError

    good = tmp_path / "q.jsonl"
    (tmp_path / "corpora" / "manual").mkdir(parents=True)
    item = {
        "id": "m-1",
        "corpus": "manual",
        "split": "heldout",
        "question": "q?",
        "facts": [{"fact": "f", "quote": "a quote here", "page": "p.html"}],
    }
    good.write_text(json.dumps(item) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**item, "corpus": "absent"}) + "\n")

    [read] = read_questions(good)

    assert (read.id, read.split, read.facts[0].page) == ("m-1", "heldout", "p.html")
    with pytest.raises(EvalInputError, match="fetch_corpora"):
        read_questions(bad)


def test_retrieval_only_eval_scores_evidence_recall_without_a_model(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    corpus = tmp_path / "corpora" / "manual"
    corpus.mkdir(parents=True)
    shutil.copy(MANUAL, corpus / MANUAL.name)
    shutil.copytree(FIXTURES / "corpus", tmp_path / "corpora" / "other")
    facts = [
        {"fact": "16 workers", "quote": "the default is 16", "page": MANUAL.name},
        {"fact": "absent", "quote": "ships with a flux capacitor", "page": MANUAL.name},
    ]
    items = [
        {"id": "m-1", "corpus": "manual", "split": "dev", "facts": facts,
         "question": "How many workers does the mod_example pool keep ready by default?"},
        {"id": "o-1", "corpus": "other", "split": "heldout", "question": "Why are there tides?",
         "facts": [{"fact": "moon", "quote": "flux capacitor", "page": "tides.html"}]},
    ]  # fmt: skip
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(item) + "\n" for item in items))
    env = {**os.environ, "TTDR_HOME": str(tmp_path / "home")}

    done = subprocess.run(
        [sys.executable, "-m", "ttdr.cli", "eval", str(questions), "--retrieval-only",
         "--out", str(tmp_path / "out"), "-n", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "retrieval.json").read_text())
    rows = {row["id"]: row for row in result["rows"]}
    assert result["steps"] == 2
    assert (rows["m-1"]["found"], rows["m-1"]["facts"]) == (1, 2)  # one quote is in no page
    assert rows["m-1"]["evidence_recall"] == 0.5 and rows["o-1"]["evidence_recall"] == 0.0
    assert all(row["pages"] >= 1 for row in rows.values())
    assert result["by_split"] == {
        "dev": {"questions": 1, "evidence_recall": 0.5},
        "heldout": {"questions": 1, "evidence_recall": 0.0},
    }
