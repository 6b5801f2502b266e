"""`kgchat eval continual`: how well each strategy learns a knowledge base that arrives in
parts, and how much it forgets.

The KB (any file ``import`` reads) is imported into a scratch store; its subjects (films,
in MetaQA) are shuffled and split into ``rounds`` disjoint parts. Part *j*'s QA pairs are
the one-hop questions about its subjects' own facts, so no answer depends on another part.
Every strategy starts from the same untrained tiny model and sees part *j* in round *j*:

- ``naive``: part j only, on the same schedule as replay (so replay is the one difference);
- ``replay``: part j plus ``replay_ratio`` replayed examples per new one, drawn over a buffer
  of every earlier part (rounds after the first may take ``new_epochs`` and ``later_lr``:
  a model that already knows the format learns new facts in fewer passes);
- ``ewc``: replay plus an EWC penalty towards the previous round's weights;
- ``meta``: the replay mix trained with Reptile, one task per part;
- ``joint``: a fresh model trained on parts 0..j together (the upper bound).

After each round i the model answers part j's pairs (j ≤ i) closed-book (no evidence: does
it *know*?) and open-book (evidence shown: can it *read*?). ``R[i][j]`` is the closed-book
accuracy; ACC, BWT and forgetting follow Lopez-Paz & Ranzato (GEM, 2017) and Chaudhry et
al. (2018). A last round changes ``updates`` facts of part 0 and teaches them (with the
strategy's own mix): the share answered with the new value and with the stale one.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from chatbot.generate.prompt import build_prompt, parse_answer
from kg.config import load_settings
from kg.graphindex import GraphIndex, load_graph_index
from kg.store import KnowledgeStore
from learners.continual import accuracy, examples_for, round_mix
from learners.qa import QAPair, make_pair, phrase
from learners.replay import ReplayBuffer

__all__ = ["EvalConfig", "run_eval", "metrics"]

STRATEGIES = ("naive", "replay", "ewc", "meta", "joint")


@dataclass
class EvalConfig:
    rounds: int = 4
    strategies: tuple[str, ...] = STRATEGIES
    subjects_per_round: int = 40
    epochs: float = 30.0             # passes over a round's new examples (joint: over all so far)
    new_epochs: float | None = None  # rounds 2+ except joint: passes over new examples (None: epochs)
    replay_ratio: float = 0.5        # replayed examples per new example seen
    open_epochs: float | None = None  # rounds 2+ except joint: open-book passes (None: epochs)
    later_lr: float | None = None    # rounds 2+ except joint: learning rate (None: lr)
    ewc_weight: float = 1e3
    reptile_epsilon: float = 0.5
    eval_per_part: int = 60
    updates: int = 20                # facts of part 0 changed in the last round (0: none)
    lr: float = 3e-3
    seed: int = 0


@dataclass
class StrategyResult:
    matrix: list[list[float | None]] = field(default_factory=list)       # closed-book
    matrix_open: list[list[float | None]] = field(default_factory=list)  # open-book
    acc: float = 0.0
    bwt: float = 0.0
    forgetting: float = 0.0
    acc_open: float = 0.0
    bwt_open: float = 0.0
    train_seconds: float = 0.0
    examples: int = 0
    round_seconds: list[float] = field(default_factory=list)
    round_examples: list[int] = field(default_factory=list)
    update: dict[str, float] = field(default_factory=dict)  # new-value / stale shares


def metrics(r: list[list[float | None]]) -> tuple[float, float, float]:
    """ACC, BWT and forgetting of an accuracy matrix (rows: after round i; columns: part j)."""
    t = len(r)
    acc = sum(r[t - 1][j] or 0.0 for j in range(t)) / t
    if t < 2:
        return acc, 0.0, 0.0
    bwt = sum((r[t - 1][j] or 0.0) - (r[j][j] or 0.0) for j in range(t - 1)) / (t - 1)
    forgetting = sum(max((r[l][j] or 0.0) for l in range(j, t - 1)) - (r[t - 1][j] or 0.0)
                     for j in range(t - 1)) / (t - 1)
    return acc, bwt, forgetting


def split_parts(g: GraphIndex, cfg: EvalConfig) -> list[list[QAPair]]:
    """One-hop forward pairs about disjoint random subjects, per part."""
    rng = random.Random(cfg.seed)
    subjects = [i for i in range(len(g.nodes)) if not g.is_literal(i)
                and any(d > 0 for _, d in g.adj[i])]
    rng.shuffle(subjects)
    parts: list[list[QAPair]] = []
    for k in range(cfg.rounds):
        pairs = []
        for s in sorted(subjects[k * cfg.subjects_per_round:(k + 1) * cfg.subjects_per_round]):
            for hop in sorted(h for h in g.adj[s] if h[1] > 0):
                p = make_pair(g, s, (hop,), phrase(g, (hop,), g.labels[s], rng), max_answers=8)
                if p is not None:
                    p.round, p.sources = k, [f"part{k}"]
                    pairs.append(p)
        parts.append(pairs)
    return parts


def _changed(pairs: list[QAPair], n: int, rng: random.Random) -> list[QAPair]:
    """``n`` pairs whose answer is replaced by another pair's answer for the same relation
    (a plausible new value), the evidence rewritten to match."""
    by_rel: dict[str, list[str]] = {}
    for p in pairs:
        by_rel.setdefault(p.path_labels[0], []).extend(p.answers)
    out = []
    for p in rng.sample(pairs, min(n, len(pairs))):
        options = sorted(set(by_rel[p.path_labels[0]]) - set(p.answers))
        if not options:
            continue
        new = rng.choice(options)
        q = QAPair(**{**asdict(p), "answers": [new],
                      "evidence": [p.evidence[0].rsplit(p.answers[0], 1)[0] + new]})
        out.append(q)
    return out


def run_eval(kb: Path, out: Path, cfg: EvalConfig,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    from chatbot.generate.hf import TransformersGenerator
    from learners.recipes.generator_sft import TrainConfig, normalise_label, train_generator
    from learners.recipes.regularize import anchor, ewc_penalty, fisher_diagonal
    from learners.recipes.reptile import train_reptile
    from learners.tiny import build_tiny_model

    unknown = set(cfg.strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
    out.mkdir(parents=True, exist_ok=True)
    settings = load_settings(None, {"reason": {"auto": False}}, env={})
    with KnowledgeStore.open(out / "kb-store", settings, create=True) as store:
        store.import_file(kb)
        g = load_graph_index(store)
    parts = split_parts(g, cfg)
    rng = random.Random(cfg.seed)
    evals = [rng.sample(p, min(cfg.eval_per_part, len(p))) for p in parts]
    log(f"{kb.name}: {cfg.rounds} parts of {cfg.subjects_per_round} subjects, "
        f"{[len(p) for p in parts]} pairs")
    results: dict[str, Any] = {"config": asdict(cfg), "parts": [len(p) for p in parts], "strategies": {}}

    for name in cfg.strategies:
        res = StrategyResult()
        model, tokenizer = build_tiny_model(seed=cfg.seed)
        buffer = ReplayBuffer(capacity=100_000, seed=cfg.seed)

        def train_round(i: int, new: list[QAPair], tag: str) -> None:
            nonlocal model
            later = i > 0 and name != "joint"  # round 1 learns from scratch; joint always does
            epochs = cfg.new_epochs if later and cfg.new_epochs else cfg.epochs
            if name == "joint":
                model, _ = build_tiny_model(seed=cfg.seed)
                new = [p for part in parts[:i + 1] for p in part]
            # replay, ewc, meta: replay_ratio replayed examples per new one, over the whole buffer
            examples, replay = round_mix(new, buffer if name in ("replay", "ewc", "meta") else ReplayBuffer(),
                                         epochs=epochs, replay_ratio=cfg.replay_ratio, closed_book=True,
                                         exclude={p.id for p in new}, seed=cfg.seed + i,
                                         open_epochs=cfg.open_epochs if later else None)
            fresh = examples_for(new, closed_book=True)
            steps = max(1, math.ceil(len(examples) / 32))  # one pass over the mix
            lr = cfg.later_lr if later and cfg.later_lr else cfg.lr
            tcfg = TrainConfig(steps=steps, lr=lr,
                               seed=cfg.seed + i, warmup=min(50, steps // 10 + 1))
            t0 = time.perf_counter()
            if name == "meta" and replay:
                tasks = [fresh] + [examples_for([p for p in replay if tuple(p.sources) == s], True)
                                   for s in sorted({tuple(q.sources) for q in replay})]
                result = train_reptile(model, tokenizer, tasks, tcfg, epsilon=cfg.reptile_epsilon)
            else:
                penalty = None
                if name == "ewc" and replay:
                    fisher = fisher_diagonal(model, tokenizer, examples_for(replay[:64], True), tcfg)
                    penalty = ewc_penalty(anchor(model), fisher, cfg.ewc_weight)
                result = train_generator(model, tokenizer, examples, tcfg, penalty=penalty)
            seconds = time.perf_counter() - t0
            res.train_seconds += seconds
            res.examples += result.examples_seen
            res.round_seconds.append(round(seconds, 1))
            res.round_examples.append(result.examples_seen)
            log(f"  {name} {tag}: {len(new)} new + {len(replay)} replayed pairs, {steps} steps, "
                f"{seconds:.0f} s, loss {result.final_loss:.3f}")

        for i in range(cfg.rounds):
            train_round(i, parts[i], f"round {i + 1}")
            buffer.add(parts[i])
            gen = TransformersGenerator(model, tokenizer)
            res.matrix.append([round(accuracy(gen, tokenizer, evals[j], book="closed"), 4) if j <= i else None
                               for j in range(cfg.rounds)])
            res.matrix_open.append([round(accuracy(gen, tokenizer, evals[j], book="open"), 4) if j <= i else None
                                    for j in range(cfg.rounds)])
            log(f"  {name} after round {i + 1}: closed {res.matrix[-1]} open {res.matrix_open[-1]}")
        res.acc, res.bwt, res.forgetting = metrics(res.matrix)
        res.acc_open, res.bwt_open, _ = metrics(res.matrix_open)
        if cfg.updates and name != "joint":
            changed = _changed(parts[0], cfg.updates, random.Random(cfg.seed + 1))
            old = {p.id: p.answers for p in parts[0]}
            buffer.add(changed)  # the buffer now holds the new truth for those questions
            train_round(cfg.rounds, changed, "update round")
            gen = TransformersGenerator(model, tokenizer)
            new_hits = stale = 0
            for p in changed:
                named = parse_answer(gen.generate(build_prompt(p.question, []), max_new_tokens=24))
                first = normalise_label(named[0], tokenizer) if named else ""
                new_hits += first == normalise_label(p.answers[0], tokenizer)
                stale += first in {normalise_label(a, tokenizer) for a in old[p.id]}
            res.update = {"changed": len(changed), "new_value": round(new_hits / max(len(changed), 1), 4),
                          "stale": round(stale / max(len(changed), 1), 4)}
            log(f"  {name} update: {res.update}")
        results["strategies"][name] = asdict(res)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    _compute_vs_joint(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    _heatmaps(results, out)
    return results


def _compute_vs_joint(results: dict[str, Any]) -> None:
    """Each strategy's training examples per round as a share of joint's in the same round
    (joint retrains on everything so far), when joint ran."""
    joint = results["strategies"].get("joint")
    if not joint:
        return
    for res in results["strategies"].values():
        res["compute_vs_joint"] = [round(a / b, 3) for a, b in zip(res["round_examples"], joint["round_examples"])]
        later_own, later_joint = sum(res["round_examples"][1:len(joint["round_examples"])]), \
            sum(joint["round_examples"][1:])
        res["compute_vs_joint_after_round_1"] = round(later_own / later_joint, 3) if later_joint else None


def _heatmaps(results: dict[str, Any], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, res in results["strategies"].items():
        m = [[float("nan") if v is None else v for v in row] for row in res["matrix"]]
        fig, ax = plt.subplots(figsize=(4, 3.4))
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                if v == v:  # not NaN
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k")
        ax.set_xlabel("part j"), ax.set_ylabel("after round i")
        ax.set_title(f"{name}: ACC {res['acc']:.2f}  BWT {res['bwt']:+.2f}")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        fig.savefig(out / f"heatmap-{name}.png", dpi=100)
        plt.close(fig)
