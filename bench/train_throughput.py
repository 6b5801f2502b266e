"""Training throughput of kgchat's SFT recipe against a bare PyTorch loop on the same model
and the same batches (goal: the recipe at ≥ 90 % of the bare loop's tokens/s).

The bare loop does only what training needs: collate the batch, the answer loss, backward,
AdamW. The recipe adds the learning-rate schedule, gradient clipping, counters, logging and
the checkpoint hooks. Both start from the same weights; runs alternate (recipe, bare,
recipe, bare, …) so machine noise hits both alike, and the median of each is compared.

    .venv/bin/python -m bench.train_throughput            # QA pairs from the sample KB
    .venv/bin/python -m bench.train_throughput --steps 200 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from kg.config import load_settings
from kg.graphindex import load_graph_index
from kg.store import KnowledgeStore
from learners.continual import examples_for
from learners.qa import generate_pairs
from learners.recipes.generator_sft import (TrainConfig, answer_loss, batches, collate, encode_example,
                                            make_optimizer, train_generator)
from learners.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parent.parent


def bare_loop(model, tokenizer, examples, cfg: TrainConfig) -> float:
    """Tokens per second of the plainest loop over the recipe's batches."""
    encoded = [encode_example(tokenizer, ex, cfg.max_len, cfg.max_evidence) for ex in examples]
    order = batches(len(encoded), cfg.batch_size, torch.Generator().manual_seed(cfg.seed))
    optimizer = make_optimizer(model, cfg)
    model.train()
    tokens, start = 0, time.perf_counter()
    for _ in range(cfg.steps):
        batch = collate([encoded[i] for i in next(order)], tokenizer.pad_token_id)
        loss = answer_loss(model, **batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, default=ROOT / "data" / "sample" / "kb" / "films.txt")
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, {"reason": {"auto": False}}, env={})
        with KnowledgeStore.open(Path(tmp) / "s", settings, create=True) as store:
            store.import_file(args.kb)
            g = load_graph_index(store)
    examples = examples_for(list(generate_pairs(g, args.pairs, seed=0)), closed_book=True)
    base, tokenizer = build_tiny_model(seed=0)
    cfg = TrainConfig(steps=args.steps, seed=0, log_every=10**9)
    recipe, bare = [], []
    for _ in range(args.repeats):
        result = train_generator(copy.deepcopy(base), tokenizer, examples, cfg)
        recipe.append(result.tokens / result.seconds)
        bare.append(bare_loop(copy.deepcopy(base), tokenizer, examples, cfg))
    r, b = statistics.median(recipe), statistics.median(bare)
    out = {"examples": len(examples), "steps": args.steps, "repeats": args.repeats,
           "recipe_tokens_per_s": round(r), "bare_tokens_per_s": round(b), "ratio": round(r / b, 3),
           "recipe_runs": [round(x) for x in recipe], "bare_runs": [round(x) for x in bare]}
    print(f"recipe {r:,.0f} tokens/s, bare loop {b:,.0f} tokens/s: {100 * r / b:.1f} % (goal ≥ 90 %)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_throughput.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
