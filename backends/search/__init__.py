"""Retrieval: ranked, attributed passages from the web (DuckDuckGo or SearXNG), the local index
(optionally one collection of it), or both (`auto`)."""

from backends.search.embeddings import Embedder, embeddings_available, shared_embedder
from backends.search.extract import ExtractedDocument, ExtractionError, extract_document
from backends.search.fetch import Fetcher, FetchSettings, Page
from backends.search.guard import AddressRefusedError
from backends.search.local_index import (
    Collection,
    IndexedDocument,
    IndexReport,
    LocalIndex,
    check_collection_name,
)
from backends.search.page_cache import PageCache
from backends.search.passages import TextSpan, rank_passages, split_passages
from backends.search.retriever import Retriever
from backends.search.searxng import SearxngEngine
from backends.search.types import Passage, SearchOutcome, SkippedSource
from backends.search.web import WebSearch, WebSearchError

__all__ = [
    "AddressRefusedError",
    "Collection",
    "Embedder",
    "ExtractedDocument",
    "ExtractionError",
    "FetchSettings",
    "Fetcher",
    "IndexReport",
    "IndexedDocument",
    "LocalIndex",
    "Page",
    "PageCache",
    "Passage",
    "Retriever",
    "SearchOutcome",
    "SearxngEngine",
    "SkippedSource",
    "TextSpan",
    "WebSearch",
    "WebSearchError",
    "check_collection_name",
    "embeddings_available",
    "extract_document",
    "rank_passages",
    "shared_embedder",
    "split_passages",
]
