"""An extracted document as RDF: facts, entity labels and per-fact provenance.

For every fact ``s p o`` the document's graph also holds a reified statement saying which
sentence it came from and how confident the extractor was::

    <…/statement/ab12…> a rdf:Statement ;
        rdf:subject s ; rdf:predicate p ; rdf:object o ;
        prov:wasDerivedFrom <file:///doc.txt#char=120,188> ;
        kgv:confidence "0.82"^^xsd:decimal ; kgv:phrase "was born in" .
    <file:///doc.txt#char=120,188> a kgv:Sentence ; kgv:text "…" ;
        kgv:start 120 ; kgv:end 188 ; kgv:document <file:///doc.txt> .
    <file:///doc.txt> a kgv:Document ; kgv:extractor "spacy" .

Every paragraph is also kept as a ``kgv:Chunk`` (same shape as a sentence node) so text
retrieval can find what the extractor missed (:mod:`kg.ingest.chunks`). Sentence IRIs use RFC 5147 ``#char=start,end`` fragments. Conversation facts add
``kgv:turn <…#turn=3>`` whose ``kgv:speaker`` names who said it (and
``prov:wasAttributedTo`` an agent). Reification (not RDF-star) keeps every SPARQL 1.1
backend able to store and query it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from kg.backends import Triple
from kg.extract.base import ExtractedTriple, Literal, Mention
from kg.importers import nt_literal
from kg.ingest.chunks import chunk_spans
from kg.sources import Document
from kg.vocab import PROV, RDF, RDFS, SKOS, XSD, Vocabulary, name_to_segment


@dataclass(frozen=True)
class EntityRef:
    """What the resolver decided for one mention name."""

    iri: str
    label: str       # the entity's canonical label
    alias: str       # the name as this document wrote it
    type_iri: str    # class IRI ("" when untyped)


def _iri(x: object) -> str:
    return f"<{x}>"


# Terms used for every fact, as N-Triples strings once.
A, LABEL, ALT = _iri(RDF.type), _iri(RDFS.label), _iri(SKOS.altLabel)
STATEMENT, SUBJ, PRED, OBJ = _iri(RDF.Statement), _iri(RDF.subject), _iri(RDF.predicate), _iri(RDF.object)
DERIVED, ATTRIBUTED, AGENT = _iri(PROV.wasDerivedFrom), _iri(PROV.wasAttributedTo), _iri(PROV.Agent)
DECIMAL, INTEGER = str(XSD.decimal), str(XSD.integer)


def fragment_iri(doc_uri: str, fragment: str) -> str:
    """``<doc>#char=…`` / ``#turn=…``; a document URI that already has a fragment keeps it
    percent-encoded, since an IRI may hold only one ``#``."""
    return f"{doc_uri.replace('#', '%23')}#{fragment}"


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
    k = {name: _iri(vocab.KGV[name]) for name in (
        "confidence", "phrase", "Sentence", "Chunk", "text", "start", "end", "document", "turn",
        "speaker", "extractor", "Conversation", "Document")}
    out: list[Triple] = []
    relations: set[str] = set()
    sentences: set[tuple[int, int]] = set()
    turns: set[str] = set()
    extractors: set[str] = set()
    used: set[str] = set()
    doc_iri = _iri(doc.uri)

    def entity(m: Mention) -> str | None:
        ref = entities.get(m.name)
        if ref is None:
            return None
        used.add(ref.iri)
        return _iri(ref.iri)

    for fact in facts:
        s = entity(fact.subject)
        o = (nt_literal(fact.object.value, fact.object.datatype) if isinstance(fact.object, Literal)
             else entity(fact.object))
        if s is None or o is None:
            continue
        p_iri = relation_iri(vocab, fact)
        p = _iri(p_iri)
        if p_iri not in relations:
            relations.add(p_iri)
            out.append((p, LABEL, nt_literal(fact.relation)))
        extractors.add(fact.extractor)
        start, end = fact.sentence
        sent = _iri(fragment_iri(doc.uri, f"char={start},{end}"))
        st = _iri(statement_iri(vocab, doc.uri, (s, p, o), fact.sentence))
        out += [(s, p, o), (st, A, STATEMENT), (st, SUBJ, s), (st, PRED, p), (st, OBJ, o),
                (st, DERIVED, sent), (st, k["confidence"], nt_literal(f"{fact.confidence:.3f}", DECIMAL))]
        if fact.relation_phrase:
            out.append((st, k["phrase"], nt_literal(fact.relation_phrase)))
        if fact.sentence not in sentences:
            sentences.add(fact.sentence)
            out += [(sent, A, k["Sentence"]), (sent, k["text"], nt_literal(doc.text[start:end])),
                    (sent, k["start"], nt_literal(str(start), INTEGER)),
                    (sent, k["end"], nt_literal(str(end), INTEGER)), (sent, k["document"], doc_iri)]
        if fact.turn is not None:
            turn = _iri(fragment_iri(doc.uri, f"turn={fact.turn}"))
            out.append((st, k["turn"], turn))
            if fact.turn not in turns:
                turns.add(fact.turn)
                speaker = fact.speaker or "unknown"
                agent = _iri(f"{vocab.base}agent/{name_to_segment(speaker)}")
                out += [(turn, k["speaker"], nt_literal(speaker)), (turn, ATTRIBUTED, agent),
                        (agent, A, AGENT), (agent, LABEL, nt_literal(speaker))]

    # Labels, alternative names and types of the entities the facts use; a name resolved
    # to a used entity (e.g. "Earhart" for Amelia Earhart) is kept as skos:altLabel.
    described: set[str] = set()
    for ref in entities.values():
        if ref.iri not in used:
            continue
        iri = _iri(ref.iri)
        if ref.iri not in described:
            described.add(ref.iri)
            out.append((iri, LABEL, nt_literal(ref.label)))
            if ref.type_iri:
                out.append((iri, A, _iri(ref.type_iri)))
        if ref.alias and ref.alias != ref.label:
            out.append((iri, ALT, nt_literal(ref.alias)))
    # Every paragraph, for text retrieval (kg.ingest.chunks); not for assistant turns.
    said = {(t.start, t.end) for t in doc.turns if t.role != "user"}
    for start, end in chunk_spans(doc):
        if (start, end) in said:
            continue
        chunk = _iri(fragment_iri(doc.uri, f"char={start},{end}"))
        out += [(chunk, A, k["Chunk"]), (chunk, k["text"], nt_literal(doc.text[start:end])),
                (chunk, k["start"], nt_literal(str(start), INTEGER)),
                (chunk, k["end"], nt_literal(str(end), INTEGER)), (chunk, k["document"], doc_iri)]
    if out:
        out.append((doc_iri, A, k["Conversation" if doc.is_conversation else "Document"]))
        out += [(doc_iri, k["extractor"], nt_literal(name)) for name in sorted(extractors)]
        if doc.title:
            out.append((doc_iri, LABEL, nt_literal(doc.title)))
    return list(dict.fromkeys(out))
