"""The TTD-DR workflow (Han et al. 2025, Algorithm 1) as a LangGraph graph.

    plan → draft R0 → repeat T times { question → search + answer → revise R(t-1) → R(t) } → report

Each node lives in its own module; this file only wires them, so the flow reads in one screen.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.answer import answer_node
from agents.context import ResearchContext
from agents.draft import draft_node
from agents.plan import plan_node
from agents.questions import question_node
from agents.report import report_node
from agents.revise import revise_node
from agents.state import ResearchState


def next_step(
    state: ResearchState, runtime: Runtime[ResearchContext]
) -> Literal["question", "report"]:
    """Keep denoising until the configured number of steps is done."""
    return "question" if state["iteration"] < runtime.context.config.iterations else "report"


def build_graph(checkpointer=None):
    graph = StateGraph(ResearchState, context_schema=ResearchContext)
    graph.add_node("plan", plan_node)
    graph.add_node("draft", draft_node)
    graph.add_node("question", question_node)
    graph.add_node("answer", answer_node)
    graph.add_node("revise", revise_node)
    graph.add_node("report", report_node)

    graph.add_edge(START, "plan")
    graph.add_edge("plan", "draft")
    graph.add_conditional_edges("draft", next_step, ["question", "report"])
    graph.add_edge("question", "answer")
    graph.add_edge("answer", "revise")
    graph.add_conditional_edges("revise", next_step, ["question", "report"])
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)
