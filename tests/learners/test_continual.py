"""Continual learning rounds on the sample film graph, with the real tiny generator:
what changed, retirement of retracted facts, the gate, versions and rollback, resume after
an interruption, and the regularisers."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from chatbot.generate.registry import ModelRegistry
from kg.store import KnowledgeStore
from learners.continual import RoundConfig, gate, round_mix, run_round
from learners.replay import ReplayBuffer
from tests.conftest import SAMPLE, make_settings

FAST = RoundConfig(new_pairs=80, max_steps=24, epochs=100, eval_pairs=12, save_every=8)
FIRST = replace(FAST, new_pairs=400, max_steps=300, eval_pairs=30)  # enough to really learn


def film_store(root: Path) -> KnowledgeStore:
    kb = root / "kb"
    kb.mkdir(parents=True)
    shutil.copy(SAMPLE / "films.txt", kb / "films.txt")
    store = KnowledgeStore.open(root / "store", make_settings(reason={"auto": False}), create=True)
    store.import_file(kb / "films.txt")
    return store


@pytest.fixture(scope="module")
def after_round_one(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("continual")
    store = film_store(root)
    report = run_round(store, FIRST)
    store.close()
    return root, report


def add_facts(store: KnowledgeStore, tmp_path: Path, lines: str) -> None:
    """Append facts to the copied films file and import it again (a changed source)."""
    films = tmp_path / "copy" / "kb" / "films.txt"
    films.write_text(films.read_text() + lines)
    store.import_file(films)


def reopen(root: Path, tmp_path: Path) -> KnowledgeStore:
    """A private copy of the module's store after round 1."""
    shutil.copytree(root, tmp_path / "copy")
    return KnowledgeStore.open(tmp_path / "copy" / "store", make_settings(reason={"auto": False}))


def test_first_round_learns_the_graph_and_registers_a_version(after_round_one) -> None:
    root, r = after_round_one
    assert r.round == 1 and r.accepted and r.version == "v0001"
    assert r.new > 0 and r.replayed == 0 and r.retired == 0 and r.steps == 300
    assert r.before["new"] == 0.0 and r.after["new"] >= 0.5  # learned, measured on held-back pairs
    registry = ModelRegistry(root / "store" / "models" / "generator")
    assert registry.current() == "v0001" and (registry.current_path() / "config.json").exists()
    v = registry.get("1")
    assert v.metrics["round"] == 1 and v.metrics["after"]["new"] == r.after["new"]
    buffer = ReplayBuffer.from_disk(root / "store" / "replay" / "buffer")
    assert len(buffer) > 0 and all(not p.held and p.round == 1 for p in buffer.pairs.values())


def test_nothing_changed_means_nothing_to_learn(after_round_one, tmp_path: Path) -> None:
    store = reopen(after_round_one[0], tmp_path)
    with store:
        r = run_round(store, FAST)
    assert not r.steps and "nothing new" in r.reason
    assert ModelRegistry(store.root / "models" / "generator").names() == ["v0001"]


def test_changed_fact_retires_old_pairs_and_teaches_the_new_truth(after_round_one, tmp_path: Path) -> None:
    store = reopen(after_round_one[0], tmp_path)
    films = tmp_path / "copy" / "kb" / "films.txt"
    text = films.read_text()
    assert "Forrest Gump|directed_by|Robert Zemeckis" in text
    films.write_text(text.replace("Forrest Gump|directed_by|Robert Zemeckis",
                                  "Forrest Gump|directed_by|Ron Howard"))
    with store:
        store.import_file(films)
        r = run_round(store, replace(FAST, gate=False))
        buffer = ReplayBuffer.from_disk(store.root / "replay" / "buffer")
    assert r.changed_sources == 1 and r.accepted and r.version == "v0002"
    assert r.updated + r.retired > 0 and r.replayed > 0
    about_gump = [p for p in buffer.pairs.values()
                  if p.topic == "Forrest Gump" and p.path_labels == ["directed_by"]]
    for p in about_gump:  # whatever survives in the buffer holds the new truth
        assert p.answers == ["Ron Howard"] and p.round == 2


def test_gate_rejects_forgetting_and_keeps_the_current_model(after_round_one, tmp_path: Path) -> None:
    assert gate({"old": 0.8, "new": 0.1}, {"old": 0.5, "new": 0.9}, 0.02)[0] is False
    assert gate({"old": 0.8, "new": 0.1}, {"old": 0.79, "new": 0.1}, 0.02)[0] is False  # not learned
    assert gate({"old": 0.8, "new": 0.1}, {"old": 0.79, "new": 0.6}, 0.02)[0] is True
    store = reopen(after_round_one[0], tmp_path)
    replay_state = (store.root / "replay" / "round.json").read_text()
    with store:
        add_facts(store, tmp_path, "Big|starred_actors|Tom Hanks\nBig|directed_by|Penny Marshall\n")
        # a learning rate this large wrecks the model: earlier pairs are forgotten
        r = run_round(store, replace(FAST, lr=5.0, gate_margin=0.0))
    assert not r.accepted and ("forgetting" in r.reason or "not learned" in r.reason)
    registry = ModelRegistry(store.root / "models" / "generator")
    assert registry.current() == "v0001" and registry.names() == ["v0001"]
    assert (store.root / "replay" / "round.json").read_text() == replay_state
    assert not (store.root / "models" / "round").exists()


def test_rollback_switches_the_answering_version(after_round_one, tmp_path: Path) -> None:
    store = reopen(after_round_one[0], tmp_path)
    registry = ModelRegistry(store.root / "models" / "generator")
    tmp = tmp_path / "v2"
    shutil.copytree(registry.current_path(), tmp)
    assert registry.add(tmp) == "v0002" and registry.current() == "v0002"
    assert registry.set_current("v1") == "v0001" and registry.current() == "v0001"
    with pytest.raises(Exception, match="no model version 'v0009'"):
        registry.set_current("9")
    store.close()


def test_interrupted_round_resumes_exactly(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_at(step: int, _loss: float) -> None:
        if step == 20:  # after the checkpoint at 16
            raise Stop

    cfg = replace(FAST, closed_book=False, gate=False)
    with film_store(tmp_path / "a") as a:
        with pytest.raises(Stop):
            run_round(a, cfg, on_step=stop_at)
        assert ModelRegistry(a.root / "models" / "generator").current() is None  # untouched
        assert (a.root / "models" / "round" / "state.pt").exists()
        resumed = run_round(a, cfg)
    assert resumed.resumed_from == 16 and resumed.steps == 24
    with film_store(tmp_path / "b") as b:
        straight = run_round(b, cfg)
    assert straight.resumed_from == 0
    wa = load_file(tmp_path / "a" / "store" / "models" / "generator" / "versions" / "v0001" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "store" / "models" / "generator" / "versions" / "v0001" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-5), k
    assert resumed.after == straight.after


def test_round_mix_sizes_by_new_data_and_replays_every_earlier_pair() -> None:
    from tests.learners.test_replay import pair

    buffer = ReplayBuffer(seed=0)
    buffer.add(pair(i) for i in range(10))
    teach = [pair(i) for i in range(100, 104)]
    mix, replay = round_mix(teach, buffer, epochs=5, replay_ratio=0.5, closed_book=True,
                            exclude=set(), seed=0)
    new = [ex for ex in mix if ex.question in {p.question for p in teach}]
    assert len(new) == 4 * 2 * 5                       # open and closed book, 5 times each
    assert len(mix) - len(new) == 20 and len(replay) == 10   # half as many, over all 10 earlier
    assert {p.question for p in replay} == {f"q{i}" for i in range(10)}
    # a model that reads already: open-book twice, replay closed-book only
    mix, replay = round_mix(teach, buffer, epochs=5, replay_ratio=0.5, closed_book=True,
                            exclude=set(), seed=0, open_epochs=2)
    opened = [ex for ex in mix if ex.evidence]
    assert len(opened) == 4 * 2 and len(mix) == 4 * 7 + 14 and len(replay) == 14
    assert all(ex.question in {p.question for p in teach} for ex in opened)
    assert len(round_mix(teach, buffer, epochs=5, replay_ratio=0.5, closed_book=True, exclude=set(),
                         seed=0, limit=16)[0]) == 16


def test_ewc_penalty_gradient_is_fisher_weighted_pull() -> None:
    from learners.recipes.regularize import ewc_penalty, l2sp_penalty

    model = torch.nn.Linear(3, 2)
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    ewc_penalty(ref, fisher, weight=7.0)(model).backward()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, 7.0 * fisher[n] * (p.detach() - ref[n]), atol=1e-6)
    model.zero_grad()
    l2sp_penalty(ref, weight=0.5)(model).backward()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, 0.5 * (p.detach() - ref[n]), atol=1e-6)


def test_models_commands_list_show_and_roll_back(after_round_one, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from chatbot.cli import main

    store = reopen(after_round_one[0], tmp_path)
    registry = ModelRegistry(store.root / "models" / "generator")
    shutil.copytree(registry.current_path(), tmp_path / "v2")
    registry.add(tmp_path / "v2")
    store.close()

    def run(*args: str) -> tuple[int, str]:
        try:
            main(["--store", str(store.root), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    code, out = run("models", "list")
    assert code == 0 and "v0001" in out and "v0002" in out and "*" in out
    code, out = run("models", "show", "1")
    assert code == 0 and '"round": 1' in out and '"current": false' in out
    code, out = run("models", "rollback", "v1")
    assert code == 0 and "now answering with v0001" in out and registry.current() == "v0001"
    code, _ = run("models", "rollback", "v7")
    assert code != 0 and registry.current() == "v0001"


def test_lora_round_saves_an_adapter_that_loads_onto_its_parent(after_round_one, tmp_path: Path) -> None:
    from chatbot.generate.hf import TransformersGenerator
    from chatbot.generate.prompt import build_prompt

    store = reopen(after_round_one[0], tmp_path)
    with store:
        add_facts(store, tmp_path, "Big|starred_actors|Tom Hanks\nBig|directed_by|Penny Marshall\n")
        r = run_round(store, replace(FAST, lora_rank=4, gate=False, regularizer="l2sp"))
    v2 = store.root / "models" / "generator" / "versions" / "v0002"
    assert r.accepted and r.version == "v0002"
    assert (v2 / "adapter_config.json").exists() and not (v2 / "model.safetensors").exists()
    loaded = TransformersGenerator.load(v2, device="cpu")
    assert loaded.info["base"].endswith("v0001") and loaded.trained
    parent = TransformersGenerator.load(v2.parent / "v0001", device="cpu")
    changed = [k for k, w in loaded.model.state_dict().items()
               if not torch.equal(w, parent.model.state_dict()[k])]
    assert changed and all("proj" in k for k in changed)  # only adapted projections moved
    prompt = build_prompt("who directed Big ?", [])
    assert isinstance(loaded.generate(prompt, max_new_tokens=8), str)


def test_reptile_round_replays_each_source_as_a_task(after_round_one, tmp_path: Path) -> None:
    store = reopen(after_round_one[0], tmp_path)
    with store:
        add_facts(store, tmp_path, "Big|starred_actors|Tom Hanks\n")
        r = run_round(store, replace(FAST, meta="reptile", gate=False))
    assert r.accepted and r.replayed > 0 and r.steps == 24 and "new" in r.after


def test_train_command_reports_the_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chatbot.cli import main

    film_store(tmp_path).close()
    args = ["--store", str(tmp_path / "store"), "train", "--pairs", "60", "--steps", "12",
            "--no-gate", "--scorer-epochs", "1"]
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "round 1:" in out and "now answering with v0001" in out and "path scorer refitted" in out
    with pytest.raises(SystemExit) as bad:
        main([*args[:3], "--regularizer", "magic"])
    assert bad.value.code == 2
