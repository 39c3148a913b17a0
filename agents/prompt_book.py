"""Self-evolving prompts across runs (TTD-DR's component prompts as a population).

Each evolving component's prompt is stored as versions with a parent, a fitness (the mean judge
score of the outputs it produced) and a use count. A run takes the fittest version, or with
probability `exploration` an untried or random one; after the run, the judge's sharpest
critique of a component becomes a mutated child that competes in later runs. Mutations only
add guidance lines, so a child keeps every template field of its parent.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from agents import prompts
from ttdr.recording import PromptPopulation, PromptVersion

SEEDS: dict[str, str] = {
    "plan": prompts.PLAN,
    "questions": prompts.SEARCH_QUERY,
    "answer": prompts.ANSWER,
    "report": prompts.SUMMARY,
}
GUIDANCE = "Also: "
MAX_GUIDANCE_LINES = 3
MAX_POPULATION = 8  # per component; the least fit judged versions make room


@dataclass(frozen=True)
class ChosenPrompt:
    id: int
    component: str
    text: str


class PromptBook:
    def __init__(self, store: PromptPopulation, *, seed: int = 0, exploration: float = 0.2) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.exploration = exploration

    def choose(self) -> dict[str, ChosenPrompt]:
        return {component: self._choose(component) for component in SEEDS}

    def load(self, ids: dict[str, int]) -> dict[str, ChosenPrompt]:
        """The versions a run chose before (a resumed run keeps its prompts)."""
        chosen = {}
        for component in SEEDS:
            row = self.store.get(ids[component]) if component in ids else None
            chosen[component] = _chosen(row) if row else self._choose(component)
        return chosen

    def _choose(self, component: str) -> ChosenPrompt:
        versions = self.store.versions(component) or [self.store.seed(component, SEEDS[component])]
        untried = [v for v in versions if v.uses == 0]
        if untried and self.rng.random() < self.exploration:
            return _chosen(self.rng.choice(untried))
        scored = [v for v in versions if v.fitness is not None]
        best = max(scored, key=lambda v: (v.fitness, -v.id)) if scored else versions[0]
        return _chosen(best)

    def mutate(self, chosen: ChosenPrompt, critique: str) -> PromptVersion | None:
        """A child of `chosen` that also asks for what the critique found missing."""
        advice = _as_guidance(critique)
        if not advice or advice in chosen.text:
            return None
        lines = chosen.text.split("\n")
        guidance = [i for i, line in enumerate(lines) if line.startswith(GUIDANCE)]
        if len(guidance) >= MAX_GUIDANCE_LINES:
            del lines[guidance[0]]
        text = "\n".join([*lines, GUIDANCE + advice])
        if _fields(text) != _fields(SEEDS[chosen.component]):
            return None
        child = self.store.add(chosen.component, text, parent_id=chosen.id, note="from critique")
        self._prune(chosen.component, keep={chosen.id, child.id})
        return child

    def _prune(self, component: str, keep: set[int]) -> None:
        versions = self.store.versions(component)
        judged = [
            v for v in versions if v.fitness is not None and v.note != "seed" and v.id not in keep
        ]
        for worst in sorted(judged, key=lambda v: v.fitness)[
            : max(0, len(versions) - MAX_POPULATION)
        ]:
            self.store.remove(worst.id)


def _chosen(row: PromptVersion) -> ChosenPrompt:
    return ChosenPrompt(id=row.id, component=row.component, text=row.text)


def _as_guidance(critique: str) -> str:
    """One plain sentence, without braces that would break the template."""
    sentence = re.split(r"(?<=[.!?])\s", " ".join(critique.split()), maxsplit=1)[0]
    sentence = sentence.replace("{", "(").replace("}", ")").strip()
    return sentence[:160] if len(sentence.split()) >= 3 else ""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
