"""Relation paths: enumerate 1–3-hop paths from an entity, score and follow them.

A *path* is a tuple of hops ``(relation id, direction)``. Candidates come from the entity's
own edges extended through :attr:`GraphIndex.follows` (which hop can follow which anywhere
in the graph), so no path is proposed that the schema cannot walk; following a path is set
expansion over the adjacency lists. Answers are sets: every node the path reaches, minus
the start entity (a question about X never answers X).

Scorers rank paths against the question with the mention masked ("who directed X"):

- :class:`ZeroShotScorer` — each hop must be named in the question (sentence-transformers
  similarity of its words to the relation labels); works on a fresh graph;
- :class:`kg.pathscore.LearnedScorer` — trained on QA pairs generated from the graph, and
  :class:`kg.pathscore.CombinedScorer`, the two added (the default once trained).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

from kg.graphindex import GraphIndex, Hop

Path = tuple[Hop, ...]
MAX_FRONTIER = 20_000


def candidate_paths(g: GraphIndex, start: int, max_hops: int = 3, limit: int = 4000) -> list[Path]:
    """Every hop sequence the graph can walk from ``start``, shortest first."""
    level: list[Path] = [(h,) for h in sorted(g.adj[start])]
    out = list(level)
    for _ in range(max_hops - 1):
        level = [p + (h,) for p in level for h in sorted(g.follows.get(p[-1], ()))]
        out += level
        if len(out) >= limit:
            break
    return out[:limit]


def follow(g: GraphIndex, start: int, path: Path) -> tuple[set[int], list[dict[int, int]]]:
    """The nodes ``path`` reaches from ``start`` and, per hop, a parent of each reached node
    (for evidence chains). The start is never passed through: "films sharing actors with
    X" are films other than X."""
    frontier = {start}
    parents: list[dict[int, int]] = []
    for hop in path:
        step: dict[int, int] = {}
        for n in frontier:
            for m in g.adj[n].get(hop, ()):
                if m not in step and m != start:
                    step[m] = n
            if len(step) > MAX_FRONTIER:
                break
        parents.append(step)
        frontier = set(step)
        if not frontier:
            break
    return frontier, parents


def chain(g: GraphIndex, parents: list[dict[int, int]], end: int) -> list[int]:
    """start … end: the nodes of one walk that reached ``end``."""
    nodes = [end]
    for step in reversed(parents):
        nodes.append(step[nodes[-1]])
    return nodes[::-1]


def walk_text(g: GraphIndex, path: Path, nodes: list[int]) -> str:
    """One evidence chain as the generator reads it, in walk order so the answer is always
    last: "tom hanks starred actors of forrest gump directed by robert zemeckis"."""
    parts = [g.labels[nodes[0]]]
    for (rel, direction), node in zip(path, nodes[1:]):
        label = g.relation_labels[rel].replace("_", " ")
        parts += [label if direction > 0 else f"{label} of", g.labels[node]]
    return " ".join(parts)


class PathScorer(Protocol):
    name: str

    def score(self, g: GraphIndex, question: str, paths: Sequence[Path]) -> np.ndarray:
        """One score per path for the masked question; higher is better."""


_WORD = re.compile(r"[^\W_]+")
_SHARED = {"same", "share", "shares", "shared", "sharing", "also", "co", "other", "too", "with"}


@dataclass
class ZeroShotScorer:
    """Each hop of a path must be *said* in the question, and each relation the question
    says must be a hop of the path.

    Content words (and word pairs) are embedded and compared with every relation label;
    the similarity is taken as a z-score over all relations (in a film graph "films"
    resembles every relation and so names none). A word whose best relation stands out by
    ``threshold`` standard deviations *mentions* that relation; neighbouring words
    mentioning the same relation ("starred … actors") are one mention. A path then scores
    the mentions its hops match (same relation, each mention used once), minus
    ``miss`` per hop nothing mentions and per mention no hop uses.
    """

    embedder: object
    threshold: float = 1.85
    miss: float = 1.0
    name: str = "zero-shot"
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.embedder.embed(missing)):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in texts])

    def mentions(self, g: GraphIndex, question: str) -> list[tuple[int, float, int]]:
        """(relation id, strength, distance in words from the topic) for each relation the
        question mentions, in order."""
        tokens_ = _WORD.findall(question.lower())
        words = [(i, w) for i, w in enumerate(tokens_) if w not in STOP_WORDS and w != "x"]
        topic = [i for i, w in enumerate(tokens_) if w == "x"]
        if not words or not g.relation_labels:
            return []
        spans = [(i, i, w) for i, w in words]
        spans += [(a, b, f"{wa} {wb}") for (a, wa), (b, wb) in zip(words, words[1:]) if b == a + 1]
        labels = [label.replace("_", " ") for label in g.relation_labels]
        sim = self._embed(labels) @ self._embed([t for *_, t in spans]).T
        if len(labels) >= 4:  # z-scores: how far this relation stands out for the word
            sim = (sim - sim.mean(axis=0, keepdims=True)) / (sim.std(axis=0, keepdims=True) + 1e-6)
        else:
            sim = sim - sim.mean(axis=0, keepdims=True) + (self.threshold if len(labels) == 1 else 0.0)
        # Per word position: its best relation, from the word or a pair it is part of.
        best: dict[int, tuple[float, int]] = {}
        for j, (a, b, _t) in enumerate(spans):
            r = int(np.argmax(sim[:, j]))
            for pos in {a, b}:
                if sim[r, j] > best.get(pos, (-9.0, -1))[0]:
                    best[pos] = (float(sim[r, j]), r)
        out: list[tuple[int, float, int]] = []
        last_pos, last_rel, between = -9, -1, False

        def distance(pos: int) -> int:
            return min((abs(pos - t) for t in topic), default=pos)

        for pos, _w in words:
            strength, rel = best[pos]
            if strength < self.threshold:
                between = True
                continue
            # One relation said twice around the topic or a word apart ("what year was X
            # released", "starred which actors") is one mention.
            around = not between and any(last_pos < t < pos for t in topic)
            if rel == last_rel and (pos - last_pos <= 2 or around):
                out[-1] = (rel, max(out[-1][1], strength), min(out[-1][2], distance(pos)))
            else:
                out.append((rel, strength, distance(pos)))
            last_pos, last_rel, between = pos, rel, False
        return out

    def score(self, g: GraphIndex, question: str, paths: Sequence[Path]) -> np.ndarray:
        if not paths:
            return np.zeros(0, dtype=np.float32)
        said = self.mentions(g, question)
        # "the same director as X", "co-wrote with X", "also directed": one mention of a
        # relation stands for going there and back (r, then r reversed) once.
        shared = bool(_SHARED & set(_WORD.findall(question.lower())))
        out = np.empty(len(paths), dtype=np.float32)
        for k, path in enumerate(paths):
            left = list(said)
            total = 0.0
            used: list[int] = []
            i = 0
            while i < len(path):
                rel, d = path[i]
                # the unused mention of this relation nearest the topic
                match = min((m for m in left if m[0] == rel), key=lambda m: m[2], default=None)
                if match is None:
                    total -= self.miss
                else:
                    left.remove(match)
                    used.append(match[2])
                    total += match[1]
                    if shared and i == 0 and len(path) > 1 and path[1] == (rel, -d):
                        total += match[1]
                        i += 1
                i += 1
            # The first hop is said nearest the topic, the last farthest ("the directors
            # of the films written by X" walks written_by, then directed_by).
            inversions = sum(a > b for a, b in zip(used, used[1:]))
            out[k] = total - self.miss * len(left) - 0.5 * inversions - 0.001 * len(path)
        return out
