"""Grounded QA pairs generated from the graph itself: 1–3-hop questions with evidence.

Nothing here looks at any benchmark's questions. A pair is made by picking an entity,
a relation path the graph can walk from it (:func:`kg.paths.candidate_paths`), following
it, and phrasing the path with generic templates built from the relation labels — several
phrasings per hop so a model trained on them learns the relations, not one sentence shape.
Each pair carries its evidence chains (what the generator is shown) and answer set.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Iterator

from kg.graphindex import GraphIndex
from kg.paths import Path, candidate_paths, chain, follow, walk_text

if TYPE_CHECKING:
    from kg.store import KnowledgeStore

FORWARD_NP = ["the {r} of {x}", "the {r} of {x}", "{x}'s {r}", "the {r} for {x}"]
BACKWARD_NP = ["what has {r} {x}", "the things with {r} {x}", "those with {r} {x}",
               "items whose {r} is {x}"]
WRAPPERS = ["what is {np}", "what are {np}", "which are {np}", "name {np}", "{np}?",
            "tell me {np}", "who or what is {np}", "list {np}"]


@dataclass
class QAPair:
    question: str
    topic: str                  # the topic entity's label
    path: list[list[int]]       # hops as [relation id, direction] (ids of the graph index it was made from)
    path_labels: list[str]      # "directed by", "~starred actors" (~ = backwards)
    answers: list[str]          # answer labels (the whole set)
    evidence: list[str]         # one walk per shown answer (kg.paths.walk_text), answer last
    hops: int
    # Stable across graph rebuilds and rounds (relation ids are not): what continual
    # learning keys its replay buffer on and re-follows to find retracted facts.
    id: str = ""                # hash of topic IRI + relation path
    topic_iri: str = ""
    relations: list[list] = field(default_factory=list)  # [relation IRI, direction] per hop
    round: int = 0              # the learning round that taught it
    sources: list[str] = field(default_factory=list)     # source ids whose change made it
    held: bool = False          # held back: measured, never trained on


HELD_PERCENT = 10  # share of pairs held back (decided by id, so stable across rounds)


def pair_id(topic_iri: str, relations: list[list]) -> str:
    key = json.dumps([topic_iri, relations], ensure_ascii=False)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def is_held(pid: str, percent: int = HELD_PERCENT) -> bool:
    return int(pid[:8], 16) % 100 < percent


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
                   max_answers: int = 20, max_tries: int | None = None,
                   starts: list[int] | None = None, round: int = 0,
                   sources: list[str] | None = None) -> Iterator[QAPair]:
    """Up to ``n`` distinct pairs, spread evenly over 1..max_hops hops; answer sets larger
    than ``max_answers`` are skipped (a question with 500 answers teaches little).
    ``starts`` limits the topic entities (continual learning: those a change touched)."""
    rng = random.Random(seed)
    pool = starts if starts is not None else range(len(g.nodes))
    starts = [i for i in pool if g.adj[i] and not g.is_literal(i)]
    if not starts:
        return
    made = 0
    tries = 0
    seen: set[str] = set()
    max_tries = max_tries or 50 * n
    while made < n and tries < max_tries:
        tries += 1
        hops = 1 + made % max_hops
        start = rng.choice(starts)
        paths = [p for p in candidate_paths(g, start, max_hops=hops, limit=2000) if len(p) == hops]
        if not paths:
            continue
        path = rng.choice(paths)
        pair = make_pair(g, start, path, phrase(g, path, g.labels[start], rng), max_answers)
        if pair is None or pair.id in seen:
            continue
        seen.add(pair.id)
        pair.round, pair.sources = round, list(sources or [])
        made += 1
        yield pair


def make_pair(g: GraphIndex, start: int, path: Path, question: str,
              max_answers: int = 20) -> QAPair | None:
    """The pair for ``question`` about ``start`` along ``path``, or None when the path
    reaches nothing (or too much)."""
    answers, parents = follow(g, start, path)
    if not answers or len(answers) > max_answers:
        return None
    ranked = sorted(answers, key=lambda a: g.labels[a])
    evidence = [walk_text(g, path, chain(g, parents, a)) for a in ranked[:3]]
    relations = [[g.relations[r], d] for r, d in path]
    pid = pair_id(g.nodes[start], relations)
    return QAPair(
        question=question, topic=g.labels[start], path=[list(h) for h in path],
        path_labels=[("" if d > 0 else "~") + relation_text(g, r) for r, d in path],
        answers=[g.labels[a] for a in ranked], evidence=list(dict.fromkeys(evidence)),
        hops=len(path), id=pid, topic_iri=g.nodes[start], relations=relations, held=is_held(pid),
    )


def refollow(g: GraphIndex, pair: QAPair) -> QAPair | None:
    """The pair as the graph ``g`` answers it now: the same question, topic and path,
    followed again. None when the topic or a relation is gone or nothing is reached (its
    facts were retracted); the answers may differ (a changed fact: the new truth)."""
    node = g.node_of(pair.topic_iri)
    rels = [g.relation_of(r) for r, _ in pair.relations]
    if node is None or None in rels:
        return None
    path = tuple((r, int(d)) for r, (_, d) in zip(rels, pair.relations))
    fresh = make_pair(g, node, path, pair.question)
    if fresh is not None:
        fresh.round, fresh.sources, fresh.held = pair.round, pair.sources, pair.held
    return fresh


def feedback_pairs(store: "KnowledgeStore", g: GraphIndex, source_ids: list[str] | None = None,
                   *, round: int = 0) -> list[QAPair]:
    """One pair per stored correction (or confirmation) that names its topic and path, as
    the user asked it and as the graph ``g`` answers it now: the correction's own training
    pair. Its id is the id of any earlier pair about the same topic and path, so a learning
    round teaches it as an update of that pair. ``source_ids``: only these feedback
    sources (those changed since the last round)."""
    from kg.feedback import corrections

    out: dict[str, QAPair] = {}
    for sid, c in corrections(store, source_ids):
        node = g.node_of(c["topic"])
        rels = [g.relation_of(r) for r, _ in c["relations"]]
        if node is None or None in rels:
            continue
        path = tuple((r, int(d)) for r, (_, d) in zip(rels, c["relations"]))
        pair = make_pair(g, node, path, c["question"])
        if pair is not None:
            pair.round, pair.sources = round, [sid]
            out[pair.id] = pair  # later corrections of the same pair win
    return list(out.values())


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
