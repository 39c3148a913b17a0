"""Text generation: the `Generator` contract, the model registry and the loaders."""

from backends.llm.protocol import ChatMessage, Generation, GenerationStats, Generator, ModelInfo

__all__ = ["ChatMessage", "Generation", "GenerationStats", "Generator", "ModelInfo"]
