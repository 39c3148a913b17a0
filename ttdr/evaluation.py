"""`ttdr eval`: research a set of questions and tabulate what each run cost and delivered.

Per question: time per stage, tokens and forward passes, sources, the citation validity rate
(cited sentences whose source supports them, from the report's citation ledger), plan
coverage (plan sections with at least one citation) and the sourced share (the report's
sentences that cite a source, of all its sentences). Items that list key facts with quotes
(examples/eval/) also get fact recall, evidence recall and page recall (ttdr/fact_recall.py),
per draft version and for the report. `--compare` adds a pairwise judge verdict against an
earlier run set, asked in both orders so the judge's position bias cancels.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttdr.errors import TtdrError
from ttdr.models import GenerationTotals

if TYPE_CHECKING:  # both import the agent: loaded when an eval runs, not with the front door
    from ttdr.api import Researcher
    from ttdr.fact_recall import EvalItem

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
    unsourced_sentences: int | None = None
    fact_recall: float | None = None
    evidence_recall: float | None = None
    page_recall: float | None = None
    stage_fact_recall: dict[str, float] = field(default_factory=dict)
    facts: list[dict[str, Any]] = field(default_factory=list)
    id: str = ""
    split: str = ""
    error: str | None = None


def read_questions(path: Path) -> list[EvalItem]:
    """Items of a JSONL file: `{"question": ...}`, optionally with `facts` (each with `fact`,
    `quote`, `page`), `id`, `split`, and the documents that item's run alone searches: `corpus`
    (a folder `corpora/<corpus>` beside the file) or `docs` (a path relative to the file)."""
    from ttdr.fact_recall import EvalItem, KeyFact

    if not path.is_file():
        raise EvalInputError(f'{path} does not exist: give a JSONL file of {{"question": ...}}')
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            raw = raw if isinstance(raw, dict) else {"question": str(raw)}
            item = EvalItem(
                question=str(raw["question"]),
                facts=[
                    KeyFact(f["fact"], f["quote"], f.get("page", "")) for f in raw.get("facts", [])
                ],
                id=str(raw.get("id", "")),
                corpus=str(raw.get("corpus", "")),
                docs=str(raw.get("docs", "")),
                split=str(raw.get("split", "dev")),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalInputError(
                f'{path}:{number}: expected {{"question": "...", "facts": [...]}} ({exc})'
            ) from exc
        if item.corpus and not (path.parent / "corpora" / item.corpus).is_dir():
            raise EvalInputError(
                f"{path}:{number}: corpus {item.corpus!r} is not at "
                f"{path.parent / 'corpora' / item.corpus}: run examples/eval/fetch_corpora.sh"
            )
        if item.docs and not (path.parent / item.docs).exists():
            raise EvalInputError(f"{path}:{number}: docs {path.parent / item.docs} do not exist")
        items.append(item)
    if not items:
        raise EvalInputError(f"{path} holds no questions")
    return items


def corpus_folder(questions_file: Path, item: EvalItem) -> Path | None:
    if item.corpus:
        return (questions_file.parent / "corpora" / item.corpus).resolve()
    return (questions_file.parent / item.docs).resolve() if item.docs else None


def run_eval(
    researcher: Researcher, questions: Path, *, label: str, baseline: Path | None = None
) -> dict[str, Any]:
    """`ttdr eval`: research every question of the JSONL file `questions` with `researcher`'s
    config and score each run; with `baseline` (an earlier eval.json) also judge each report
    against the baseline's report for the same question."""
    items = read_questions(questions)
    earlier = read_baseline(baseline) if baseline is not None else None
    result = evaluate(researcher, items, label=label, questions_file=questions)
    if earlier is not None:
        result["compare"] = compare(researcher, result, earlier)
    return result


def read_baseline(path: Path) -> dict[str, Any]:
    """An earlier eval.json, read before any research starts so a wrong path costs nothing."""
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalInputError(f"cannot read the --compare file {path}: {exc}") from None
    if not isinstance(baseline, dict) or not {"label", "rows"} <= baseline.keys():
        raise EvalInputError(f"{path} is not an eval.json written by `ttdr eval`")
    return baseline


def evaluate(
    researcher: Researcher,
    items: list[EvalItem],
    *,
    label: str,
    questions_file: Path | None = None,
) -> dict[str, Any]:
    base_config = researcher.config
    rows = []
    for item in items:
        folder = corpus_folder(questions_file, item) if questions_file else None
        # An item with a corpus is researched over that corpus alone (a run is scoped to its
        # documents), whatever --docs says for the others.
        researcher.config = (
            base_config.model_copy(update={"docs": [folder], "search": "local"})
            if folder
            else base_config
        )
        rows.append(evaluate_one(researcher, item))
    researcher.config = base_config
    done = [r for r in rows if r.status == "done"]
    config = researcher.config
    summary = {"questions": len(rows), "done": len(done), **_means(done)}
    splits = sorted({r.split for r in done if r.fact_recall is not None})
    if len(splits) > 1:
        summary["by_split"] = {
            split: {
                "questions": len([r for r in done if r.split == split]),
                **_means([r for r in done if r.split == split]),
            }
            for split in splits
        }
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
        "summary": summary,
    }


MEAN_FIELDS = (
    "wall_s",
    "tokens",
    "sources",
    "citation_validity",
    "plan_coverage",
    "sourced_share",
    "unsourced_sentences",
    "fact_recall",
    "evidence_recall",
    "page_recall",
)


def _means(rows: list[EvalRow]) -> dict[str, float | None]:
    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.fmean(present), 3) if present else None

    means = {f"mean_{name}": mean([getattr(r, name) for r in rows]) for name in MEAN_FIELDS}
    stages = sorted({s for r in rows for s in r.stage_fact_recall})
    for stage in stages:
        means[f"mean_fact_recall_{stage}"] = mean([r.stage_fact_recall.get(stage) for r in rows])
    return means


def evaluate_one(researcher: Researcher, item: EvalItem) -> EvalRow:
    try:
        report = researcher.run(item.question)
    except Exception as exc:  # a failed question is a row of the table, not the end of it
        failed = researcher.history(limit=1)
        return EvalRow(
            question=item.question,
            run_id=failed[0].id if failed else None,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            id=item.id,
            split=item.split,
        )
    run = researcher.get_run(report.run_id)
    stats = run.stats
    citations = stats.citations
    generation = stats.generation or GenerationTotals()
    row = EvalRow(
        question=item.question,
        run_id=run.id,
        status=run.status.value,
        wall_s=stats.wall_s,
        stage_wall_s={name: stage.wall_s for name, stage in stats.stages.items()},
        tokens=generation.tokens,
        forward_passes=generation.forward_passes,
        sources=len(run.sources_list),
        references=len(report.references),
        citation_validity=citations.validity_rate if citations else None,
        plan_coverage=round(citations.sections_with_citations / citations.sections, 3)
        if citations and citations.sections
        else None,
        sourced_share=round(citations.sentences_cited / citations.sentences, 3)
        if citations and citations.sentences
        else None,
        unsourced_sentences=citations.sentences - citations.sentences_cited if citations else None,
        id=item.id,
        split=item.split,
    )
    if item.facts:
        from ttdr.fact_recall import score_item

        stages = {f"R{d.iteration}": d.text for d in run.drafts_list}
        stages["answers"] = "\n\n".join(qa.answer for qa in run.qa_pairs)
        scores = score_item(
            item,
            report=report.body,
            passages=[(s.url, s.excerpt) for s in run.sources_list],
            stages=stages,
        )
        row.fact_recall = scores["fact_recall"]
        row.evidence_recall = scores["evidence_recall"]
        row.page_recall = scores["page_recall"]
        row.stage_fact_recall = scores["stage_fact_recall"]
        row.facts = scores["verdicts"]
    return row


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


def eval_markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    with_facts = any(row.get("fact_recall") is not None for row in rows)
    lines = [
        f"# ttdr eval: {result['label']}",
        "",
        "config: " + ", ".join(f"{k}={v}" for k, v in result["config"].items()),
        "",
        "| question | status | wall s | tokens | sources | refs | citation validity "
        "| plan coverage | sourced sentences |"
        + (" fact recall | evidence recall | page recall |" if with_facts else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if with_facts else ""),
    ]
    for row in rows:
        name = f"{row['id']} " if row.get("id") else ""
        if row.get("split") == "heldout":
            name += "(held out) "
        line = (
            f"| {name}{row['question'][:60]} | {row['status']} | {row['wall_s']:.1f} "
            f"| {row['tokens']} | {row['sources']} | {row['references']} "
            f"| {_fmt(row['citation_validity'])} | {_fmt(row['plan_coverage'])} "
            f"| {_fmt(row.get('sourced_share'))} |"
        )
        if with_facts:
            line += (
                f" {_fmt(row.get('fact_recall'))} | {_fmt(row.get('evidence_recall'))} "
                f"| {_fmt(row.get('page_recall'))} |"
            )
        lines.append(line)
    summary = result["summary"]
    lines += ["", "mean: " + _means_line(summary)]
    for split, means in summary.get("by_split", {}).items():
        lines.append(f"mean ({split}): " + _means_line(means))
    stage_names = sorted({s for row in rows for s in row.get("stage_fact_recall", {})})
    if stage_names:
        lines += [
            "",
            "fact recall by stage (drafts R0..RT, the step answers, the report):",
            "",
            "| question | " + " | ".join(stage_names) + " | report |",
            "|---" * (len(stage_names) + 2) + "|",
        ]
        for row in rows:
            if row.get("fact_recall") is None:
                continue
            cells = [_fmt(row["stage_fact_recall"].get(s)) for s in stage_names]
            label = row.get("id") or row["question"][:40]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(row['fact_recall'])} |")
    # Judging is timed inside the stage it judges, so it has no wall time of its own.
    stages = sorted({s for row in rows for s, wall in row["stage_wall_s"].items() if wall > 0})
    if stages:
        lines += ["", "| question | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
        for row in rows:
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


def _means_line(means: dict[str, Any]) -> str:
    return ", ".join(f"{k.removeprefix('mean_')}={_fmt(v)}" for k, v in means.items())


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
