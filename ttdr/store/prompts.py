"""The prompt population, in the same database as the history.

`PromptStore` is the `ttdr.recording.PromptPopulation` the prompt book evolves; its rows are
`PromptRow`s.
"""

from __future__ import annotations

from sqlalchemy import exists, func, insert, literal, update
from sqlalchemy import select as sa_select
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

    def seed(self, component: str, text: str) -> PromptRow:
        """The component's first version, added only if it has none: one INSERT … SELECT …
        WHERE NOT EXISTS, so runs starting together on one history add one seed, not one each
        (SQLite runs a write statement under its write lock from its first read)."""
        table = PromptRow.__table__
        values = {
            "component": component,
            "text": text,
            "uses": 0,
            "scored": 0,
            "note": "seed",
            "created_at": utc_now(),
        }
        row = sa_select(*(literal(v, type_=table.c[k].type) for k, v in values.items()))
        taken = sa_select(table.c.id).where(table.c.component == component)
        with Session(self.engine) as session:
            session.exec(insert(table).from_select(list(values), row.where(~exists(taken))))
            session.commit()
            query = select(PromptRow).where(PromptRow.component == component)
            return session.exec(query.order_by(col(PromptRow.id))).first()

    def record(self, prompt_id: int, score: float | None) -> None:
        """Count a use; a judged use moves the fitness towards its score (a running mean).
        One UPDATE over the stored values, so concurrent runs never lose each other's counts."""
        values: dict = {"uses": PromptRow.uses + 1}
        if score is not None:
            previous = func.coalesce(PromptRow.fitness, 0.0)
            values |= {
                "scored": PromptRow.scored + 1,
                "fitness": previous + (score - previous) / (PromptRow.scored + 1),
            }
        with Session(self.engine) as session:
            session.exec(update(PromptRow).where(PromptRow.id == prompt_id).values(**values))
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
