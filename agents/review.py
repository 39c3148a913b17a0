"""Plan review: the run stops after planning until a person accepts or edits the plan.

The stop is LangGraph's `interrupt()` in a node of its own, so the checkpoint taken after the
plan node holds the plan, and resuming reruns only this cheap node (a node is replayed from
its start when its interrupt is answered; replaying the plan node would plan again). The value
a front end resumes with is `{"decision": "edit", "plan": {...}}` for an edited plan, or
`{"decision": "accept"}` (never an empty dict: LangGraph reads a dict of interrupt ids as a
map of answers, and an empty one as answering none);
rejecting is the front door's business (it leaves the run stopped), not the graph's.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Overwrite, interrupt

from agents.context import ResearchContext
from agents.plan import record_plan
from agents.state import Evidence, ResearchState
from ttdr.models import EventKind, Plan, Stage


def review_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    if not ctx.config.review_plan:
        return {}
    plan = state["plan"]
    answer = interrupt({"plan": plan.model_dump(mode="json")})
    if answer.get("decision") != "edit":
        ctx.emit(Stage.plan, EventKind.progress, "Plan accepted as planned")
        return {}
    edited = Plan.model_validate(answer["plan"])
    record_plan(ctx, edited, "Plan edited at review:")
    kept = carried_evidence(plan, edited, state.get("evidence", []))
    return {"plan": edited, "evidence": Overwrite(kept)}


def carried_evidence(old: Plan, new: Plan, evidence: list[Evidence]) -> list[Evidence]:
    """The planning evidence that still belongs to a section of the edited plan.

    An outline plan comes with the passages each heading was taken from, filed by section
    number. After an edit the numbers can point elsewhere, so a passage follows its section
    by title (renumbered) and is dropped when its section was renamed or removed: a passage
    filed under the wrong section would be written into it as if it answered it.
    """
    new_index = {_key(s.title): i for i, s in enumerate(new.sections)}
    kept = []
    for item in evidence:
        if not 0 <= item["section"] < len(old.sections):
            continue
        index = new_index.get(_key(old.sections[item["section"]].title))
        if index is not None:
            kept.append({**item, "section": index})
    return kept


def _key(title: str) -> str:
    return " ".join(title.casefold().split())
