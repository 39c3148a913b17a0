"""Histories as earlier versions of ttdr wrote them, built by raw SQL.

The DDL is SQLModel's output for the tables before the migration ladder existed (dumped from
that code, `PRAGMA user_version` 0), and the rows hold hand-serialised JSON text as that code
stored it. Frozen here on purpose: if the store's own idea of the old schema drifted, these
would still be the files users have.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

LEGACY_SCHEMA = """
CREATE TABLE runs (
	id VARCHAR NOT NULL,
	question VARCHAR NOT NULL,
	model VARCHAR NOT NULL,
	config_json VARCHAR NOT NULL,
	status VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	finished_at DATETIME,
	error VARCHAR,
	plan_json VARCHAR,
	stats_json VARCHAR NOT NULL,
	owner VARCHAR,
	PRIMARY KEY (id)
);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_created_at ON runs (created_at);
CREATE TABLE prompt_versions (
	id INTEGER NOT NULL,
	component VARCHAR NOT NULL,
	text VARCHAR NOT NULL,
	parent_id INTEGER,
	fitness FLOAT,
	uses INTEGER NOT NULL,
	scored INTEGER NOT NULL,
	note VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_prompt_versions_component ON prompt_versions (component);
CREATE TABLE drafts (
	id INTEGER NOT NULL,
	run_id VARCHAR NOT NULL,
	iteration INTEGER NOT NULL,
	text VARCHAR NOT NULL,
	changed_json VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (run_id, iteration),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_drafts_run_id ON drafts (run_id);
CREATE TABLE qa_pairs (
	id INTEGER NOT NULL,
	run_id VARCHAR NOT NULL,
	iteration INTEGER NOT NULL,
	section VARCHAR NOT NULL,
	question VARCHAR NOT NULL,
	answer VARCHAR NOT NULL,
	sources_json VARCHAR NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (run_id, iteration, question),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_qa_pairs_run_id ON qa_pairs (run_id);
CREATE TABLE sources (
	id INTEGER NOT NULL,
	run_id VARCHAR NOT NULL,
	number INTEGER NOT NULL,
	url VARCHAR NOT NULL,
	title VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	excerpt VARCHAR NOT NULL,
	retrieved_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (run_id, number),
	UNIQUE (run_id, url),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_sources_run_id ON sources (run_id);
CREATE TABLE reports (
	run_id VARCHAR NOT NULL,
	body VARCHAR NOT NULL,
	references_json VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (run_id),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE TABLE events (
	id INTEGER NOT NULL,
	run_id VARCHAR NOT NULL,
	stage VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	message VARCHAR NOT NULL,
	iteration INTEGER,
	data_json VARCHAR NOT NULL,
	elapsed_s FLOAT NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_events_run_id ON events (run_id);
"""

# As `ResearchConfig(model="m", iterations=1).model_dump_json()` wrote it then.
CONFIG_JSON = (
    '{"iterations":1,"search":"local","docs":[],"model":"m","max_sections":4,'
    '"section_tokens":160,"search_results":12,"passages_per_answer":8,"seed":0,'
    '"temperature":0.0,"questions_per_step":1,"denoise":true,"evolve":["plan","report"],'
    '"variants":2,"evolution_rounds":1,"length":"medium","grounding":"strict",'
    '"judge_model":null}'
)
# The nested dict `ResearchContext.stats_summary` returned then.
STATS = {
    "model": "tiny-llama",
    "decoding": "block diffusion",
    "device": "cpu",
    "judge_model": "tiny-judge",
    "generation": {
        "tokens": 120,
        "prompt_tokens": 900,
        "forward_passes": 40,
        "seconds": 2.5,
        "calls": 6,
        "tokens_per_forward": 3.0,
        "tokens_per_second": 48.0,
    },
    "stages": {
        "plan": {
            "tokens": 20,
            "prompt_tokens": 100,
            "forward_passes": 10,
            "seconds": 0.5,
            "calls": 1,
            "tokens_per_forward": 2.0,
            "tokens_per_second": 40.0,
            "wall_s": 0.75,
        }
    },
    "wall_s": 3.25,
    "prompts": {"plan": 1},
    "citations": {
        "markers": 3,
        "kept": 2,
        "moved": 1,
        "unsupported": 1,
        "validity_rate": 0.667,
        "unresolved_removed": 0,
        "sections": 2,
        "sections_with_citations": 1,
        "sentences": 5,
        "sentences_cited": 2,
        "grounding": "strict",
    },
    "judge_scores": {"plan": [6.5, 8.0]},
}
DONE = "a1b2c3d4e5f6"  # a finished run with everything
FAILED = "0f9e8d7c6b5a"  # a run that failed before its report (stats with empty citations)
WHEN = "2025-06-01 10:00:00.000000"  # naive UTC, as SQLAlchemy stored aware datetimes


def legacy_schema(*, owners: bool = True) -> str:
    """The DDL; without `owners`, as written before runs recorded their process."""
    return LEGACY_SCHEMA if owners else LEGACY_SCHEMA.replace("\towner VARCHAR,\n", "")


def write_legacy_history(path: Path) -> None:
    """A history with one finished run (every kind of row) and one failed run."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(LEGACY_SCHEMA)
        runs = "INSERT INTO runs VALUES (?, ?, 'm', ?, ?, ?, ?, ?, ?, ?, ?, 'another-host:1:1')"
        plan = '{"sections":[{"title":"Scoring","question":"How?"}]}'
        stats = json.dumps(STATS)
        db.execute(
            runs, (DONE, "What is BM25?", CONFIG_JSON, "done", WHEN, WHEN, WHEN, None, plan, stats)
        )
        failed_stats = json.dumps({"wall_s": 0.4, "citations": {}})
        db.execute(
            runs,
            (
                FAILED,
                "Why?",
                CONFIG_JSON,
                "failed",
                WHEN,
                WHEN,
                WHEN,
                "ValueError: x",
                None,
                failed_stats,
            ),
        )
        db.execute(
            "INSERT INTO drafts VALUES (1, ?, 0, '## Scoring\n\nR0', '[\"Scoring\"]', ?)",
            (DONE, WHEN),
        )
        db.execute(
            "INSERT INTO drafts VALUES (2, ?, 1, '## Scoring\n\nR1 [1]', '[]', ?)", (DONE, WHEN)
        )
        db.execute("INSERT INTO qa_pairs VALUES (1, ?, 1, 'Scoring', 'q', 'a [1]', '[1]')", (DONE,))
        db.execute(
            "INSERT INTO sources VALUES (1, ?, 1, 'file:///a.md', 'A', 'local', 'bm25 text', ?)",
            (DONE, WHEN),
        )
        references = '[{"number": 1, "source_number": 1, "title": "A", "url": "file:///a.md"}]'
        db.execute("INSERT INTO reports VALUES (?, '# R\n\nx [1]', ?, ?)", (DONE, references, WHEN))
        db.execute(
            "INSERT INTO events VALUES (1, ?, 'plan', 'finished', 'ok', NULL, "
            '\'{"n": 1, "path": "/x"}\', 1.5, ?)',
            (DONE, WHEN),
        )
        db.execute(
            "INSERT INTO prompt_versions VALUES (1, 'plan', 'Plan {question}', NULL, 7.25, 2, 1, "
            "'seed', ?)",
            (WHEN,),
        )
