"""Entity resolution: mentions → canonical entity IRIs (embeddings + FAISS + string rules).

- :mod:`kg.resolve.embedder` — the :class:`Embedder` protocol, sentence-transformers,
  and a content-addressed on-disk cache;
- :mod:`kg.resolve.index` — the :class:`VectorIndex` protocol and exact FAISS search;
- :mod:`kg.resolve.resolver` — :class:`EntityResolver`, the registry the graph rebuilds,
  and :func:`open_resolver` (load the saved one, or rebuild it when its stamp is stale).
"""

from kg.resolve.embedder import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from kg.resolve.index import FaissIndex, VectorIndex
from kg.resolve.resolver import (
    CLASSES, TYPE_CLASSES, EntityInfo, EntityResolver, ResolvedEntity, normalise_name,
    open_resolver, string_similarity, type_class, type_iri,
)

__all__ = [
    "Embedder", "SentenceTransformerEmbedder", "CachedEmbedder", "VectorIndex", "FaissIndex",
    "EntityResolver", "ResolvedEntity", "EntityInfo", "open_resolver", "CLASSES", "TYPE_CLASSES",
    "normalise_name", "string_similarity", "type_class", "type_iri",
]
