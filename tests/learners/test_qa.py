"""QA pairs generated from the graph, the path-scorer recipe and `kgchat train`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kg.graphindex import load_graph_index, tokens
from kg.paths import candidate_paths, follow
from kg.pathscore import LearnedScorer
from kg.resolve import SentenceTransformerEmbedder
from kg.store import KnowledgeStore
from learners.qa import generate_pairs, load_pairs, save_pairs
from learners.recipes.path_scorer import ScorerConfig, mask_topic, train_path_scorer
from tests.conftest import SAMPLE, make_settings


def test_generated_pairs_are_grounded_in_the_graph(films: KnowledgeStore, tmp_path: Path) -> None:
    g = load_graph_index(films)
    pairs = list(generate_pairs(g, 90, seed=3))
    assert len(pairs) == 90
    assert {p.hops for p in pairs} == {1, 2, 3}
    for p in pairs:
        start = g.by_label[" ".join(tokens(p.topic))][0]
        reached, _ = follow(g, start, tuple(tuple(h) for h in p.path))
        assert sorted(g.labels[n] for n in reached) == sorted(p.answers)
        assert p.topic in p.question
        assert any(p.answers[0] in line for line in p.evidence)
    # the generator sees each answer first on its own evidence line, then its walk
    from learners.train import generator_example
    multi = next(p for p in pairs if len(p.evidence) > 1)
    ex = generator_example(multi)
    assert ex.answer == ex.choices == multi.answers[:len(multi.evidence)]
    for answer, line, walk in zip(ex.answer, ex.evidence, multi.evidence):
        assert line == f"{answer} <- {walk}" and walk.endswith(answer)
    save_pairs(pairs, tmp_path / "pairs.jsonl")
    assert load_pairs(tmp_path / "pairs.jsonl") == pairs
    assert [p.question for p in generate_pairs(g, 10, seed=3)] == [p.question for p in pairs[:10]]


def test_path_scorer_learns_and_round_trips(films: KnowledgeStore, embedder, tmp_path: Path) -> None:
    g = load_graph_index(films)
    pairs = list(generate_pairs(g, 300, seed=0))
    scorer, metrics = train_path_scorer(g, pairs, embedder, ScorerConfig(epochs=15, seed=0))
    assert metrics["loss_last"] < 0.6 * metrics["loss_first"]
    # it now ranks the gold path first for most of its own training questions
    right = 0
    for p in pairs[:60]:
        start = g.by_label[" ".join(tokens(p.topic))][0]
        paths = candidate_paths(g, start)
        best = paths[int(np.argmax(scorer.score(g, mask_topic(p.question, p.topic), paths)))]
        reached, _ = follow(g, start, best)
        right += sorted(g.labels[n] for n in reached) == sorted(p.answers)
    assert right >= 30
    scorer.to_disk(tmp_path / "scorer", metrics)
    loaded = LearnedScorer.from_disk(tmp_path / "scorer", embedder)
    paths = candidate_paths(g, g.by_label["tom hanks"][0])
    assert np.allclose(loaded.score(g, "who directed X", paths), scorer.score(g, "who directed X", paths))


def test_train_command_writes_models_the_engine_loads(films: KnowledgeStore, embedder) -> None:
    from chatbot.answer import open_engine
    from learners.train import TrainPlan, train

    report = train(films, TrainPlan(pairs=120, generator_steps=15, scorer_epochs=1, gate=False), embedder)
    models = films.root / "models"
    assert report.generator["accepted"] and report.generator["version"] == "v0001"
    assert report.pairs > 0 and (models / "qa" / "pairs.jsonl").exists()
    assert (models / "scorer" / "scorer.pt").exists()
    assert (models / "generator" / "versions" / "v0001" / "config.json").exists()
    assert report.generator["steps"] == 15 and "new" in report.generator["after"]
    engine = open_engine(films, embedder=embedder)
    assert engine.generator is not None and engine.generator.trained
    assert engine.scorer.name == "learned"  # zero-shot plus the fitted scorer
    a = engine.ask("Who directed Forrest Gump?")
    # whatever the barely trained model writes, the answer stays grounded
    assert a.entities[0] == "Robert Zemeckis"
    assert a.generator in ("retrieval", engine.generator.name)
