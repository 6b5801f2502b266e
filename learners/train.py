"""`kgchat train`: generate grounded QA pairs from the graph, then train the path scorer and
the default generator on them. (The continual-learning issue turns this one-off round into
replay rounds; the pieces — pairs, recipes, checkpoints — stay the same.)

Everything is written under ``<store>/models/``: ``qa/pairs.jsonl``, ``scorer/`` and
``generator/`` (Hugging Face ``save_pretrained`` layout plus kgchat's marker). A checkpoint
is written to a temporary folder and renamed into place, so an interrupted run leaves the
previous model untouched.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kg.graphindex import load_graph_index
from kg.store import KnowledgeStore
from learners.qa import QAPair, generate_pairs, save_pairs


@dataclass
class TrainPlan:
    pairs: int = 3000                  # generated QA pairs (1–3 hops, evenly)
    generator_steps: int = 2000        # copying from evidence emerges after ~1k steps
    scorer_epochs: int = 3
    seed: int = 0
    generator: str = ""                # start from this model (path or hub id); "" = tiny default
    held_out: float = 0.05             # share of pairs kept back to measure the generator


@dataclass
class TrainReport:
    pairs: int = 0
    scorer: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)


def generator_example(p: QAPair) -> "QAExample":
    """Evidence lines (answer first, then its walk) → the answers of those lines, which are
    also what constrained decoding may choose from. Pair evidence is one walk per answer,
    in the order of ``p.answers``."""
    from chatbot.generate.prompt import evidence_line
    from learners.recipes.generator_sft import QAExample

    shown = p.answers[:len(p.evidence)]
    return QAExample(p.question, [evidence_line(a, w) for a, w in zip(shown, p.evidence)],
                     list(shown), choices=list(shown))


def _swap_in(tmp: Path, final: Path) -> None:
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def train(store: KnowledgeStore, plan: TrainPlan, embedder: object,
          on_stage: Callable[[str, int], None] | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainReport:
    """One training run; ``on_stage(name, total_steps)`` and ``on_step(step, loss)`` drive
    a progress display."""
    from chatbot.generate.hf import TransformersGenerator
    from learners.recipes.generator_sft import (TrainConfig, evaluate_exact,
                                                save_checkpoint, train_generator)
    from learners.recipes.path_scorer import ScorerConfig, train_path_scorer
    from learners.tiny import build_tiny_model

    report = TrainReport()
    models = store.root / "models"
    graph = load_graph_index(store)
    if on_stage:
        on_stage("generating QA pairs", plan.pairs)
    pairs: list[QAPair] = []
    for p in generate_pairs(graph, plan.pairs, seed=plan.seed):
        pairs.append(p)
        if on_step:
            on_step(len(pairs), 0.0)
    if not pairs:
        raise ValueError("the graph has no relation paths to learn from: import or ingest something first")
    save_pairs(pairs, models / "qa" / "pairs.jsonl")
    report.pairs = len(pairs)

    # The path scorer.
    scfg = ScorerConfig(epochs=plan.scorer_epochs, seed=plan.seed)
    if on_stage:
        on_stage("training the path scorer", scfg.epochs * ((len(pairs) + scfg.batch_size - 1) // scfg.batch_size))
    scorer, report.scorer = train_path_scorer(
        graph, pairs, embedder, scfg, progress=(lambda s, n, loss: on_step(s, loss)) if on_step else None)
    tmp = models / "scorer.tmp"
    scorer.to_disk(tmp, report.scorer)
    _swap_in(tmp, models / "scorer")

    # The generator: evidence in, answer out; a held-out slice measures it.
    rng = random.Random(plan.seed)
    examples = [generator_example(p) for p in pairs]
    rng.shuffle(examples)
    n_held = max(1, int(len(examples) * plan.held_out))
    held, train_set = examples[:n_held], examples[n_held:] or examples
    if plan.generator:
        gen = TransformersGenerator.load(plan.generator)
        model, tokenizer = gen.model, gen.tokenizer
    else:
        model, tokenizer = build_tiny_model(seed=plan.seed)
    cfg = TrainConfig(steps=plan.generator_steps, seed=plan.seed)
    if on_stage:
        on_stage("training the generator", cfg.steps)
    result = train_generator(model, tokenizer, train_set, cfg,
                             progress=(lambda log: on_step(log.step, log.loss)) if on_step else None)
    accuracy = evaluate_exact(model, tokenizer, held[:200])
    report.generator = {"steps": result.steps, "examples": result.examples_seen,
                        "tokens_per_s": round(result.tokens_per_s), "seconds": round(result.seconds, 1),
                        "final_loss": round(result.final_loss, 4), "held_out_exact": round(accuracy, 3),
                        "held_out": min(200, len(held))}
    tmp = models / "generator.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(model, tokenizer, tmp, result, cfg, {"held_out_exact": accuracy})
    _swap_in(tmp, models / "generator")
    return report
