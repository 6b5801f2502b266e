"""`kgchat eval continual`: the metrics, the parts, Reptile, and a small end-to-end run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from learners.continual_eval import EvalConfig, metrics, split_parts
from tests.conftest import SAMPLE


def test_metrics_follow_gem_and_chaudhry() -> None:
    r = [[0.9, None, None],
         [0.5, 0.8, None],
         [0.6, 0.4, 0.7]]
    acc, bwt, forgetting = metrics(r)
    assert acc == pytest.approx((0.6 + 0.4 + 0.7) / 3)
    assert bwt == pytest.approx(((0.6 - 0.9) + (0.4 - 0.8)) / 2)
    # forgetting of part j: best accuracy it ever had before the last round, minus the last
    assert forgetting == pytest.approx(((0.9 - 0.6) + (0.8 - 0.4)) / 2)


def test_parts_are_disjoint_one_hop_questions(films) -> None:
    from kg.graphindex import load_graph_index

    g = load_graph_index(films)
    parts = split_parts(g, EvalConfig(rounds=3, subjects_per_round=4))
    topics = [{p.topic_iri for p in part} for part in parts]
    assert all(parts) and not (topics[0] & topics[1]) and not (topics[1] & topics[2])
    assert all(p.hops == 1 and p.relations[0][1] == 1 for part in parts for p in part)


def test_reptile_moves_only_part_of_the_way() -> None:
    from learners.recipes.generator_sft import QAExample, TrainConfig
    from learners.recipes.reptile import train_reptile
    from learners.tiny import build_tiny_model

    model, tok = build_tiny_model(hidden=32, layers=1, heads=2, max_positions=64)
    tasks = [[QAExample("who directed a ?", ["b <- a directed by b"], ["b"])] * 4,
             [QAExample("who wrote c ?", ["d <- c written by d"], ["d"])] * 4]
    cfg = TrainConfig(steps=4, batch_size=2, warmup=1, device="cpu")
    start = copy.deepcopy(model.state_dict())
    frozen = copy.deepcopy(model)
    train_reptile(frozen, tok, tasks, cfg, inner_steps=2, epsilon=0.0)
    assert all(torch.equal(frozen.state_dict()[k], v) for k, v in start.items())  # ε = 0: no move
    result = train_reptile(model, tok, tasks, cfg, inner_steps=2, epsilon=0.5)
    assert result.steps == 4 and result.examples_seen == 8
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in start.items())


@pytest.mark.slow
def test_eval_writes_matrix_metrics_and_heatmaps(tmp_path: Path) -> None:
    from learners.continual_eval import run_eval

    cfg = EvalConfig(rounds=2, subjects_per_round=4, epochs=2, eval_per_part=5, updates=2,
                     strategies=("naive", "replay", "ewc", "meta", "joint"))
    results = run_eval(SAMPLE / "films.txt", tmp_path, cfg, log=lambda _: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for name in cfg.strategies:
        r = saved["strategies"][name]
        assert len(r["matrix"]) == 2 and r["matrix"][0][1] is None and r["matrix"][1][1] is not None
        assert 0 <= r["acc"] <= 1 and r["train_seconds"] > 0 and r["examples"] > 0
        assert (tmp_path / f"heatmap-{name}.png").stat().st_size > 1000
        assert ("new_value" in r["update"]) == (name != "joint")
    # replay strategies see more examples than naive; joint retrains on everything
    s = saved["strategies"]
    assert s["replay"]["examples"] > s["naive"]["examples"]
    assert s["joint"]["round_examples"][1] > s["naive"]["round_examples"][1]
