"""Ingest benchmark: the whole pipeline against bare spaCy, scale, and one-document updates.

    python -m bench.ingest [--hotpotqa FILE] [--musique FILE] [--paragraphs N] [--out DIR]

1. words/s of ``Ingestor.ingest_documents`` (load → extract → resolve → write) against a
   bare ``nlp.pipe`` over the same texts with the same number of processes, in one run
   (goal ≥ 75 %);
2. the time for 1k and for 10k documents (sentences of the paragraphs, each its own
   document) into fresh stores (goal ≤ 11×);
3. re-ingesting one changed document in a store of 5k documents against ingesting it
   alone into an empty store (goal ≤ 3×).

Paragraphs come from the HotpotQA and MuSiQue *training* corpora in ../shared/eval (read
in place). Models load once, before any timing; every store is a fresh temp folder.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kg.config import Settings, load_settings
from kg.ingest import Ingestor, open_ingestor
from kg.sources import Document
from kg.sources.document import content_hash
from kg.store import KnowledgeStore

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
console = Console(width=None if sys.stdout.isatty() else 130)
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def paragraphs(hotpot: Path, musique: Path) -> list[str]:
    out = [" ".join(p).strip() for p in json.loads(hotpot.read_text()).values()]
    out += [p["text"].strip() for p in json.loads(musique.read_text())]
    return [p for p in out if p]


def sentences(paras: list[str]) -> list[str]:
    return [s.strip() for p in paras for s in _SENT.split(p) if len(s.split()) >= 4]


def as_docs(texts: list[str], prefix: str) -> list[Document]:
    return [Document(f"urn:bench:{prefix}:{i}", t, content_hash(t.encode())) for i, t in enumerate(texts)]


def words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


class Bench:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp

    def fresh(self, name: str) -> tuple[KnowledgeStore, Ingestor]:
        kg = KnowledgeStore.open(self.tmp / name, self.settings, create=True)
        return kg, open_ingestor(kg)

    def ingest_seconds(self, name: str, docs: list[Document]) -> tuple[float, Any]:
        kg, ing = self.fresh(name)
        try:
            started = time.perf_counter()
            summary = ing.ingest_documents(docs)
            return time.perf_counter() - started, summary
        finally:
            ing.close()
            kg.close()


def bare_pipe_seconds(settings: Settings, texts: list[str]) -> float:
    import spacy

    nlp = spacy.load(settings.extract.spacy_model)
    started = time.perf_counter()
    for _ in nlp.pipe(texts, n_process=settings.extract.n_process, batch_size=settings.extract.batch_size):
        pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hotpotqa", type=Path, default=EVAL / "hotpotqa" / "hipporag_hotpotqa_train_100_corpus.json")
    ap.add_argument("--musique", type=Path, default=EVAL / "musique" / "hipporag_musique_train_100_corpus.json")
    ap.add_argument("--paragraphs", type=int, default=1000, help="paragraphs for the words/s comparison")
    ap.add_argument("--large", type=int, default=10_000, help="documents in the large run (small = large / 10)")
    ap.add_argument("--store-docs", type=int, default=5000, help="documents in the store for the update test")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the one-document timings (median)")
    ap.add_argument("--n-process", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)

    settings = load_settings(None, {"extract": {"n_process": args.n_process}}, env={})
    paras = paragraphs(args.hotpotqa, args.musique)
    sents = sentences(paras)
    tmp = Path(tempfile.mkdtemp(prefix="kgchat-bench-ingest-"))
    bench = Bench(settings, tmp)
    results: dict[str, Any] = {"paragraphs": len(paras), "sentences": len(sents),
                               "n_process": args.n_process}
    try:
        # Load every model once (spaCy, MiniLM) so no timing below pays for it.
        bench.ingest_seconds("warmup", as_docs(paras[:20], "warm"))

        # 1. words/s against bare nlp.pipe, same texts and processes, interleaved twice.
        texts = paras[: args.paragraphs]
        bare, full = [], []
        for i in range(2):
            bare.append(bare_pipe_seconds(settings, texts))
            full.append(bench.ingest_seconds(f"throughput{i}", as_docs(texts, f"t{i}"))[0])
        n_words = words(texts)
        results["throughput"] = {"documents": len(texts), "words": n_words,
                                 "bare_s": min(bare), "pipeline_s": min(full),
                                 "bare_words_per_s": n_words / min(bare),
                                 "pipeline_words_per_s": n_words / min(full),
                                 "share": min(bare) / min(full)}

        # 2. 1k versus 10k documents.
        small_n, large_n = args.large // 10, args.large
        pool = (sents * (large_n // len(sents) + 1))[:large_n]
        small_s, small_sum = bench.ingest_seconds("small", as_docs(pool[:small_n], "s"))
        large_s, large_sum = bench.ingest_seconds("large", as_docs(pool, "l"))
        results["scale"] = {"small_docs": small_n, "small_s": small_s, "large_docs": large_n,
                            "large_s": large_s, "ratio": large_s / small_s,
                            "unique_sentences_used": min(len(sents), large_n),
                            "small_facts": small_sum.facts, "large_facts": large_sum.facts}

        # 3. one changed document in a store of 5k against that document alone.
        store_docs = as_docs(pool[: args.store_docs], "u")
        target = store_docs[len(store_docs) // 2]
        changed_text = target.text + " It was renamed Northfield in 1999."
        changed = Document(target.uri, changed_text, content_hash(changed_text.encode()))
        kg, ing = bench.fresh("big")
        try:
            ing.ingest_documents(store_docs)
            in_store = []
            for i in range(args.repeat):
                text = f"{target.text} It was renamed Northfield {i} in {1990 + i}."
                doc = Document(target.uri, text, content_hash(text.encode()))
                started = time.perf_counter()
                s = ing.ingest_documents([doc])
                in_store.append(time.perf_counter() - started)
                assert s.changed == 1, s
        finally:
            ing.close()
            kg.close()
        alone = [bench.ingest_seconds(f"alone{i}", [changed])[0] for i in range(args.repeat)]
        results["update"] = {"store_docs": len(store_docs), "in_store_s": statistics.median(in_store),
                             "alone_s": statistics.median(alone),
                             "ratio": statistics.median(in_store) / statistics.median(alone)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(results, indent=2))
    console.print(f"wrote {args.out / 'ingest.json'}")
    return 0


def report(r: dict[str, Any]) -> None:
    t, s, u = r["throughput"], r["scale"], r["update"]
    table = Table(title=f"ingest benchmark ({r['n_process']} processes)", header_style="bold")
    for col in ("figure", "value", "goal", "met"):
        table.add_column(col)

    def row(name: str, value: str, goal: str = "", met: bool | None = None) -> None:
        table.add_row(name, value, goal, "" if met is None else ("yes" if met else "NO"))

    row("bare nlp.pipe", f"{t['bare_words_per_s']:,.0f} words/s ({t['documents']} paragraphs, "
        f"{t['words']:,} words, {t['bare_s']:.1f} s)")
    row("whole ingest pipeline", f"{t['pipeline_words_per_s']:,.0f} words/s ({t['pipeline_s']:.1f} s)")
    row("pipeline / bare", f"{t['share']:.0%}", "≥ 75 %", t["share"] >= 0.75)
    row(f"{s['small_docs']:,} documents", f"{s['small_s']:.1f} s ({s['small_facts']:,} facts)")
    row(f"{s['large_docs']:,} documents", f"{s['large_s']:.1f} s ({s['large_facts']:,} facts)")
    row("large / small time", f"{s['ratio']:.2f}×", "≤ 11×", s["ratio"] <= 11)
    row(f"re-ingest 1 changed doc in a {u['store_docs']:,}-doc store", f"{u['in_store_s'] * 1000:.0f} ms")
    row("ingest that doc alone, empty store", f"{u['alone_s'] * 1000:.0f} ms")
    row("in store / alone", f"{u['ratio']:.2f}×", "≤ 3×", u["ratio"] <= 3)
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
