"""Self-distilled training data: the base model's own greedy answers to prompts shaped like ttdr's.

A converted model commits several tokens per forward only where it is confident, and it is most
confident on text like its own (on-policy data, as Fast-dLLM v2 and SDAR fine-tune on). So the
base model answers prompts built from the agent's own templates (plan, search question, answer
from passages, revise a section, summary, judge verdict), filled from text available offline
(the example corpus, HTML and Markdown that Debian packages install), plus general instructions.

Prompts are a deterministic stream: prompt `i` is built from an RNG seeded by (seed, i) and
named by a hash of its messages, so a rerun skips what is already written and appends the rest.
One in `HELD_APART` of them (by hash) never enters the training shards: `evaluate` uses those.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ttdr.errors import TrainingDataError

SHARD_RECORDS = 2000  # records per JSONL shard
HELD_APART = 20  # one prompt in this many is kept for evaluation, never trained on
SUFFIXES = (".md", ".html", ".htm", ".txt")
CHUNK_CHARS = 700  # about 170 tokens: an answer prompt with two passages stays under ~450
MIN_DOC_CHARS = 400
MIN_GROUP_SHARE = 0.15  # every source group gets at least about this share of the prompts
LEGACY_REPETITION_PENALTY = 1.2  # what shards without a recorded penalty were written with
SKIPPED_PAGES = ("genindex", "py-modindex", "search", "changelog", "news", "copyright")

# Max new tokens per prompt kind: about what ttdr asks of the model for that call.
KINDS: dict[str, tuple[float, int]] = {  # kind -> (share of prompts, max new tokens)
    "answer": (0.18, 128),
    "revise": (0.12, 160),
    "plan": (0.10, 96),
    "questions": (0.08, 24),
    "draft": (0.10, 128),
    "summary": (0.08, 96),
    "judge": (0.08, 48),
    "improve": (0.04, 128),
    "general": (0.12, 160),
    "passage_task": (0.10, 128),
}

QUESTION_FORMS = (
    "What is {topic} and how does it work?",
    "How is {topic} used in practice, and what are its limits?",
    "What should a newcomer know about {topic}?",
    "What are the main features of {topic}?",
    "How does {topic} compare with the alternatives?",
    "Why does {topic} matter, and what problems does it solve?",
)
CRITIQUES = (
    "It lacks concrete details and examples.",
    "It does not answer the research question directly.",
    "It repeats itself and misses the key facts.",
    "It makes claims without saying where they come from.",
    "It is too vague about how the method works.",
)
PASSAGE_TASKS = (
    "Summarise the following text in two sentences.\n\n{text}",
    "What is the main idea of this passage?\n\n{text}",
    "Explain this text to a beginner in plain words.\n\n{text}",
    "List three key facts stated in this text.\n\n{text}",
    "Write two questions that this text answers, each with its answer.\n\n{text}",
    "Give this passage a short, descriptive title.\n\n{text}",
    "Which technical terms does this text use? Explain each in one line.\n\n{text}",
)
GENERAL_INSTRUCTIONS = (
    "Explain what a search engine index is.",
    "Give three tips for writing a clear research report.",
    "What is the difference between a list and a tuple in Python?",
    "Describe how a compiler differs from an interpreter.",
    "Write a short paragraph about why citations matter in research.",
    "Explain what an operating system does, in simple terms.",
    "What is a neural network? Answer in three sentences.",
    "How do you make a good cup of tea?",
    "Summarise the water cycle for a child.",
    "Write a polite email asking a colleague for feedback on a draft.",
    "What are the benefits of regular exercise?",
    "Explain what version control is and why programmers use it.",
    "Give an example of a good and a bad search query, and say why.",
    "What is the difference between weather and climate?",
    "Explain recursion with a simple example.",
    "List five ways to save energy at home.",
    "What is a file system?",
    "Describe the steps of the scientific method.",
    "Explain what HTTP is and what a status code means.",
    "Write a haiku about the ocean.",
    "What makes a source trustworthy?",
    "How does public-key cryptography work, briefly?",
    "Explain the difference between RAM and disk storage.",
    "What is machine translation?",
    "Give a short overview of how vaccines work.",
    "Write a two-sentence story about a lost key.",
    "What is a database index and why does it speed up queries?",
    "Explain what a language model is.",
    "What are common causes of bugs in software?",
    "How do plants make their food?",
    "Explain what an API is to a non-programmer.",
    "What is the purpose of unit tests?",
    "Describe a sunset in one paragraph.",
    "What is the difference between a virus and a bacterium?",
    "How can a team plan a project well?",
    "Explain the idea of supply and demand.",
    "What is open-source software?",
    "Give three reasons why sleep is important.",
    "What is a regular expression? Give a small example.",
    "How does a refrigerator keep food cold?",
)
# Short factual prompts for the agreement measure; never trained on.
FACTUAL_PROMPTS = (
    "What is the capital of France?",
    "How many days are in a leap year?",
    "What is the chemical symbol for water?",
    "Who wrote Romeo and Juliet?",
    "What is the largest planet in the solar system?",
    "What is the boiling point of water in Celsius?",
    "How many continents are there?",
    "What gas do plants absorb from the air?",
    "What is the square root of 81?",
    "Which ocean is the largest?",
    "What language is mainly spoken in Brazil?",
    "What is the freezing point of water in Fahrenheit?",
    "Who painted the Mona Lisa?",
    "What is the capital of Japan?",
    "How many legs does a spider have?",
    "What is the speed of light, approximately?",
    "What is the main ingredient of bread?",
    "Which planet is known as the Red Planet?",
    "What is 12 times 12?",
    "What is the hardest natural substance?",
    "What is the capital of Italy?",
    "How many minutes are in an hour?",
    "What organ pumps blood through the body?",
    "What is the tallest mountain on Earth?",
    "What is the currency of the United Kingdom?",
    "Who was the first person to walk on the Moon?",
    "What is the longest river in Africa?",
    "What is H2O commonly called?",
    "How many sides does a hexagon have?",
    "What is the capital of Germany?",
    "What do bees make?",
    "Which animal is known as the king of the jungle?",
    "What is the primary language of Python programs' keywords?",
    "What does CPU stand for?",
    "What does HTML stand for?",
    "What is the smallest prime number?",
    "In which continent is Egypt?",
    "What is the capital of Spain?",
    "How many hours are in a day?",
    "What is the opposite of hot?",
    "What colour do you get by mixing blue and yellow?",
    "What is the capital of Canada?",
    "Which metal is liquid at room temperature?",
    "What is the largest mammal?",
    "How many strings does a standard guitar have?",
    "What is the closest star to Earth?",
    "What instrument has 88 keys?",
    "What is the capital of Australia?",
    "What is the main gas in the air we breathe?",
    "How many players are on a football (soccer) team on the field?",
)


@dataclass(frozen=True)
class TextDoc:
    source: str  # the source group (the path given on the command line)
    path: str
    title: str
    chunks: tuple[str, ...]


@dataclass(frozen=True)
class PromptSpec:
    id: str
    kind: str
    source: str
    messages: tuple[dict[str, str], ...]
    max_new_tokens: int


@dataclass
class DataStats:
    records: int = 0
    prompt_tokens: int = 0
    answer_tokens: int = 0
    finished: int = 0  # answers that ended with the end-of-turn token
    generation_seconds: float = 0.0
    forward_passes: int = 0
    # Prefilled slots, left padding included. Measured on the seed-1 stream: batches per kind
    # pad 30% of these; pooling two batches' worth per kind and sorting by length would pad
    # 19% (an estimated 5% of the generation time), at half as many batches of the rarest kinds.
    prompt_slots: int = 0
    # The decode rule the answers were written with. Measured on 16 held-out prompts (128
    # tokens, base model, docs/a2d/MODEL_CARD.md): at 1.2 the base gives only 19% of its own
    # answer tokens a probability above 0.9 (NLL 1.70 per token), at 1.1 43% (NLL 0.67) and
    # at 1.0 44% (NLL 0.49): a model learns to commit in parallel only what its targets make
    # predictable. None: not recorded (shards written before the field existed, all at 1.2).
    repetition_penalty: float | None = None
    by_source: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    answer_tokens_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.answer_tokens / self.generation_seconds if self.generation_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["generation_tokens_per_second"] = round(self.tokens_per_second, 2)
        if self.prompt_slots:
            data["prefill_padding_share"] = round(1 - self.prompt_tokens / self.prompt_slots, 3)
        return data


# -- offline text ------------------------------------------------------------------------------


def default_sources() -> list[Path]:
    """The example corpus and the documentation Debian packages install (HTML)."""
    repo = Path(__file__).resolve().parents[3]
    return [p for p in (repo / "examples" / "corpus", Path("/usr/share/doc")) if p.exists()]


def gather_texts(sources: Sequence[Path]) -> list[TextDoc]:
    """Documents under each source, split into passage-sized chunks; tiny files are skipped."""
    docs: list[TextDoc] = []
    for source in sources:
        files = [source] if source.is_file() else sorted(_text_files(source))
        for path in files:
            title, text = _read_text(path)
            if len(text) < MIN_DOC_CHARS:
                continue
            chunks = tuple(split_chunks(text))
            if chunks:
                docs.append(TextDoc(str(source), str(path), title, chunks))
    return docs


def _text_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        # Sphinx's _sources repeat its HTML pages as reStructuredText.
        if (
            path.suffix.lower() in SUFFIXES
            and "_sources" not in path.parts
            and not path.stem.lower().startswith(SKIPPED_PAGES)
            and path.is_file()
        ):
            yield path


def _read_text(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_text(errors="replace")
    except OSError:
        return "", ""
    if path.suffix.lower() in (".html", ".htm"):
        return _html_text(raw, path)
    heading = re.search(r"^#+\s+(.+)$", raw, re.MULTILINE)
    title = heading.group(1).strip() if heading else _title_from_name(path)
    return title, raw


def _html_text(raw: str, path: Path) -> tuple[str, str]:
    import lxml.html

    try:
        tree = lxml.html.fromstring(raw)
    except Exception:  # lxml raises several kinds on odd documents
        return "", ""
    for bad in tree.xpath("//script|//style|//nav|//header|//footer"):
        bad.drop_tree()
    title = (tree.findtext(".//title") or "").strip() or _title_from_name(path)
    blocks = [" ".join(el.text_content().split()) for el in tree.iter("p", "li", "dd", "pre")]
    return title.split(" — ")[0].split(" | ")[0], "\n\n".join(b for b in blocks if len(b) > 40)


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ")


def split_chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Paragraph-aligned chunks of about `size` characters (long paragraphs are cut)."""
    chunks: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split()).lstrip("# ")
        if not para or para.startswith(("```", "|")):
            continue
        while len(para) > size:
            cut = para.rfind(". ", 0, size)
            cut = cut + 1 if cut > size // 3 else size
            chunks.append(para[:cut].strip())
            para = para[cut:].strip()
        if current and len(current) + len(para) > size:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if len(current) > 80:
        chunks.append(current)
    return [c for c in chunks if len(c) > 80 and _is_prose(c)]


def _is_prose(chunk: str) -> bool:
    """Sentences of words, not an index page, a table or a symbol dump."""
    letters = sum(ch.isalpha() or ch == " " for ch in chunk)
    return letters > 0.8 * len(chunk) and chunk.count(". ") >= 1 and chunk.count("(") < 8


# -- prompts -----------------------------------------------------------------------------------


class PromptBuilder:
    """Prompt `i` of a deterministic stream, from the given documents."""

    def __init__(self, docs: Sequence[TextDoc], templates: ModuleType, seed: int = 0) -> None:
        """`templates` is the agent's prompt module (`agents.prompts`), handed in by the caller:
        the engine layer does not import the agent, whose calls it imitates."""
        if not docs:
            raise ValueError("no source text: give --source folders with .md/.html/.txt files")
        self.seed = seed
        self.templates = templates
        groups: dict[str, list[TextDoc]] = {}
        for doc in docs:
            groups.setdefault(doc.source, []).append(doc)
        self.groups = list(groups.values())
        # A group's share grows with the square root of its size: the small example corpus
        # is the most on-domain text, so it is not drowned, nor repeated thousands of times.
        weights = [math.sqrt(sum(len(d.chunks) for d in g)) for g in self.groups]
        floor = MIN_GROUP_SHARE * sum(weights)
        self.weights = [max(w, floor) for w in weights]
        kinds = list(KINDS)
        self.kinds, self.kind_weights = kinds, [KINDS[k][0] for k in kinds]

    def build(self, index: int) -> PromptSpec:
        rng = random.Random(f"{self.seed}:{index}")
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        doc = rng.choices(self.groups, self.weights)[0]
        doc = rng.choice(doc)
        user, system = self._prompt(kind, doc, rng)
        messages = ({"role": "system", "content": system},) if system else ()
        messages = (*messages, {"role": "user", "content": user})
        return make_spec(kind, doc.source, messages, KINDS[kind][1])

    def _prompt(self, kind: str, doc: TextDoc, rng: random.Random) -> tuple[str, str | None]:
        p = self.templates
        chunk = rng.choice(doc.chunks)
        topic = _topic(doc, chunk, rng)
        question = rng.choice(QUESTION_FORMS).format(topic=topic)
        section = _section_title(chunk, topic)
        if kind == "plan":
            return p.PLAN.format(question=question, count=rng.choice((3, 4, 5))), p.SYSTEM
        if kind == "draft":
            section_question = rng.choice(QUESTION_FORMS).format(topic=section)
            text = p.DRAFT_SECTION.format(
                question=question, title=section, section_question=section_question
            )
            return text, p.SYSTEM
        if kind == "questions":
            text = p.SEARCH_QUERY.format(question=question, title=section, section_text=chunk)
            return text, p.SYSTEM
        if kind == "answer":
            passages = _numbered(rng.sample(doc.chunks, min(len(doc.chunks), rng.choice((1, 2)))))
            return p.ANSWER.format(passages=passages, query=question), p.SYSTEM
        if kind == "revise":
            evidence = _numbered([rng.choice(doc.chunks)], start=rng.randint(1, 4))
            draft = _first_sentences(chunk, rng.randint(1, 3))
            text = p.REVISE_SECTION.format(
                question=question, title=section, section_text=draft, evidence=evidence
            )
            return text, p.SYSTEM
        if kind == "summary":
            picked = rng.sample(doc.chunks, min(len(doc.chunks), rng.randint(2, 4)))
            digest = "\n".join(
                f"- {_section_title(c, topic)}: {_first_sentences(c, 1)}" for c in picked
            )
            return p.SUMMARY.format(question=question, digest=digest), p.SYSTEM
        if kind in ("judge", "improve"):
            component = rng.choice(("plan", "answer", "summary", "section"))
            output = _first_sentences(chunk, rng.randint(1, 3))
            if kind == "judge":
                text = p.JUDGE.format(question=question, component=component, output=output)
            else:
                text = p.IMPROVE.format(
                    question=question,
                    component=component,
                    output=output,
                    critique=rng.choice(CRITIQUES),
                )
            return text, p.SYSTEM
        if kind == "passage_task":
            return rng.choice(PASSAGE_TASKS).format(text=chunk), None
        return rng.choice(GENERAL_INSTRUCTIONS), None


def make_spec(
    kind: str, source: str, messages: tuple[dict[str, str], ...], max_new_tokens: int
) -> PromptSpec:
    digest = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
    return PromptSpec(digest, kind, source, messages, max_new_tokens)


def is_held_apart(prompt_id: str) -> bool:
    return int(prompt_id, 16) % HELD_APART == 0


def factual_specs() -> list[PromptSpec]:
    return [
        make_spec("factual", "factual", ({"role": "user", "content": q},), 32)
        for q in FACTUAL_PROMPTS
    ]


def held_apart_specs(builder: PromptBuilder, count: int, limit: int = 100_000) -> list[PromptSpec]:
    """The first `count` prompts of the stream that training never sees."""
    found: list[PromptSpec] = []
    seen: set[str] = set()
    for index in range(limit):
        spec = builder.build(index)
        if is_held_apart(spec.id) and spec.id not in seen:
            found.append(spec)
            seen.add(spec.id)
            if len(found) >= count:
                break
    return found


def _topic(doc: TextDoc, chunk: str, rng: random.Random) -> str:
    title = " ".join(doc.title.split()[:8]).strip(" .:")
    if len(re.findall(r"[A-Za-z]{3,}", title)) < 2:  # "2.2.0", "README": not a topic
        return _section_title(chunk, "this subject")
    return title if rng.random() < 0.85 else _section_title(chunk, title)


def _section_title(chunk: str, fallback: str) -> str:
    words = re.findall(r"[A-Za-z][A-Za-z0-9'-]*", _first_sentences(chunk, 1))
    return " ".join(words[:5]) or fallback


def _first_sentences(text: str, count: int) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return " ".join(sentences[:count])


def _numbered(chunks: Sequence[str], start: int = 1) -> str:
    return "\n\n".join(f"[{start + i}] {chunk}" for i, chunk in enumerate(chunks))


# -- shards ------------------------------------------------------------------------------------


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every complete record in the folder's shards, in write order (a torn last line is
    what a kill leaves behind; it is skipped here and truncated by the next writer)."""
    records = []
    for shard in sorted(folder.glob("shard-*.jsonl")):
        for line in shard.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class ShardWriter:
    """Appends records to `shard-NNNNN.jsonl` files; each batch is flushed and fsynced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        shards = sorted(folder.glob("shard-*.jsonl"))
        self.index = len(shards) - 1 if shards else 0
        self.count = 0
        if shards:
            self.count = _repair_tail(shards[-1])

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            if self.count >= SHARD_RECORDS:
                self.index, self.count = self.index + 1, 0
            with open(self.folder / f"shard-{self.index:05d}.jsonl", "a") as handle:
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.count += 1


def _repair_tail(shard: Path) -> int:
    """Drop a torn last line; return the number of complete records."""
    data = shard.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        shard.write_bytes(data)
    return data.count(b"\n")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# -- generation --------------------------------------------------------------------------------


def generate_data(
    engine,
    builder: PromptBuilder,
    out: Path,
    target_tokens: int,
    *,
    batch_size: int = 16,
    log=print,
) -> DataStats:
    """Append the base model's answers until the shards hold `target_tokens` answer tokens.
    The engine's repetition penalty is the data's: a folder keeps one (refused otherwise)."""
    existing = read_records(out)
    done = {r["id"] for r in existing}
    stats = _stats_from(existing, out)
    penalty = engine.policy.repetition_penalty
    recorded = stats.repetition_penalty
    if existing and recorded is None:
        recorded = LEGACY_REPETITION_PENALTY
    if existing and recorded != penalty:
        raise TrainingDataError(
            f"{out} holds answers written with repetition penalty {recorded}, not {penalty}: "
            f"pass --repetition-penalty {recorded}, or write to another folder."
        )
    stats.repetition_penalty = penalty
    writer = ShardWriter(out)
    eos_id = turn_end_id(engine.tokenizer, engine.facts)
    pending: dict[str, list[PromptSpec]] = {}
    index = 0
    while stats.answer_tokens < target_tokens:
        spec = builder.build(index)
        index += 1
        if spec.id in done or is_held_apart(spec.id):
            continue
        done.add(spec.id)
        batch = pending.setdefault(spec.kind, [])
        batch.append(spec)
        if len(batch) < batch_size:
            continue
        del pending[spec.kind]
        records = _answer(engine, batch, eos_id, stats)
        writer.write(records)
        write_json_atomic(out / "stats.json", stats.to_json())
        log(
            json.dumps(
                {
                    "records": stats.records,
                    "answer_tokens": stats.answer_tokens,
                    "tokens_per_s": round(stats.tokens_per_second, 1),
                    "kind": spec.kind,
                }
            )
        )
    return stats


def _answer(engine, batch: list[PromptSpec], eos_id: int, stats: DataStats) -> list[dict]:
    # Similar lengths together: left padding is attended over by nobody but still computed.
    batch = sorted(batch, key=lambda s: len(engine.encode_chat(list(s.messages))))
    prompt_ids = [engine.encode_chat(list(s.messages)) for s in batch]
    budget = batch[0].max_new_tokens
    start = time.perf_counter()
    replies, denoise = engine.generate_ids(prompt_ids, budget)
    seconds = time.perf_counter() - start
    records = []
    for spec, prompt, reply in zip(batch, prompt_ids, replies, strict=True):
        finished = len(reply) < budget
        answer = [*reply, eos_id] if finished else list(reply)
        records.append(
            {
                "id": spec.id,
                "kind": spec.kind,
                "source": spec.source,
                "prompt": prompt,
                "answer": answer,
                "finish": "eos" if finished else "length",
            }
        )
        _count(stats, spec.source, spec.kind, len(prompt), len(answer), finished)
    stats.generation_seconds += seconds
    stats.forward_passes += denoise.forward_passes
    stats.prompt_slots += len(batch) * max(len(ids) for ids in prompt_ids)
    return records


def _count(stats: DataStats, source: str, kind: str, prompt: int, answer: int, done: bool) -> None:
    stats.records += 1
    stats.prompt_tokens += prompt
    stats.answer_tokens += answer
    stats.finished += int(done)
    stats.by_source[source] = stats.by_source.get(source, 0) + 1
    stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
    by = stats.answer_tokens_by_source
    by[source] = by.get(source, 0) + answer


def _stats_from(records: list[dict], out: Path) -> DataStats:
    """Counts of what is already written; timing carries over from the last stats.json."""
    stats = DataStats()
    for r in records:
        _count(
            stats, r["source"], r["kind"], len(r["prompt"]), len(r["answer"]), r["finish"] == "eos"
        )
    saved = out / "stats.json"
    if saved.is_file():
        old = json.loads(saved.read_text())
        stats.generation_seconds = float(old.get("generation_seconds", 0.0))
        stats.forward_passes = int(old.get("forward_passes", 0))
        stats.prompt_slots = int(old.get("prompt_slots", 0))
        stats.repetition_penalty = old.get("repetition_penalty")
    return stats


def turn_end_id(tokenizer, facts) -> int:
    """The token that ends an assistant turn (ChatML's `<|im_end|>`), else the lowest end id:
    answers are stored ending in it and the objective pads finished answers with it."""
    return tokenizer.get_vocab().get("<|im_end|>", min(facts.eos_ids))


def source_summary(records: list[dict]) -> dict[str, int]:
    return dict(Counter(r["source"] for r in records))
