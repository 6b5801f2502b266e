"""An in-memory view of the graph for question answering: labels, adjacency, relation names.

Multi-hop retrieval walks thousands of edges per question; doing that through SPARQL, one
query per hop and relation, costs far more than the 100 ms a question may take. So the
entity-to-entity (and entity-to-literal) edges of every graph, inferences included, are read
once into integer adjacency lists and saved under ``<store>/index/graph/``. The snapshot is
keyed by a stamp of the store's source versions and inference count, so it is rebuilt exactly
when the graph changed. The store stays the truth: evidence sources are read from it per answer.
Triples a user's correction superseded (:mod:`kg.validity`) are left out: answers and the QA
pairs made from this index never rest on them.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kg.store import KnowledgeStore
from kg.validity import superseded
from kg.vocab import RDFS, SKOS

Hop = tuple[int, int]          # (relation id, direction): +1 subject→object, -1 object→subject
_FORMAT = 3
_LITERAL = re.compile(r'^"(.*)"(?:\^\^<[^>]*>|@[A-Za-z0-9-]+)?$', re.S)
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens: how labels and questions are compared."""
    return _TOKEN.findall(text.casefold())


def _unescape(lexical: str) -> str:
    if "\\" not in lexical:
        return lexical
    return json.loads('"' + lexical.replace('"', '\\"').replace('\\\\"', '\\"') + '"')


def term_text(nt: str) -> str:
    """The IRI or the lexical form of an N-Triples term."""
    if nt.startswith("<"):
        return nt[1:-1]
    m = _LITERAL.match(nt)
    return _unescape(m.group(1)) if m else nt


def relation_name(iri: str) -> str:
    """A readable name for a relation IRI without a label: its last segment, spaced."""
    tail = re.split(r"[/#]", iri.rstrip("/#"))[-1]
    return re.sub(r"[_\s]+", " ", tail).strip() or iri


@dataclass
class GraphIndex:
    stamp: str = ""
    nodes: list[str] = field(default_factory=list)        # IRI, or N-Triples literal
    labels: list[str] = field(default_factory=list)       # display label per node
    relations: list[str] = field(default_factory=list)    # relation IRIs
    relation_labels: list[str] = field(default_factory=list)
    adj: list[dict[Hop, list[int]]] = field(default_factory=list)
    by_label: dict[str, list[int]] = field(default_factory=dict)  # " ".join(tokens) → nodes
    max_label_tokens: int = 1
    # which hops can follow which: (rel, dir) → set of next (rel, dir), over the whole graph
    follows: dict[Hop, set[Hop]] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------
    @classmethod
    def build(cls, store: KnowledgeStore) -> "GraphIndex":
        ent = str(store.vocab.ENT)
        label_p, alt_p = f"<{RDFS.label}>", f"<{SKOS.altLabel}>"
        g = cls(stamp=graph_stamp(store))
        node_id: dict[str, int] = {}
        rel_id: dict[str, int] = {}
        rel_label: dict[str, str] = {}
        names: dict[int, str] = {}
        aliases: dict[int, set[str]] = defaultdict(set)
        edges: set[tuple[int, int, int]] = set()
        invalid = superseded(store.backend, store.vocab)

        def node(term: str) -> int:
            i = node_id.get(term)
            if i is None:
                i = node_id[term] = len(g.nodes)
                g.nodes.append(term)
            return i

        for s, p, o, _graph in store.backend.read_triples():
            if not s.startswith("<" + ent):
                if p == label_p and s.startswith("<" + str(store.vocab.REL)):
                    rel_label.setdefault(s[1:-1], term_text(o))
                continue
            if p in (label_p, alt_p):
                text = term_text(o)
                if p == label_p and node(s[1:-1]) not in names:
                    names[node_id[s[1:-1]]] = text
                aliases[node(s[1:-1])].add(text)
                continue
            is_entity = o.startswith("<" + ent)
            if not (is_entity or o.startswith('"')):
                continue  # rdf:type, provenance and other vocabulary links
            if invalid and (s, p, o) in invalid:
                continue  # superseded by a correction: kept in the store, not used
            pi = rel_id.get(p)
            if pi is None:
                pi = rel_id[p] = len(g.relations)
                g.relations.append(p[1:-1])
            edges.add((node(s[1:-1]), pi, node(o[1:-1] if is_entity else o)))

        g.relation_labels = [rel_label.get(r) or relation_name(r) for r in g.relations]
        g.adj = [defaultdict(list) for _ in g.nodes]
        for s, p, o in sorted(edges):
            g.adj[s][(p, 1)].append(o)
            g.adj[o][(p, -1)].append(s)
        g.adj = [dict(a) for a in g.adj]
        g.labels = [names.get(i) or _fallback_label(t) for i, t in enumerate(g.nodes)]
        by_label: dict[str, set[int]] = defaultdict(set)
        for i in range(len(g.nodes)):
            for text in aliases.get(i, ()) or (g.labels[i],):
                key = " ".join(tokens(text))
                if key:
                    by_label[key].add(i)
        g.by_label = {k: sorted(v) for k, v in by_label.items()}
        g.max_label_tokens = min(12, max((k.count(" ") + 1 for k in g.by_label), default=1))
        g.follows = _follows(g.adj)
        return g

    # -- reading -------------------------------------------------------------------
    def hop_label(self, hop: Hop) -> str:
        return self.relation_labels[hop[0]]

    def neighbours(self, node: int, hop: Hop) -> list[int]:
        return self.adj[node].get(hop, [])

    def degree(self, node: int) -> int:
        return sum(len(v) for v in self.adj[node].values())

    def is_literal(self, node: int) -> bool:
        return self.nodes[node].startswith('"')

    def node_of(self, term: str) -> int | None:
        """The node id of an IRI (or N-Triples literal); the lookup table is built once."""
        ids = self.__dict__.get("_node_ids")
        if ids is None:
            ids = self.__dict__["_node_ids"] = {t: i for i, t in enumerate(self.nodes)}
        return ids.get(term)

    def relation_of(self, iri: str) -> int | None:
        ids = self.__dict__.get("_relation_ids")
        if ids is None:
            ids = self.__dict__["_relation_ids"] = {t: i for i, t in enumerate(self.relations)}
        return ids.get(iri)

    # -- persistence ------------------------------------------------------------------
    def to_disk(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "graph.pkl.tmp"
        with open(tmp, "wb") as f:
            state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}  # not caches
            pickle.dump((_FORMAT, state), f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path / "graph.pkl")

    @classmethod
    def from_disk(cls, path: Path) -> "GraphIndex | None":
        """The saved snapshot, or None when there is none or it is of an older format.
        (A pickle written by kgchat itself in the user's own store directory.)"""
        file = path / "graph.pkl"
        if not file.exists():
            return None
        with open(file, "rb") as f:
            fmt, state = pickle.load(f)
        if fmt != _FORMAT:
            return None
        g = cls()
        g.__dict__.update(state)
        return g


def _fallback_label(term: str) -> str:
    return term_text(term) if term.startswith('"') else relation_name(term)


def _follows(adj: list[dict[Hop, list[int]]]) -> dict[Hop, set[Hop]]:
    """Which hop can come after which: a node reached by (r, d) leaves by (r', d')."""
    follows: dict[Hop, set[Hop]] = defaultdict(set)
    for edges in adj:
        outs = set(edges)
        for r, d in edges:
            follows[(r, -d)] |= outs  # arriving by the reverse of a hop that leaves here
    return dict(follows)


def graph_stamp(store: KnowledgeStore) -> str:
    versions = store.state.versions(("file", "document", "conversation", "url", "feedback"))
    inferred = store.backend.count(str(store.vocab.inferred_graph))
    key = json.dumps([versions, inferred, store.backend.count()])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def load_graph_index(store: KnowledgeStore, *, rebuild: bool = False) -> GraphIndex:
    """The store's graph index, rebuilt and saved when the graph changed since it was saved."""
    path = store.root / "index" / "graph"
    stamp = graph_stamp(store)
    g = None if rebuild else GraphIndex.from_disk(path)
    if g is None or g.stamp != stamp:
        g = GraphIndex.build(store)
        g.to_disk(path)
    return g
