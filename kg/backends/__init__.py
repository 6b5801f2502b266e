"""Graph backends: the rdflib Store plugin under a knowledge store, plus the bulk and
atomic paths kgchat needs that rdflib's Store API does not offer.

``oxigraph``: embedded, on disk (oxrdflib's ``Oxigraph`` store over pyoxigraph).
``sparql``: any SPARQL 1.1 query+update endpoint (rdflib's ``SPARQLUpdateStore``).
"""

from __future__ import annotations

from pathlib import Path

from kg.backends.base import GraphBackend, Triple
from kg.config import StoreSettings
from kg.errors import ConfigError


def open_backend(settings: StoreSettings, graph_dir: Path) -> GraphBackend:
    if settings.backend == "oxigraph":
        from kg.backends.oxigraph import OxigraphBackend

        return OxigraphBackend.open(graph_dir)
    if settings.backend == "sparql":
        from kg.backends.sparql import SparqlBackend

        return SparqlBackend.open(settings)
    raise ConfigError(f"store.backend {settings.backend!r} is not available")


__all__ = ["GraphBackend", "Triple", "open_backend"]
