"""Questions over documents: HotpotQA and MuSiQue train-100 (dev use), after ingesting their
paragraph corpora with the default extractor.

Per data set, one run prints:
- evidence recall: the share of questions whose supporting paragraphs are *all* among the
  top-5 cited sources (goal ≥ 0.90 on HotpotQA), and the share with at least one;
- answer exact match and F1 (SQuAD normalisation: lower case, no punctuation or articles);
- ungrounded answers: the share of answers naming an entity that is not in their evidence
  (goal 0 in grounded mode);
- how many questions the graph answered (a relation path reached something) and latency.

    .venv/bin/python -m bench.docqa                  # both data sets
    .venv/bin/python -m bench.docqa --sets hotpotqa
"""

from __future__ import annotations

import argparse
import json
import re
import string
import time
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from chatbot.answer import open_engine
from kg.config import load_settings
from kg.sources import Document
from kg.sources.document import content_hash
from kg.store import KnowledgeStore

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
console = Console()

SETS = {
    "hotpotqa": (EVAL / "hotpotqa" / "hipporag_hotpotqa_train_100.json",
                 EVAL / "hotpotqa" / "hipporag_hotpotqa_train_100_corpus.json"),
    "musique": (EVAL / "musique" / "hipporag_musique_train_100.json",
                EVAL / "musique" / "hipporag_musique_train_100_corpus.json"),
}


def corpus_documents(name: str, path: Path) -> list[Document]:
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = (data.items() if isinstance(data, dict)
            else ((d["title"], d["text"]) for d in data))
    docs, seen = [], Counter()
    for title, text in rows:
        text = "".join(text) if isinstance(text, list) else text
        seen[title] += 1
        uri = f"urn:{name}:{title.replace(' ', '_')}" + (f"#{seen[title]}" if seen[title] > 1 else "")
        docs.append(Document(uri=uri, text=text, title=title,
                             content_hash=content_hash(f"{title}\n{text}".encode("utf-8"))))
    return docs


def questions(name: str, path: Path) -> list[dict]:
    out = []
    for q in json.loads(path.read_text(encoding="utf-8")):
        if name == "hotpotqa":
            support = {t for t, _ in q["supporting_facts"]}
            answers = [q["answer"]]
        else:
            support = {p["title"] for p in q["paragraphs"] if p["is_supporting"]}
            answers = [q["answer"], *q.get("answer_aliases", [])]
        out.append({"question": q["question"], "support": support, "answers": answers})
    return out


def normalise(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(pred: str, gold: str) -> float:
    p, g = normalise(pred).split(), normalise(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def run(name: str, store_root: Path) -> dict:
    qa_path, corpus_path = SETS[name]
    settings = load_settings(None, {"reason": {"auto": False}}, env={})
    store = KnowledgeStore.open(store_root / name, settings, create=True)
    from kg.ingest import open_ingestor

    docs = corpus_documents(name, corpus_path)
    t0 = time.perf_counter()
    with open_ingestor(store) as ingestor:
        summary = ingestor.ingest_documents(docs)
    console.print(f"{name}: {len(docs)} paragraphs → {summary.new} new, {summary.unchanged} unchanged, "
                  f"{summary.facts} facts in {time.perf_counter() - t0:.0f} s")
    engine = open_engine(store)
    rows = questions(name, qa_path)
    all_in, any_in, em, f1s, ungrounded, graph_answered, lat = 0, 0, 0.0, 0.0, 0, 0, []
    for r in rows:
        a = engine.ask(r["question"])
        lat.append(a.latency_ms)
        titles = []  # the cited passages, best first (graph-evidence documents are boosted)
        for s in (x for x in a.sources if x.kind == "passage"):
            title = s.title or s.document
            if title not in titles:
                titles.append(title)
        top5 = set(titles[:5])
        all_in += r["support"] <= top5
        any_in += bool(r["support"] & top5)
        pred = a.entities[0] if a.status == "answered" and a.entities else ""
        em += max(normalise(pred) == normalise(g) for g in r["answers"])
        f1s += max(f1(pred, g) for g in r["answers"])
        if a.status == "answered":
            graph_answered += 1
            # Every entity given with evidence (the first ones, which the generator may have
            # reordered) must end one of the evidence chains.
            ends = {c[-1].object for c in a.evidence} | {c[-1].subject for c in a.evidence}
            ungrounded += any(e not in ends for e in a.entities[:len(a.evidence)])
    n = len(rows)
    return {"questions": n, "paragraphs": len(docs), "facts": summary.facts,
            "support_all_top5": all_in / n, "support_any_top5": any_in / n,
            "em": em / n, "f1": f1s / n, "graph_answered": graph_answered / n,
            "ungrounded": ungrounded / max(graph_answered, 1),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="hotpotqa,musique")
    ap.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "docqa-stores")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    results = {name: run(name, args.store) for name in args.sets.split(",")}
    table = Table(title="Questions over ingested documents (train-100, dev use)")
    for col in ("set", "questions", "all support in top-5", "any in top-5", "EM", "F1",
                "graph answered", "ungrounded", "p50 / p95 ms"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        table.add_row(name, str(r["questions"]), f"{r['support_all_top5']:.2f}", f"{r['support_any_top5']:.2f}",
                      f"{r['em']:.2f}", f"{r['f1']:.2f}", f"{r['graph_answered']:.2f}",
                      f"{r['ungrounded']:.2f}", f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f}")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "docqa.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
