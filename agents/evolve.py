"""Component-wise self-evolution (TTD-DR §3.3): variants → judge → revise with the critique
(k rounds) → merge. Any component (plan, questions, answers, report) plugs in with three small
functions: write a variant, improve one with a critique, and merge the survivors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agents import prompts
from agents.judge import NEUTRAL, Verdict, judge
from agents.text import clean_model_text
from ttdr.events import Judged, JudgeFallback
from ttdr.models import EventKind, Stage

VARIANT_TEMPERATURE = 0.8  # extra variants explore; the first keeps the run's temperature
TIE = 0.5  # score spread below which the judge is taken not to discriminate


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
    signal: Callable[[str], float] | None = None,
) -> Evolved:
    """Run self-evolution when the run enables it for `component`; else write once.

    The judge is checked: when it gives every variant the same score it cannot tell them
    apart, so the variants are ranked by `signal` (a measurable property such as the share of
    supported sentences) instead, no revise round is spent on its critiques, and later
    components of the run skip the judge (and, without a signal, the extra variants)."""
    config = ctx.config
    if component not in config.evolving or (ctx.judge_blind and signal is None):
        return Evolved(text=write(config.temperature, config.seed))
    texts = [
        write(config.temperature if index == 0 else VARIANT_TEMPERATURE, config.seed + index)
        for index in range(config.variants)
    ]
    if ctx.judge_blind:
        return _rank_by_signal(ctx, component, texts, signal, iteration, merge, judged=False)
    candidates = [Candidate(text, judge(ctx, component, question, text)) for text in texts]
    scores = [c.verdict.score for c in candidates]
    if len(candidates) > 1 and max(scores) - min(scores) < TIE:
        ctx.judge_blind = True
        # The level is still a measurement of the prompt (its fitness across runs); only the
        # choice between these variants is left to the signal.
        ctx.record_verdict(component, candidates[0].verdict)
        if signal is not None:
            return _rank_by_signal(ctx, component, texts, signal, iteration, merge, judged=True)
        ctx.emit(
            Stage.judge,
            EventKind.warning,
            f"The judge scored every {component} variant {scores[0]:.1f}: it cannot tell them "
            "apart, so the first is kept and later self-evolution skips the judge",
            iteration=iteration,
            payload=JudgeFallback(component=component),
        )
        return Evolved(text=texts[0], candidates=candidates)
    for _ in range(config.evolution_rounds):
        candidates = [improve(ctx, component, question, c) for c in candidates]
    listed = ", ".join(f"{c.verdict.score:.1f}" for c in candidates)
    ctx.emit(
        Stage.judge,
        EventKind.finished,
        f"Self-evolution of the {component}: {len(candidates)} variants scored {listed}",
        iteration=iteration,
        payload=Judged(
            component=component,
            scores=[c.verdict.score for c in candidates],
            critiques=[c.verdict.critique for c in candidates],
        ),
    )
    ranked = sorted(candidates, key=lambda c: c.verdict.score, reverse=True)
    evolved = Evolved(text=(merge or _pick_best)(ranked), candidates=ranked)
    ctx.record_verdict(component, ranked[0].verdict)
    return evolved


def _rank_by_signal(ctx, component, texts, signal, iteration, merge, *, judged: bool) -> Evolved:
    values = [signal(text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: -values[i])
    why = "scored every variant alike" if judged else "could not tell variants apart earlier"
    ctx.emit(
        Stage.judge,
        EventKind.warning,
        f"The judge {why}; the {component} variants are ranked by a measurable signal "
        f"instead ({', '.join(f'{values[i]:.2f}' for i in order)})",
        iteration=iteration,
        payload=JudgeFallback(component=component, signal=[values[i] for i in order]),
    )
    neutral = Verdict(NEUTRAL, NEUTRAL, "")
    ranked = [Candidate(texts[i], neutral) for i in order]
    return Evolved(text=(merge or _pick_best)(ranked), candidates=ranked)


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
