"""Documents and conversations → provenance-tracked triples in the store.

:func:`open_ingestor` builds the pipeline for a store from its settings (models load
once); :mod:`kg.ingest.chat` turns a stated fact in a chat turn into triples.
"""

from __future__ import annotations


from kg.ingest.pipeline import IngestSummary, Ingestor, document_rows, documents_stamp, index_dir
from kg.store import KnowledgeStore


def open_ingestor(store: KnowledgeStore, *, n_process: int | None = None) -> Ingestor:
    """The configured extractor, the entity resolver (its index loaded, or rebuilt from
    the graph when stale) and the loaders, for ``store``."""
    from kg.resolve import open_resolver
    from kg.sources.loaders import discover, load

    ex = store.settings.extract
    if n_process is not None:
        ex = ex.model_copy(update={"n_process": n_process})
    if ex.extractor == "llm":
        from kg.extract.llm import LLMExtractor

        extractor = LLMExtractor(ex)
    else:
        from kg.extract.spacy_rules import SpacyExtractor

        extractor = SpacyExtractor(ex)
    resolver = open_resolver(store.vocab, store.settings.resolve, index_dir(store),
                             stamp=documents_stamp(store), rows=lambda: document_rows(store))
    return Ingestor(store, extractor, resolver, loader=load, discover=discover)


__all__ = ["IngestSummary", "Ingestor", "open_ingestor"]
