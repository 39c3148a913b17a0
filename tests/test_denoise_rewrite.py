"""The denoising step rewrites a section in place when its generator is an `Editor`, and asks a
generator that only chats to rewrite it by prompt: the capability decides, not a lookup."""

from __future__ import annotations

import pytest

from agents import prompts
from agents.context import ResearchContext
from agents.revise import rewrite_span
from agents.state import render_draft, section_spans
from agents.text import clean_model_text
from backends.llm.engine import DiffusionEngine
from backends.llm.protocol import Editor, Span
from backends.llm.registry import load_generator
from backends.llm.tiny import write_tiny_checkpoint
from ttdr.models import Plan, PlanSection, ResearchConfig, Stage

QUESTION = "How do tides work?"
PLAN = Plan(
    sections=[
        PlanSection(title="Gravity", question="Why does the Moon pull the oceans?"),
        PlanSection(title="Spring tides", question="When are tides strongest?"),
    ]
)
SECTIONS = ["The Moon pulls the oceans toward it.", "Tides are strongest at new moon."]
EVIDENCE = "Spring tides happen when the Sun and Moon align [2]."
CONFIG = ResearchConfig(section_tokens=12)


class ChatOnly:
    """A real generator that only chats, as an OpenAI-compatible server does: the engine's
    `info` and `generate`, none of its editing calls."""

    def __init__(self, engine: DiffusionEngine) -> None:
        self._engine = engine

    @property
    def info(self):
        return self._engine.info

    def generate(self, messages, max_new_tokens, *, temperature=0.0, seed=None, stop=None):
        return self._engine.generate(
            messages, max_new_tokens, temperature=temperature, seed=seed, stop=stop
        )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DiffusionEngine:
    """Tiny SDAR weights (seed 5) that write visible text, so the two paths differ."""
    root = tmp_path_factory.mktemp("denoise")
    folder = write_tiny_checkpoint(root / "sdar", "sdar", seed=5)
    return load_generator(str(folder), root / "cache", dtype="float32")


def context(generator) -> ResearchContext:
    # Rewriting a span touches neither retrieval nor the store.
    return ResearchContext(
        run_id="r", config=CONFIG, generator=generator, retriever=None, store=None
    )


def by_edit(engine: DiffusionEngine) -> tuple[str, int]:
    """What the in-place rewrite of section 1 gives, and its forward passes."""
    start, end = section_spans(PLAN, SECTIONS)[1]
    instruction = prompts.REVISE_INSTRUCTION.format(
        question=QUESTION, title="Spring tides", evidence=EVIDENCE
    )
    span = Span(start, end, length=CONFIG.section_tokens)
    edit = engine.rewrite(render_draft(PLAN, SECTIONS), span, instruction)
    text = clean_model_text(
        edit.replacements[0], heading="Spring tides", instruction=prompts.REVISE_INSTRUCTION
    )
    return text, edit.stats.forward_passes


def by_prompt(engine: DiffusionEngine) -> str:
    """What the chat rewrite of section 1 gives."""
    prompt = prompts.REVISE_SECTION.format(
        question=QUESTION, title="Spring tides", section_text=SECTIONS[1], evidence=EVIDENCE
    )
    reply = engine.generate(prompts.chat(prompt), CONFIG.section_tokens + 64).text
    return clean_model_text(reply, heading="Spring tides", instruction=prompts.REVISE_SECTION)


def test_an_editor_rewrites_the_section_in_place(engine: DiffusionEngine) -> None:
    expected, forwards = by_edit(engine)
    assert expected != by_prompt(engine)  # else this test could not tell the paths apart
    ctx = context(engine)
    assert rewrite_span(ctx, QUESTION, PLAN, SECTIONS, 1, EVIDENCE) == expected
    assert ctx.stage_stats[Stage.revise.value].forward_passes == forwards


def test_a_generator_that_only_chats_is_asked_by_prompt(engine: DiffusionEngine) -> None:
    chat_only = ChatOnly(engine)
    assert not isinstance(chat_only, Editor)
    ctx = context(chat_only)
    assert rewrite_span(ctx, QUESTION, PLAN, SECTIONS, 1, EVIDENCE) == by_prompt(engine)
    assert ctx.stage_stats[Stage.revise.value].calls == 1
