"""An extracted document as RDF: facts, entity labels and per-fact provenance.

For every fact ``s p o`` the document's graph also holds a reified statement saying which
sentence it came from and how confident the extractor was::

    <…/statement/ab12…> a rdf:Statement ;
        rdf:subject s ; rdf:predicate p ; rdf:object o ;
        prov:wasDerivedFrom <file:///doc.txt#char=120,188> ;
        kgv:confidence "0.82"^^xsd:decimal ; kgv:extractor "spacy" .
    <file:///doc.txt#char=120,188> a kgv:Sentence ; kgv:text "…" ;
        kgv:start 120 ; kgv:end 188 ; kgv:document <file:///doc.txt> .

Sentence IRIs use RFC 5147 ``#char=start,end`` fragments. Conversation facts add
``kgv:turn <…#turn=3>`` whose ``kgv:speaker`` names who said it. Reification (not
RDF-star) keeps every SPARQL 1.1 backend able to store and query it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from kg.backends import Triple
from kg.extract.base import ExtractedTriple, Literal, Mention
from kg.importers import nt_literal
from kg.sources import Document
from kg.vocab import PROV, RDF, RDFS, SKOS, XSD, Vocabulary, name_to_segment


@dataclass(frozen=True)
class EntityRef:
    """What the resolver decided for one mention name."""

    iri: str
    label: str       # the entity's canonical label
    alias: str       # the name as this document wrote it
    type_iri: str    # class IRI ("" when untyped)


def _iri(x: str) -> str:
    return f"<{x}>"


def statement_iri(vocab: Vocabulary, doc_uri: str, triple: Triple, span: tuple[int, int]) -> str:
    key = "\x1f".join((doc_uri, *triple, str(span[0]), str(span[1])))
    return f"{vocab.base}statement/{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def relation_iri(vocab: Vocabulary, t: ExtractedTriple) -> str:
    return t.extras.get("relation_iri") or vocab.relation(t.relation)


def document_triples(
    vocab: Vocabulary,
    doc: Document,
    facts: Iterable[ExtractedTriple],
    entities: dict[str, EntityRef],
) -> list[Triple]:
    """All triples of one document's graph. ``entities`` maps Mention.name → EntityRef;
    facts whose subject or object did not resolve are left out."""
    kgv = vocab.KGV
    out: list[Triple] = []
    seen_entities: set[str] = set()
    seen_relations: set[str] = set()
    seen_sentences: set[tuple[int, int]] = set()
    seen_turns: set[str] = set()
    doc_iri = _iri(doc.uri)

    used: set[str] = set()

    def entity(m: Mention) -> str | None:
        ref = entities.get(m.name)
        if ref is None:
            return None
        used.add(ref.iri)
        return _iri(ref.iri)

    for fact in facts:
        s = entity(fact.subject)
        if isinstance(fact.object, Literal):
            o: str | None = nt_literal(fact.object.value, fact.object.datatype)
        else:
            o = entity(fact.object)
        if s is None or o is None:
            continue
        p_iri = relation_iri(vocab, fact)
        p = _iri(p_iri)
        if p_iri not in seen_relations:
            seen_relations.add(p_iri)
            out.append((p, _iri(str(RDFS.label)), nt_literal(fact.relation)))
        out.append((s, p, o))
        start, end = fact.sentence
        sent = _iri(f"{doc.uri}#char={start},{end}")
        st = _iri(statement_iri(vocab, doc.uri, (s, p, o), fact.sentence))
        out += [
            (st, _iri(str(RDF.type)), _iri(str(RDF.Statement))),
            (st, _iri(str(RDF.subject)), s),
            (st, _iri(str(RDF.predicate)), p),
            (st, _iri(str(RDF.object)), o),
            (st, _iri(str(PROV.wasDerivedFrom)), sent),
            (st, _iri(kgv["confidence"]), nt_literal(f"{fact.confidence:.3f}", str(XSD.decimal))),
            (st, _iri(kgv["extractor"]), nt_literal(fact.extractor)),
        ]
        if fact.relation_phrase:
            out.append((st, _iri(kgv["phrase"]), nt_literal(fact.relation_phrase)))
        if fact.sentence not in seen_sentences:
            seen_sentences.add(fact.sentence)
            integer = str(XSD.integer)
            out += [
                (sent, _iri(str(RDF.type)), _iri(kgv["Sentence"])),
                (sent, _iri(kgv["text"]), nt_literal(doc.text[start:end])),
                (sent, _iri(kgv["start"]), nt_literal(str(start), integer)),
                (sent, _iri(kgv["end"]), nt_literal(str(end), integer)),
                (sent, _iri(kgv["document"]), doc_iri),
            ]
        if fact.turn is not None:
            turn = _iri(f"{doc.uri}#turn={fact.turn}")
            out.append((st, _iri(kgv["turn"]), turn))
            if fact.turn not in seen_turns:
                seen_turns.add(fact.turn)
                speaker = fact.speaker or "unknown"
                agent = _iri(f"{vocab.base}agent/{name_to_segment(speaker)}")
                out += [
                    (turn, _iri(kgv["speaker"]), nt_literal(speaker)),
                    (turn, _iri(str(PROV.wasAttributedTo)), agent),
                    (agent, _iri(str(RDF.type)), _iri(str(PROV.Agent))),
                    (agent, _iri(str(RDFS.label)), nt_literal(speaker)),
                ]
    # Labels, alternative names and types of the entities the facts use; a name resolved
    # to a used entity (e.g. "Earhart" for Amelia Earhart) is kept as skos:altLabel.
    for ref in entities.values():
        if ref.iri not in used:
            continue
        iri = _iri(ref.iri)
        if ref.iri not in seen_entities:
            seen_entities.add(ref.iri)
            out.append((iri, _iri(str(RDFS.label)), nt_literal(ref.label)))
            if ref.type_iri:
                out.append((iri, _iri(str(RDF.type)), _iri(ref.type_iri)))
        if ref.alias and ref.alias != ref.label:
            out.append((iri, _iri(str(SKOS.altLabel)), nt_literal(ref.alias)))
    if out:
        out.append((doc_iri, _iri(str(RDF.type)), _iri(kgv["Conversation" if doc.is_conversation
                                                          else "Document"])))
        if doc.title:
            out.append((doc_iri, _iri(str(RDFS.label)), nt_literal(doc.title)))
    return list(dict.fromkeys(out))
