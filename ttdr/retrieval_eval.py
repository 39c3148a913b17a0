"""Evidence recall of retrieval alone: the search steps a run takes, without the model.

Retrieval decides what a report can ever state, and a full eval costs minutes of model time per
question; this replays each question's search tasks (the question-anchored candidates, the fused
gathering and the close reading of the most-read page, exactly as `agents/answer.py` runs them)
over the question's own corpus in seconds, and scores whether a passage holding each key fact's
quote was read. The model's own query and the plan's section queries are what it leaves out, so
a full run reads a little more (or other) than this.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from ttdr.config import Settings
from ttdr.evaluation import corpus_folder, read_questions
from ttdr.fact_recall import holds


def _positional(retriever):
    """`search(query, k, per_document)`, the seam the gathering takes."""
    return lambda query, k, per_document: retriever.search(query, k, per_document=per_document)


def retrieval_recall(questions_file: Path, settings: Settings, steps: int = 3) -> dict[str, Any]:
    """Per question: facts whose quote a read passage holds, passages read, pages read; and
    the mean evidence recall per split. Corpora are indexed into the settings' index first."""
    from agents.evidence import (
        candidate_queries,
        evidence_budget,
        opening,
        search_step,
    )
    from backends.search.retriever import Retriever
    from ttdr.api import open_index

    items = read_questions(questions_file)
    index = open_index(settings)
    folders = [corpus_folder(questions_file, item) for item in items]
    for folder in dict.fromkeys(f for f in folders if f):
        index.add(folder)  # once per corpus: adding reads and hashes every file
    rows = []
    for item, folder in zip(items, folders, strict=True):
        scope = [folder] if folder else []
        retriever = Retriever("local", index, scope=scope)
        read: dict[str, str] = {}
        passages = []
        for _ in range(steps):
            step = search_step(
                _positional(retriever),
                retriever.page_passages,
                item.question,
                candidate_queries(item.question, "", "", None),
                [item.question],
                read,
                evidence_budget(item.question),
                depth=settings.search_results,
            )
            for passage in step.passages:
                read[passage.url] = f"{read.get(passage.url, '')}\n{opening(passage.text)}".strip()
            passages += step.passages
        found = sum(any(holds(fact, p.text) for p in passages) for fact in item.facts)
        rows.append(
            {
                "id": item.id,
                "split": item.split,
                "facts": len(item.facts),
                "found": found,
                "evidence_recall": round(found / len(item.facts), 3) if item.facts else None,
                "passages": len(passages),
                "pages": len({p.url for p in passages}),
            }
        )
    by_split: dict[str, dict[str, Any]] = {}
    for split in sorted({row["split"] for row in rows}):
        scored = [r["evidence_recall"] for r in rows if r["split"] == split]
        scored = [s for s in scored if s is not None]
        by_split[split] = {
            "questions": len(scored),
            "evidence_recall": round(statistics.fmean(scored), 3) if scored else None,
        }
    return {"steps": steps, "rows": rows, "by_split": by_split}
