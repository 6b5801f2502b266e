"""Reptile (Nichol et al., 2018), first-order meta-learning across tasks — here, across the
sources or rounds a model learns from.

Each outer step takes one task (the new source's examples, or one earlier source's
replayed ones), trains a few inner steps on it, and moves the weights only part of the way
(``epsilon``) towards where the inner steps went. The update favours directions that help
every task, not just the latest: that is the point against forgetting.

    θ₀ ← θ;  θ ← θ − inner steps on task τ;  θ ← θ₀ + ε (θ − θ₀)

The inner optimiser (AdamW) keeps its state across outer steps, a common practical variant.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from chatbot.generate.hf import auto_device
from learners.recipes.generator_sft import (QAExample, TrainConfig, TrainResult, answer_loss,
                                            batches, collate, encode_example, lr_at,
                                            make_optimizer)

__all__ = ["train_reptile"]


def train_reptile(model: Any, tokenizer: Any, tasks: Sequence[Sequence[QAExample]], cfg: TrainConfig,
                  *, inner_steps: int = 4, epsilon: float = 0.5,
                  progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """``cfg.steps`` inner steps in all, cycling over ``tasks`` (the first is the newest)."""
    tasks = [t for t in tasks if t]
    if not tasks:
        raise ValueError("no training examples")
    torch.manual_seed(cfg.seed)
    device = auto_device(cfg.device)
    model.to(device).train()
    encoded = [[encode_example(tokenizer, ex, cfg.max_len, cfg.max_evidence) for ex in t] for t in tasks]
    orders = [batches(len(e), min(cfg.batch_size, len(e)), torch.Generator().manual_seed(cfg.seed + i))
              for i, e in enumerate(encoded)]
    optimizer = make_optimizer(model, cfg)
    result = TrainResult(steps=0, examples_seen=0, tokens=0, seconds=0.0)
    start = time.perf_counter()
    step, outer = 0, 0
    while step < cfg.steps:
        k = outer % len(tasks)
        before = [p.detach().clone() for p in model.parameters()]
        for _ in range(min(inner_steps, cfg.steps - step)):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            batch = {n: v.to(device) for n, v in collate([encoded[k][i] for i in next(orders[k])],
                                                         tokenizer.pad_token_id).items()}
            loss = answer_loss(model, **batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            result.losses.append(loss.item())
            result.examples_seen += batch["input_ids"].shape[0]
            result.tokens += int(batch["attention_mask"].sum())
            step += 1
            if progress:
                progress(step, result.losses[-1])
        with torch.no_grad():  # the Reptile step: only part of the way
            for p, p0 in zip(model.parameters(), before):
                p.copy_(p0 + epsilon * (p - p0))
        outer += 1
    result.steps = step
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
