"""Vector indexes: the :class:`VectorIndex` protocol and its FAISS provider.

:class:`FaissIndex` is exact inner-product search (``IndexFlatIP`` under an id map), which
on unit vectors is cosine similarity. Exact search costs O(n·dim) per query: at 384
dimensions that is a few milliseconds per query for 10^5 vectors and tens of milliseconds
for 10^6 on one CPU core, fine for entity labels. Past a few million labels, or when
queries must stay under a millisecond, swap in an approximate index (``IndexHNSWFlat``
wrapped in ``IndexIDMap2``, or IVF-PQ for memory) behind the same protocol; HNSW cannot
remove vectors in place, so removals there would mean tombstones plus periodic rebuilds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kg.errors import StoreError

__all__ = ["VectorIndex", "FaissIndex"]


@runtime_checkable
class VectorIndex(Protocol):
    """Vectors under caller-chosen int64 ids; search returns the best ``k`` per query."""

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, both ``(len(vectors), k)``; missing slots have id -1."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids (unknown ones are ignored); returns how many were removed."""
        ...

    def __len__(self) -> int: ...

    def to_disk(self, path: str | Path) -> None: ...

    @classmethod
    def from_disk(cls, path: str | Path) -> "VectorIndex": ...


def _as_ids(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def _as_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    return vectors


class FaissIndex:
    """Exact cosine search over unit vectors: ``faiss.IndexIDMap2(faiss.IndexFlatIP(dim))``."""

    def __init__(self, dim: int, _index: object | None = None) -> None:
        import faiss

        self.dim = int(dim)
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = _as_vectors(vectors, self.dim)
        n = len(vectors)
        if n == 0 or k < 1 or self._index.ntotal == 0:
            return (np.full((n, max(k, 0)), -np.inf, dtype=np.float32),
                    np.full((n, max(k, 0)), -1, dtype=np.int64))
        scores, ids = self._index.search(vectors, k)
        scores[ids < 0] = -np.inf
        return scores, ids

    def remove(self, ids: np.ndarray) -> int:
        ids = _as_ids(ids)
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(ids))

    def ids(self) -> np.ndarray:
        """Every id held, in storage order."""
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def to_disk(self, path: str | Path) -> None:
        """Write to ``path`` atomically (a temporary file renamed over it)."""
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, path)

    @classmethod
    def from_disk(cls, path: str | Path) -> "FaissIndex":
        import faiss

        path = Path(path)
        if not path.is_file():
            raise StoreError(f"no vector index at {path}; rebuild it from the graph")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise StoreError(f"vector index {path} is unreadable ({exc}); delete it and rebuild") from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise StoreError(f"{path} is not a kgchat FaissIndex; delete it and rebuild")
        return cls(index.d, _index=index)
