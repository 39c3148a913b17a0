"""Component-wise self-evolution (TTD-DR §3.3): variants → judge → revise with the critique
(k rounds) → merge. Any component (plan, questions, answers, report) plugs in with three small
functions: write a variant, improve one with a critique, and merge the survivors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agents import prompts
from agents.judge import Verdict, judge
from agents.text import clean_model_text
from ttdr.models import EventKind, Stage

VARIANT_TEMPERATURE = 0.8  # extra variants explore; the first keeps the run's temperature


@dataclass
class Candidate:
    text: str
    verdict: Verdict


@dataclass
class Evolved:
    text: str
    candidates: list[Candidate] = field(default_factory=list)


def evolve(
    ctx,
    component: str,
    question: str,
    write: Callable[[float, int], str],
    *,
    merge: Callable[[list[Candidate]], str] | None = None,
    iteration: int | None = None,
) -> Evolved:
    """Run self-evolution when the run enables it for `component`; else write once."""
    config = ctx.config
    if component not in config.evolving:
        return Evolved(text=write(config.temperature, config.seed))
    candidates = []
    for index in range(config.variants):
        temperature = config.temperature if index == 0 else VARIANT_TEMPERATURE
        text = write(temperature, config.seed + index)
        candidates.append(Candidate(text, judge(ctx, component, question, text)))
    for _ in range(config.evolution_rounds):
        candidates = [improve(ctx, component, question, c) for c in candidates]
    scores = ", ".join(f"{c.verdict.score:.1f}" for c in candidates)
    ctx.emit(
        Stage.judge,
        EventKind.finished,
        f"Self-evolution of the {component}: {len(candidates)} variants scored {scores}",
        iteration=iteration,
        component=component,
        scores=[c.verdict.score for c in candidates],
        critiques=[c.verdict.critique for c in candidates],
    )
    ranked = sorted(candidates, key=lambda c: c.verdict.score, reverse=True)
    evolved = Evolved(text=(merge or _pick_best)(ranked), candidates=ranked)
    ctx.record_verdict(component, ranked[0].verdict)
    return evolved


def improve(ctx, component: str, question: str, candidate: Candidate) -> Candidate:
    """One revision with the critique; kept only if the judge likes it at least as much."""
    if not candidate.verdict.critique:
        return candidate
    prompt = prompts.IMPROVE.format(
        question=question,
        component=component,
        output=candidate.text,
        critique=candidate.verdict.critique,
    )
    text = clean_model_text(
        ctx.write(Stage.judge, prompts.chat(prompt)), instruction=prompts.IMPROVE
    )
    if not text:
        return candidate
    revised = Candidate(text, judge(ctx, component, question, text))
    return revised if revised.verdict.score >= candidate.verdict.score else candidate


def _pick_best(ranked: list[Candidate]) -> str:
    return ranked[0].text
