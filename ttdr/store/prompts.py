"""The prompt population, in the same database as the history.

`PromptStore` is the `ttdr.recording.PromptPopulation` the prompt book evolves; its rows are
`PromptRow`s.
"""

from __future__ import annotations

from sqlmodel import Session, col, delete, select

from ttdr.models import utc_now
from ttdr.store.runs import Store
from ttdr.store.schema import PromptRow


class PromptStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def versions(self, component: str | None = None) -> list[PromptRow]:
        with Session(self.engine) as session:
            query = select(PromptRow).order_by(col(PromptRow.component), col(PromptRow.id))
            if component is not None:
                query = query.where(PromptRow.component == component)
            return list(session.exec(query).all())

    def get(self, prompt_id: int) -> PromptRow | None:
        with Session(self.engine) as session:
            return session.get(PromptRow, prompt_id)

    def add(
        self, component: str, text: str, *, parent_id: int | None = None, note: str = ""
    ) -> PromptRow:
        row = PromptRow(
            component=component, text=text, parent_id=parent_id, note=note, created_at=utc_now()
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def record(self, prompt_id: int, score: float | None) -> None:
        """Count a use; a judged use moves the fitness towards its score (a running mean)."""
        with Session(self.engine) as session:
            row = session.get(PromptRow, prompt_id)
            if row is None:
                return
            row.uses += 1
            if score is not None:
                row.scored += 1
                previous = row.fitness or 0.0
                row.fitness = previous + (score - previous) / row.scored
            session.add(row)
            session.commit()

    def remove(self, prompt_id: int) -> None:
        with Session(self.engine) as session:
            session.exec(delete(PromptRow).where(PromptRow.id == prompt_id))
            session.commit()

    def reset(self, component: str | None = None) -> int:
        with Session(self.engine) as session:
            query = delete(PromptRow)
            if component is not None:
                query = query.where(PromptRow.component == component)
            result = session.exec(query)
            session.commit()
            return result.rowcount
