"""`ttdr eval`: research a set of questions and tabulate what each run cost and delivered.

Per question: time per stage, tokens and forward passes, sources, the citation validity rate
(cited sentences whose source supports them, from the report's citation ledger), plan
coverage (plan sections with at least one citation) and the sourced share (the report's
sentences that cite a source, of all its sentences). `--compare` adds a pairwise judge
verdict against an earlier run set, asked in both orders so the judge's position bias cancels.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ttdr.api import Researcher
from ttdr.errors import TtdrError

COMPARE_PROMPT = (
    "Question: {question}\n\nReport A:\n{a}\n\nReport B:\n{b}\n\n"
    "Which report answers the question better: more helpful, more complete, better supported "
    "by its sources? Reply with A or B."
)
REPORT_CHARS = 1500


class EvalInputError(TtdrError):
    pass


@dataclass
class EvalRow:
    question: str
    run_id: str | None
    status: str
    wall_s: float = 0.0
    stage_wall_s: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    forward_passes: int = 0
    sources: int = 0
    references: int = 0
    citation_validity: float | None = None
    plan_coverage: float | None = None
    sourced_share: float | None = None  # sentences that cite a source, of all sentences
    error: str | None = None


def read_questions(path: Path) -> list[str]:
    if not path.is_file():
        raise EvalInputError(f'{path} does not exist: give a JSONL file of {{"question": ...}}')
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question = item["question"] if isinstance(item, dict) else str(item)
        except (json.JSONDecodeError, KeyError) as exc:
            raise EvalInputError(
                f'{path}:{number}: expected {{"question": "..."}} ({exc})'
            ) from exc
        questions.append(str(question))
    if not questions:
        raise EvalInputError(f"{path} holds no questions")
    return questions


def evaluate(researcher: Researcher, questions: list[str], *, label: str) -> dict[str, Any]:
    rows = [evaluate_one(researcher, q) for q in questions]
    done = [r for r in rows if r.status == "done"]

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.fmean(present), 3) if present else None

    config = researcher.config
    return {
        "label": label,
        "config": {
            "model": config.model,
            "iterations": config.iterations,
            "questions_per_step": config.questions_per_step,
            "denoise": config.denoise,
            "evolve": config.evolving,
            "search": config.search,
            "judge_model": config.judge_model or config.model,
        },
        "rows": [asdict(r) for r in rows],
        "summary": {
            "questions": len(rows),
            "done": len(done),
            "mean_wall_s": mean([r.wall_s for r in done]),
            "mean_tokens": mean([r.tokens for r in done]),
            "mean_sources": mean([r.sources for r in done]),
            "mean_citation_validity": mean([r.citation_validity for r in done]),
            "mean_plan_coverage": mean([r.plan_coverage for r in done]),
            "mean_sourced_share": mean([r.sourced_share for r in done]),
        },
    }


def evaluate_one(researcher: Researcher, question: str) -> EvalRow:
    try:
        report = researcher.run(question)
    except Exception as exc:  # a failed question is a row of the table, not the end of it
        failed = researcher.history(limit=1)
        return EvalRow(
            question=question,
            run_id=failed[0].id if failed else None,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
        )
    run = researcher.get_run(report.run_id)
    stats = run.stats
    citations = stats.get("citations", {})
    sections = citations.get("sections") or 0
    return EvalRow(
        question=question,
        run_id=run.id,
        status=run.status.value,
        wall_s=stats.get("wall_s", 0.0),
        stage_wall_s={k: v["wall_s"] for k, v in stats.get("stages", {}).items()},
        tokens=stats.get("generation", {}).get("tokens", 0),
        forward_passes=stats.get("generation", {}).get("forward_passes", 0),
        sources=len(run.sources_list),
        references=len(report.references),
        citation_validity=citations.get("validity_rate"),
        plan_coverage=round(citations.get("sections_with_citations", 0) / sections, 3)
        if sections
        else None,
        sourced_share=round(citations["sentences_cited"] / citations["sentences"], 3)
        if citations.get("sentences")
        else None,
    )


def compare(researcher: Researcher, current: dict, baseline: dict) -> dict[str, Any]:
    """Pairwise verdicts, current (A) against baseline (B), each pair judged in both orders."""
    generator = researcher._load_judge()
    previous = {row["question"]: row for row in baseline["rows"] if row["status"] == "done"}
    verdicts = []
    for row in current["rows"]:
        other = previous.get(row["question"])
        if row["status"] != "done" or other is None:
            continue
        ours = _report_text(researcher, row["run_id"])
        theirs = _report_text(researcher, other["run_id"])
        first = _judge_pair(generator, row["question"], ours, theirs)
        second = _judge_pair(generator, row["question"], theirs, ours)
        points = (first == "A") + (second == "B")  # ours won in each order
        outcome = "win" if points == 2 else "loss" if points == 0 else "tie"
        verdicts.append({"question": row["question"], "outcome": outcome})
    counts = {k: sum(v["outcome"] == k for v in verdicts) for k in ("win", "tie", "loss")}
    return {
        "against": baseline["label"],
        "pairs": len(verdicts),
        **counts,
        "win_rate": round((counts["win"] + counts["tie"] / 2) / len(verdicts), 3)
        if verdicts
        else None,
        "verdicts": verdicts,
    }


def _report_text(researcher: Researcher, run_id: str | None) -> str:
    report = researcher.get_report(run_id) if run_id else None
    return (report.body if report else "")[:REPORT_CHARS]


def _judge_pair(generator, question: str, a: str, b: str) -> str:
    prompt = COMPARE_PROMPT.format(question=question, a=a, b=b)
    reply = generator.generate([{"role": "user", "content": prompt}], 8).text.strip().upper()
    first = next((ch for ch in reply if ch in "AB"), "")
    return first or "?"


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"# ttdr eval: {result['label']}",
        "",
        "config: " + ", ".join(f"{k}={v}" for k, v in result["config"].items()),
        "",
        "| question | status | wall s | tokens | sources | refs | citation validity "
        "| plan coverage | sourced sentences |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['question'][:60]} | {row['status']} | {row['wall_s']:.1f} | {row['tokens']} "
            f"| {row['sources']} | {row['references']} | {_fmt(row['citation_validity'])} "
            f"| {_fmt(row['plan_coverage'])} | {_fmt(row.get('sourced_share'))} |"
        )
    summary = result["summary"]
    lines += [
        "",
        "mean: " + ", ".join(f"{k.removeprefix('mean_')}={_fmt(v)}" for k, v in summary.items()),
    ]
    # Judging is timed inside the stage it judges, so it has no wall time of its own.
    stages = sorted(
        {s for row in result["rows"] for s, wall in row["stage_wall_s"].items() if wall > 0}
    )
    if stages:
        lines += ["", "| question | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
        for row in result["rows"]:
            cells = [f"{row['stage_wall_s'].get(s, 0.0):.1f}" for s in stages]
            lines.append(f"| {row['question'][:60]} | " + " | ".join(cells) + " |")
    if "compare" in result:
        c = result["compare"]
        lines += [
            "",
            f"pairwise vs {c['against']}: {c['win']} wins, {c['tie']} ties, {c['loss']} losses "
            f"(win rate {_fmt(c['win_rate'])})",
        ]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
