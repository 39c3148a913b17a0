"""The TTD-DR workflow (Han et al. 2025, Algorithm 1) as a LangGraph graph.

    plan → (review) → draft R0
         → repeat { questions ⇉ search + answer (parallel) → revise R(t-1) → R(t) }
         → report

The loop ends at the iteration limit, when the question node finds the draft complete, or
when a step brings no new source. The review node stops the run for a person to accept or
edit the plan only when the run asks for it. Each node lives in its own module; this file only
wires them, so the whole flow reads in one screen.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from agents.answer import answer_node
from agents.context import ResearchContext
from agents.draft import draft_node
from agents.plan import plan_node
from agents.questions import question_node
from agents.report import report_node
from agents.review import review_node
from agents.revise import revise_node
from agents.state import ResearchState


def keep_denoising(
    state: ResearchState, runtime: Runtime[ResearchContext]
) -> Literal["questions", "report"]:
    if state.get("stop_reason") or state["iteration"] >= runtime.context.config.iterations:
        return "report"
    return "questions"


def search_in_parallel(state: ResearchState) -> list[Send] | Literal["report"]:
    """One branch per search question; none left means the draft was judged complete."""
    return [Send("answer", task) for task in state.get("tasks", [])] or "report"


def build_graph(checkpointer=None):
    graph = StateGraph(ResearchState, context_schema=ResearchContext)
    graph.add_node("plan", plan_node)
    graph.add_node("review", review_node)
    graph.add_node("draft", draft_node)
    graph.add_node("questions", question_node)
    graph.add_node("answer", answer_node)
    # The revise stage keeps its node name "denoise": checkpoints of earlier runs name the
    # node they go to next, and a run resumed under a renamed node would never reach it.
    graph.add_node("denoise", revise_node)
    graph.add_node("report", report_node)

    graph.add_edge(START, "plan")
    # Checkpoints of earlier runs that stopped after the plan go on to "draft" directly: the
    # trigger they saved names it, and the node is still there.
    graph.add_edge("plan", "review")
    graph.add_edge("review", "draft")
    graph.add_conditional_edges("draft", keep_denoising, ["questions", "report"])
    graph.add_conditional_edges("questions", search_in_parallel, ["answer", "report"])
    graph.add_edge("answer", "denoise")
    graph.add_conditional_edges("denoise", keep_denoising, ["questions", "report"])
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)
