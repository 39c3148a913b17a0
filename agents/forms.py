"""Structured output by infilling: a fixed skeleton of which only the value spans are generated.

A small model asked for free text in a given shape answers in some other shape, and the agent
must then guess where the values are. A form keeps every label, number and line break as fixed
text and hands the model only the blanks, so there is nothing to parse: each blank's text is a
value, checked by a pydantic model before the agent uses it. On a diffusion model every blank
is denoised at once in one canvas, with the text after it in view (the design's reason for
infilling); an autoregressive `Editor` fills them one by one.

Three forms: the plan (a title and a key question per section), a search query, and the judge's
verdict (two scores and a critique).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field, ValidationError, field_validator

from agents.text import clean_model_text, first_line
from backends.llm.protocol import Editor, GenerationStats, Span

BLANK = "____"  # what a blank shows in the document before it is filled


@dataclass(frozen=True)
class Blank:
    """A value to generate: `tokens` is its budget, and its text ends at the first line break."""

    name: str
    tokens: int


Part = str | Blank


@dataclass(frozen=True)
class Form:
    parts: tuple[Part, ...]

    def document(self) -> tuple[str, list[Span]]:
        """The skeleton with every blank shown as `BLANK`, and the span each blank covers."""
        text, spans = "", []
        for part in self.parts:
            if isinstance(part, Blank):
                spans.append(Span(len(text), len(text) + len(BLANK), length=part.tokens))
                text += BLANK
            else:
                text += part
        return text, spans

    @property
    def blanks(self) -> list[Blank]:
        return [part for part in self.parts if isinstance(part, Blank)]


@dataclass(frozen=True)
class Filled:
    values: dict[str, str]
    stats: GenerationStats


def fill(editor: Editor, form: Form, *, stop: threading.Event | None = None) -> Filled:
    """Each blank's value: its first line, cleaned of a small model's padding."""
    document, spans = form.document()
    edit = editor.infill(document, spans, stop=stop)
    values = {
        blank.name: _value(text) for blank, text in zip(form.blanks, edit.replacements, strict=True)
    }
    return Filled(values=values, stats=edit.stats)


def _value(text: str) -> str:
    line = first_line(clean_model_text(text)) or ""
    return " ".join(line.replace(BLANK, " ").split()).strip(" \"'`*")


# -- the plan ---------------------------------------------------------------------------------


# A small model filling the plan form often writes the form's own labels back ("Section 3
# title") or a book's furniture ("Acknowledgments"): neither names what a section is about.
FORM_ECHO = re.compile(r"\b(section|title|question|outline|gap)\b", re.IGNORECASE)
FURNITURE = frozenset(
    "acknowledgments acknowledgements contents index preface foreword references "  # noqa: SIM905
    "bibliography appendix glossary abstract introduction conclusion summary".split()
)


class SectionEntry(BaseModel):
    title: str = Field(min_length=2, max_length=80)
    question: str = Field(min_length=8, max_length=300)

    @field_validator("title")
    @classmethod
    def _title_reads_as_a_title(cls, title: str) -> str:
        title = title.rstrip(".?:")
        words = title.split()
        letters = sum(ch.isalpha() or ch == " " for ch in title)
        if not 1 <= len(words) <= 12 or letters < 0.8 * len(title):
            raise ValueError("not a section title")
        if FORM_ECHO.search(title) or title.lower() in FURNITURE:
            raise ValueError("the form's own wording or a book's furniture, not a topic")
        return title

    @field_validator("question")
    @classmethod
    def _question_has_words(cls, question: str) -> str:
        if len(re.findall(r"[A-Za-z]{2,}", question)) < 3:
            raise ValueError("not a question")
        return question if question.endswith("?") else question.rstrip(".") + "?"


def plan_form(question: str, count: int) -> Form:
    parts: list[Part] = [
        f"Research question: {question}\n\n"
        f"Outline of a research report that answers it, in {count} sections.\n"
    ]
    for number in range(1, count + 1):
        parts += [
            f"\nSection {number} title: ",
            Blank(f"title_{number}", 12),
            f"\nSection {number} answers the question: ",
            Blank(f"question_{number}", 28),
            "\n",
        ]
    return Form(tuple(parts))


def plan_entries(values: dict[str, str], count: int) -> list[SectionEntry]:
    """The sections whose title and question pass validation, in order; others are dropped."""
    entries = []
    for number in range(1, count + 1):
        try:
            entries.append(
                SectionEntry(
                    title=values.get(f"title_{number}", ""),
                    question=values.get(f"question_{number}", ""),
                )
            )
        except ValidationError:
            continue
    return entries


def plan_lines(entries: Sequence[SectionEntry]) -> str:
    """The plan in the `Title: key question` lines the plan stage reads and evolves."""
    return "\n".join(f"{entry.title}: {entry.question}" for entry in entries)


# -- a search query ---------------------------------------------------------------------------


class SearchQuery(BaseModel):
    query: str = Field(min_length=3, max_length=200)

    @field_validator("query")
    @classmethod
    def _query_has_words(cls, query: str) -> str:
        words = query.split()
        if len(words) < 2 or not re.search(r"[A-Za-z]", query):
            raise ValueError("not a search query")
        return " ".join(words[:16])


def query_form(question: str, title: str, section_text: str) -> Form:
    return Form(
        (
            f"Research question: {question}\n"
            f"Report section: {title}\n"
            f"What the section says so far: {' '.join(section_text.split())[:600]}\n\n"
            "Search engine query that finds what the section still lacks: ",
            Blank("query", 24),
            "\n",
        )
    )


def search_query(values: dict[str, str]) -> str | None:
    try:
        return SearchQuery(query=values.get("query", "")).query
    except ValidationError:
        return None


# -- the judge's verdict ----------------------------------------------------------------------


class VerdictEntry(BaseModel):
    helpfulness: int = Field(ge=1, le=10)
    comprehensiveness: int = Field(ge=1, le=10)
    critique: str = Field(default="", max_length=300)

    @field_validator("helpfulness", "comprehensiveness", mode="before")
    @classmethod
    def _leading_number(cls, value: object) -> object:
        if isinstance(value, str):
            match = re.match(r"\s*(\d{1,2})\b", value)
            return int(match.group(1)) if match else value
        return value


def verdict_form(question: str, component: str, output: str) -> Form:
    return Form(
        (
            f"Research question: {question}\n\n"
            f"A {component} written for this research:\n{output[:2000]}\n\n"
            "Review (scores from 1 to 10).\nHelpfulness: ",
            Blank("helpfulness", 3),
            "\nComprehensiveness: ",
            Blank("comprehensiveness", 3),
            "\nWhat is missing or wrong, in one sentence: ",
            Blank("critique", 40),
            "\n",
        )
    )


def verdict_entry(values: dict[str, str]) -> VerdictEntry | None:
    try:
        return VerdictEntry(
            helpfulness=values.get("helpfulness", ""),
            comprehensiveness=values.get("comprehensiveness", ""),
            critique=values.get("critique", "")[:300],
        )
    except ValidationError:
        return None
