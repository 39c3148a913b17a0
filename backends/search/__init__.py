"""Retrieval: ranked, attributed passages from the web, the local index, or both (`auto`)."""

from backends.search.extract import ExtractedDocument, ExtractionError, extract_document
from backends.search.local_index import IndexedDocument, IndexReport, LocalIndex
from backends.search.passages import TextSpan, rank_passages, split_passages
from backends.search.retriever import Retriever
from backends.search.types import Passage, SearchOutcome, SkippedSource
from backends.search.web import WebSearch, WebSearchError

__all__ = [
    "ExtractedDocument",
    "ExtractionError",
    "IndexReport",
    "IndexedDocument",
    "LocalIndex",
    "Passage",
    "Retriever",
    "SearchOutcome",
    "SkippedSource",
    "TextSpan",
    "WebSearch",
    "WebSearchError",
    "extract_document",
    "rank_passages",
    "split_passages",
]
