"""The prompt of every component, as data, named by the node that uses it.

They are short and concrete because the default model is small: one task per prompt, the
expected output shape spelled out, no JSON. Later the prompt population evolves from these
seeds (TTD-DR's self-evolving prompts), so each is a plain template with named fields.
"""

from collections.abc import Sequence

from backends.llm.protocol import ChatMessage
from ttdr.language import language_name

SYSTEM = "You are a careful research assistant. You write clear, factual English."

PLAN = (
    "Research question: {question}\n\n"
    "Plan a research report that answers this question. List {count} sections, one per line, "
    "in this form:\n"
    "Section title: the key question this section answers\n\n"
    "Write only the {count} lines."
)

DRAFT_SECTION = (
    "Research question: {question}\n\n"
    'Write the section "{title}" of a research report. It should answer: {section_question}\n'
    "Write one short paragraph from what you already know. No heading, no list."
)

SEARCH_QUERY = (
    "Research question: {question}\n"
    'Report section "{title}" currently says:\n{section_text}\n\n'
    "Write one web search query that would find facts missing from this section. "
    "Reply with the query only, or with DONE if the section needs no more research."
)

# No citation markers are asked for: the ledger (agents/attribution.py) attaches each
# sentence to the source that supports it, which small models cannot be trusted to do.
ANSWER = (
    "Read these sources.\n\n{passages}\n\n"
    "Using only the sources, answer this question in two to four sentences: {query}"
)

# The instruction the engine's `rewrite` receives; the draft itself is the canvas around it.
REVISE_INSTRUCTION = (
    "Research question: {question}\n\n"
    'Revise the section "{title}" of this research report so that it includes the new evidence '
    "below and corrects anything the evidence contradicts. Keep the source numbers in square "
    "brackets, like [2], next to the facts they support.\n\nNew evidence:\n{evidence}"
)

# For generators without in-place editing (the whole request in one chat message).
REVISE_SECTION = (
    "Research question: {question}\n\n"
    'Section "{title}" of the report currently says:\n{section_text}\n\n'
    "New evidence:\n{evidence}\n\n"
    "Rewrite the section so that it includes the new evidence and corrects anything the "
    "evidence contradicts. Keep the source numbers in square brackets, like [2], next to the "
    "facts they support. Reply with the section text only, no heading."
)

SUMMARY = (
    "Research question: {question}\n\n"
    "Report sections:\n{digest}\n\n"
    "Write a summary of two or three sentences that answers the research question. "
    "Reply with the summary only."
)


JUDGE = (
    "Research question: {question}\n\n"
    "Here is a {component} written for this research:\n{output}\n\n"
    "Rate it from 1 to 10 for helpfulness and from 1 to 10 for comprehensiveness, then give "
    "one sentence saying what is missing or wrong. Reply in exactly this form:\n"
    "Helpfulness: <number>\nComprehensiveness: <number>\nCritique: <one sentence>"
)

IMPROVE = (
    "Research question: {question}\n\n"
    "Here is a {component}:\n{output}\n\n"
    "A reviewer said: {critique}\n\n"
    "Write an improved {component} that fixes this. Keep the same form. Reply with the "
    "improved {component} only."
)


def chat(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def system_prompt(language: str) -> str:
    """The system prompt of a run in `language` (an ISO 639-1 code ttdr has phrases for)."""
    if language == "en":
        return SYSTEM
    name = language_name(language)
    return (
        f"You are a careful research assistant. You write clear, factual {name}. Always reply "
        f"in {name}, the language of the research question."
    )


def in_language(messages: Sequence[ChatMessage], language: str) -> list[ChatMessage]:
    """`messages` with the system prompt asking for `language`; English ones are unchanged."""
    if language == "en":
        return list(messages)
    return [
        {**m, "content": system_prompt(language)} if m["role"] == "system" else m for m in messages
    ]
