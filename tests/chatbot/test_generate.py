"""The generator layer: prompt format, the tiny default model, SFT recipe, save/load,
streaming and load errors. Offline and CPU-only; the tiny model is shrunk to stay quick."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Iterator

import pytest
import torch

from chatbot.generate import Generator, build_prompt, format_target, parse_answer
from chatbot.generate.hf import TransformersGenerator
from kg.errors import KgchatError, ModelError
from learners.recipes.generator_sft import (IGNORE, QAExample, TrainConfig, encode_example,
                                            evaluate_exact, save_checkpoint, train_generator)
from learners.tiny import build_tiny_model, minilm_path

SYLLABLES = ["ka", "lo", "mir", "vex", "dra", "tul", "sen", "bor", "qui", "zan", "pel", "ros"]


def copy_task(n: int, seed: int) -> list[QAExample]:
    """Made-up films and people; the answer is the object of the first evidence line."""
    rng = random.Random(seed)

    def word(parts: int = 2) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(parts))

    out = []
    for _ in range(n):
        k = rng.randint(2, 4)
        films = [f"the {word()} {word()}" for _ in range(k)]
        people = [f"{word()} {word(3)}" for _ in range(k)]
        out.append(QAExample(f"who directed {films[0]} ?",
                             [f"{f} directed by {p}" for f, p in zip(films, people)], [people[0]]))
    return out


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    torch.set_num_threads(2)
    return build_tiny_model(hidden=64, layers=2, heads=4, max_positions=128)


@pytest.fixture(scope="module")
def trained(tiny):
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    cfg = TrainConfig(steps=120, batch_size=16, lr=3e-3, warmup=10, device="cpu")
    result = train_generator(model, tokenizer, copy_task(800, seed=1), cfg)
    return model, tokenizer, result, cfg


def test_prompt_format_and_parse() -> None:
    prompt = build_prompt("who directed forrest gump ?",
                          [f"line {i}" for i in range(10)], max_evidence=2)
    assert prompt == "question: who directed forrest gump ? evidence: line 0 ; line 1 answer:"
    assert build_prompt("q\nx", ["a\n b", "  "]) == "question: q x evidence: a b answer:"
    assert format_target(["robert zemeckis", "ron howard"]) == " robert zemeckis , ron howard"
    assert parse_answer(" robert zemeckis, ron howard , robert zemeckis,") == \
        ["robert zemeckis", "ron howard"]
    assert parse_answer("") == []


def test_tiny_model_shape(tiny) -> None:
    model, tokenizer = tiny
    assert model.config.vocab_size == len(tokenizer) == 30522
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("[CLS]", "[SEP]", "[PAD]")
    std = model.get_input_embeddings().weight.std().item()
    assert std == pytest.approx(0.02, rel=0.05)  # PCA init rescaled to the model's init std


def test_encode_example_masks_prompt(tiny) -> None:
    _, tokenizer = tiny
    example = QAExample("who directed x ?", ["x directed by ann lee", "y directed by bo"], ["ann lee"])
    ids, labels = encode_example(tokenizer, example, max_len=128)
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == labels[-1] == tokenizer.eos_token_id
    answer = [t for t in labels if t != IGNORE]
    assert tokenizer.decode(answer, skip_special_tokens=True) == "ann lee"
    assert tokenizer.sep_token_id not in ids[:-1]  # no [SEP] inside the prompt
    short, short_labels = encode_example(tokenizer, example, max_len=len(ids) - 2)
    assert len(short) <= len(ids) - 2 and "bo" not in tokenizer.decode(short)  # last line dropped
    assert [t for t in short_labels if t != IGNORE] == answer


def test_untrained_model_is_marked(tiny, tmp_path: Path) -> None:
    model, tokenizer = tiny
    TransformersGenerator(model, tokenizer, info={"trained": False}).save(tmp_path / "m")
    loaded = TransformersGenerator.load(tmp_path / "m", device="cpu")
    assert isinstance(loaded, Generator)
    assert loaded.trained is False
    assert loaded.name == str(tmp_path / "m")


def test_plain_hf_folder_counts_as_trained(tiny, tmp_path: Path) -> None:
    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    assert TransformersGenerator.load(tmp_path / "hf", device="cpu").trained is True


def test_training_is_deterministic(tiny) -> None:
    cfg = TrainConfig(steps=4, batch_size=4, warmup=2, device="cpu", seed=3)
    data = copy_task(16, seed=2)
    runs = [train_generator(copy.deepcopy(tiny[0]), tiny[1], data, cfg).losses for _ in range(2)]
    assert runs[0] == runs[1]


def test_training_reduces_loss(trained) -> None:
    _, _, result, _ = trained
    initial = sum(result.losses[:10]) / 10
    assert result.steps == 120 and result.examples_seen == 120 * 16 and result.tokens > 0
    assert result.final_loss < 0.5 * initial, (initial, result.final_loss)


def test_checkpoint_round_trip(trained, tmp_path: Path) -> None:
    model, tokenizer, result, cfg = trained
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", result, cfg, metrics={"exact": 0.5})
    loaded = TransformersGenerator.load(tmp_path / "ckpt", device="cpu")
    assert loaded.trained is True
    assert loaded.info["steps"] == 120 and loaded.info["examples"] == 1920
    assert loaded.info["metrics"]["exact"] == 0.5 and loaded.info["config"]["lr"] == cfg.lr
    original = TransformersGenerator(model, tokenizer)
    for ex in copy_task(3, seed=7):
        prompt = build_prompt(ex.question, ex.evidence)
        assert loaded.generate(prompt, max_new_tokens=12) == original.generate(prompt, max_new_tokens=12)


def test_stream_concatenates_to_generate(trained) -> None:
    model, tokenizer, _, _ = trained
    generator = TransformersGenerator(model, tokenizer)
    for ex in copy_task(3, seed=9):
        prompt = build_prompt(ex.question, ex.evidence)
        pieces = list(generator.stream(prompt, max_new_tokens=12))
        assert pieces and all(isinstance(p, str) for p in pieces)
        assert "".join(pieces) == generator.generate(prompt, max_new_tokens=12)


def test_evaluate_exact(trained) -> None:
    model, tokenizer, _, _ = trained
    data = copy_task(4, seed=11)
    assert 0.0 <= evaluate_exact(model, tokenizer, data, max_new_tokens=12) <= 1.0

    class Oracle:  # any Generator works; answers are compared case-insensitively as sets
        name, trained = "oracle", True

        def generate(self, prompt: str, *, max_new_tokens: int = 32, choices=None) -> str:
            ex = next(e for e in data if build_prompt(e.question, e.evidence) == prompt)
            return " , ".join(a.upper() for a in reversed(ex.answer + ex.answer))

        def stream(self, prompt: str, *, max_new_tokens: int = 32, choices=None) -> Iterator[str]:
            yield self.generate(prompt, max_new_tokens=max_new_tokens)

    assert evaluate_exact(Oracle(), tokenizer, data) == 1.0


def test_load_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model directory") as missing:
        TransformersGenerator.load(tmp_path / "nope", device="cpu")
    assert isinstance(missing.value, KgchatError) and "pass a folder" in str(missing.value)
    with pytest.raises(ModelError, match="not a causal language model"):
        TransformersGenerator.load(minilm_path(), device="cpu")
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        TransformersGenerator.load("kgchat-test/no-such-model", device="cpu")


def test_choice_grammar_allows_only_lists_of_the_choices(tiny) -> None:
    from chatbot.generate.constrain import choice_grammar

    tokenizer = tiny[1]
    eos = tokenizer.eos_token_id
    grammar = choice_grammar(tokenizer, ["robert zemeckis", "robert redford", "ron howard"], eos)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    robert = ids(" robert")
    assert set(grammar.allowed([])) == {robert[0], ids(" ron")[0]}
    assert eos not in grammar.allowed(robert)  # "robert" alone is not a choice
    done = ids(" robert zemeckis")
    assert set(grammar.allowed(done)) == {ids(",")[0], eos}
    assert set(grammar.allowed(done + ids(" , "))) == {robert[0], ids(" ron")[0]}


def test_constrained_generation_names_only_the_choices(tiny) -> None:
    # Even an untrained model, whose free output is noise, can only list the choices.
    generator = TransformersGenerator(tiny[0], tiny[1], info={"trained": False})
    choices = ["the kalo mirvex", "dra tulsen"]
    for ex in copy_task(5, seed=13):
        text = generator.generate(build_prompt(ex.question, ex.evidence), max_new_tokens=24,
                                  choices=choices)
        named = parse_answer(text)
        assert named and set(named) <= set(choices), text
        streamed = "".join(generator.stream(build_prompt(ex.question, ex.evidence),
                                            max_new_tokens=24, choices=choices))
        assert streamed == text
