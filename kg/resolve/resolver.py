"""Entity resolution: a document's (name, NER type) mentions → canonical entity IRIs.

The graph is the source of truth. Every ingested source's named graph holds, for each
entity it mentions, the triples of :meth:`ResolvedEntity.triples`::

    <iri> rdfs:label "canonical label" ; skos:altLabel "surface form" ; rdf:type <class> .

The resolver's registry is a cache of exactly those facts, keyed by source, plus indexes
derived from them (normalised names, person surnames, one FAISS vector per alias). Its
state is a pure function of the set of ``(source, iri, predicate, value)`` facts, so
:meth:`EntityResolver.rebuild` from the graph reproduces it, and so do the decisions.

Lifecycle for one document::

    resolved = resolver.resolve([(m.name, m.type) for m in mentions])   # pure: no mutation
    ... write the document's graph, including e.triples() for e in resolved ...
    dropped = resolver.register(source_id, resolved)   # after the write committed

:meth:`~EntityResolver.resolve` changes nothing, so an ingest interrupted before
:meth:`~EntityResolver.register` re-runs to the same IRIs. Resolve and register documents
one after the other: a document resolved before the previous one is registered does not
see that one's entities (same names still mint the same IRIs).

Matching, in order, for each distinct (name, type class) of a call (longest names first,
then by normalised name, so the order of mentions does not matter):

1. **exact**: the normalised name (casefold, accents folded, punctuation dropped, a
   leading "the", a trailing "Inc."/"Corp."/"Ltd." … and for people titles such as
   "Mr."/"Dr." removed) equals an alias of an entity of the same type class. An untyped
   name ("" = noun chunk, class Thing) and a typed entity (or the reverse) match only
   on an identical, capitalised surface form, and only when that is unambiguous.
2. **person** (PERSON only): a bare surname ("Hanks", "Mr. Hanks") → the only Person
   named in full with that surname *in the same resolve() call* (``short_names=
   "registry"``, per resolver or per call, widens this to every registered Person when
   the surname is a word of no other entity's name; on HotpotQA paragraphs such
   cross-document merges were nearly all wrong, in chat turns they are what is meant);
   a full name ("T. Hanks", "Thomas J. Hanks") → the
   only Person all of whose full names agree with it token by token (initials match
   names, middle names may be missing, "Jr."/"III" must be equal). A full name never
   joins a surname-only entity.
   **embedding** (other classes except Date and Quantity, which match exactly only): an
   alias of an entity of the same class with cosine ≥ ``settings.similarity`` that also
   has string similarity ≥ ``string_similarity`` (difflib ratio over sorted content
   words, each word needing a near-equal counterpart on the other side), no differing
   numbers ("World War I" ≠ "World War II") and no side shorter than 4 characters. The
   best by (cosine, string similarity), ties by IRI.
3. **new**: ``vocab.entity(label)``, the label being the name less a lowercase leading
   article, a possessive or an unclosed bracket; if that IRI belongs to an entity of an
   incompatible class, ``vocab.entity(f"{label} ({Class})")`` (then ``({Class} 2)``, …).

Scores are rounded to 4 decimals before comparison, so vectors that differ in the last
bits (batch composition) do not flip decisions; FAISS ids are hashes of (IRI, alias).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from rdflib import Literal, URIRef

from kg.config import ResolveSettings
from kg.errors import StoreError
from kg.resolve.embedder import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from kg.resolve.index import FaissIndex, VectorIndex
from kg.resolve.names import (
    TYPE_CLASSES, CLASSES, _EXACT_ONLY, _alias_id, _canonical, _keys, _order_tokens, _person, _person_fits, _surface, _tokens, normalise_name, string_similarity, type_class, type_iri,
)
from kg.vocab import RDF, RDFS, SKOS, Vocabulary

__all__ = [
    "EntityResolver", "ResolvedEntity", "EntityInfo", "TYPE_CLASSES", "CLASSES",
    "type_class", "type_iri", "normalise_name", "string_similarity", "open_resolver",
]



# -- results -----------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedEntity:
    """What one mention resolved to. ``type`` is the class IRI the graph records."""

    iri: str
    label: str            # the entity's canonical label
    alias: str            # the surface form (whitespace collapsed)
    type: str             # class IRI, e.g. https://w3id.org/kgchat/vocab#Person
    new: bool             # the entity was not registered before this resolve() call
    merged: bool          # joined an entity under a different name (person / embedding rule)
    mention_type: str = ""  # the NER label as given
    rule: str = "new"     # exact | surface | person | embedding | iri | new
    score: float = 1.0    # cosine for embedding merges, else 1.0
    string_score: float = 1.0

    def triples(self) -> list[tuple[URIRef, URIRef, URIRef | Literal]]:
        """The triples a source's graph holds for this mention; :meth:`EntityResolver.rebuild`
        reads exactly these back."""
        subject = URIRef(self.iri)
        out: list[tuple[URIRef, URIRef, URIRef | Literal]] = [
            (subject, RDFS.label, Literal(self.label)),
            (subject, RDF.type, URIRef(self.type)),
        ]
        if self.alias != self.label:
            out.append((subject, SKOS.altLabel, Literal(self.alias)))
        return out


@dataclass(frozen=True)
class EntityInfo:
    iri: str
    label: str
    type: str                      # class IRI
    aliases: tuple[str, ...]       # sorted, the label included
    sources: tuple[str, ...]       # sorted


_PREDICATES = {
    str(RDFS.label): "label", "rdfs:label": "label", "label": "label",
    str(SKOS.altLabel): "alt", "skos:altLabel": "alt", "altLabel": "alt",
    str(RDF.type): "type", "rdf:type": "type", "a": "type", "type": "type",
}


@dataclass
class _Entity:
    labels: dict[str, set[str]] = field(default_factory=dict)   # value → sources
    alts: dict[str, set[str]] = field(default_factory=dict)
    types: dict[str, set[str]] = field(default_factory=dict)

    def table(self, pred: str) -> dict[str, set[str]]:
        return self.labels if pred == "label" else self.alts if pred == "alt" else self.types

    def aliases(self) -> set[str]:
        return set(self.labels) | set(self.alts)

    def empty(self) -> bool:
        return not (self.labels or self.alts or self.types)


_POOL_WORD_LIMIT = 256  # a word shared by more entities than this is too common to block on


@dataclass
class _Scratch:
    """What one resolve() call has decided so far, seen on top of the registry."""

    short_names: str = "document"
    classes: dict[str, str] = field(default_factory=dict)        # iri → class (new or promoted)
    labels: dict[str, str] = field(default_factory=dict)         # new iri → label
    aliases: dict[str, set[str]] = field(default_factory=dict)   # iri → aliases added
    keys: dict[str, set[str]] = field(default_factory=dict)
    surnames: dict[str, set[str]] = field(default_factory=dict)
    people: dict[str, set[str]] = field(default_factory=dict)    # surname → iris named in full
    words: dict[str, set[str]] = field(default_factory=dict)


# -- the resolver ------------------------------------------------------------------

class EntityResolver:
    """Maps mentions to entity IRIs; see the module docstring for the rules.

    ``stamp`` is the caller's marker of the graph state this cache reflects (e.g. the
    store's change counter): saved by :meth:`to_disk`, compared by the caller after
    :meth:`from_disk` to decide whether to :meth:`rebuild`.
    """

    FORMAT = 2  # facts in SQLite, written as they change

    def __init__(
        self,
        vocab: Vocabulary,
        embedder: Embedder,
        index: VectorIndex | None = None,
        settings: ResolveSettings | None = None,
        *,
        string_similarity: float = 0.9,
        candidates: int = 16,
        short_names: str = "document",
    ) -> None:
        self.vocab = vocab
        self.embedder = embedder
        self.index: VectorIndex = index if index is not None else FaissIndex(embedder.dim)
        if self.index.dim != embedder.dim:
            raise StoreError(f"vector index has dimension {self.index.dim}, the embedder "
                             f"{embedder.dim}; rebuild the index for this embedding model")
        self.settings = settings or ResolveSettings()
        self.similarity = round(self.settings.similarity, 4)
        self.string_similarity = string_similarity
        self.candidates = candidates
        if short_names not in ("document", "registry"):
            raise ValueError(f"short_names is 'document' or 'registry', not {short_names!r}")
        self.short_names = short_names
        self.stamp = ""
        self._class_iris = {str(vocab.KGV[c]): c for c in CLASSES}
        self._facts: dict[str, set[tuple[str, str, str]]] = {}
        self._db: sqlite3.Connection | None = None   # where the facts persist, once attached
        self._db_path: Path | None = None
        self._index_dirty = True
        self._entities: dict[str, _Entity] = {}
        self._keys: dict[str, set[str]] = {}
        self._surnames: dict[str, set[str]] = {}
        self._words: dict[str, set[str]] = {}
        self._ids: dict[int, tuple[str, str]] = {}
        self._pending: set[int] = set()     # alias ids not yet embedded into the index
        if len(self.index):
            raise ValueError("EntityResolver needs an empty vector index (the registry fills "
                             "it); load a saved resolver with EntityResolver.from_disk()")

    # -- questions about the registry ---------------------------------------------
    def type_iri(self, ner_label: str) -> str:
        """The class IRI for a spaCy NER label (a class IRI maps to itself)."""
        return str(self.vocab.KGV[type_class(ner_label)])

    def close(self) -> None:
        """Close the facts database and the embedder if it holds resources."""
        if self._db is not None:
            self._db.close()
            self._db = None
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "EntityResolver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._entities)

    def __contains__(self, iri: object) -> bool:
        return iri in self._entities

    def info(self, iri: str) -> EntityInfo | None:
        entity = self._entities.get(iri)
        if entity is None:
            return None
        sources = set().union(*entity.labels.values(), *entity.alts.values(), *entity.types.values())
        return EntityInfo(iri, self._label(iri), str(self.vocab.KGV[self._class(iri)]),
                          tuple(sorted(entity.aliases())), tuple(sorted(sources)))

    def snapshot(self) -> dict[str, EntityInfo]:
        """Every entity, by IRI (for comparisons and debugging)."""
        return {iri: self.info(iri) for iri in sorted(self._entities)}  # type: ignore[misc]

    def sources(self) -> list[str]:
        return sorted(self._facts)

    def _label(self, iri: str) -> str:
        entity = self._entities[iri]
        if entity.labels:
            return min(entity.labels)
        if entity.alts:
            return min(entity.alts)
        return iri.rsplit("/", 1)[-1]

    def _class(self, iri: str) -> str:
        known = sorted((self._class_iris[t], t) for t in self._entities[iri].types
                       if t in self._class_iris)
        specific = [c for c, _ in known if c != "Thing"]
        return specific[0] if specific else "Thing"

    def _index_ids(self) -> np.ndarray:
        return np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))

    # -- resolve --------------------------------------------------------------------
    def resolve(self, mentions: Sequence[tuple[str, str]] | Sequence[Any], *,
                short_names: str | None = None) -> list[ResolvedEntity]:
        """Resolve one document's ``(name, ner_label)`` pairs (or objects with ``.name``
        and ``.type``), one result per input in input order. Changes nothing.

        ``short_names`` overrides the resolver's scope of the bare-surname rule for this
        call (e.g. "registry" for a chat turn, where "Earhart" means the Earhart already
        discussed)."""
        scope = self.short_names if short_names is None else short_names
        if scope not in ("document", "registry"):
            raise ValueError(f"short_names is 'document' or 'registry', not {scope!r}")
        pairs: list[tuple[str, str, str]] = []   # surface, ner label, class
        for m in mentions:
            name, ner = (m.name, m.type) if hasattr(m, "name") else m
            surface = _surface(name)
            if not surface:
                raise ValueError(f"cannot resolve an empty entity name (type {ner!r})")
            pairs.append((surface, ner or "", type_class(ner or "")))
        distinct = sorted({(s, c) for s, _, c in pairs},
                          key=lambda sc: (-_order_tokens(*sc), normalise_name(sc[0]), sc[1], sc[0]))
        scratch = _Scratch(short_names=scope)
        decided: dict[tuple[str, str], ResolvedEntity] = {}
        for surface, cls in distinct:
            result = self._decide(surface, cls, scratch)
            decided[(surface, cls)] = result
            self._note(scratch, result, cls)
        out = []
        for surface, ner, cls in pairs:
            r = decided[(surface, cls)]
            iri = r.iri
            final_type = str(self.vocab.KGV[self._v_class(scratch, iri)])
            label = self._v_label(scratch, iri)
            out.append(ResolvedEntity(iri, label, r.alias, final_type, r.new, r.merged, ner,
                                      r.rule, r.score, r.string_score))
        return out

    # views of registry + scratch
    def _v_exists(self, s: _Scratch, iri: str) -> bool:
        return iri in self._entities or iri in s.labels

    def _v_class(self, s: _Scratch, iri: str) -> str:
        return s.classes.get(iri) or self._class(iri)

    def _v_label(self, s: _Scratch, iri: str) -> str:
        return s.labels.get(iri) or self._label(iri)

    def _v_aliases(self, s: _Scratch, iri: str) -> set[str]:
        base = self._entities[iri].aliases() if iri in self._entities else set()
        return base | s.aliases.get(iri, set())

    def _v_lookup(self, table: dict[str, set[str]], extra: dict[str, set[str]], key: str) -> set[str]:
        return table.get(key, set()) | extra.get(key, set())

    def _compatible(self, s: _Scratch, surface: str, cls: str, iri: str) -> bool:
        """Same class; or one side untyped and the surface form is already an alias,
        written identically and capitalised (a proper name)."""
        other = self._v_class(s, iri)
        if other == cls:
            return True
        if "Thing" in (cls, other) and any(ch.isupper() for ch in surface):
            return surface in self._v_aliases(s, iri)
        return False

    def _decide(self, surface: str, cls: str, s: _Scratch) -> ResolvedEntity:
        def result(iri: str, rule: str, score: float = 1.0, sscore: float = 1.0) -> ResolvedEntity:
            new = iri not in self._entities
            return ResolvedEntity(iri, "", surface, cls, new, rule in ("person", "embedding"),
                                  "", rule, score, sscore)

        person = _person(surface) if cls == "Person" else None
        # 0. a bare surname belongs to the one person this document names in full with it
        #    ("Colin Hanks … Hanks"), even when it is already an alias of another person
        in_document = None
        if person is not None and len(person.tokens) == 1:
            fits = sorted(i for i in s.people.get(person.tokens[0], set())
                          if self._v_class(s, i) == "Person"
                          and _person_fits(person, self._v_aliases(s, i)))
            in_document = fits[0] if len(fits) == 1 else None

        # 1. exact normalised name
        key = person.key if person is not None and person.tokens else normalise_name(surface)
        found = sorted(i for i in self._v_lookup(self._keys, s.keys, key)
                       if self._compatible(s, surface, cls, i))
        same = [i for i in found if self._v_class(s, i) == cls]
        if in_document is not None:
            return result(in_document, "exact" if in_document in same else "person")
        if len(same) > 1:
            # An alias several entities share ("Hanks" of Tom and of Colin): the one it
            # is the label of, else none (a new entity; no guessing by IRI order).
            same = [i for i in same if key in _keys(self._v_label(s, i))]
            ambiguous = len(same) != 1
        else:
            ambiguous = False
        if same:
            return result(same[0], "exact")
        if found and not ambiguous and len({self._v_class(s, i) for i in found}) == 1:
            return result(found[0], "surface")

        # 2. person rule / embedding neighbours (not for an ambiguous alias)
        if not ambiguous and person is not None and person.tokens:
            if len(person.tokens) >= 2 or s.short_names == "registry":
                pool = self._v_lookup(self._surnames, s.surnames, person.tokens[-1])
                fits = sorted(i for i in pool if self._v_class(s, i) == "Person"
                              and _person_fits(person, self._v_aliases(s, i)))
                # Across documents a bare surname also has to be a word of no other
                # entity's name ("Hamilton": the city, the team …).
                if len(fits) == 1 and (len(person.tokens) >= 2 or self._v_lookup(
                        self._words, s.words, person.tokens[0]) == {fits[0]}):
                    return result(fits[0], "person")
        elif not ambiguous and cls not in _EXACT_ONLY and cls != "Thing":
            # Untyped noun chunks ("the film") merge by exact name only: near-spellings of
            # common nouns are different things far more often than the same one.
            best = self._best_neighbour(surface, cls, s)
            if best is not None:
                cos, sim, iri = best
                return result(iri, "embedding", cos, sim)

        # 3. a new entity, under a free IRI
        label = _canonical(surface)
        iri = self.vocab.entity(label)
        n = 1
        while self._v_exists(s, iri):
            if self._compatible(s, surface, cls, iri) or self._compatible(s, label, cls, iri):
                return result(iri, "iri")
            n += 1
            iri = self.vocab.entity(f"{label} ({cls})" if n == 2 else f"{label} ({cls} {n - 1})")
        return result(iri, "new")

    def _best_neighbour(self, surface: str, cls: str, s: _Scratch) -> tuple[float, float, str] | None:
        """The most similar known entity of the same class whose alias passes the string
        check *and* is close in embedding space.

        Every alias that can pass the string check shares words with ``surface``, so
        candidates come from the word index and only
        the few pairs that pass the cheap string check are embedded (cached) and compared
        exactly. No index lookup, no top-k cut-off: the decision depends on the registry's
        contents only, and names with no lexical neighbour cost no embedding at all."""
        words = [w for w in _tokens(surface) if w]
        if not words:
            return None
        postings = sorted((p for p in (self._v_lookup(self._words, s.words, w) for w in words) if p),
                          key=len)
        if not postings:
            return None
        # Every word of a passing alias nearly matches one of ``surface``'s, usually exactly:
        # the entities sharing any of its uncommon words (or else its rarest one) are the pool.
        pool = set().union(*(p for p in postings if len(p) <= _POOL_WORD_LIMIT)) or postings[0]
        passing: list[tuple[str, str, float]] = []
        for iri in sorted(pool):
            if self._v_class(s, iri) != cls:
                continue
            for alias in sorted(self._v_aliases(s, iri)):
                sim = round(string_similarity(surface, alias), 4)
                if sim >= self.string_similarity:
                    passing.append((iri, alias, sim))
        if not passing:
            return None
        vectors = self.embedder.embed([surface, *(alias for _, alias, _ in passing)])
        scores = vectors[1:] @ vectors[0]
        best: dict[str, tuple[float, float]] = {}
        for (iri, _, sim), score in zip(passing, scores):
            cos = round(float(score), 4)
            if cos >= self.similarity and (cos, sim) > best.get(iri, (-1.0, -1.0)):
                best[iri] = (cos, sim)
        if not best:
            return None
        iri, (cos, sim) = min(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        return cos, sim, iri

    def _note(self, s: _Scratch, r: ResolvedEntity, cls: str) -> None:
        """Make a decision visible to the rest of the call."""
        iri, surface = r.iri, r.alias
        if not self._v_exists(s, iri):
            s.labels[iri] = _canonical(surface)
            s.classes[iri] = cls
            if s.labels[iri] != surface:
                self._note_alias(s, iri, s.labels[iri])
        elif cls != "Thing" and self._v_class(s, iri) == "Thing":
            s.classes[iri] = cls                      # an untyped entity gets its type
        if cls == "Person" and self._v_class(s, iri) == "Person":
            person = _person(surface)
            if len(person.tokens) >= 2:
                s.people.setdefault(person.tokens[-1], set()).add(iri)
        self._note_alias(s, iri, surface)

    def _note_alias(self, s: _Scratch, iri: str, surface: str) -> None:
        if surface in self._v_aliases(s, iri):
            return
        s.aliases.setdefault(iri, set()).add(surface)
        for key in _keys(surface):
            s.keys.setdefault(key, set()).add(iri)
        person = _person(surface)
        if person.tokens:
            s.surnames.setdefault(person.tokens[-1], set()).add(iri)
        for word in _tokens(surface):
            s.words.setdefault(word, set()).add(iri)

    # -- support: register / release / rebuild ----------------------------------------
    def register(self, source_id: str, entities: Iterable[ResolvedEntity]) -> list[str]:
        """Record that ``source_id``'s graph (just committed) holds these entities' triples.

        The source's support becomes exactly these, replacing what it supported before
        (its graph was replaced as a whole). Returns the IRIs no longer supported by any
        source, which leave the registry."""
        facts = {(str(s), _PREDICATES[str(p)], str(o)) for e in entities for s, p, o in e.triples()}
        return self._replace(source_id, facts)

    def release(self, source_id: str) -> list[str]:
        """Drop ``source_id``'s support; returns the IRIs no source supports any more."""
        return self._replace(source_id, set())

    def rebuild(self, rows: Iterable[tuple[str, str, str, str]], stamp: str | None = None) -> None:
        """Forget everything and load ``(source_id, iri, predicate, value)`` rows: the
        rdfs:label, skos:altLabel and rdf:type triples of the source graphs (predicates as
        full IRIs or ``rdfs:label``/``skos:altLabel``/``rdf:type``)."""
        by_source: dict[str, set[tuple[str, str, str]]] = {}
        for source, iri, pred, value in rows:
            code = _PREDICATES.get(str(pred))
            if code is None:
                raise ValueError(f"rebuild rows carry rdfs:label, skos:altLabel or rdf:type, "
                                 f"not {pred!r}")
            by_source.setdefault(str(source), set()).add((str(iri), code, str(value)))
        self.index.remove(np.asarray(sorted(set(self._ids) - self._pending), dtype=np.int64))
        self._facts, self._entities, self._ids, self._pending = {}, {}, {}, set()
        self._keys, self._surnames, self._words = {}, {}, {}
        adds = [(src, f) for src, facts in by_source.items() for f in facts]
        self._apply(adds, [])
        self._persist(adds, [], clear=True)
        if stamp is not None:
            self.stamp = stamp

    def _replace(self, source_id: str, facts: set[tuple[str, str, str]]) -> list[str]:
        old = self._facts.get(source_id, set())
        adds = [(source_id, f) for f in facts - old]
        removes = [(source_id, f) for f in old - facts]
        dropped = self._apply(adds, removes)
        self._persist(adds, removes)
        return dropped

    def _persist(self, adds: list[tuple[str, tuple[str, str, str]]],
                 removes: list[tuple[str, tuple[str, str, str]]], *, clear: bool = False) -> None:
        """Mirror a change of the facts into the attached database (one transaction)."""
        if self._db is None:
            return
        with self._db:
            if clear:
                self._db.execute("DELETE FROM facts")
            self._db.executemany("DELETE FROM facts WHERE source=? AND iri=? AND pred=? AND value=?",
                                 [(src, *f) for src, f in removes])
            self._db.executemany("INSERT OR IGNORE INTO facts VALUES (?,?,?,?)",
                                 [(src, *f) for src, f in adds])

    def _apply(self, adds: list[tuple[str, tuple[str, str, str]]],
               removes: list[tuple[str, tuple[str, str, str]]], *, index: bool = True) -> list[str]:
        before: dict[str, set[str]] = {}
        for source, (iri, pred, value) in removes:
            entity = self._entities[iri]
            before.setdefault(iri, entity.aliases())
            supporters = entity.table(pred)[value]
            supporters.discard(source)
            if not supporters:
                del entity.table(pred)[value]
            self._facts[source].discard((iri, pred, value))
            if not self._facts[source]:
                del self._facts[source]
        for source, (iri, pred, value) in adds:
            entity = self._entities.get(iri)
            if entity is None:
                entity = self._entities[iri] = _Entity()
            before.setdefault(iri, entity.aliases())
            entity.table(pred).setdefault(value, set()).add(source)
            self._facts.setdefault(source, set()).add((iri, pred, value))
        dropped, gone_ids, new_pairs = [], [], []
        for iri in sorted(before):
            entity = self._entities[iri]
            after = entity.aliases()
            old_keys = {k for a in before[iri] for k in _keys(a)}
            new_keys = {k for a in after for k in _keys(a)}
            _move(self._keys, iri, old_keys - new_keys, new_keys - old_keys)
            old_sn = {p.tokens[-1] for p in map(_person, before[iri]) if p.tokens}
            new_sn = {p.tokens[-1] for p in map(_person, after) if p.tokens}
            _move(self._surnames, iri, old_sn - new_sn, new_sn - old_sn)
            old_words = {w for a in before[iri] for w in _tokens(a)}
            new_words = {w for a in after for w in _tokens(a)}
            _move(self._words, iri, old_words - new_words, new_words - old_words)
            for alias in sorted(before[iri] - after):
                gone_ids.append(_alias_id(iri, alias))
                del self._ids[gone_ids[-1]]
            for alias in sorted(after - before[iri]):
                new_pairs.append((iri, alias))
                self._ids[_alias_id(iri, alias)] = (iri, alias)
            if entity.empty():
                del self._entities[iri]
                dropped.append(iri)
        # The label index follows lazily (sync_index): embedding every new name as it
        # arrives would cost more than parsing the documents.
        if index:
            in_index = [i for i in gone_ids if i not in self._pending]
            if in_index:
                self.index.remove(np.asarray(in_index, dtype=np.int64))
                self._index_dirty = True
        self._pending.difference_update(gone_ids)
        self._pending.update(_alias_id(i, a) for i, a in new_pairs)
        return dropped

    # -- the label index: fuzzy lookup of names (question linking) ---------------------
    @property
    def pending(self) -> int:
        """Aliases registered but not yet in the label index."""
        return len(self._pending)

    def sync_index(self) -> int:
        """Embed the aliases added since the last sync (batched, through the cache) into
        the label index; returns how many were added."""
        ids = sorted(i for i in self._pending if i in self._ids)
        self._pending.clear()
        if not ids:
            return 0
        texts = sorted({self._ids[i][1] for i in ids})
        by_text = dict(zip(texts, self.embedder.embed(texts)))
        self.index.add(np.asarray(ids, dtype=np.int64),
                       np.stack([by_text[self._ids[i][1]] for i in ids]))
        self._index_dirty = True
        return len(ids)

    def search_labels(self, texts: Sequence[str], k: int = 5) -> list[list[tuple[float, str, str]]]:
        """For each text, the ``k`` closest known names: ``(cosine, iri, alias)``."""
        self.sync_index()
        if not texts or not len(self.index):
            return [[] for _ in texts]
        scores, ids = self.index.search(self.embedder.embed(list(texts)), min(k, len(self.index)))
        return [[(round(float(sc), 4), *self._ids[int(i)]) for sc, i in zip(row_s, row_i)
                 if i >= 0 and int(i) in self._ids] for row_s, row_i in zip(scores, ids)]

    # -- persistence ---------------------------------------------------------------
    def to_disk(self, path: str | Path) -> None:
        """Save under the folder ``path``: the facts (``facts.sqlite``; once attached there,
        every register/release already wrote its change, so saving costs what changed),
        the label index when it changed, and ``meta.json`` with the stamp, replaced last.
        A crash mid-save leaves a stamp that no longer matches, hence a rebuild."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self._db_path != path / "facts.sqlite":
            self._attach(path / "facts.sqlite", fill=True)
        meta_path = path / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}  # none yet, or unreadable: everything is written afresh
        index_name = meta.get("index") if meta.get("format") == self.FORMAT else None
        if self._index_dirty or not index_name or not (path / index_name).is_file():
            index_name = f"index-{self.stamp or 'x'}-{os.getpid()}-{len(self.index)}.faiss"
            self.index.to_disk(path / index_name)
            self._index_dirty = False
        meta = {"format": self.FORMAT, "stamp": self.stamp, "embedder": self.embedder.name,
                "dim": self.embedder.dim, "index": index_name, "vectors": len(self.index)}
        tmp = path / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(tmp, meta_path)
        for old in path.iterdir():
            if old.name.startswith("index-") and old.name != index_name:
                old.unlink()

    def _attach(self, db_path: Path, *, fill: bool) -> None:
        """Persist the facts in ``db_path`` from now on (writing all of them if ``fill``)."""
        if self._db is not None:
            self._db.close()
        self._db = sqlite3.connect(str(db_path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: no fsync per document
        self._db.execute("CREATE TABLE IF NOT EXISTS facts (source TEXT, iri TEXT, pred TEXT, "
                         "value TEXT, PRIMARY KEY (source, iri, pred, value))")
        self._db_path = db_path
        if fill:
            self._persist([(src, f) for src, facts in self._facts.items() for f in facts], [],
                          clear=True)

    @classmethod
    def from_disk(cls, path: str | Path, vocab: Vocabulary, embedder: Embedder,
                  settings: ResolveSettings | None = None, *,
                  index_type: type = FaissIndex, **kwargs: Any) -> "EntityResolver":
        """Load what :meth:`to_disk` saved. A missing label index, or one for another
        model, is re-made lazily (:meth:`sync_index`)."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != cls.FORMAT:
                raise ValueError(f"format {meta.get('format')}, this kgchat reads {cls.FORMAT}")
            with sqlite3.connect(str(path / "facts.sqlite")) as conn:
                rows = conn.execute("SELECT source, iri, pred, value FROM facts").fetchall()
        except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
            raise StoreError(f"no readable entity cache in {path} ({exc}); rebuild it from "
                             f"the graph with EntityResolver.rebuild()") from exc
        index = None
        if meta.get("embedder") == embedder.name and meta.get("dim") == embedder.dim and meta.get("index"):
            try:
                index = index_type.from_disk(path / meta["index"])
            except StoreError:
                index = None
        resolver = cls(vocab, embedder, None, settings, **kwargs)
        resolver.stamp = str(meta.get("stamp", ""))
        resolver._apply([(src, (iri, pred, value)) for src, iri, pred, value in rows], [], index=False)
        expected = set(resolver._ids)
        if index is not None:
            held = set(index.ids().tolist()) if hasattr(index, "ids") else set()
            stale = sorted(held - expected)
            if stale:
                index.remove(np.asarray(stale, dtype=np.int64))
            resolver.index = index
            resolver._pending = expected - held   # embedded later, by sync_index()
            resolver._index_dirty = bool(stale)
        resolver._attach(path / "facts.sqlite", fill=False)
        return resolver


def _move(table: dict[str, set[str]], iri: str, remove: Iterable[str], add: Iterable[str]) -> None:
    for key in remove:
        holders = table.get(key)
        if holders is not None:
            holders.discard(iri)
            if not holders:
                del table[key]
    for key in add:
        table.setdefault(key, set()).add(iri)


def open_resolver(
    vocab: Vocabulary,
    settings: ResolveSettings,
    path: str | Path,
    *,
    stamp: str,
    rows: Callable[[], Iterable[tuple[str, str, str, str]]],
    embedder: Embedder | None = None,
) -> EntityResolver:
    """The resolver saved under ``path`` when it was saved with ``stamp``; otherwise one
    rebuilt from ``rows()`` (the graph's label/altLabel/type rows) and saved at once.

    Without ``embedder``, the configured sentence-transformers model behind a
    :class:`CachedEmbedder` at ``path/embeddings.sqlite``, so a rebuild embeds only
    labels never seen before. Close the resolver (or use it in ``with``) to close that."""
    path = Path(path)
    if embedder is None:
        embedder = CachedEmbedder.open(
            SentenceTransformerEmbedder(settings.embedding_model, settings.batch_size),
            path / "embeddings.sqlite",
        )
    if (path / "meta.json").is_file():
        try:
            resolver = EntityResolver.from_disk(path, vocab, embedder, settings)
        except StoreError:
            resolver = None  # unreadable or another format: the graph has everything
        if resolver is not None and resolver.stamp == stamp:
            return resolver
    resolver = EntityResolver(vocab, embedder, None, settings)
    resolver.rebuild(rows(), stamp=stamp)
    resolver.to_disk(path)
    return resolver

