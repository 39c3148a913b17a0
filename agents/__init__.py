"""The TTD-DR research workflow as a LangGraph graph (see `agents.graph`)."""
