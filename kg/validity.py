"""Which asserted triples are no longer valid: superseded by a user's correction.

The modelling is drawn in :mod:`kg.vocab`: a statement node (``rdf:subject`` /
``rdf:predicate`` / ``rdf:object``) with ``prov:invalidatedAtTime`` ends a triple's
validity; a ``kgv:FeedbackStatement`` about the same triple generated later makes it valid
again. The triple itself is never deleted — SPARQL sees it with its validity — but
retrieval (:class:`kg.graphindex.GraphIndex`), QA pairs built on it and reasoning
(:mod:`kg.reason`) leave superseded triples out.
"""

from __future__ import annotations

from kg.backends import GraphBackend, Triple
from kg.vocab import PROV, RDF, Vocabulary

_PARTS = {f"<{RDF.subject}>": 0, f"<{RDF.predicate}>": 1, f"<{RDF.object}>": 2}


def _time(term: str) -> str:
    """The lexical form of an xsd:dateTime literal (ISO 8601 in UTC compares as text)."""
    return term[1:term.index('"', 1)] if term.startswith('"') else term


def superseded(backend: GraphBackend, vocab: Vocabulary) -> set[Triple]:
    """The triples (N-Triples terms) whose validity has ended and not begun again.

    One pattern read when nothing was ever superseded (the common case), so every graph
    index build and reasoning run can afford to ask."""
    ended: dict[str, str] = {}
    for st, _p, t, _g in backend.read_triples(predicate=str(PROV.invalidatedAtTime)):
        ended[st] = max(ended.get(st, ""), _time(t))
    if not ended:
        return set()
    restated = {st for st, *_ in backend.read_triples(predicate=str(RDF.type),
                                                      obj=f"<{vocab.FeedbackStatement}>")}
    parts: dict[str, list[str | None]] = {}
    stated_at: dict[str, str] = {}
    generated = f"<{PROV.generatedAtTime}>"
    for s, p, o, _g in backend.read_touching([*ended, *restated]):
        if s not in ended and s not in restated:
            continue
        if p in _PARTS:
            parts.setdefault(s, [None, None, None])[_PARTS[p]] = o
        elif p == generated and s in restated:
            stated_at[s] = max(stated_at.get(s, ""), _time(o))
    invalid: dict[Triple, str] = {}
    valid: dict[Triple, str] = {}
    for st, spo in parts.items():
        if None in spo:
            continue
        triple = (spo[0], spo[1], spo[2])
        if st in ended:
            invalid[triple] = max(invalid.get(triple, ""), ended[st])
        if st in restated:
            valid[triple] = max(valid.get(triple, ""), stated_at.get(st, ""))
    return {t for t, when in invalid.items() if when > valid.get(t, "")}
