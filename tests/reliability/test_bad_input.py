"""Bad input of every kind ends in a clean error or a clean run, never another exception.

Property-based (hypothesis) over what a user or a document can hand ttdr: questions, file
contents, `TTDR_*` settings and run ids, each through the real code (real SQLite files, the
real extractor and index, a real run of the tiny model). "Clean" means an error ttdr raises on
purpose (`TtdrError`, or pydantic's `ValidationError` for a setting), which the CLI prints as
one line, or a result that satisfies what callers rely on. Hostile shapes that random data
does not reach (inflating PDFs and zips, a 3 MB line, 100,000 nested tags) are listed cases.
The examples are few and bounded so the module stays within seconds.
"""

from __future__ import annotations

import io
import itertools
import os
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backends.llm.registry import load_generator
from backends.search.extract import SUPPORTED_SUFFIXES, ExtractionError, extract_document
from backends.search.local_index import LocalIndex
from tests.conftest import CORPUS
from ttdr.api import MAX_QUESTION_CHARS, Researcher, validate_question
from ttdr.config import Settings
from ttdr.errors import InvalidQuestionError, RunNotFoundError
from ttdr.models import ResearchConfig, RunStatus
from ttdr.store import Store

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates too: undecodable argv bytes


def bounded(examples: int) -> settings:
    """At most `examples` cases, without hypothesis' per-example deadline (CI is shared), and
    with fixtures shared across the examples of one test (each example uses its own files).
    No example database: a failure prints its falsifying example, and the tree stays clean."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# -- questions -----------------------------------------------------------------------------


@bounded(300)
@given(st.text(ANY_CHARACTER, max_size=MAX_QUESTION_CHARS + 50))
@example("\x00")
@example("\x00\x01\x1b \t\u200b\ufeff")
@example("\x1b]0;owned\x07Why do tides \x1b[2Jhappen?")
@example("x" * (MAX_QUESTION_CHARS + 1))
@example("\udcff\udcfe")
def test_a_question_is_refused_or_cleaned_to_printable_text_of_bounded_length(text) -> None:
    try:
        cleaned = validate_question(text)
    except InvalidQuestionError as error:
        assert "\n" not in str(error) and str(error)
        return
    assert 0 < len(cleaned) <= MAX_QUESTION_CHARS
    assert cleaned == " ".join(cleaned.split())
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in cleaned)
    assert any(unicodedata.category(c)[0] in "LMNPS" for c in cleaned)
    assert validate_question(cleaned) == cleaned


@pytest.mark.parametrize(
    ("question", "refused_for"),
    [
        ("\x00", "empty"),
        ("\x00 \x07\x1b", "empty"),
        ("\u200b\u200b", "empty"),
        ("x" * (MAX_QUESTION_CHARS + 1), "--docs"),
        ("why?\udcff", "UTF-8"),
    ],
    ids=["nul", "controls", "zero-width", "too long", "undecodable"],
)
def test_the_refusals_say_why(question: str, refused_for: str) -> None:
    with pytest.raises(InvalidQuestionError, match=refused_for):
        validate_question(question)


def test_control_characters_are_removed_and_a_question_at_the_cap_is_kept() -> None:
    assert validate_question("Why\x00do\x1b[2J tides\x07 turn?") == "Why do [2J tides turn?"
    assert validate_question("y" * MAX_QUESTION_CHARS) == "y" * MAX_QUESTION_CHARS


@pytest.fixture(scope="module")
def quick_researcher(tmp_path_factory, tiny_model) -> Researcher:
    """A researcher on the tiny model, loaded once; runs without a denoising step take about
    a second."""
    home = tmp_path_factory.mktemp("questions")
    config = ResearchConfig(
        model=str(tiny_model),
        search="local",
        docs=[CORPUS],
        iterations=0,
        section_tokens=8,
        max_sections=2,
        evolve=[],
        variants=1,
        evolution_rounds=0,
    )
    generator = load_generator(str(tiny_model), home / "models", dtype="float32")
    return Researcher(config, settings=Settings(home=home), generator=generator)


@bounded(6)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
@example("\x00")
@example("Why do \x1b]0;owned\x07 tides turn?")
@example("What do {question}, {0} and {{ mean for tides? %s %(x)s")  # format syntax
@example("z" * (MAX_QUESTION_CHARS + 1))
def test_any_question_gives_a_finished_run_or_is_refused_before_anything_is_stored(
    quick_researcher: Researcher, question: str
) -> None:
    before = quick_researcher.history(limit=1000)
    try:
        report = quick_researcher.run(question)
    except InvalidQuestionError:
        assert quick_researcher.history(limit=1000) == before  # refused before it was stored
        return
    run = quick_researcher.get_run(report.run_id)
    assert run.status is RunStatus.done and run.report is not None
    assert run.question == validate_question(question)


# -- file contents -------------------------------------------------------------------------

CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis", "koi8-r"]
TAGS = ["div", "p", "table", "tr", "td", "b", "script", "style", "h1", "pre", "li", "!--"]


def _tagged(tag: str, children: list[str]) -> str:
    return f"<{tag}>{''.join(children)}</{tag}>"


HTML = st.recursive(
    st.text(max_size=40),
    lambda children: st.builds(_tagged, st.sampled_from(TAGS), st.lists(children, max_size=4)),
    max_leaves=30,
).map(lambda body: f"<html><head><title>t</title></head><body>{body}</body></html>")
DOCUMENTS = st.one_of(
    st.binary(max_size=3000),
    st.builds(
        lambda t, c: t.encode(c, errors="replace"), st.text(max_size=1500), st.sampled_from(CODECS)
    ),
    HTML.map(str.encode),
    st.binary(max_size=2000).map(lambda tail: b"%PDF-1.4\n" + tail),
)
_names = itertools.count()


@bounded(60)
@given(DOCUMENTS, st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_any_file_is_indexed_or_skipped_with_a_reason(tmp_path: Path, data: bytes, suffix) -> None:
    index = LocalIndex(tmp_path / "index.db")
    file = tmp_path / f"doc-{next(_names)}{suffix}"
    file.write_bytes(data)
    assert_indexed_or_skipped(index, file)


def assert_indexed_or_skipped(index: LocalIndex, file: Path) -> None:
    try:
        document = extract_document(file.read_bytes(), name=file.name)
    except ExtractionError as error:
        assert error.reason
    else:
        assert document.text.strip() and isinstance(document.title, str)
    report = index.add(file)
    assert report.added + report.updated + report.unchanged + len(report.skipped) == 1
    assert all(s.reason and s.url == file.as_uri() for s in report.skipped)
    assert isinstance(index.search("tides moon text", 3), list)


def pdf_inflating_to(inflated_bytes: int) -> bytes:
    """A few kB of PDF whose one page deflates to `inflated_bytes` of text-drawing commands."""
    squeeze = zlib.compressobj(9)
    commands = (b"BT /F1 1 Tf (tides) Tj ET\n" * 50_000)[: 1 << 20]
    chunks = [squeeze.compress(commands) for _ in range(inflated_bytes >> 20)]
    body = b"".join(chunks) + squeeze.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def zip_inflating_to(inflated_bytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<w:t>" + b"a" * inflated_bytes + b"</w:t>")
    return buffer.getvalue()


HOSTILE = {
    "pdf inflating to 40 MB": ("bomb.pdf", lambda: pdf_inflating_to(40 << 20)),
    "docx inflating to 50 MB": ("bomb.docx", lambda: zip_inflating_to(50_000_000)),
    "zip bomb named .md": ("bomb.md", lambda: zip_inflating_to(50_000_000)),
    "3 MB line": ("line.txt", lambda: b"tides " * 500_000),
    "3 MB word": ("word.md", lambda: b"x" * 3_000_000),
    "100,000 nested divs": ("deep.html", lambda: b"<div>" * 100_000 + b"deep text"),
    "200,000 open tags": ("open.html", lambda: b"<b><i>" * 100_000),
    "entity expansion": (
        "entities.html",
        lambda: (
            b"<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
            b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]><html><body>&c;&c;&c;</body></html>"
        ),
    ),
    "utf-16 without a BOM": ("utf16.txt", lambda: "système 潮汐 ".encode("utf-16-le") * 100),
    "pdf header then noise": ("noise.pdf", lambda: b"%PDF-1.7\n" + bytes(range(256)) * 100),
    "nothing but NUL": ("nul.md", lambda: b"\x00" * 100),
    "terminal escapes": ("escapes.txt", lambda: b"\x1b]0;owned\x07\x1b[2Jtides are tidal"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_files_are_indexed_or_skipped_with_a_reason(tmp_path: Path, case: str) -> None:
    name, make = HOSTILE[case]
    file = tmp_path / name
    file.write_bytes(make())
    assert_indexed_or_skipped(LocalIndex(tmp_path / "index.db"), file)


def test_a_pdf_that_inflates_past_the_budget_is_skipped_not_parsed_for_minutes(tmp_path) -> None:
    """20 kB that inflate to 8 MB of drawing commands: pypdf would parse them for about a
    minute; the extractor measures the page first and gives up with a reason."""
    with pytest.raises(ExtractionError, match="too large"):
        extract_document(pdf_inflating_to(8 << 20), name="bomb.pdf")
    small = extract_document(pdf_inflating_to(1 << 20), name="fine.pdf")  # under the budget
    assert "tides" in small.text


# -- settings ------------------------------------------------------------------------------

SETTINGS_VARIABLES = sorted(f"TTDR_{name.upper()}" for name in Settings.model_fields)
AWKWARD_VALUES = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "1e309", "nan", "-inf", "true", "[]", "{}", "None"]),
    st.sampled_from(["\udcff", "3\udcfe"]),  # undecodable bytes, as os.environ holds them
    st.integers().map(str),
    st.floats().map(str),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30).filter(
        lambda v: "\x00" not in v  # the environment cannot hold NUL
    ),
)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@bounded(300)
@given(st.dictionaries(st.sampled_from(SETTINGS_VARIABLES), AWKWARD_VALUES, max_size=4))
def test_any_setting_value_is_accepted_or_refused_by_validation(home: Path, values) -> None:
    with environment(values):
        try:
            config = Settings().research_config()
        except ValidationError as error:
            assert error.errors()  # names the setting and says what it must be
            return
    assert isinstance(config, ResearchConfig)
    assert 0 <= config.iterations <= 50


# -- run ids -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Store, list[str]]:
    store = Store(tmp_path_factory.mktemp("ids") / "ttdr.db")
    ids = [store.create_run(f"question {n}?", ResearchConfig(model="m")) for n in range(3)]
    return store, ids


@bounded(300)
@given(st.text(ANY_CHARACTER, max_size=80))
@example("%")
@example("_")
@example("")
@example("\x00")
@example("\udcff")
@example("a" * 100_000)
def test_any_run_id_finds_its_run_or_says_there_is_none(history, text: str) -> None:
    store, ids = history
    try:
        run = store.get_run(text)
    except RunNotFoundError as error:
        assert "\n" not in str(error)
        return
    assert run.id in ids and run.id.startswith(text.strip().lower())  # SQLite's LIKE folds case


def test_every_unique_prefix_of_a_run_id_finds_it(history) -> None:
    store, ids = history
    for run_id in ids:
        assert store.get_run(f" {run_id[:8]} ").id == run_id


def test_a_home_of_a_user_this_machine_lacks_is_refused_by_validation(home: Path) -> None:
    """`~name` for an unknown user is a setting error, not a traceback (hypothesis found ~0)."""
    with environment({"TTDR_HOME": "~no-such-user-ttdr"}), pytest.raises(ValidationError) as error:
        Settings()
    assert "names a home this machine does not have" in str(error.value)
