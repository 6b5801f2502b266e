"""`kgchat train`: one continual-learning round (:mod:`learners.continual`) — QA pairs for
what changed in the graph, mixed with replayed earlier pairs, a new generator version behind
the evaluation gate — then the path scorer refitted on every pair the buffer holds.

Written under the store: ``models/generator/versions/vNNNN`` + ``CURRENT`` (see
:mod:`chatbot.generate.registry`), ``models/scorer/``, ``models/qa/pairs.jsonl`` (the pairs
the scorer was fitted on) and ``replay/`` (buffer, held-back pairs, round state). Every
folder is written aside and renamed into place, so an interrupted run leaves the previous
models untouched.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from kg.graphindex import load_graph_index
from kg.store import KnowledgeStore
from learners.continual import RoundConfig, generator_example, run_round  # noqa: F401 (re-export)
from learners.qa import QAPair, save_pairs
from learners.replay import ReplayBuffer


@dataclass
class TrainPlan:
    pairs: int = 3000                  # new QA pairs per round (1–3 hops, evenly)
    generator_steps: int = 2000        # most steps per round; copying emerges after ~1k
    epochs: float = 10.0               # passes over the round's examples (capped by steps)
    scorer_epochs: int = 3
    seed: int = 0
    generator: str = ""                # round 1 starts from this model; "" = tiny default
    closed_book: bool = True
    replay_ratio: float = 1.0
    buffer_size: int = 5000
    buffer_policy: str = "reservoir"
    regularizer: str = "none"
    lora_rank: int = 0
    meta: str = "none"
    gate_margin: float = 0.02
    gate: bool = True

    def round_config(self) -> RoundConfig:
        return RoundConfig(new_pairs=self.pairs, epochs=self.epochs, max_steps=self.generator_steps,
                           replay_ratio=self.replay_ratio, buffer_size=self.buffer_size,
                           buffer_policy=self.buffer_policy,  # type: ignore[arg-type]
                           regularizer=self.regularizer,  # type: ignore[arg-type]
                           lora_rank=self.lora_rank, meta=self.meta,  # type: ignore[arg-type]
                           closed_book=self.closed_book, gate_margin=self.gate_margin, gate=self.gate,
                           base=self.generator, seed=self.seed)


@dataclass
class TrainReport:
    pairs: int = 0
    scorer: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)  # the round's report


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
    """One round; ``on_stage(name, total_steps)`` and ``on_step(step, loss)`` drive a
    progress display."""
    from learners.recipes.path_scorer import ScorerConfig, train_path_scorer

    report = TrainReport()
    rnd = run_round(store, plan.round_config(), on_stage=on_stage, on_step=on_step)
    report.generator = asdict(rnd)
    buffer_dir = store.root / "replay" / "buffer"
    if not rnd.accepted or not (buffer_dir / "state.json").exists():
        return report

    # The path scorer, refitted on every pair the buffer holds (they were re-followed on
    # today's graph, so their relation ids are current).
    graph = load_graph_index(store)
    pairs: list[QAPair] = list(ReplayBuffer.from_disk(buffer_dir).pairs.values())
    models = store.root / "models"
    save_pairs(pairs, models / "qa" / "pairs.jsonl")
    report.pairs = len(pairs)
    scfg = ScorerConfig(epochs=plan.scorer_epochs, seed=plan.seed)
    if on_stage:
        on_stage("training the path scorer", scfg.epochs * ((len(pairs) + scfg.batch_size - 1) // scfg.batch_size))
    scorer, report.scorer = train_path_scorer(
        graph, pairs, embedder, scfg, progress=(lambda s, n, loss: on_step(s, loss)) if on_step else None)
    tmp = models / "scorer.tmp"
    scorer.to_disk(tmp, report.scorer)
    _swap_in(tmp, models / "scorer")
    return report
