"""The prompt of every component, as data, named by the node that uses it.

They are short and concrete because the default model is small: one task per prompt, the
expected output shape spelled out, no JSON. Later the prompt population evolves from these
seeds (TTD-DR's self-evolving prompts), so each is a plain template with named fields.
"""

from backends.llm.protocol import ChatMessage

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
    "Reply with the query only."
)

# No citation markers are asked for: the ledger (agents/attribution.py) attaches each
# sentence to the source that supports it, which small models cannot be trusted to do.
ANSWER = (
    "Read these sources.\n\n{passages}\n\n"
    "Using only the sources, answer this question in two to four sentences: {query}"
)

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


def chat(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
