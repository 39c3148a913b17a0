"""Text generation: the `Generator` and `Editor` contracts, the model registry and the loaders."""

from backends.llm.protocol import (
    ChatMessage,
    Edit,
    Editor,
    Generation,
    GenerationStats,
    Generator,
    ModelInfo,
    Span,
)

__all__ = [
    "ChatMessage",
    "Edit",
    "Editor",
    "Generation",
    "GenerationStats",
    "Generator",
    "ModelInfo",
    "Span",
]
