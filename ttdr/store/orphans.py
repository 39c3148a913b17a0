"""Runs whose process died without a word (SIGKILL, the OOM killer, a power cut).

Such a run still says `running`; whoever reads the history next marks it `interrupted`, so
the history tells the truth and offers to resume it. Each run records its owner process
(ttdr.liveness), which is how a dead run is told from one still going in another process.
"""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlmodel import Session, col, func, select

from ttdr.liveness import owner_is_gone
from ttdr.models import EventKind, RunStatus, Stage, utc_now
from ttdr.store.schema import EventRow, RunRow

ORPHANED = (
    "the process running it ended without recording why (killed or crashed); its drafts are "
    "kept: `ttdr research --resume {run_id}` continues it"
)


def mark_orphaned_runs(engine: Engine) -> list[str]:
    """Mark the running runs whose owner is gone as interrupted; return their ids."""
    with Session(engine) as session:
        running = session.exec(select(RunRow).where(RunRow.status == RunStatus.running.value))
        orphans = [(row.id, row.owner) for row in running if owner_is_gone(row.owner)]
    return [run_id for run_id, owner in orphans if _mark(engine, run_id, owner)]


def _mark(engine: Engine, run_id: str, owner: str | None) -> bool:
    with Session(engine) as session:
        last_seen = session.exec(
            select(func.max(EventRow.created_at)).where(EventRow.run_id == run_id)
        ).one()
        changed = session.exec(  # only if no one resumed it meanwhile
            update(RunRow)
            .where(col(RunRow.id) == run_id)
            .where(col(RunRow.status) == RunStatus.running.value)
            .where(col(RunRow.owner) == owner)
            .values(
                status=RunStatus.interrupted.value,
                error=ORPHANED.format(run_id=run_id),
                finished_at=last_seen or utc_now(),
                updated_at=utc_now(),
            )
        ).rowcount
        if changed:
            session.add(
                EventRow(
                    run_id=run_id,
                    stage=Stage.run.value,
                    kind=EventKind.error.value,
                    message="Interrupted: " + ORPHANED.format(run_id=run_id),
                    created_at=utc_now(),
                )
            )
        session.commit()
    return bool(changed)
