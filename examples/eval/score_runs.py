"""Score runs that are already in a history database against the eval set's key facts.

`ttdr eval` scores its own runs as it goes; this scores runs made some other way, such as by
an older ttdr whose eval knew no facts (the "before" column of a before/after table):

    TTDR_HOME=HOME python examples/eval/score_runs.py examples/eval/questions.jsonl \
        OUT/eval.json [MORE/eval.json ...]

It prints one JSON line per run and a mean per split.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from ttdr.config import Settings
from ttdr.evaluation import read_questions
from ttdr.fact_recall import score_item
from ttdr.store import Store


def main(questions_file: Path, eval_files: list[Path]) -> None:
    items = {item.question: item for item in read_questions(questions_file)}
    store = Store(Settings().db_path)
    scored: list[dict] = []
    for eval_file in eval_files:
        for row in json.loads(eval_file.read_text(encoding="utf-8"))["rows"]:
            item = items.get(row["question"])
            if item is None or not item.facts or row["status"] != "done":
                continue
            run = store.get_run(row["run_id"])
            report = store.report(row["run_id"])
            stages = {f"R{d.iteration}": d.text for d in run.drafts_list}
            stages["answers"] = "\n\n".join(qa.answer for qa in run.qa_pairs)
            scores = score_item(
                item,
                report=report.body if report else "",
                passages=[(s.url, s.excerpt) for s in run.sources_list],
                stages=stages,
            )
            line = {
                "id": item.id,
                "split": item.split,
                "wall_s": row["wall_s"],
                "sourced_share": row.get("sourced_share"),
                "citation_validity": row.get("citation_validity"),
                **{k: v for k, v in scores.items() if k != "verdicts"},
            }
            scored.append(line)
            print(json.dumps(line))
    for split in sorted({s["split"] for s in scored}):
        rows = [s for s in scored if s["split"] == split]
        means = {
            key: round(statistics.fmean(r[key] for r in rows if r[key] is not None), 3)
            for key in (
                "fact_recall",
                "evidence_recall",
                "page_recall",
                "citation_validity",
                "sourced_share",
                "wall_s",
            )
            if any(r[key] is not None for r in rows)
        }
        print(json.dumps({"split": split, "questions": len(rows), **means}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
