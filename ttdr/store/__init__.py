"""The history: one SQLite file under the data directory, shared safely by several processes.

- `schema`: the tables (SQLModel rows, JSON columns for structured values)
- `migrations`: the schema as a ladder of steps keyed on `PRAGMA user_version`
- `database`: opening the file (migrate, pragmas) and one-line errors for a broken file
- `convert`: rows to domain models and back
- `runs`: `Store`, the runs and what each produced (the agent's `RunRecorder`)
- `orphans`: runs whose process died unheard
- `prompts`: `PromptStore`, the evolving prompt population
"""

from ttdr.store.orphans import ORPHANED
from ttdr.store.prompts import PromptStore
from ttdr.store.runs import MAX_EXCERPT_CHARS, Store
from ttdr.store.schema import DraftRow, EventRow, PromptRow, QARow, ReportRow, RunRow, SourceRow

__all__ = [
    "MAX_EXCERPT_CHARS",
    "ORPHANED",
    "DraftRow",
    "EventRow",
    "PromptRow",
    "PromptStore",
    "QARow",
    "ReportRow",
    "RunRow",
    "SourceRow",
    "Store",
]
