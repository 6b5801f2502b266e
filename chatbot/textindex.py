"""Text retrieval beside the graph: the documents' chunks embedded in FAISS.

Chunks are read from the graph (``kgv:Chunk`` nodes, see :mod:`kg.ingest.chunks`), embedded
with the sentence-transformers model through the on-disk embedding cache (so a rebuild
after one changed document embeds only that document's chunks) and searched exactly
(inner product of normalised vectors). The index is saved under ``<store>/index/text/``
with the graph stamp it was built from and rebuilt when the graph has changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kg.graphindex import graph_stamp
from kg.resolve import CachedEmbedder, FaissIndex
from kg.store import KnowledgeStore


@dataclass(frozen=True)
class Chunk:
    document: str        # document URI
    title: str           # document title ("" when none)
    text: str
    start: int
    end: int


@dataclass
class TextIndex:
    chunks: list[Chunk] = field(default_factory=list)
    index: FaissIndex | None = None
    stamp: str = ""

    def search(self, query_vector: np.ndarray, k: int = 5) -> list[tuple[float, Chunk]]:
        if self.index is None or not self.chunks:
            return []
        scores, ids = self.index.search(query_vector[None, :].astype(np.float32), min(k, len(self.chunks)))
        return [(float(s), self.chunks[int(i)]) for s, i in zip(scores[0], ids[0]) if i >= 0]

    def to_disk(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        rows = [[c.document, c.title, c.text, c.start, c.end] for c in self.chunks]
        (path / "chunks.json.tmp").write_text(json.dumps({"stamp": self.stamp, "chunks": rows}))
        if self.index is not None:
            self.index.to_disk(path / "chunks.faiss")
        (path / "chunks.json.tmp").replace(path / "chunks.json")

    @classmethod
    def from_disk(cls, path: Path) -> "TextIndex | None":
        meta = path / "chunks.json"
        if not meta.exists():
            return None
        data = json.loads(meta.read_text())
        chunks = [Chunk(*row) for row in data["chunks"]]
        index = FaissIndex.from_disk(path / "chunks.faiss") if chunks else None
        return cls(chunks, index, data["stamp"])


def read_chunks(store: KnowledgeStore) -> list[Chunk]:
    res = store.query("""SELECT ?doc ?title ?text ?start ?end WHERE {
        ?c a kgv:Chunk ; kgv:text ?text ; kgv:start ?start ; kgv:end ?end ; kgv:document ?doc .
        OPTIONAL { ?doc rdfs:label ?title }
    } ORDER BY ?doc ?start""", timeout=3600)
    rows: dict[tuple[str, int, int], list[str]] = {}
    titles: dict[str, str] = {}
    for doc, title, text, start, end in res.rows:
        rows.setdefault((str(doc), int(start), int(end)), [str(text)])
        # a document may carry more than one label (its title, and its URI from provenance)
        if title is not None and str(title) != str(doc) and "://" not in str(title)[:12]:
            titles.setdefault(str(doc), str(title))
    return [Chunk(doc, titles.get(doc, ""), text[0], s, e) for (doc, s, e), text in rows.items()]


def passage(c: Chunk) -> str:
    """What is embedded: the title gives a paragraph its subject ("It was founded in …")."""
    return f"{c.title}. {c.text}" if c.title and not c.text.startswith(c.title) else c.text


def load_text_index(store: KnowledgeStore, embedder: object, stamp: str | None = None) -> TextIndex:
    """The passage index for the store's graph (``stamp``: its graph stamp, when the caller
    has just computed it)."""
    path = store.root / "index" / "text"
    stamp = stamp or graph_stamp(store)
    ti = TextIndex.from_disk(path)
    if ti is not None and ti.stamp == stamp:
        return ti
    chunks = read_chunks(store)
    index = None
    if chunks:
        with CachedEmbedder.open(embedder, store.root / "index" / "embeddings.sqlite") as cached:
            vectors = np.asarray(cached.embed([passage(c) for c in chunks]), dtype=np.float32)
        index = FaissIndex(vectors.shape[1])
        index.add(np.arange(len(chunks), dtype=np.int64), vectors)
    ti = TextIndex(chunks, index, stamp)
    ti.to_disk(path)
    return ti
