"""Backends: text generation (`backends.llm`) and retrieval (`backends.search`)."""
