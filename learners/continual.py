"""One continual-learning round: learn what changed in the graph since the last round,
replaying earlier pairs so the rest is not forgotten, behind an evaluation gate.

Read top to bottom:

1. *What changed*: source versions now against those the last accepted round saw.
2. *Retire and update*: every pair in the replay buffer and the held-back set is followed
   again on today's graph (:func:`learners.qa.refollow`). Nothing reached: its facts were
   retracted, the pair retires. Different answers: a changed fact, the new truth is taught
   under the same id.
3. *New pairs* from the entities the changed sources touch (the whole graph in round 1);
   a stable tenth of them is held back for measuring.
4. *Mix*: new + updated pairs ``epochs`` times, and ``replay_ratio`` replayed examples per
   new one, spread over the whole buffer (:func:`round_mix`); each pair is taught
   open-book (with its evidence) and, by default, closed-book.
5. *Train* from the current version (L2-SP or EWC optionally pulling towards it).
6. *Gate*: on held-back earlier pairs the new model may lose at most ``gate_margin``; on
   held-back new pairs it must improve. Accepted: a new version becomes current and the
   buffer, held set and round state are saved. Rejected: nothing changes but the report.

A kill mid-round leaves the current version untouched (checkpoints go to
``models/round/``); the next ``kgchat train`` resumes from the last one when the graph and
settings are the same, since everything else in the round is derived deterministically.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from chatbot.generate.prompt import build_prompt, evidence_line, parse_answer
from chatbot.generate.registry import ModelRegistry
from kg.graphindex import GraphIndex, load_graph_index
from kg.store import KnowledgeStore
from learners.qa import QAPair, feedback_pairs, generate_pairs, refollow
from learners.replay import Policy, ReplayBuffer

__all__ = ["RoundConfig", "RoundReport", "run_round", "generator_example", "examples_for", "accuracy",
           "gate", "round_mix", "SOURCE_KINDS"]

SOURCE_KINDS = ("file", "document", "conversation", "url", "feedback")
Regularizer = Literal["none", "l2sp", "ewc"]


@dataclass
class RoundConfig:
    new_pairs: int = 3000            # pairs generated from what changed (round 1: the graph)
    epochs: float = 10.0             # passes over the round's new and updated pairs ...
    max_steps: int = 2000            # ... capped at this many steps of 32
    lr: float = 3e-3
    replay_ratio: float = 1.0        # replayed examples per new example seen (whole buffer)
    buffer_size: int = 5000
    buffer_policy: Policy = "reservoir"
    regularizer: Regularizer = "none"
    lora_rank: int = 0               # > 0: train LoRA adapters of this rank (peft), not all weights
    meta: Literal["none", "reptile"] = "none"  # Reptile across sources: new pairs + each replayed source
    reg_weight: float = 0.0          # 0: the regulariser's default (l2sp 1e-3, ewc 1e3)
    closed_book: bool = True         # also teach each pair without its evidence
    gate_margin: float = 0.02        # allowed loss on held-back earlier pairs
    gate: bool = True                # False: swap the new model in whatever it measures
    eval_pairs: int = 100            # held-back pairs measured per side of the gate
    base: str = ""                   # round 1 starts from this model ("" = tiny default)
    seed: int = 0
    save_every: int = 100            # steps between resumable checkpoints


@dataclass
class RoundReport:
    round: int = 0
    changed_sources: int = 0
    removed_sources: int = 0
    new: int = 0
    updated: int = 0
    retired: int = 0
    replayed: int = 0
    held_new: int = 0
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    before: dict[str, float] = field(default_factory=dict)  # accuracy on {old, new} held-back
    after: dict[str, float] = field(default_factory=dict)
    accepted: bool = False
    reason: str = ""
    version: str = ""
    resumed_from: int = 0


# -- examples and accuracy ---------------------------------------------------------------

def generator_example(p: QAPair) -> Any:
    """Evidence lines (answer first, then its walk) → the answers of those lines, which are
    also what constrained decoding may choose from. Pair evidence is one walk per answer,
    in the order of ``p.answers``."""
    from learners.recipes.generator_sft import QAExample

    shown = p.answers[:len(p.evidence)]
    return QAExample(p.question, [evidence_line(a, w) for a, w in zip(shown, p.evidence)],
                     list(shown), choices=list(shown))


def examples_for(pairs: list[QAPair], closed_book: bool) -> list[Any]:
    """Open-book examples (evidence lines, answer first) and, optionally, closed-book ones
    (no evidence: the model must know the answer)."""
    out = []
    for p in pairs:
        ex = generator_example(p)
        out.append(ex)
        if closed_book:
            out.append(type(ex)(p.question, [], list(p.answers[:3]), choices=None))
    return out


def round_mix(teach: list[QAPair], buffer: ReplayBuffer, *, epochs: float, replay_ratio: float,
              closed_book: bool, exclude: set[str], seed: int,
              open_epochs: float | None = None, limit: int | None = None) -> tuple[list[Any], list[QAPair]]:
    """A round's examples, to be seen once each in shuffled order, and the pairs replayed.

    The new pairs' examples come ``epochs`` times; ``replay_ratio`` replayed examples come
    per new example, drawn over the whole buffer (:meth:`ReplayBuffer.draw`). Compute is
    sized by the new data alone, and every earlier pair is rehearsed a little in each round
    instead of a random few many times: that is what keeps forgetting small.

    ``open_epochs`` (with ``closed_book``): a model that already reads evidence needs its
    open-book examples only that many times, since reading is a skill and facts are what
    take repetition; replay is then closed-book only, as the facts are what is forgotten.
    ``limit``: the most examples the round has steps for; a larger mix is subsampled
    uniformly (the same share of new and replayed).
    """
    import random

    rng = random.Random(seed)

    def times(examples: list[Any], n: float) -> list[Any]:
        return examples * int(n) + rng.sample(examples, round((n - int(n)) * len(examples)))

    def capped(mix: list[Any]) -> list[Any]:
        return mix if limit is None or len(mix) <= limit else rng.sample(mix, limit)

    if closed_book and open_epochs is not None:
        opened = [generator_example(p) for p in teach]
        closed = [ex for ex in examples_for(teach, True) if not ex.evidence]
        fresh = times(closed, epochs) + times(opened, open_epochs)
        replay = buffer.draw(round(replay_ratio * len(fresh)), exclude=exclude)
        return capped(fresh + [ex for ex in examples_for(replay, True) if not ex.evidence]), replay
    fresh = times(examples_for(teach, closed_book), epochs)
    per_pair = 2 if closed_book else 1
    replay = buffer.draw(round(replay_ratio * len(fresh) / per_pair), exclude=exclude)
    return capped(fresh + examples_for(replay, closed_book)), replay


def accuracy(generator: Any, tokenizer: Any, pairs: list[QAPair], *, book: str) -> float:
    """Share of pairs whose first generated answer is one of theirs (free decoding)."""
    from learners.recipes.generator_sft import normalise_label

    if not pairs:
        return 0.0
    hits = 0
    for p in pairs:
        lines = ([evidence_line(a, w) for a, w in zip(p.answers, p.evidence)]
                 if book == "open" else [])
        named = parse_answer(generator.generate(build_prompt(p.question, lines), max_new_tokens=24))
        gold = {normalise_label(a, tokenizer) for a in p.answers}
        hits += bool(named) and normalise_label(named[0], tokenizer) in gold
    return hits / len(pairs)


def _accuracies(generator: Any, tokenizer: Any, old: list[QAPair], new: list[QAPair],
                closed_book: bool) -> dict[str, float]:
    books = ("open", "closed") if closed_book else ("open",)
    out = {}
    for name, pairs in (("old", old), ("new", new)):
        if pairs:
            scores = [accuracy(generator, tokenizer, pairs, book=b) for b in books]
            out[name] = round(sum(scores) / len(scores), 4)
    return out


# -- round state ---------------------------------------------------------------------------

def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)


def _buffer(path: Path, cfg: RoundConfig, capacity: int) -> ReplayBuffer:
    if (path / "state.json").exists():
        return ReplayBuffer.from_disk(path, capacity=capacity, policy=cfg.buffer_policy)
    return ReplayBuffer(capacity, cfg.buffer_policy, seed=cfg.seed)


def touched_nodes(store: KnowledgeStore, g: GraphIndex, source_ids: list[str]) -> dict[int, str]:
    """Entities that the current version of each source states something about."""
    out: dict[int, str] = {}
    for sid in source_ids:
        record = store.source(sid)
        if record is None:
            continue
        rows = store.query(f"""SELECT DISTINCT ?e WHERE {{ GRAPH <{record.graph}> {{
            {{ ?e ?p ?o }} UNION {{ ?s ?p ?e }} }} FILTER(isIRI(?e)) }}""", timeout=600).rows
        for (e,) in rows:
            node = g.node_of(str(e))
            if node is not None and g.adj[node]:
                out.setdefault(node, sid)
    return out


# -- the round -----------------------------------------------------------------------------

def run_round(store: KnowledgeStore, cfg: RoundConfig, *,
              on_stage: Callable[[str, int], None] | None = None,
              on_step: Callable[[int, float], None] | None = None) -> RoundReport:
    from chatbot.generate.hf import TransformersGenerator
    from learners.recipes.generator_sft import TrainConfig, save_checkpoint, train_generator
    from learners.tiny import build_tiny_model

    replay_dir, models = store.root / "replay", store.root / "models"
    registry = ModelRegistry(models / "generator")
    g = load_graph_index(store)
    state = _load_json(replay_dir / "round.json")
    rnd = int(state.get("round", 0)) + 1
    report = RoundReport(round=rnd)

    # 1. what changed
    versions = dict(store.state.versions(SOURCE_KINDS))
    seen = state.get("versions", {})
    changed = sorted(s for s, v in versions.items() if seen.get(s) != v)
    report.changed_sources = len(changed)
    report.removed_sources = sum(s not in versions for s in seen)

    # 2. retire and update
    buffer = _buffer(replay_dir / "buffer", cfg, cfg.buffer_size)
    held = _buffer(replay_dir / "held", cfg, max(cfg.eval_pairs * 10, 1000))
    updated: list[QAPair] = []
    for buf in (buffer, held):
        gone = []
        for p in list(buf.pairs.values()):
            fresh = refollow(g, p)
            if fresh is None:
                gone.append(p.id)
            elif fresh.answers != p.answers:
                fresh.round = rnd
                updated.append(fresh)
            else:
                buf.pairs[p.id] = fresh  # same answers; relation ids of today's graph index
        report.retired += buf.retire(gone)
    report.updated = len(updated)

    # 3. new pairs from what the changed sources touch
    touched = touched_nodes(store, g, changed) if seen else None
    new: list[QAPair] = []
    if touched is None or touched:
        for p in generate_pairs(g, cfg.new_pairs, seed=cfg.seed + rnd, round=rnd,
                                starts=None if touched is None else sorted(touched)):
            node = g.node_of(p.topic_iri)
            p.sources = [touched[node]] if touched else []
            old = buffer.pairs.get(p.id) or held.pairs.get(p.id)
            if old is None or old.answers != p.answers:
                new.append(p)
    # A user's correction is also taught as asked: their question, the new answer, under
    # the id of the earlier pair about the same topic and path.
    feedback = [s for s in changed if (rec := store.state.get_source(s)) is not None and rec.kind == "feedback"]
    if feedback:
        taught = {p.id for p in updated}  # re-followed earlier pairs already teach the new truth
        generated = {p.id: i for i, p in enumerate(new)}
        for p in feedback_pairs(store, g, feedback, round=rnd):
            old = buffer.pairs.get(p.id) or held.pairs.get(p.id)
            if p.id in taught or (old is not None and old.answers == p.answers):
                continue
            if p.id in generated:
                new[generated[p.id]] = p  # the user's own words over a template's
            else:
                new.append(p)
    if not new and not updated:
        report.reason = "nothing new to learn: no source changed since the last round"
        return report
    fresh_ids = {p.id for p in new} | {p.id for p in updated}
    teach = [p for p in new + updated if not p.held]
    new_held = [p for p in new + updated if p.held]
    examples, replay = round_mix(teach, buffer, epochs=cfg.epochs, replay_ratio=cfg.replay_ratio,
                                 closed_book=cfg.closed_book, exclude=fresh_ids, seed=cfg.seed + rnd,
                                 limit=cfg.max_steps * 32)
    report.new, report.replayed, report.held_new = len(new), len(replay), len(new_held)

    # 4. the model to start from, measured before
    current = registry.current_path()
    if current is not None:
        gen = TransformersGenerator.load(current)
        model, tokenizer = gen.model, gen.tokenizer
    elif cfg.base:
        gen = TransformersGenerator.load(cfg.base)
        model, tokenizer = gen.model, gen.tokenizer
    else:
        model, tokenizer = build_tiny_model(seed=cfg.seed)
        gen = None
    if cfg.lora_rank > 0:
        model = _with_lora(model, cfg.lora_rank)
    old_eval = held.sample(cfg.eval_pairs, exclude=fresh_ids)
    new_eval = new_held[:cfg.eval_pairs] or teach[:cfg.eval_pairs]
    probe = TransformersGenerator(model, tokenizer)
    if on_stage:
        on_stage("measuring the current model", 0)
    report.before = (_accuracies(probe, tokenizer, old_eval, new_eval, cfg.closed_book)
                     if gen is not None else {"old": 0.0, "new": 0.0})

    # 5. train, resumable
    steps = max(1, min(cfg.max_steps, math.ceil(len(examples) / 32)))  # one pass over the mix
    tcfg = TrainConfig(steps=steps, lr=cfg.lr, seed=cfg.seed + rnd, warmup=min(50, steps // 10 + 1),
                       log_every=max(1, min(50, steps // 20)))
    penalty = _penalty(cfg, model, tokenizer, examples_for(replay[:64], False), tcfg) \
        if gen is not None else None
    work = models / "round"
    plan = {"round": rnd, "stamp": g.stamp, "config": asdict(cfg), "from": str(current or cfg.base)}
    key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    resume = None
    if _load_json(work / "plan.json").get("key") == key and (work / "state.pt").exists():
        resume = torch.load(work / "state.pt", map_location="cpu", weights_only=False)
        report.resumed_from = int(resume["step"])
    else:
        shutil.rmtree(work, ignore_errors=True)
        _save_json(work / "plan.json", {"key": key, **plan})

    def checkpoint(s: dict[str, Any]) -> None:
        torch.save(s, work / "state.pt.tmp")
        (work / "state.pt.tmp").replace(work / "state.pt")

    if on_stage:
        on_stage(f"round {rnd}: training on {len(examples)} examples", steps)
    if cfg.meta == "reptile" and replay:
        from learners.recipes.reptile import train_reptile

        sources = sorted({p.sources[0] if p.sources else "" for p in replay})
        tasks = [examples_for(teach, cfg.closed_book)] + [  # distinct pairs per task; Reptile cycles
            examples_for([p for p in replay if (p.sources[0] if p.sources else "") == s], cfg.closed_book)
            for s in sources]
        result = train_reptile(model, tokenizer, tasks, tcfg, progress=on_step)  # no mid-round resume
    else:
        result = train_generator(model, tokenizer, examples, tcfg, penalty=penalty, resume=resume,
                                 checkpoint=checkpoint, save_every=cfg.save_every,
                                 progress=(lambda log: on_step(log.step, log.loss)) if on_step else None)
    report.steps, report.examples, report.seconds = result.steps, result.examples_seen, round(result.seconds, 1)

    # 6. the gate
    if on_stage:
        on_stage("measuring the new model", 0)
    report.after = _accuracies(probe, tokenizer, old_eval, new_eval, cfg.closed_book)
    report.accepted, report.reason = gate(report.before, report.after, cfg.gate_margin) if cfg.gate \
        else (True, "accepted without the gate (measured, not checked)")
    if report.accepted:
        tmp = models / f"generator.round{rnd}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_checkpoint(model, tokenizer, tmp, result, tcfg, {
            "round": rnd, "before": report.before, "after": report.after,
            "new": report.new, "updated": report.updated, "retired": report.retired,
            "replayed": report.replayed, "parent": registry.current() or ""},
            base=str(current or cfg.base) if cfg.lora_rank > 0 else "")
        report.version = registry.add(tmp)
        buffer.add(teach)
        held.add(new_held)
        buffer.to_disk(replay_dir / "buffer")
        held.to_disk(replay_dir / "held")
        _save_json(replay_dir / "round.json", {"round": rnd, "versions": versions,
                                                "version": report.version})
    shutil.rmtree(work, ignore_errors=True)
    return report


def gate(before: dict[str, float], after: dict[str, float], margin: float) -> tuple[bool, str]:
    """Accept when earlier knowledge held (within ``margin``) and the new was learned."""
    if "old" in before and after.get("old", 0.0) < before["old"] - margin:
        return False, (f"forgetting: held-back earlier pairs fell from {before['old']:.1%} to "
                       f"{after['old']:.1%} (allowed margin {margin:.1%})")
    if "new" in before and after.get("new", 0.0) <= before["new"] and after.get("new", 0.0) < 0.95:
        return False, (f"not learned: held-back new pairs at {after.get('new', 0.0):.1%}, "
                       f"{before['new']:.1%} before the round")
    return True, "accepted: earlier pairs held and new ones learned"


def _with_lora(model: Any, rank: int) -> Any:
    """Freeze the model and train rank-``rank`` adapters on every attention and MLP
    projection (the version saved is the adapter alone, on top of its parent)."""
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                            target_modules=targets, task_type="CAUSAL_LM"))


def _penalty(cfg: RoundConfig, model: Any, tokenizer: Any, replayed: list[Any], tcfg: Any) -> Any:
    from learners.recipes.regularize import anchor, ewc_penalty, fisher_diagonal, l2sp_penalty

    if cfg.regularizer == "l2sp":
        return l2sp_penalty(anchor(model), cfg.reg_weight or 1e-3)
    if cfg.regularizer == "ewc" and replayed:
        return ewc_penalty(anchor(model), fisher_diagonal(model, tokenizer, replayed, tcfg),
                           cfg.reg_weight or 1e3)
    return None
