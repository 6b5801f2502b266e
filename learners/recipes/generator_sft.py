"""Supervised fine-tuning of the answer generator on (question, evidence, answer) examples.

Read top to bottom: examples → token ids → batches → loss on answer tokens → AdamW with
warmup + cosine → checkpoint with its marker. No Trainer framework; every step is here.

    model, tokenizer = build_tiny_model()
    result = train_generator(model, tokenizer, examples, TrainConfig(steps=2000))
    save_checkpoint(model, tokenizer, store / "models" / "v1", result, cfg)
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F

from chatbot.generate.base import Generator
from chatbot.generate.hf import TransformersGenerator, auto_device, prompt_ids
from chatbot.generate.prompt import MAX_EVIDENCE, build_prompt, format_target, parse_answer

__all__ = ["TrainConfig", "QAExample", "StepLog", "TrainResult", "encode_example", "normalise_label",
           "train_generator", "evaluate_exact", "save_checkpoint"]

IGNORE = -100  # label of tokens that carry no loss (F.cross_entropy's ignore_index)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3  # tiny models take a large rate; use ~2e-5 for a pretrained 0.5B+ model
    warmup: int = 50
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    max_len: int = 128
    max_evidence: int = MAX_EVIDENCE
    seed: int = 0
    device: str | None = None  # None: cuda when available, else cpu
    bf16: bool = True  # autocast on CUDA only; CPU trains in float32
    log_every: int = 50


@dataclass
class QAExample:
    question: str
    evidence: list[str]
    answer: list[str]  # entity labels; the target joins them with " , "
    choices: list[str] | None = None  # what constrained decoding may name (evaluation)


@dataclass
class StepLog:
    """What ``progress`` receives every ``log_every`` steps (and at the last one)."""
    step: int
    steps: int
    loss: float  # mean over the steps since the previous log
    lr: float
    tokens_per_s: float


@dataclass
class TrainResult:
    steps: int
    examples_seen: int
    tokens: int  # non-padding tokens through the model
    seconds: float
    losses: list[float] = field(default_factory=list)  # one per step

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def final_loss(self) -> float:
        """Mean of the last 10% of steps (a single step is too noisy to compare)."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail) if tail else math.nan


# --- data -------------------------------------------------------------------------------

def encode_example(tokenizer: Any, example: QAExample, max_len: int,
                   max_evidence: int = MAX_EVIDENCE) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: prompt tokens labelled ``IGNORE``, answer tokens + eos as
    themselves, so the loss teaches answering, not predicting questions.

    Too long? Drop evidence lines from the end (retrieval ranks the best first) until it fits.
    """
    def target_for(n: int) -> list[int]:
        # Only answers the shown lines hold: a target naming a line cut for length would
        # teach the model to invent.
        shown = " ; ".join(example.evidence[:n])
        answer = [a for a in example.answer if a in shown] or example.answer[:1]
        ids = tokenizer(format_target(answer), add_special_tokens=False)["input_ids"]
        return list(ids) + [tokenizer.eos_token_id]

    for n in range(min(len(example.evidence), max_evidence), -1, -1):
        prompt = prompt_ids(tokenizer, build_prompt(example.question, example.evidence, n))
        target = target_for(n)
        if len(prompt) + len(target) <= max_len:
            break
    ids = (prompt + target)[:max_len]  # only a question longer than max_len is cut here
    labels = ([IGNORE] * len(prompt) + target)[:max_len]
    return ids, labels


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row of this batch (dynamic padding: short batches stay short)."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(lab)] = torch.tensor(lab)
        mask[i, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Endless shuffled full batches of indices (``batch_size <= n``), reshuffled each epoch."""
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]


# --- model ------------------------------------------------------------------------------

def answer_loss(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor, denominator: float | None = None) -> torch.Tensor:
    """Next-token cross-entropy on labelled positions only: their mean, or their sum over
    ``denominator`` (see :class:`AnswerLoss`).

    The output layer is computed only where a label is: with a 30k vocabulary it is most of
    the compute, and answer tokens are a small share of each sequence.
    """
    if type(model).__name__.startswith("Peft"):  # a LoRA-wrapped model: its adapted causal LM
        model = model.get_base_model()
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                              use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    if denominator is None:
        return F.cross_entropy(logits.float(), targets[keep])
    return F.cross_entropy(logits.float(), targets[keep], reduction="sum") / denominator


class AnswerLoss(torch.nn.Module):
    """:func:`answer_loss` as a module, so DistributedDataParallel can wrap it (DDP syncs
    gradients only for computations run through its own ``forward``).

    Under DDP each rank holds a shard of the global batch; the loss is the shard's *sum*
    over answer tokens divided by the global token count and multiplied by the world size,
    so DDP's gradient average equals the single-process gradient of the global batch.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                denominator: float | None = None) -> torch.Tensor:
        return answer_loss(self.model, input_ids, attention_mask, labels, denominator)


def _world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialised (torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine down to ``lr * min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: Any, cfg: TrainConfig) -> torch.optim.AdamW:
    # Decay matrices (embeddings included), not norms or biases: as in nanoGPT.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


# --- training ---------------------------------------------------------------------------

def train_generator(model: Any, tokenizer: Any, examples: Sequence[QAExample], cfg: TrainConfig,
                    progress: Callable[[StepLog], None] | None = None, *,
                    penalty: Callable[[Any], torch.Tensor] | None = None,
                    resume: Mapping[str, Any] | None = None,
                    checkpoint: Callable[[dict[str, Any]], None] | None = None,
                    save_every: int = 100) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps; deterministic for a given seed.

    ``penalty(model)`` is added to the loss (L2-SP / EWC keep weights near the previous
    round's). ``checkpoint(state)`` receives model, optimizer and step every
    ``save_every`` steps; passing such a state back as ``resume`` continues exactly where
    it was taken (the batch order is replayed from the seed, not stored).
    """
    if not examples:
        raise ValueError("no training examples")
    torch.manual_seed(cfg.seed)
    device = auto_device(cfg.device)
    model.to(device).train()
    autocast = device.startswith("cuda") and cfg.bf16
    once: dict[int, tuple[list[int], list[int]]] = {}  # a round's mix repeats the same objects
    encoded = [once[id(ex)] if id(ex) in once else
               once.setdefault(id(ex), encode_example(tokenizer, ex, cfg.max_len, cfg.max_evidence))
               for ex in examples]
    batch_size = min(cfg.batch_size, len(encoded))
    order = batches(len(encoded), batch_size, torch.Generator().manual_seed(cfg.seed))
    optimizer = make_optimizer(model, cfg)
    rank, world = _world()
    loss_module: Any = AnswerLoss(model)
    if world > 1:
        # Every rank draws the same global batches (same seed) and keeps its own rows.
        from torch.nn.parallel import DistributedDataParallel

        loss_module = DistributedDataParallel(loss_module)

    result = TrainResult(steps=0, examples_seen=0, tokens=0, seconds=0.0)
    first = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        first = int(resume["step"])
        result = TrainResult(**resume["result"])
        for _ in range(first):
            next(order)
    start = time.perf_counter() - result.seconds
    window: list[float] = []
    for step in range(first, cfg.steps):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = next(order)
        if world > 1:
            answer_tokens = sum(sum(t != IGNORE for t in encoded[i][1][1:]) for i in rows)
            rows = rows[rank::world]
        batch = {k: v.to(device) for k, v in
                 collate([encoded[i] for i in rows], tokenizer.pad_token_id).items()}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            if world > 1:
                loss = loss_module(**batch, denominator=answer_tokens / world)
            else:
                loss = loss_module(**batch)
        if penalty is not None:
            loss = loss + penalty(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()

        result.losses.append(loss.item())
        result.steps += 1
        result.examples_seen += batch["input_ids"].shape[0]
        result.tokens += int(batch["attention_mask"].sum())
        window.append(result.losses[-1])
        if progress and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
            elapsed = time.perf_counter() - start
            progress(StepLog(step + 1, cfg.steps, sum(window) / len(window), lr,
                             result.tokens / elapsed if elapsed > 0 else 0.0))
            window.clear()
        if checkpoint and (step + 1) % save_every == 0 and step + 1 < cfg.steps:
            result.seconds = time.perf_counter() - start
            checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step + 1, "result": asdict(result)})
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


# --- evaluation and checkpoints ---------------------------------------------------------

def normalise_label(label: str, tokenizer: Any | None) -> str:
    # Through the tokenizer and back: the model can only say what its vocabulary decodes to
    # (an uncased WordPiece model never answers "Zemeckis" or "café").
    if tokenizer is not None:
        label = tokenizer.decode(tokenizer(label, add_special_tokens=False)["input_ids"])
    return " ".join(label.lower().split())


def evaluate_exact(generator_or_model: Generator | Any, tokenizer: Any | None,
                   examples: Sequence[QAExample], *, max_new_tokens: int = 32,
                   max_evidence: int = MAX_EVIDENCE) -> float:
    """Share of examples whose generated answer set equals the gold set (case-insensitive)."""
    if isinstance(generator_or_model, Generator):
        generator = generator_or_model
    else:
        generator = TransformersGenerator(generator_or_model, tokenizer)
    hits = 0
    for ex in examples:
        text = generator.generate(build_prompt(ex.question, ex.evidence, max_evidence),
                                  max_new_tokens=max_new_tokens, choices=ex.choices)
        predicted = {normalise_label(a, tokenizer) for a in parse_answer(text)}
        hits += predicted == {normalise_label(a, tokenizer) for a in ex.answer}
    return hits / len(examples) if examples else 0.0


def save_checkpoint(model: Any, tokenizer: Any, directory: str | Path, result: TrainResult,
                    cfg: TrainConfig, metrics: Mapping[str, Any] | None = None, *,
                    base: str = "") -> Path:
    """save_pretrained for model and tokenizer plus the marker that
    :meth:`TransformersGenerator.load` reads (trained, counters, metrics, resolved config).
    A LoRA model saves its adapter alone; ``base`` names the checkpoint it adapts."""
    info = {
        "trained": True, "steps": result.steps, "examples": result.examples_seen,
        "metrics": {"final_loss": result.final_loss, "tokens_per_s": result.tokens_per_s,
                    "seconds": result.seconds, **(metrics or {})},
        "config": asdict(cfg),
        **({"base": base} if base else {}),
    }
    return TransformersGenerator(model, tokenizer, info=info).save(directory)
