"""MetaQA: Hits@1 for 1-, 2- and 3-hop questions, plain (headline) and bracketed, plus latency.

Imports ``kb_partial.txt`` into a store (kept under ``--store`` so later runs reuse it),
optionally runs `kgchat train` on QA pairs generated from that graph (no MetaQA question is
ever used for training), then answers a fixed random sample of each hop's questions with
every requested scorer. Hits@1: the first answer entity is one of the gold answers.

    .venv/bin/python -m bench.metaqa                       # dev, 500 questions per hop
    .venv/bin/python -m bench.metaqa --n 0                 # every dev question
    .venv/bin/python -m bench.metaqa --split test --n 0    # report once, at the end
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from chatbot.answer import QAEngine, models_dir
from kg.config import load_settings
from kg.graphindex import load_graph_index
from kg.paths import ZeroShotScorer
from kg.pathscore import CombinedScorer, LearnedScorer
from kg.resolve import SentenceTransformerEmbedder
from kg.store import KnowledgeStore

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval" / "metaqa"
console = Console()
_BRACKET = re.compile(r"\[([^\]]+)\]")


def read_questions(path: Path, n: int, seed: int) -> list[tuple[str, set[str]]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        q, _, a = line.partition("\t")
        rows.append((q, set(a.split("|"))))
    if n and n < len(rows):
        rows = random.Random(seed).sample(rows, n)
    return rows


def plain(q: str) -> str:
    return q.replace("[", "").replace("]", "")


def bracket_span(q: str) -> tuple[str, tuple[int, int]]:
    """The question without brackets and the topic entity's span in it."""
    m = _BRACKET.search(q)
    text = plain(q)
    if not m:
        return text, (0, 0)
    start = m.start()
    return text, (start, start + len(m.group(1)))


def open_store(path: Path, kb: Path) -> KnowledgeStore:
    settings = load_settings(None, {"reason": {"auto": False}}, env={})
    st = KnowledgeStore.open(path, settings, create=True)
    report = st.import_file(kb)
    console.print(f"KB: {kb.name} → {report.action} ({st.status().triples:,} triples)")
    return st


def evaluate(engine: QAEngine, rows: list[tuple[str, set[str]]], bracketed: bool) -> dict:
    hits, lat = 0, []
    for q, gold in rows:
        t0 = time.perf_counter()
        if bracketed:
            text, span = bracket_span(q)
            a = engine.ask(text, span=span)
        else:
            a = engine.ask(plain(q))
        lat.append((time.perf_counter() - t0) * 1000)
        hits += bool(a.entities) and a.entities[0] in gold
    return {"hits1": hits / len(rows), "n": len(rows),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, default=EVAL / "kb_partial.txt")
    ap.add_argument("--qa-dir", type=Path, default=EVAL)
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--n", type=int, default=500, help="questions per hop (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "metaqa-store")
    ap.add_argument("--train", action="store_true", help="run `kgchat train` on the store first")
    ap.add_argument("--pairs", type=int, default=6000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--scorers", default="zero-shot,learned-alone,learned",
                    help="learned = zero-shot + learned (the default engine's)")
    ap.add_argument("--generator", action="store_true",
                    help="also time end to end with the store's trained generator")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()

    store = open_store(args.store, args.kb)
    embedder = SentenceTransformerEmbedder()
    if args.train:
        from learners.train import TrainPlan, train
        t0 = time.perf_counter()
        for old in ("models", "replay"):  # a fresh first round, not an update of the last run
            shutil.rmtree(store.root / old, ignore_errors=True)
        # open-book only and every step used: the figures issue 4 reported
        report = train(store, TrainPlan(pairs=args.pairs, generator_steps=args.steps, epochs=1000,
                                        closed_book=False, gate=False), embedder)
        console.print(f"trained in {time.perf_counter() - t0:.0f} s: scorer {report.scorer}; "
                      f"generator {report.generator}")
    graph = load_graph_index(store)
    scorers = {}
    for name in args.scorers.split(","):
        if name == "zero-shot":
            scorers[name] = ZeroShotScorer(embedder)
        elif name in ("learned", "learned-alone"):
            learned = LearnedScorer.from_disk(models_dir(store) / "scorer", embedder)
            if learned is None:
                console.print("[yellow]no learned scorer in the store (use --train); skipped[/yellow]")
                continue
            scorers[name] = learned if name == "learned-alone" else CombinedScorer(ZeroShotScorer(embedder), learned)
    results: dict = {"split": args.split, "n_per_hop": args.n, "scorers": {}}
    table = Table(title=f"MetaQA {args.split}: Hits@1 (plain questions; bracketed beside)")
    for col in ("scorer", "hops", "plain", "bracketed", "retrieval p50 / p95 ms"):
        table.add_column(col, justify="right")
    for name, scorer in scorers.items():
        engine = QAEngine(store=store, graph=graph, scorer=scorer, generator=None)
        results["scorers"][name] = {}
        for hop in (1, 2, 3):
            rows = read_questions(args.qa_dir / f"{hop}-hop" / f"qa_{args.split}.txt", args.n, args.seed)
            p = evaluate(engine, rows, bracketed=False)
            b = evaluate(engine, rows, bracketed=True)
            results["scorers"][name][f"{hop}-hop"] = {"plain": p, "bracketed": b}
            table.add_row(name, str(hop), f"{100 * p['hits1']:.1f}", f"{100 * b['hits1']:.1f}",
                          f"{p['p50_ms']:.0f} / {p['p95_ms']:.0f}")
            console.print(table.rows and f"{name} {hop}-hop: plain {100 * p['hits1']:.1f}  "
                          f"bracketed {100 * b['hits1']:.1f}")
    if args.generator and (models_dir(store) / "generator").exists():
        from chatbot.generate.hf import TransformersGenerator
        gen = TransformersGenerator.load(models_dir(store) / "generator")
        best = scorers.get("learned") or scorers.get("zero-shot")
        rows = [r for hop in (1, 2, 3) for r in read_questions(
            args.qa_dir / f"{hop}-hop" / f"qa_{args.split}.txt", max(1, args.n // 5), args.seed + 1)]
        retrieval = QAEngine(store=store, graph=graph, scorer=best, generator=None)
        tops = {q: retrieval.ask(plain(q)).entities[:1] for q, _ in rows}
        results["end_to_end"] = {}
        for mode, constrained in (("constrained", True), ("free", False)):
            engine = QAEngine(store=store, graph=graph, scorer=best, generator=gen,
                              constrained=constrained)
            lat, agree, used, answered, hits = [], 0, 0, 0, 0
            for q, gold in rows:
                a = engine.ask(plain(q))
                lat.append(a.latency_ms)
                if a.status != "answered":
                    continue
                answered += 1
                mine = a.generator == gen.name
                used += mine
                # the generator's first answer is the retrieval's best entity / a gold answer
                agree += mine and a.entities[:1] == tops[q]
                hits += bool(a.entities) and a.entities[0] in gold
            e = results["end_to_end"][mode] = {
                "n": len(rows), "answered": answered, "hits1": hits / len(rows),
                "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                "generator_used": used / max(answered, 1),
                "generator_matches_retrieval_top": agree / max(answered, 1)}
            console.print(f"end to end, {mode} decoding ({len(rows)} questions): p50 {e['p50_ms']:.0f} ms, "
                          f"p95 {e['p95_ms']:.0f} ms, Hits@1 {100 * e['hits1']:.1f}; of {answered} answered, "
                          f"the generator's grounded answer was used for {100 * e['generator_used']:.0f} % "
                          f"and its first entity is the retrieval's best for "
                          f"{100 * e['generator_matches_retrieval_top']:.0f} %")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"metaqa-{args.split}.json").write_text(json.dumps(results, indent=1))
    console.print(f"wrote {args.out / f'metaqa-{args.split}.json'}")


if __name__ == "__main__":
    main()
