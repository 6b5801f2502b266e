"""Run the generator SFT recipe from the command line, on one process or many.

    python -m learners.recipes.sft_run --examples ex.jsonl --out ckpt --steps 500
    torchrun --nproc_per_node 2 -m learners.recipes.sft_run --examples ex.jsonl --out ckpt

Under torchrun every rank trains on its shard of each global batch (DDP averages the
gradients; see :class:`~learners.recipes.generator_sft.AnswerLoss`), so N processes
compute what one process computes with the same ``--batch-size``. The backend is NCCL on
CUDA and gloo on CPU; rank 0 alone writes the checkpoint.

Examples are JSON lines with ``question``, ``evidence`` (list) and ``answer`` (list).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist

from learners.recipes.generator_sft import QAExample, TrainConfig, save_checkpoint, train_generator
from learners.tiny import build_tiny_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32, help="global batch, over all processes")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        with open(args.examples, encoding="utf-8") as f:
            examples = [QAExample(**json.loads(line)) for line in f if line.strip()]
        model, tokenizer = build_tiny_model(hidden=args.hidden, layers=args.layers, seed=args.seed)
        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                          device=device, warmup=min(50, args.steps // 10 + 1))
        result = train_generator(model, tokenizer, examples, cfg)
        if not distributed or dist.get_rank() == 0:
            save_checkpoint(model, tokenizer, args.out, result, cfg,
                            {"world_size": dist.get_world_size() if distributed else 1})
            print(json.dumps({"steps": result.steps, "final_loss": result.final_loss,
                              "seconds": round(result.seconds, 2)}))
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
