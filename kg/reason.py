"""Materialise RDFS / OWL 2 RL entailments into the store's inferred graph.

Two engines (``reason.engine``):

- ``rules`` (default): :mod:`kg.rules` over the asserted triples. A full run recomputes
  everything; an incremental run after a change touches only what the change reaches —
  additions by semi-naive forward chaining, removals by delete-and-rederive (DRed).
- ``owlrl``: the owlrl package over an in-memory rdflib copy (full runs only).

Schema changes (a new subClassOf, domain, …) always trigger a full run: they can change
the consequences of every data triple.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from kg.backends import GraphBackend, Triple
from kg.backends.base import insert_data
from kg.config import ReasonSettings
from kg.rules import PROPERTY_CLASSES, SAMEAS, TYPE, JoinIndex, RuleSet, forward, is_literal
from kg.validity import superseded
from kg.vocab import Vocabulary

_CHUNK = 5_000


@dataclass
class ReasonSummary:
    mode: str  # full | incremental
    added: int
    removed: int
    total: int
    seconds: float


def _summary(mode: str, added: int, removed: int, total: int, started: float) -> ReasonSummary:
    return ReasonSummary(mode, added, removed, total, time.perf_counter() - started)


def _asserted(backend: GraphBackend, vocab: Vocabulary) -> set[Triple]:
    """Asserted triples still valid: a triple a correction superseded derives nothing."""
    skip = (str(vocab.inferred_graph), str(vocab.provenance_graph))
    invalid = superseded(backend, vocab)
    return {(s, p, o) for s, p, o, g in backend.read_triples() if g not in skip} - invalid


def _inferred(backend: GraphBackend, vocab: Vocabulary) -> set[Triple]:
    return {(s, p, o) for s, p, o, _ in backend.read_triples(str(vocab.inferred_graph))}


def closure(asserted: set[Triple], profile: str) -> set[Triple]:
    """Everything the rules derive from ``asserted`` that is not asserted."""
    is_schema = RuleSet((), profile).is_schema
    schema = {t for t in asserted if is_schema(t)}
    while True:
        rules = RuleSet(schema, profile)
        entailed = rules.schema_entailments()
        derived = forward(asserted | entailed, rules, JoinIndex(rules)) | entailed
        # Schema the compiled rules do not already imply (e.g. through owl:sameAs) means
        # the rules must be compiled again; this is rare.
        new_schema = {t for t in derived if rules.is_schema(t)} - schema - entailed
        if not new_schema:
            return derived - asserted
        schema |= new_schema


def owlrl_closure(asserted: set[Triple], profile: str) -> set[Triple]:
    """The owlrl package's closure, without axiomatic triples, as N-Triples strings."""
    import owlrl
    from rdflib import Graph, Literal, URIRef

    from kg.results import nt_term

    graph = Graph()
    graph.parse(data="".join(f"{s} {p} {o} .\n" for s, p, o in asserted), format="nt")
    semantics = owlrl.OWLRL_Semantics if profile == "owlrl" else owlrl.RDFS_Semantics
    owlrl.DeductiveClosure(semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    out = set()
    for s, p, o in graph:
        if isinstance(s, Literal) or not isinstance(p, URIRef):
            continue  # owlrl works on generalised RDF; a store holds only valid triples
        t = (nt_term(s), nt_term(p), nt_term(o))
        if t not in asserted:
            out.add(t)
    return out


def _write_changes(backend: GraphBackend, vocab: Vocabulary, add: Iterable[Triple],
                   remove: Iterable[Triple], *, replace_all: bool = False) -> None:
    graph = str(vocab.inferred_graph)
    add, remove = list(add), list(remove)
    if replace_all:
        backend.drop_graph(graph)
        backend.bulk_insert(graph, add)
        return
    for i in range(0, len(remove), _CHUNK):
        body = "\n".join(f"{s} {p} {o} ." for s, p, o in remove[i:i + _CHUNK])
        backend.update(f"DELETE DATA {{ GRAPH <{graph}> {{\n{body}\n}} }}")
    for i in range(0, len(add), _CHUNK):
        backend.update(insert_data(graph, add[i:i + _CHUNK]))


def materialise(backend: GraphBackend, vocab: Vocabulary, settings: ReasonSettings) -> ReasonSummary:
    """Recompute all inferences and store the difference to what was stored."""
    started = time.perf_counter()
    asserted = _asserted(backend, vocab)
    if settings.engine == "owlrl":
        new = owlrl_closure(asserted, settings.profile)
    else:
        new = closure(asserted, settings.profile)
    old = _inferred(backend, vocab)
    add, remove = new - old, old - new
    # Rewriting wholesale is faster than a huge diff and leaves the same graph.
    wholesale = len(add) + len(remove) > max(len(new) // 2, _CHUNK)
    _write_changes(backend, vocab, add if not wholesale else new, remove, replace_all=wholesale)
    return _summary("full", len(add), len(remove), len(new), started)


def update_incrementally(backend: GraphBackend, vocab: Vocabulary, settings: ReasonSettings,
                         added: set[Triple], removed: set[Triple]) -> ReasonSummary:
    """Bring the inferred graph up to date after asserted triples were added/removed."""
    started = time.perf_counter()
    rules = _rules_from_store(backend, settings.profile)
    touches_schema = any(rules.is_schema(t) for t in added | removed)
    if settings.engine != "rules" or touches_schema or _big(backend, added | removed):
        return materialise(backend, vocab, settings)

    inferred_g = str(vocab.inferred_graph)
    n_removed = n_added = 0
    # 1. Removals (DRed): over-delete everything the removed triples could have produced …
    if removed:
        over = forward(removed, rules, _join_index(backend, rules, extra=removed)) - removed
        deleted = backend.contains(over, inferred_g)
        # … then rederive what still follows from the rest: every derivation of a deleted
        # triple has a premise sharing one of its nodes, so seeds around those nodes suffice.
        nodes = {n for t in deleted | removed for n in (t[0], t[2]) if not is_literal(n)}
        seeds = {(s, p, o) for s, p, o, g in backend.read_touching(nodes)
                 if g != str(vocab.provenance_graph)} - deleted - superseded(backend, vocab)
        again = forward(seeds, rules, _join_index(backend, rules, exclude=deleted))
        # A removed triple that still follows from the rest is now an inference.
        _write_changes(backend, vocab, (again & removed) - seeds, deleted - again)
        n_removed, n_added = len(deleted - again), len((again & removed) - seeds)
    # 2. Additions: forward from the new triples over the current closure.
    if added:
        index = _join_index(backend, rules)
        derived = forward(added, rules, index)
        if any(rules.is_schema(t) for t in derived):  # e.g. through owl:sameAs
            return materialise(backend, vocab, settings)
        derived -= added
        asserted_or_inferred = backend.contains(derived)
        new = derived - asserted_or_inferred
        # A newly asserted triple that was inferred before is now simply asserted.
        redundant = backend.contains(added, inferred_g)
        _write_changes(backend, vocab, new, redundant)
        n_added += len(new)
        n_removed += len(redundant)
    total = backend.count(inferred_g)
    return _summary("incremental", n_added, n_removed, total, started)


def _big(backend: GraphBackend, delta: set[Triple]) -> bool:
    """A change touching a large share of the data is cheaper to recompute in full."""
    return len(delta) > 50_000 and len(delta) * 4 > backend.count()


def _rules_from_store(backend: GraphBackend, profile: str) -> RuleSet:
    probe = RuleSet((), profile)
    schema: list[Triple] = []
    for pred in probe.schema_predicates:
        schema.extend((s, p, o) for s, p, o, _ in backend.read_triples(predicate=pred[1:-1]))
    if probe.owl:  # property characteristics: rdf:type with the object fixed, not every type
        for cls in PROPERTY_CLASSES:
            schema.extend((s, p, o) for s, p, o, _ in
                          backend.read_triples(predicate=TYPE[1:-1], obj=cls))
    return RuleSet(schema, profile)


def _join_index(backend: GraphBackend, rules: RuleSet, *, extra: Iterable[Triple] = (),
                exclude: set[Triple] | None = None) -> JoinIndex:
    """Join partners from the store: transitive-property edges and sameAs neighbourhoods."""
    index = JoinIndex(rules)
    preds = set(rules.transitive) | ({SAMEAS} if rules.owl else set())
    for pred in preds:
        for s, p, o, _ in backend.read_triples(predicate=pred[1:-1]):
            if exclude is None or (s, p, o) not in exclude:
                index.add((s, p, o))
    if index.has_same:
        nodes = index.same_nodes()
        for s, p, o, _ in backend.read_touching(nodes):
            if exclude is None or (s, p, o) not in exclude:
                index.add((s, p, o))
    for t in extra:
        index.add(t)
    return index
