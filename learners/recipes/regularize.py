"""Regularisers that keep a model near what it knew: L2-SP and EWC.

Both pull each weight towards its value before the round (the *anchor*):

- L2-SP (Li et al., 2018): ``weight/2 · Σ (θ − θ*)²`` — every weight equally;
- EWC (Kirkpatrick et al., 2017): ``weight/2 · Σ F (θ − θ*)²`` — weights that mattered for
  earlier answers (large diagonal Fisher information ``F``) are held harder.

The Fisher is the empirical one: the mean squared gradient of the answer loss over
examples of earlier rounds (replayed pairs), one small batch at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from learners.recipes.generator_sft import (QAExample, TrainConfig, answer_loss, collate,
                                            encode_example)

__all__ = ["anchor", "l2sp_penalty", "fisher_diagonal", "ewc_penalty"]

Penalty = Callable[[Any], torch.Tensor]


def anchor(model: Any) -> dict[str, torch.Tensor]:
    """A detached copy of the trainable weights, the point the penalty pulls towards."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def l2sp_penalty(reference: dict[str, torch.Tensor], weight: float) -> Penalty:
    def penalty(model: Any) -> torch.Tensor:
        total = sum(((p - reference[n]) ** 2).sum()
                    for n, p in model.named_parameters() if n in reference)
        return 0.5 * weight * total
    return penalty


def fisher_diagonal(model: Any, tokenizer: Any, examples: Sequence[QAExample], cfg: TrainConfig,
                    batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Mean squared gradient per weight over ``examples`` (the model is left unchanged)."""
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
    encoded = [encode_example(tokenizer, ex, cfg.max_len, cfg.max_evidence) for ex in examples]
    batches = 0
    for i in range(0, len(encoded), batch_size):
        batch = {k: v.to(device) for k, v in
                 collate(encoded[i:i + batch_size], tokenizer.pad_token_id).items()}
        model.zero_grad(set_to_none=True)
        answer_loss(model, **batch).backward()
        for n, p in model.named_parameters():
            if n in fisher and p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
        batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f / max(batches, 1) for n, f in fisher.items()}


def ewc_penalty(reference: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor],
                weight: float) -> Penalty:
    def penalty(model: Any) -> torch.Tensor:
        total = sum((fisher[n] * (p - reference[n]) ** 2).sum()
                    for n, p in model.named_parameters() if n in reference)
        return 0.5 * weight * total
    return penalty
