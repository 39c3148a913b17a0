"""Issue 15 item 2 on real parts: the question's language, detected offline, governs the
plan, the search queries (as sent to the search seam) and the report's skeleton; the report's
size (`length`, `words`) is set apart from the research depth; both are settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agents.citations import MARKER
from agents.language import PHRASES, QUESTION_WORDS
from agents.prompts import SYSTEM, chat, in_language
from agents.report import report_budget
from backends.search.retriever import Retriever
from tests.conftest import CORPUS, FIXTURES
from tests.test_cli_conventions import one_error_line, ttdr
from ttdr import Researcher
from ttdr.cli.research import sized
from ttdr.config import Settings
from ttdr.language import LANGUAGES, detect_language
from ttdr.models import EventKind, ResearchConfig, Stage

GERMAN_CORPUS = FIXTURES / "corpus_de"
GERMAN_QUESTION = "Wie entstehen die Gezeiten an der Nordsee?"
# Words that only the agent's English templates would put into a query.
ENGLISH_FILLER = {"what", "does", "say", "about", "should", "report", "background", "how"}


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("How do tides work?", "en"),
        ("What does git rebase --autosquash do?", "en"),
        ("git rebase --onto", "en"),  # names and identifiers: too little to tell, English
        ("Wie entstehen Gezeiten?", "de"),
        ("Wie funktioniert git rebase?", "de"),
        ("Welche Vorteile hat Kernfusion?", "de"),
        ("Comment fonctionnent les marées ?", "fr"),
        ("Pourquoi le ciel est-il bleu ?", "fr"),
        ("¿Cómo funcionan las mareas?", "es"),
        ("Come funzionano le maree?", "it"),
        ("Hoe werken getijden?", "nl"),
        ("Como funcionam as marés?", "pt"),
        ("Как работают приливы?", "ru"),
    ],
)
def test_the_detector_tells_short_questions_apart(question: str, code: str) -> None:
    assert detect_language(question).code == code


def test_every_language_has_every_phrase_and_templates_keep_their_fields() -> None:
    assert set(PHRASES) == set(LANGUAGES)
    for phrases in PHRASES.values():
        assert "{cited}" in phrases.reading_note and "{total}" in phrases.reading_note
        assert len(phrases.outline) == 4
        assert all("{q}" in question for _, question in phrases.outline)
        assert "{title}" in phrases.outline_question and "{q}" in phrases.outline_question
    # the key questions the agent makes never add their own words to a key-terms query
    for word in re.findall(r"\w+", PHRASES["de"].outline_question.replace("{title}", "")):
        assert word.lower() in QUESTION_WORDS or len(word) <= 3 or word == "q"


def test_the_system_prompt_asks_for_the_run_s_language_and_leaves_english_alone() -> None:
    messages = chat("Research question: Wie entstehen Gezeiten?")
    german = in_language(messages, "de")
    assert "German" in german[0]["content"] and german[1] == messages[1]
    assert in_language(messages, "en")[0]["content"] == SYSTEM


def sent_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every query the run sends to the search seam, whole-corpus and within one page."""
    sent: list[str] = []
    search, page_passages = Retriever.search, Retriever.page_passages

    def spy_search(self, query, *args, **kwargs):
        sent.append(query)
        return search(self, query, *args, **kwargs)

    def spy_page(self, query, *args, **kwargs):
        sent.append(query)
        return page_passages(self, query, *args, **kwargs)

    monkeypatch.setattr(Retriever, "search", spy_search)
    monkeypatch.setattr(Retriever, "page_passages", spy_page)
    return sent


def test_a_german_question_gets_german_queries_and_a_german_report(
    settings, tiny_config, monkeypatch
) -> None:
    sent = sent_queries(monkeypatch)
    config = tiny_config.model_copy(update={"docs": [GERMAN_CORPUS], "iterations": 2})
    researcher = Researcher(config, settings=settings)
    report = researcher.run(GERMAN_QUESTION)
    run = researcher.get_run(report.run_id)

    assert run.config.language == "de"  # detected, and kept with the run
    plan_words = {w.lower() for s in run.plan.sections for w in re.findall(r"\w+", s.title)}
    german = {w.lower() for w in re.findall(r"\w+", GERMAN_QUESTION)} | plan_words
    tasks = [
        e.data["query"]
        for e in researcher.events(run.id)
        if e.stage is Stage.question and "query" in e.data
    ]
    assert tasks and sent
    for query in [*sent, *tasks]:
        words = {w.lower() for w in re.findall(r"\w+", query)}
        assert not words & ENGLISH_FILLER, query
        assert words <= german | set(QUESTION_WORDS) or detect_language(query).code == "de", query

    markdown = report.markdown
    headings = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert headings[0] == "Zusammenfassung" and headings[-1] == "Quellen"
    assert headings[1:-1] == run.plan.titles()
    assert "Summary" not in headings and "References" not in headings
    assert detect_language(MARKER.sub("", " ".join(run.plan.titles()))).code == "de"
    # the history's copy of the report reads the same
    assert researcher.get_report(run.id).markdown == markdown


def test_an_unsupported_language_falls_back_to_english_and_says_so_once(
    settings, tiny_config
) -> None:
    config = tiny_config.model_copy(update={"iterations": 0, "language": "ru"})
    researcher = Researcher(config, settings=settings)
    report = researcher.run("Почему в океане бывают приливы?")
    notes = [
        e
        for e in researcher.events(report.run_id)
        if e.kind is EventKind.warning and "Russian" in e.message
    ]
    assert len(notes) == 1 and "English" in notes[0].message
    assert "## Summary" in report.markdown and "## References" in report.markdown
    assert researcher.get_run(report.run_id).config.language == "ru"


def body_words(report) -> int:
    return len(MARKER.sub("", report.body).split())


QUESTION = "Why does the ocean have tides?"


def sized_run(settings, tiny_config, **size) -> int:
    """The report's words on the same research: the German corpus has enough evidence
    sentences for a long report (the English fixture's one page on tides has not)."""
    update = {"iterations": 2, "max_sections": 2, "docs": [GERMAN_CORPUS], **size}
    config = tiny_config.model_copy(update=update)
    return body_words(Researcher(config, settings=settings).run(GERMAN_QUESTION))


def test_a_short_report_is_shorter_than_a_long_one_on_the_same_research(
    settings, tiny_config
) -> None:
    short = sized_run(settings, tiny_config, length="short")
    long = sized_run(settings, tiny_config, length="long")
    assert short < long


def test_words_sets_the_size_and_overrides_length(settings, tiny_config) -> None:
    fewer = sized_run(settings, tiny_config, length="long", words=80)
    more = sized_run(settings, tiny_config, length="short", words=900)
    assert fewer < more


def test_words_map_to_sentence_budgets() -> None:
    medium = report_budget(ResearchConfig(), 4)
    assert (medium.section_sentences, medium.summary_sentences) == (8, 3)
    small, large = (report_budget(ResearchConfig(words=w), 4) for w in (100, 2000))
    assert small.section_sentences < medium.section_sentences < large.section_sentences
    assert small.summary_sentences >= 1 and large.summary_sentences <= 6
    # about 20 words a sentence, over the summary and the sections
    assert 80 <= 20 * (4 * large.section_sentences + large.summary_sentences) <= 2000


def test_flags_win_over_settings_and_auto_detects() -> None:
    from_settings = ResearchConfig(words=300, language="fr")
    by_length = sized(from_settings, length="short", words=None, language="auto")
    assert by_length.words is None and by_length.language is None
    assert sized(from_settings, length="short", words=120, language="de").words == 120
    assert sized(from_settings, length=None, words=None, language=None) == from_settings


def test_settings_read_language_and_words_from_the_environment(home, monkeypatch) -> None:
    monkeypatch.setenv("TTDR_LANGUAGE", "German")
    monkeypatch.setenv("TTDR_WORDS", "400")
    config = Settings().research_config()
    assert (config.language, config.words) == ("de", 400)
    monkeypatch.setenv("TTDR_LANGUAGE", "auto")
    assert Settings().research_config().language is None


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TTDR_LANGUAGE": "klingon"}, "TTDR_LANGUAGE='klingon'"),
        ({"TTDR_WORDS": "many"}, "TTDR_WORDS='many'"),
        ({"TTDR_WORDS": "3"}, "TTDR_WORDS='3'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_exit_2(
    home: Path, env: dict[str, str], says: str
) -> None:
    line = one_error_line(ttdr(home, "research", "q", **env))
    assert line.startswith("Error: ") and says in line
    if "LANGUAGE" in says:
        assert all(f"'{code}'" in line for code in ("auto", *LANGUAGES))


def test_config_show_lists_language_and_words_and_where_they_come_from(home: Path) -> None:
    result = ttdr(home, "config", "show", "--json", TTDR_LANGUAGE="nl")
    shown = json.loads(result.stdout)
    assert shown["language"] == {"value": "nl", "source": "TTDR_LANGUAGE"}
    assert shown["words"] == {"value": None, "source": "default"}


def test_research_help_names_the_options_defaults_and_variables(home: Path) -> None:
    help_text = ttdr(home, "research", "--help").stdout
    assert "[default: auto; TTDR_LANGUAGE]" in help_text
    assert "[default: unset; TTDR_WORDS]" in help_text


def test_an_english_run_keeps_its_english_skeleton(settings, tiny_config) -> None:
    config = tiny_config.model_copy(update={"iterations": 0, "docs": [CORPUS]})
    researcher = Researcher(config, settings=settings)
    report = researcher.run(QUESTION)
    assert researcher.get_run(report.run_id).config.language == "en"
    assert "## Summary" in report.markdown and "## References" in report.markdown
