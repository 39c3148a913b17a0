"""The LLM-as-a-judge of TTD-DR's self-evolution: scores for helpfulness and
comprehensiveness (1–10) and a one-sentence critique, read leniently from free text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents import forms, prompts
from agents.text import clean_model_text
from ttdr.models import Stage

NEUTRAL = 5  # an unreadable score counts as the middle of the scale, neither good nor bad


@dataclass(frozen=True)
class Verdict:
    helpfulness: int
    comprehensiveness: int
    critique: str

    @property
    def score(self) -> float:
        return (self.helpfulness + self.comprehensiveness) / 2


def judge(ctx, component: str, question: str, output: str) -> Verdict:
    """A model that can infill fills the verdict form (scores and critique are the only
    generated text, validated); one that can only chat is asked in free text."""
    editor = ctx.editor_for(Stage.judge)
    if editor is not None:
        values = ctx.fill(Stage.judge, editor, forms.verdict_form(question, component, output))
        entry = forms.verdict_entry(values)
        if entry is None:  # unreadable scores count as the middle of the scale, as below
            return Verdict(NEUTRAL, NEUTRAL, values.get("critique", "")[:300])
        return Verdict(entry.helpfulness, entry.comprehensiveness, entry.critique)
    prompt = prompts.JUDGE.format(question=question, component=component, output=output[:2000])
    text = ctx.write(Stage.judge, prompts.chat(prompt), max_new_tokens=64, temperature=0.0)
    return parse_verdict(text)


def parse_verdict(text: str) -> Verdict:
    text = clean_model_text(text)
    return Verdict(
        helpfulness=_score(text, "helpful"),
        comprehensiveness=_score(text, "comprehensive"),
        critique=_critique(text),
    )


def _score(text: str, label: str) -> int:
    match = re.search(rf"{label}\w*\W{{0,3}}(\d{{1,2}})", text, re.IGNORECASE)
    value = int(match.group(1)) if match else NEUTRAL
    return value if 1 <= value <= 10 else NEUTRAL


def _critique(text: str) -> str:
    match = re.search(r"critique\W{0,3}(.+)", text, re.IGNORECASE)
    return " ".join(match.group(1).split())[:300] if match else ""
