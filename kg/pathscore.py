"""The learned path scorer: which relation path does a question ask for?

score(question, path) = (W · e(question)) · (Σ_i H[pos_i, relation_i, direction_i] + L[len])

``e`` is the frozen sentence embedding of the question with its topic entity masked; ``W``,
``H`` and ``L`` are learned (by :mod:`learners.recipes.path_scorer`) from QA pairs generated
from the user's own graph. Hops are keyed by relation IRI, so a saved scorer survives a graph
rebuild that renumbers relations; a relation it never saw contributes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path as FsPath
from typing import Sequence

import numpy as np
import torch
from torch import nn

from kg.graphindex import GraphIndex
from kg.paths import Path

MAX_HOPS = 3


class PathScorerModel(nn.Module):
    def __init__(self, relations: list[str], dim_in: int = 384, dim: int = 128) -> None:
        super().__init__()
        self.relations = list(relations)
        self.dim_in, self.dim = dim_in, dim
        self.proj = nn.Linear(dim_in, dim)
        # index 0 is padding; hop index = 1 + (pos * R + rel) * 2 + (direction < 0)
        self.hops = nn.Embedding(1 + MAX_HOPS * len(relations) * 2, dim, padding_idx=0)
        self.length = nn.Embedding(MAX_HOPS + 1, dim)
        nn.init.normal_(self.hops.weight, std=0.1)
        nn.init.normal_(self.length.weight, std=0.1)
        with torch.no_grad():
            self.hops.weight[0].zero_()

    def forward(self, q: torch.Tensor, hop_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """q: B×dim_in; hop_ids: B×C×MAX_HOPS; lengths: B×C → scores B×C."""
        paths = self.hops(hop_ids).sum(-2) + self.length(lengths)
        return torch.einsum("bd,bcd->bc", self.proj(q), paths)


def hop_ids(model: PathScorerModel, g: GraphIndex, paths: Sequence[Path],
            rel_map: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Paths as padded hop-id rows (and their lengths) for ``model``'s relation numbering."""
    ids = np.zeros((len(paths), MAX_HOPS), dtype=np.int64)
    lengths = np.zeros(len(paths), dtype=np.int64)
    n_rel = len(model.relations)
    for i, path in enumerate(paths):
        lengths[i] = len(path)
        for pos, (rel, direction) in enumerate(path[:MAX_HOPS]):
            r = rel_map.get(rel)
            if r is not None:
                ids[i, pos] = 1 + (pos * n_rel + r) * 2 + (direction < 0)
    return ids, lengths


class LearnedScorer:
    """A trained :class:`PathScorerModel` plus the question embedder it was trained with."""

    name = "learned"

    def __init__(self, model: PathScorerModel, embedder: object) -> None:
        self.model = model.eval()
        self.embedder = embedder
        self._maps: dict[int, dict[int, int]] = {}

    def relation_map(self, g: GraphIndex) -> dict[int, int]:
        key = id(g)
        if key not in self._maps:
            index = {iri: i for i, iri in enumerate(self.model.relations)}
            self._maps = {key: {i: index[iri] for i, iri in enumerate(g.relations) if iri in index}}
        return self._maps[key]

    def score(self, g: GraphIndex, question: str, paths: Sequence[Path]) -> np.ndarray:
        if not paths:
            return np.zeros(0, dtype=np.float32)
        ids, lengths = hop_ids(self.model, g, paths, self.relation_map(g))
        q = torch.from_numpy(np.asarray(self.embedder.embed([question]), dtype=np.float32))
        with torch.no_grad():
            out = self.model(q, torch.from_numpy(ids)[None], torch.from_numpy(lengths)[None])
        return out[0].numpy()

    # -- persistence -------------------------------------------------------------------
    def to_disk(self, path: FsPath, metrics: dict | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), path / "scorer.pt.tmp")
        (path / "scorer.json").write_text(json.dumps({
            "relations": self.model.relations, "dim_in": self.model.dim_in,
            "dim": self.model.dim, "metrics": metrics or {}}, indent=1))
        (path / "scorer.pt.tmp").replace(path / "scorer.pt")

    @classmethod
    def from_disk(cls, path: FsPath, embedder: object) -> "LearnedScorer | None":
        meta_file, weights = path / "scorer.json", path / "scorer.pt"
        if not (meta_file.exists() and weights.exists()):
            return None
        meta = json.loads(meta_file.read_text())
        model = PathScorerModel(meta["relations"], meta["dim_in"], meta["dim"])
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return cls(model, embedder)


class CombinedScorer:
    """The zero-shot scorer plus the learned one: the learned scores, standardised over a
    question's candidate paths, are added with ``weight``. Neither alone is as good — the
    zero-shot scorer knows what the question *says*, the learned one which paths the graph's
    own questions take (weight 1.0 was chosen on MetaQA dev; see bench/README.md)."""

    name = "learned"

    def __init__(self, zero_shot: object, learned: LearnedScorer, weight: float = 1.0) -> None:
        self.zero_shot, self.learned, self.weight = zero_shot, learned, weight

    def score(self, g: GraphIndex, question: str, paths: Sequence[Path]) -> np.ndarray:
        base = self.zero_shot.score(g, question, paths)
        extra = self.learned.score(g, question, paths)
        if len(extra) > 1:
            extra = (extra - extra.mean()) / (extra.std() + 1e-6)
        return base + self.weight * extra
