"""Fuzzy entity linking: FAISS over the embeddings of every label and alias in the graph.

Exact n-gram lookup (:mod:`chatbot.linking`) misses a misspelt or re-spaced name ("Forest
Gump", "Tom Hank"). Here each candidate span of the question is embedded, its nearest labels
are found by inner product, and a hit is kept only when the two strings are also close
(:func:`kg.resolve.names.string_similarity`): embeddings give recall, the string check
keeps "Paris" from linking to "London".

The index is built on first need (a graph that links exactly never pays for it), through
the on-disk embedding cache, and saved under ``<store>/index/labels/`` with the graph stamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

from kg.graphindex import GraphIndex
from kg.resolve import CachedEmbedder, FaissIndex
from kg.resolve.names import string_similarity

from chatbot.linking import Mention, best_mentions, question_words

__all__ = ["LabelIndex", "load_label_index", "fuzzy_link", "MIN_COSINE", "MIN_SIMILARITY"]

MIN_COSINE = 0.6       # FAISS recall: a typo'd name stays this close to the right one
MIN_SIMILARITY = 0.8   # string precision, as string_similarity measures it


@dataclass
class LabelIndex:
    keys: list[str]          # folded label keys, as in GraphIndex.by_label
    index: FaissIndex | None
    stamp: str

    def search(self, vectors: np.ndarray, k: int = 5) -> list[list[tuple[float, str]]]:
        if self.index is None or not self.keys:
            return [[] for _ in range(len(vectors))]
        scores, ids = self.index.search(vectors.astype(np.float32), min(k, len(self.keys)))
        return [[(float(s), self.keys[int(i)]) for s, i in zip(rs, ri) if i >= 0]
                for rs, ri in zip(scores, ids)]

    def to_disk(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.index is not None:
            self.index.to_disk(path / "labels.faiss")
        tmp = path / "labels.json.tmp"
        tmp.write_text(json.dumps({"stamp": self.stamp, "keys": self.keys}))
        tmp.replace(path / "labels.json")  # last: a crash before it leaves the old stamp

    @classmethod
    def from_disk(cls, path: Path) -> "LabelIndex | None":
        try:
            data = json.loads((path / "labels.json").read_text())
            index = FaissIndex.from_disk(path / "labels.faiss") if data["keys"] else None
        except (OSError, ValueError, KeyError):
            return None
        return cls(data["keys"], index, data["stamp"])


def load_label_index(root: Path, g: GraphIndex, embedder: object) -> LabelIndex:
    """The label index for ``g`` (built from its ``by_label`` keys when the saved one is
    stale; only labels new to the embedding cache are embedded)."""
    path = root / "index" / "labels"
    li = LabelIndex.from_disk(path)
    if li is not None and li.stamp == g.stamp:
        return li
    keys = sorted(g.by_label)
    index = None
    if keys:
        with CachedEmbedder.open(embedder, root / "index" / "embeddings.sqlite") as cached:
            vectors = np.asarray(cached.embed(keys), dtype=np.float32)
        index = FaissIndex(vectors.shape[1])
        index.add(np.arange(len(keys), dtype=np.int64), vectors)
    li = LabelIndex(keys, index, g.stamp)
    li.to_disk(path)
    return li


def _spans(question: str, max_tokens: int) -> list[tuple[int, int]]:
    """Word spans worth looking up: up to ``max_tokens`` words, starting and ending on a
    content word (not a stop word or a question word)."""
    words = question_words(question)
    content = [w not in STOP_WORDS and len(w) > 2 for w, _, _ in words]
    out = []
    for i in range(len(words)):
        if not content[i]:
            continue
        for n in range(1, min(max_tokens, len(words) - i) + 1):
            if content[i + n - 1]:
                out.append((i, i + n))
    return [(words[i][1], words[j - 1][2]) for i, j in out]


def fuzzy_link(g: GraphIndex, labels: LabelIndex, embedder: object, question: str,
               *, top: int = 4, k: int = 5) -> list[Mention]:
    """Mentions whose text is close to a label without equalling one, best first.

    The score is the string similarity plus a bonus for longer spans, so that "Forest Gump"
    beats its own "Gump"."""
    spans = _spans(question, max(1, g.max_label_tokens))
    if not spans:
        return []
    texts = [question[s:e] for s, e in spans]
    hits = labels.search(np.asarray(embedder.embed(texts), dtype=np.float32), k=k)
    found: list[Mention] = []
    for (s, e), text, row in zip(spans, texts, hits):
        best: tuple[float, str] | None = None
        for cosine, key in row:
            if cosine < MIN_COSINE:
                continue
            sim = string_similarity(text, key)
            if sim >= MIN_SIMILARITY and (best is None or sim > best[0]):
                best = (sim, key)
        if best is not None:
            n_words = len(question_words(text))
            found.append(Mention(s, e, text, tuple(g.by_label[best[1]]), best[0] + 0.5 * n_words))
    return best_mentions(found, top)
