"""Namespaces, provenance terms and how kgchat mints IRIs.

All kgchat IRIs live under one base (``https://w3id.org/kgchat/`` unless configured):

===========  ====================================  =================================
namespace    example                               what
===========  ====================================  =================================
``ENT``      ``…/entity/Tom_Hanks``                an entity named in a source
``REL``      ``…/relation/directed_by``            a relation named in a source
``GRAPH``    ``…/graph/<source-id>/<version>``     a source's named graph, one per version
``SRC``      ``…/source/<source-id>``              a source (file, URL, conversation)
``KGV``      ``…/vocab#contentHash``               kgchat's own terms
``FEEDBACK`` ``…/feedback/<id>``                   applying one user correction
``AGENT``    ``…/agent/alice``                     who said something (chat, feedback)
===========  ====================================  =================================

Names become IRI segments by replacing whitespace runs with ``_`` and percent-encoding
what an IRI path may not hold, so ``Tom Hanks`` → ``Tom_Hanks``. The mapping is a pure
function of the name: the same name always mints the same IRI, in every file and every
run. ``A B`` and ``A_B`` mint the same IRI on purpose (they are spellings of one name,
as in DBpedia).

Corrections and supersession (:mod:`kg.feedback`, :mod:`kg.validity`)
-----------------------------------------------------------------------

A user's correction is a source of kind ``feedback`` (``urn:kgchat:feedback:<id>``, its own
named graph, described in the provenance graph like any source). Its graph holds the
corrected triple and, as RDF reification (no RDF-star, so every SPARQL 1.1 store can hold
it), a statement node for the new triple and one for each triple it supersedes::

    kg:Forrest_Gump kgr:directed_by kg:Steven_Spielberg .             # the correction

    <urn:kgchat:feedback:ab12> a prov:Entity, kgv:Feedback ;          # the user's message
        kgv:verdict "wrong" ; kgv:question "Who directed Forrest Gump?" ;
        kgv:answerGiven "Robert Zemeckis." ; kgv:rightAnswer "Steven Spielberg" ;
        kgv:session "…" ; kgv:topic kg:Forrest_Gump ; kgv:path "[[…directed_by, 1]]" ;
        kgv:text "…" ; kgv:start 0 ; kgv:end 74 ;                     # cited like a sentence
        prov:wasAttributedTo <…/agent/alice> ; prov:generatedAtTime "…"^^xsd:dateTime .
    <…/feedback/ab12> a prov:Activity, kgv:FeedbackApplication ;     # applying it
        prov:used <urn:kgchat:feedback:ab12> ; prov:wasAssociatedWith <…/agent/alice> ;
        prov:endedAtTime "…"^^xsd:dateTime .
    <…/statement/n…> a rdf:Statement, kgv:FeedbackStatement ;         # the new triple
        rdf:subject kg:Forrest_Gump ; rdf:predicate kgr:directed_by ; rdf:object kg:Steven_Spielberg ;
        prov:wasDerivedFrom <urn:kgchat:feedback:ab12> ; prov:wasGeneratedBy <…/feedback/ab12> ;
        prov:generatedAtTime "…"^^xsd:dateTime ; kgv:supersedes <…/statement/o…> .
    <…/statement/o…> a rdf:Statement, kgv:SupersededStatement ;       # the old one
        rdf:subject kg:Forrest_Gump ; rdf:predicate kgr:directed_by ; rdf:object kg:Robert_Zemeckis ;
        prov:invalidatedAtTime "…"^^xsd:dateTime ; prov:wasInvalidatedBy <…/feedback/ab12> ;
        kgv:supersededBy <…/statement/n…> .

The old triple itself stays where its source put it (nothing is deleted; SPARQL shows it
and, through the statement node, when its validity ended and why). A triple is *superseded*
when a statement node about it carries ``prov:invalidatedAtTime`` later than every
``kgv:FeedbackStatement`` re-asserting it (a later correction can make it valid again);
retrieval, QA pairs and reasoning skip superseded triples (:func:`kg.validity.superseded`).
The supersession lives in the feedback source's graph, so removing that source
(``kgchat sources remove``) undoes the correction completely. A confirmation ("yes, that
is right") has ``kgv:verdict "right"`` and re-asserts the confirmed triples the same way,
without superseding anything.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from urllib.parse import quote

from rdflib import Namespace
from rdflib.namespace import OWL, PROV, RDF, RDFS, SKOS, XSD

__all__ = [
    "DEFAULT_BASE", "Vocabulary", "name_to_segment", "OWL", "PROV", "RDF", "RDFS", "SKOS", "XSD",
]

DEFAULT_BASE = "https://w3id.org/kgchat/"

# Characters allowed unencoded in an IRI path segment (RFC 3987 iunreserved/sub-delims
# minus the ones SPARQL prefixed names and Turtle dislike at a boundary).
_SAFE = "-._~!$&'()*+,;=:@"
_WS = re.compile(r"\s+")


def name_to_segment(name: str) -> str:
    """The IRI path segment for ``name``; deterministic, never empty."""
    text = _WS.sub("_", name.strip())
    if not text:
        raise ValueError("cannot mint an IRI for an empty name")
    return quote(text, safe=_SAFE)


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


class Vocabulary:
    """The IRIs of one kgchat deployment (the base is a setting)."""

    def __init__(self, base: str = DEFAULT_BASE) -> None:
        if not base.endswith(("/", "#")):
            base += "/"
        self.base = base
        self.ENT = Namespace(base + "entity/")
        self.REL = Namespace(base + "relation/")
        self.GRAPH = Namespace(base + "graph/")
        self.SRC = Namespace(base + "source/")
        self.RUN = Namespace(base + "run/")
        self.KGV = Namespace(base + "vocab#")
        # Graphs kgchat manages itself, never owned by a source.
        self.provenance_graph = self.GRAPH["provenance"]
        self.inferred_graph = self.GRAPH["inferred"]
        self.content_hash = self.KGV["contentHash"]
        self.source_format = self.KGV["format"]
        self.triple_count = self.KGV["tripleCount"]
        # Feedback and supersession (see the module docstring).
        self.FEEDBACK = Namespace(base + "feedback/")
        self.AGENT = Namespace(base + "agent/")
        self.Feedback = self.KGV["Feedback"]
        self.FeedbackApplication = self.KGV["FeedbackApplication"]
        self.FeedbackStatement = self.KGV["FeedbackStatement"]
        self.SupersededStatement = self.KGV["SupersededStatement"]
        self.supersedes = self.KGV["supersedes"]
        self.superseded_by = self.KGV["supersededBy"]

    # -- minting ---------------------------------------------------------------
    def entity(self, name: str) -> str:
        return str(self.ENT) + name_to_segment(name)

    def relation(self, name: str) -> str:
        return str(self.REL) + name_to_segment(name)

    def source(self, source_id: str) -> str:
        return str(self.SRC) + source_id

    def source_graph(self, source_id: str, version: str) -> str:
        """A source's named graph for one content version (the hash prefix)."""
        return f"{self.GRAPH}{source_id}/{version}"

    def is_system_graph(self, iri: str) -> bool:
        return iri in (str(self.provenance_graph), str(self.inferred_graph))

    def prefixes(self) -> dict[str, str]:
        """Prefixes every query may use without declaring them."""
        return dict(self._prefixes)

    @cached_property
    def _prefixes(self) -> dict[str, str]:
        return {
            "kg": str(self.ENT), "kgr": str(self.REL), "kgg": str(self.GRAPH),
            "kgs": str(self.SRC), "kgv": str(self.KGV),
            "rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL), "xsd": str(XSD),
            "prov": str(PROV), "skos": str(SKOS),
        }


def source_id_for(uri: str) -> str:
    """A stable, readable id for a source: its file name plus a hash of its full URI."""
    tail = uri.rstrip("/").rsplit("/", 1)[-1] or "source"
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", tail)[:48].strip("-") or "source"
    return f"{tail}-{short_hash(uri, 8)}"
