"""Recipe: train the path scorer on QA pairs generated from the graph.

Read top to bottom: embed the masked questions once (the encoder is frozen), enumerate each
question's candidate paths from its topic entity, then minimise cross-entropy of the gold
path among the candidates. Several paths can reach exactly the same answers (e.g. an inverse
relation the reasoner added); all of them count as correct, so the loss is the negative log
of the summed probability of the paths whose answer set equals the gold one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from kg.graphindex import GraphIndex, tokens
from kg.paths import candidate_paths, follow
from kg.pathscore import LearnedScorer, PathScorerModel, hop_ids
from learners.qa import QAPair


@dataclass
class ScorerConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-3
    dim: int = 128
    max_candidates: int = 600      # candidates per question (gold always kept)
    seed: int = 0


def mask_topic(question: str, topic: str) -> str:
    i = question.lower().find(topic.lower())
    return question if i < 0 else question[:i] + "X" + question[i + len(topic):]


def _examples(g: GraphIndex, pairs: Sequence[QAPair], cfg: ScorerConfig, rng: random.Random):
    """(masked question, candidate paths, mask of correct candidates) per usable pair."""
    out = []
    for p in pairs:
        starts = g.by_label.get(" ".join(tokens(p.topic)))
        if not starts:
            continue
        start = starts[0]
        gold = tuple(tuple(h) for h in p.path)
        paths = candidate_paths(g, start)
        if gold not in paths:
            continue
        others = [x for x in paths if x != gold]
        rng.shuffle(others)
        cands = [gold] + others[:cfg.max_candidates - 1]
        want = set(p.answers)
        correct = np.zeros(len(cands), dtype=bool)
        correct[0] = True
        for i, c in enumerate(cands[1:], 1):
            if len(c) <= len(gold):  # an equivalent path no longer than the gold one
                reached, _ = follow(g, start, c)
                correct[i] = {g.labels[n] for n in reached} == want
        out.append((mask_topic(p.question, p.topic), cands, correct))
    return out


def train_path_scorer(g: GraphIndex, pairs: Sequence[QAPair], embedder: object,
                      cfg: ScorerConfig = ScorerConfig(),
                      progress: Callable[[int, int, float], None] | None = None
                      ) -> tuple[LearnedScorer, dict]:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    t0 = time.perf_counter()
    data = _examples(g, pairs, cfg, rng)
    if not data:
        raise ValueError("no usable QA pairs: the graph has no paths to learn from")
    q = torch.from_numpy(np.asarray(embedder.embed([d[0] for d in data]), dtype=np.float32))
    model = PathScorerModel(list(g.relations), dim_in=q.shape[1], dim=cfg.dim)
    rel_map = {i: i for i in range(len(g.relations))}
    encoded = [hop_ids(model, g, cands, rel_map) for _, cands, _ in data]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * ((len(data) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    order = list(range(len(data)))
    step, losses = 0, []
    model.train()
    for _epoch in range(cfg.epochs):
        rng.shuffle(order)
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            width = max(len(data[i][1]) for i in idx)
            ids = torch.zeros((len(idx), width, 3), dtype=torch.long)
            lengths = torch.zeros((len(idx), width), dtype=torch.long)
            ok = torch.zeros((len(idx), width), dtype=torch.bool)
            valid = torch.zeros((len(idx), width), dtype=torch.bool)
            for row, i in enumerate(idx):
                n = len(data[i][1])
                ids[row, :n] = torch.from_numpy(encoded[i][0])
                lengths[row, :n] = torch.from_numpy(encoded[i][1])
                ok[row, :n] = torch.from_numpy(data[i][2])
                valid[row, :n] = True
            scores = model(q[idx], ids, lengths).masked_fill(~valid, -1e9)
            # -log Σ_correct softmax: every path reaching exactly the gold answers is right
            loss = (torch.logsumexp(scores, 1)
                    - torch.logsumexp(scores.masked_fill(~ok, -1e9), 1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            if progress:
                progress(step, steps, loss.item())
    model.eval()
    metrics = {"pairs": len(data), "steps": step, "seconds": round(time.perf_counter() - t0, 1),
               "loss_first": round(float(np.mean(losses[:10])), 4),
               "loss_last": round(float(np.mean(losses[-10:])), 4)}
    return LearnedScorer(model, embedder), metrics
