"""Grounded QA pairs generated from the graph itself: 1–3-hop questions with evidence.

Nothing here looks at any benchmark's questions. A pair is made by picking an entity,
a relation path the graph can walk from it (:func:`kg.paths.candidate_paths`), following
it, and phrasing the path with generic templates built from the relation labels — several
phrasings per hop so a model trained on them learns the relations, not one sentence shape.
Each pair carries its evidence chains (what the generator is shown) and answer set.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path as FsPath
from typing import Iterator

from kg.graphindex import GraphIndex
from kg.paths import Path, candidate_paths, chain, follow, walk_text

FORWARD_NP = ["the {r} of {x}", "the {r} of {x}", "{x}'s {r}", "the {r} for {x}"]
BACKWARD_NP = ["what has {r} {x}", "the things with {r} {x}", "those with {r} {x}",
               "items whose {r} is {x}"]
WRAPPERS = ["what is {np}", "what are {np}", "which are {np}", "name {np}", "{np}?",
            "tell me {np}", "who or what is {np}", "list {np}"]


@dataclass
class QAPair:
    question: str
    topic: str                  # the topic entity's label
    path: list[list[int]]       # hops as [relation id, direction]
    path_labels: list[str]      # "directed by", "~starred actors" (~ = backwards)
    answers: list[str]          # answer labels (the whole set)
    evidence: list[str]         # one walk per shown answer (kg.paths.walk_text), answer last
    hops: int


def relation_text(g: GraphIndex, rel: int) -> str:
    return g.relation_labels[rel].replace("_", " ").strip()


def phrase(g: GraphIndex, path: Path, topic: str, rng: random.Random) -> str:
    """One phrasing of a path question about ``topic``."""
    np_ = topic
    for rel, direction in path:
        pattern = rng.choice(FORWARD_NP if direction > 0 else BACKWARD_NP)
        np_ = pattern.format(r=relation_text(g, rel), x=np_)
    return rng.choice(WRAPPERS).format(np=np_)


def generate_pairs(g: GraphIndex, n: int, *, seed: int = 0, max_hops: int = 3,
                   max_answers: int = 20, max_tries: int | None = None) -> Iterator[QAPair]:
    """Up to ``n`` pairs, spread evenly over 1..max_hops hops; answer sets larger than
    ``max_answers`` are skipped (a question with 500 answers teaches little)."""
    rng = random.Random(seed)
    starts = [i for i in range(len(g.nodes)) if g.adj[i] and not g.is_literal(i)]
    if not starts:
        return
    made = 0
    tries = 0
    max_tries = max_tries or 50 * n
    while made < n and tries < max_tries:
        tries += 1
        hops = 1 + made % max_hops
        start = rng.choice(starts)
        paths = [p for p in candidate_paths(g, start, max_hops=hops, limit=2000) if len(p) == hops]
        if not paths:
            continue
        path = rng.choice(paths)
        answers, parents = follow(g, start, path)
        if not answers or len(answers) > max_answers:
            continue
        ranked = sorted(answers, key=lambda a: g.labels[a])
        evidence: list[str] = []
        for a in ranked[:3]:
            evidence.append(walk_text(g, path, chain(g, parents, a)))
        made += 1
        yield QAPair(
            question=phrase(g, path, g.labels[start], rng), topic=g.labels[start],
            path=[list(h) for h in path],
            path_labels=[("" if d > 0 else "~") + relation_text(g, r) for r, d in path],
            answers=[g.labels[a] for a in ranked], evidence=list(dict.fromkeys(evidence)),
            hops=hops,
        )


def save_pairs(pairs: list[QAPair], path: FsPath) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    tmp.replace(path)


def load_pairs(path: FsPath) -> list[QAPair]:
    with open(path, encoding="utf-8") as f:
        return [QAPair(**json.loads(line)) for line in f if line.strip()]
