"""Forward-chaining RDFS / OWL 2 RL rules over triples of N-Triples strings.

The schema (T-Box) is compiled once into lookup tables, so a data triple's consequences
are dictionary lookups; only ``owl:TransitiveProperty`` and ``owl:sameAs`` need joins,
served by :class:`JoinIndex`. Rules (names from the OWL 2 RL profile):

- RDFS: rdfs2/prp-dom, rdfs3/prp-rng, rdfs5+7/prp-spo1, rdfs9+11/cax-sco, scm-sco, scm-spo,
  scm-dom1/2, scm-rng1/2
- OWL RL: prp-inv1/2, prp-symp, prp-trp, cax-eqc1/2, prp-eqp1/2, scm-eqc1/2, scm-eqp1/2,
  eq-sym, eq-trans, eq-rep-s/p/o

Trivial entailments (``C rdfs:subClassOf C``, ``x owl:sameAs x``, axiomatic triples) are
left out on purpose: they add volume and answer no question.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Iterator

from kg.backends.base import Triple

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_OWL = "http://www.w3.org/2002/07/owl#"
TYPE = f"<{_RDF}type>"
SUBCLASS = f"<{_RDFS}subClassOf>"
SUBPROP = f"<{_RDFS}subPropertyOf>"
DOMAIN = f"<{_RDFS}domain>"
RANGE = f"<{_RDFS}range>"
INVERSE = f"<{_OWL}inverseOf>"
EQCLASS = f"<{_OWL}equivalentClass>"
EQPROP = f"<{_OWL}equivalentProperty>"
SAMEAS = f"<{_OWL}sameAs>"
SYMMETRIC = f"<{_OWL}SymmetricProperty>"
TRANSITIVE = f"<{_OWL}TransitiveProperty>"

RDFS_SCHEMA = frozenset({SUBCLASS, SUBPROP, DOMAIN, RANGE})
OWL_SCHEMA = RDFS_SCHEMA | {INVERSE, EQCLASS, EQPROP}
PROPERTY_CLASSES = frozenset({SYMMETRIC, TRANSITIVE})


def is_literal(term: str) -> bool:
    return term.startswith('"')


def _closure(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Reachable nodes (excluding the start unless on a cycle) for each node."""
    out: dict[str, set[str]] = {}
    for start in edges:
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(edges.get(n, ()))
        out[start] = seen
    return out


class RuleSet:
    """The rules of one profile, compiled against a set of schema triples."""

    def __init__(self, schema: Iterable[Triple], profile: str = "owlrl") -> None:
        self.profile = profile
        self.owl = profile == "owlrl"
        self.schema_predicates = OWL_SCHEMA if self.owl else RDFS_SCHEMA
        self.schema: frozenset[Triple] = frozenset(t for t in schema if self.is_schema(t))
        sub_c: dict[str, set[str]] = defaultdict(set)
        sub_p: dict[str, set[str]] = defaultdict(set)
        dom: dict[str, set[str]] = defaultdict(set)
        rng: dict[str, set[str]] = defaultdict(set)
        inv: dict[str, set[str]] = defaultdict(set)
        self.symmetric: set[str] = set()
        self.transitive: set[str] = set()
        for s, p, o in self.schema:
            if p == SUBCLASS:
                sub_c[s].add(o)
            elif p == SUBPROP:
                sub_p[s].add(o)
            elif p == DOMAIN:
                dom[s].add(o)
            elif p == RANGE:
                rng[s].add(o)
            elif p == EQCLASS:
                sub_c[s].add(o), sub_c[o].add(s)
            elif p == EQPROP:
                sub_p[s].add(o), sub_p[o].add(s)
            elif p == INVERSE:
                inv[s].add(o), inv[o].add(s)
            elif p == TYPE and o == SYMMETRIC:
                self.symmetric.add(s)
            elif p == TYPE and o == TRANSITIVE:
                self.transitive.add(s)
        self.supers = _closure(sub_c)          # class → all superclasses
        self.superprops = _closure(sub_p)      # property → all superproperties
        self.domains = dom
        self.ranges = rng
        self.inverses = inv
        self._expansions: dict[str, tuple[tuple[tuple[str, bool], ...], frozenset[str], frozenset[str]]] = {}

    def is_schema(self, t: Triple) -> bool:
        s, p, o = t
        if p in self.schema_predicates:
            return True
        return self.owl and p == TYPE and o in PROPERTY_CLASSES

    # -- schema-level entailments (scm-*) ----------------------------------------
    def schema_entailments(self) -> set[Triple]:
        out: set[Triple] = set()
        for c, sups in self.supers.items():
            out.update((c, SUBCLASS, d) for d in sups if d != c)
            if self.owl:
                out.update((c, EQCLASS, d) for d in sups if d != c and c in self.supers.get(d, ()))
        for p, sups in self.superprops.items():
            out.update((p, SUBPROP, q) for q in sups if q != p)
            if self.owl:
                out.update((p, EQPROP, q) for q in sups if q != p and p in self.superprops.get(q, ()))
        tables = ((self.domains, DOMAIN), (self.ranges, RANGE)) if self.owl else ()
        for table, pred in tables:
            props = set(table) | {p for p in self.superprops if any(q in table for q in self.superprops[p])}
            for p in props:
                classes = set(table.get(p, ()))
                for q in self.superprops.get(p, ()):
                    classes |= table.get(q, set())                     # scm-dom2 / scm-rng2
                for c in list(classes):
                    classes |= self.supers.get(c, set())               # scm-dom1 / scm-rng1
                out.update((p, pred, c) for c in classes)
        return out

    # -- data-level consequences -------------------------------------------------
    def _expand(self, p: str) -> tuple[tuple[tuple[str, bool], ...], frozenset[str], frozenset[str]]:
        """For ``x p y``: the (property, reversed) triples it entails, and the classes of x and y."""
        hit = self._expansions.get(p)
        if hit is not None:
            return hit
        seen = {(p, False)}
        stack = [(p, False)]
        while stack:
            q, rev = stack.pop()
            nxt = [(r, rev) for r in self.superprops.get(q, ())]
            if self.owl:
                nxt += [(r, not rev) for r in self.inverses.get(q, ())]
                if q in self.symmetric:
                    nxt.append((q, not rev))
            for state in nxt:
                if state not in seen:
                    seen.add(state)
                    stack.append(state)
        subj_types: set[str] = set()
        obj_types: set[str] = set()
        for q, rev in seen:
            (obj_types if rev else subj_types).update(self.domains.get(q, ()))
            (subj_types if rev else obj_types).update(self.ranges.get(q, ()))
        for types in (subj_types, obj_types):
            for c in list(types):
                types |= self.supers.get(c, set())
        seen.discard((p, False))
        hit = (tuple(seen), frozenset(subj_types), frozenset(obj_types))
        self._expansions[p] = hit
        return hit

    def consequences(self, t: Triple, index: "JoinIndex") -> Iterator[Triple]:
        s, p, o = t
        o_lit = is_literal(o)
        if p == TYPE:
            for d in self.supers.get(o, ()):
                yield (s, TYPE, d)
        props, s_types, o_types = self._expand(p)
        for q, rev in props:
            if not rev:
                yield (s, q, o)
            elif not o_lit:
                yield (o, q, s)
        for c in s_types:
            yield (s, TYPE, c)
        if not o_lit:
            for c in o_types:
                yield (o, TYPE, c)
        if not self.owl:
            return
        if p in self.transitive:                                       # prp-trp
            for z in index.out_edges(p, o):
                yield (s, p, z)
            for w in index.in_edges(p, s):
                yield (w, p, o)
        if p == SAMEAS and not o_lit and s != o:                       # eq-sym, eq-trans, eq-rep-*
            yield (o, SAMEAS, s)
            for z in index.same(o):
                if z != s:
                    yield (s, SAMEAS, z)
            for (a, b, c) in index.touching(s):
                yield (o if a == s else a, o if b == s else b, o if c == s else c)
        elif index.has_same:
            for pos, node in ((0, s), (1, p), (2, o)):
                for alt in index.same(node):
                    if pos == 0:
                        yield (alt, p, o)
                    elif pos == 1 and alt.startswith("<"):
                        yield (s, alt, o)
                    elif pos == 2:
                        yield (s, p, alt)


class JoinIndex:
    """The join partners prp-trp and eq-rep need, over every triple processed so far."""

    def __init__(self, rules: RuleSet) -> None:
        self._transitive = rules.transitive
        self._out: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._in: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._same: dict[str, set[str]] = defaultdict(set)
        self._by_node: dict[str, set[Triple]] | None = None
        self._all: set[Triple] = set()
        self.has_same = False

    def add(self, t: Triple) -> None:
        s, p, o = t
        if p in self._transitive:
            self._out[(p, s)].add(o)
            self._in[(p, o)].add(s)
        if p == SAMEAS and s != o and not is_literal(o):
            self._same[s].add(o)
            if not self.has_same:
                self.has_same = True
                self._by_node = defaultdict(set)
                for old in self._all:
                    self._index_nodes(old)
        if self._by_node is not None:
            self._index_nodes(t)
        else:
            self._all.add(t)

    def _index_nodes(self, t: Triple) -> None:
        assert self._by_node is not None
        for n in {t[0], t[1], t[2]}:
            self._by_node[n].add(t)

    def out_edges(self, p: str, x: str) -> list[str]:
        return list(self._out.get((p, x), ()))

    def in_edges(self, p: str, y: str) -> list[str]:
        return list(self._in.get((p, y), ()))

    def same(self, node: str) -> list[str]:
        return list(self._same.get(node, ()))

    def same_nodes(self) -> set[str]:
        """Every node in an owl:sameAs pair seen so far."""
        return {n for node, alts in self._same.items() for n in (node, *alts)}

    def touching(self, node: str) -> list[Triple]:
        return list(self._by_node.get(node, ())) if self._by_node is not None else []


def forward(seeds: Iterable[Triple], rules: RuleSet, index: JoinIndex,
            known: set[Triple] | None = None) -> set[Triple]:
    """Semi-naive closure: every triple derivable from ``seeds`` (and the triples already in
    ``index``). Returns the triples produced that are neither seeds nor in ``known``."""
    seen: set[Triple] = set(known or ())
    agenda: list[Triple] = []
    for t in seeds:
        if t not in seen:
            seen.add(t)
            agenda.append(t)
    derived: set[Triple] = set()
    i = 0
    while i < len(agenda):
        t = agenda[i]
        index.add(t)
        for c in rules.consequences(t, index):
            if c not in seen and not (c[1] == SAMEAS and c[0] == c[2]):
                seen.add(c)
                agenda.append(c)
                derived.add(c)
        i += 1
    return derived
