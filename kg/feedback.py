"""Users' corrections become triples with provenance; the triples they contradict are
superseded, not deleted.

A :class:`Correction` says that an answer was right or wrong, names the fact(s) it rested
on — the topic entity and relation path (the answer's ``topic_id`` / ``relations``), or the
last-hop triples of its evidence — and, when wrong, gives the right answer.
:func:`apply_correction` writes it as a source of kind ``feedback`` (one named graph per
correction, all-or-nothing like any source): the corrected triple(s), the statement nodes
that end the validity of the contradicted ones and the PROV-O account of who said what,
when, about which question (the RDF is drawn in :mod:`kg.vocab`). Being a new source, the
next learning round sees it as a change: pairs whose answers it changed are re-taught.

:class:`FeedbackQueue` is ``<store>/feedback/feedback.jsonl``: every feedback item as
received, then a line per decision (``applied`` / ``rejected``). Feedback that may not be
applied at once (a service without write access for the sender) waits there for
``kgchat feedback apply ID``.

Which facts a correction replaces, for the right answer ``A`` (one or more names):

- the last hop of the path is what the answer rests on: each of its triples links an
  *anchor* (the node before the answer) to an old answer;
- old answers not in ``A`` have their last-hop triples superseded;
- names in ``A`` not already reached are linked to the anchor (an existing entity of that
  label, else a new entity; a literal of the old answers' datatype when those were
  literals). When the answers hang off several anchors (a multi-hop path through several
  films, say) a new name could belong to any of them: the correction must then name the
  fact (``facts``) instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal as Lit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kg.backends import Triple
from kg.errors import FeedbackError
from kg.graphindex import GraphIndex, load_graph_index, term_text, tokens
from kg.importers import ParsedSource, nt_literal
from kg.state import now_iso
from kg.store import KnowledgeStore
from kg.vocab import PROV, RDF, RDFS, XSD, Vocabulary, name_to_segment

FEEDBACK_URI = "urn:kgchat:feedback:"
_VALUE = re.compile(r"^[-+]?\d[\d.,:/ -]*$")  # a number, year or date: not an entity name
QUEUE_FILE = Path("feedback") / "feedback.jsonl"


class Fact(BaseModel):
    """One triple an answer rested on, as the graph index names its nodes: IRIs, or an
    N-Triples literal for a literal object."""

    model_config = ConfigDict(extra="forbid")
    subject: str
    relation: str
    object: str
    forward: bool = True
    """The answer is the object; False: the subject (the hop was followed backwards)."""

    def triple(self) -> Triple:
        return (_nt(self.subject), f"<{self.relation}>", _nt(self.object))

    def answer_end(self) -> str:
        return self.object if self.forward else self.subject

    def anchor(self) -> str:
        return self.subject if self.forward else self.object


class Correction(BaseModel):
    """A feedback item, as received (and as kept in the queue)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    received_at: str = Field(default_factory=now_iso)
    question: str = ""
    answer: str = ""                       # the answer given
    correct: bool = False
    right_answer: str | None = None
    comment: str | None = None
    session_id: str | None = None
    answer_id: str | None = None
    speaker: str = "user"
    topic: str = ""                        # topic entity IRI (the answer's topic_id)
    relations: list[tuple[str, int]] = []  # [relation IRI, direction] per hop
    facts: list[Fact] = []                 # last-hop triples, when topic/relations are unknown
    via: Lit["feedback", "chat"] = "feedback"  # POST /feedback, or a reply in chat
    statements: list[str] = []
    """For a question nothing answered (no topic or path to correct): the reply as
    sentences stating the fact ("Penny Marshall directed Big."), for the conversation
    extractor to store instead."""

    def identifiable(self) -> bool:
        return bool((self.topic and self.relations) or self.facts)


@dataclass
class Applied:
    """What one correction did to the graph."""

    id: str
    source_id: str
    verdict: str                                   # "wrong" | "right"
    added: list[Triple] = field(default_factory=list)
    superseded: list[Triple] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # labels of the answer set now
    lines: list[str] = field(default_factory=list)    # human-readable, one per change

    def describe(self) -> str:
        return "; ".join(self.lines)


# -- which facts, which change ---------------------------------------------------------------

def _nt(term: str) -> str:
    return term if term.startswith(('"', "<", "_:")) else f"<{term}>"


def path_facts(g: GraphIndex, topic: str, relations: list[tuple[str, int]]) -> list[Fact] | None:
    """Every last-hop triple of ``relations`` walked from ``topic`` on ``g`` (None when the
    topic or a relation is not in the graph)."""
    start = g.node_of(topic)
    rels = [g.relation_of(r) for r, _ in relations]
    if start is None or None in rels or not relations:
        return None
    from kg.paths import follow

    path = tuple((r, int(d)) for r, (_, d) in zip(rels, relations))
    frontier = {start}
    if len(path) > 1:
        frontier, _ = follow(g, start, path[:-1])
    rel, d = path[-1]
    out: list[Fact] = []
    for anchor in sorted(frontier):
        for end in g.adj[anchor].get((rel, d), ()):
            if end == start:
                continue
            s, o = (anchor, end) if d > 0 else (end, anchor)
            out.append(Fact(subject=g.nodes[s], relation=g.relations[rel], object=g.nodes[o], forward=d > 0))
    return out


def _pieces(g: GraphIndex, text: str) -> list[str]:
    """The names in a right answer: the whole text when it is one known label, otherwise
    split at commas, semicolons and "and"."""
    text = text.strip().rstrip(".!").strip()
    if not text or " ".join(tokens(text)) in g.by_label:
        return [text] if text else []
    parts = [p.strip().strip(".") for p in re.split(r"\s*(?:,|;|&|\band\b)\s*", text)]
    return list(dict.fromkeys(p for p in parts if p))


def _term_for(g: GraphIndex, vocab: Vocabulary, name: str, like: list[str]) -> tuple[str, bool]:
    """(graph-index term, whether it is new) for a name in the right answer. ``like`` are
    the old answers' terms: literals beget a literal of the same datatype."""
    literals = [t for t in like if t.startswith('"')]
    if literals and len(literals) == len(like):
        m = re.match(r'^".*"(\^\^<[^>]*>|@[A-Za-z0-9-]+)?$', literals[0], re.S)
        suffix = (m.group(1) or "") if m else ""
        return nt_literal(name) + suffix, False
    nodes = [n for n in g.by_label.get(" ".join(tokens(name)), []) if not g.is_literal(n)]
    if nodes:
        return g.nodes[max(nodes, key=lambda n: (g.degree(n), -n))], False
    return vocab.entity(name), True


@dataclass
class _Plan:
    facts: list[Fact]
    add: list[Triple]
    supersede: list[Triple]
    labels: list[Triple]                 # rdfs:label of entities the correction introduces
    answers: list[str]
    lines: list[str]


def inverse_relations(store: KnowledgeStore) -> dict[str, set[str]]:
    """relation IRI → the relations stating the same fact the other way round
    (``owl:inverseOf`` either way; a symmetric property is its own inverse)."""
    rows = store.query("""SELECT DISTINCT ?p ?q WHERE {
        { ?p owl:inverseOf ?q } UNION { ?q owl:inverseOf ?p } UNION
        { ?p a owl:SymmetricProperty BIND(?p AS ?q) } }""").rows  # type: ignore[union-attr]
    out: dict[str, set[str]] = {}
    for p_, q in rows:
        out.setdefault(str(p_), set()).add(str(q))
    return out


def plan_correction(g: GraphIndex, vocab: Vocabulary, c: Correction,
                    inverses: dict[str, set[str]] | None = None) -> _Plan:
    """What applying ``c`` would add and supersede (nothing is written). ``inverses``
    (:func:`inverse_relations`): a superseded triple's inverse statements are superseded
    with it, or the reasoner would derive it again from them."""
    facts = path_facts(g, c.topic, c.relations) if c.topic and c.relations else None
    if not facts:
        facts = list(c.facts)
    if not facts:
        raise FeedbackError(
            "cannot tell which fact the answer rested on: give the answer's topic and relation "
            "path (topic_id and relations of the /chat answer), its evidence facts, or the "
            "answer_id of a recent answer")

    def label(term: str) -> str:
        n = g.node_of(term)
        return g.labels[n] if n is not None else term_text(_nt(term))

    def rel_label(iri: str) -> str:
        r = g.relation_of(iri)
        return (g.relation_labels[r] if r is not None else iri.rsplit("/", 1)[-1]).replace("_", " ")

    if c.correct:
        add = _with_inverses([f.triple() for f in facts], inverses)
        lines = [f"confirmed {label(f.subject)} — {rel_label(f.relation)} → {label(f.object)}" for f in facts]
        return _Plan(facts, add, [], [], sorted({label(f.answer_end()) for f in facts}), lines)
    if not c.right_answer or not c.right_answer.strip():
        raise FeedbackError("the answer was marked wrong but no right answer was given (right_answer)")
    old_ends = list(dict.fromkeys(f.answer_end() for f in facts))
    names = _pieces(g, c.right_answer)
    terms: dict[str, str] = {}
    labels: list[Triple] = []
    for name in names:
        if _VALUE.match(name) and not any(_VALUE.match(label(e)) for e in old_ends):
            # "When was it released?" read as "written by": the answer does not fit the
            # relation, so the reading (not the fact) was wrong.
            raise FeedbackError(
                f"{name!r} looks like a value, but the answers of {rel_label(facts[0].relation)!r} "
                "are names: the question was probably read as another relation than meant, so "
                "nothing was changed")
        term, new = _term_for(g, vocab, name, old_ends)
        terms.setdefault(term, name)
        if new:
            labels.append((_nt(term), f"<{RDFS.label}>", nt_literal(name)))
    keep = set(terms)
    supersede = [f for f in facts if f.answer_end() not in keep]
    anchors = list(dict.fromkeys((f.anchor(), f.relation, f.forward) for f in facts))
    have = {(f.anchor(), f.relation, f.forward, f.answer_end()) for f in facts}
    missing = [t for t in terms if not any((a, r, d, t) in have for a, r, d in anchors)]
    if missing and len(anchors) > 1:
        raise FeedbackError(
            f"the answer comes through {len(anchors)} different facts, so it is not clear which "
            f"one {', '.join(terms[t] for t in missing)!r} belongs to; correct one fact instead "
            "(facts: subject, relation, object)")

    def name(term: str) -> str:
        return label(term) if g.node_of(term) is not None else terms.get(term, term)

    add: list[Triple] = []
    lines: list[str] = []
    if missing:
        anchor, rel, forward = anchors[0]
        for t in missing:
            s, o = (anchor, t) if forward else (t, anchor)
            add.append((_nt(s), f"<{rel}>", _nt(o)))
            lines.append(f"{name(s)} — {rel_label(rel)} → {name(o)}")
    for f in supersede:
        lines.append(f"no longer {label(f.subject)} — {rel_label(f.relation)} → {label(f.object)}")
    if not add and not supersede:
        raise FeedbackError("the right answer given is what the graph says already; nothing to change")
    return _Plan(facts, _with_inverses(add, inverses), _with_inverses([f.triple() for f in supersede], inverses),
                 labels, [name(t) for t in terms], lines)


def _with_inverses(triples: list[Triple], inverses: dict[str, set[str]] | None) -> list[Triple]:
    """``triples`` and the same facts stated the other way round: a superseded fact is
    superseded in every direction (or the reasoner would derive it again), and a corrected
    one is stated in every direction (so it also makes an earlier inverse valid again)."""
    out = list(triples)
    for s, p, o in triples:
        if not o.startswith('"'):
            out += [(o, f"<{inv}>", s) for inv in sorted((inverses or {}).get(p[1:-1], ()))]
    return list(dict.fromkeys(out))


# -- the RDF ------------------------------------------------------------------------------

def _statement(vocab: Vocabulary, cid: str, role: str, t: Triple) -> str:
    key = "\x1f".join(("feedback", cid, role, *t))
    return f"<{vocab.base}statement/{hashlib.sha256(key.encode()).hexdigest()[:20]}>"


def feedback_uri(cid: str) -> str:
    return FEEDBACK_URI + cid


def correction_triples(vocab: Vocabulary, c: Correction, plan: _Plan, at: str) -> list[Triple]:
    """The feedback source's graph (see :mod:`kg.vocab` for the shape)."""
    a, dt = f"<{RDF.type}>", str(XSD.dateTime)
    msg = f"<{feedback_uri(c.id)}>"
    act = f"<{vocab.FEEDBACK}{c.id}>"
    agent = f"<{vocab.AGENT}{name_to_segment(c.speaker or 'user')}>"
    k = {name: f"<{vocab.KGV[name]}>" for name in (
        "verdict", "question", "answerGiven", "rightAnswer", "session", "topic", "path", "text",
        "start", "end")}
    verdict = "right" if c.correct else "wrong"
    who = c.speaker or "user"
    if c.correct:
        said = f'{who} confirmed the answer to "{c.question}": {c.answer}'
    elif c.answer:
        said = f'{who} corrected the answer to "{c.question}": {c.right_answer} (not {c.answer.rstrip(".")})'
    else:
        said = f'{who} answered "{c.question}": {c.right_answer}'
    out: list[Triple] = [
        (msg, a, f"<{PROV.Entity}>"), (msg, a, f"<{vocab.Feedback}>"),
        (msg, k["verdict"], nt_literal(verdict)),
        (msg, k["text"], nt_literal(said)), (msg, k["start"], nt_literal("0", str(XSD.integer))),
        (msg, k["end"], nt_literal(str(len(said)), str(XSD.integer))),
        (msg, f"<{PROV.wasAttributedTo}>", agent),
        (msg, f"<{PROV.generatedAtTime}>", nt_literal(c.received_at, dt)),
        (agent, a, f"<{PROV.Agent}>"), (agent, f"<{RDFS.label}>", nt_literal(c.speaker or "user")),
        (act, a, f"<{PROV.Activity}>"), (act, a, f"<{vocab.FeedbackApplication}>"),
        (act, f"<{PROV.used}>", msg), (act, f"<{PROV.wasAssociatedWith}>", agent),
        (act, f"<{PROV.endedAtTime}>", nt_literal(at, dt)),
    ]
    if c.question:
        out.append((msg, k["question"], nt_literal(c.question)))
    if c.answer:
        out.append((msg, k["answerGiven"], nt_literal(c.answer)))
    if c.right_answer and not c.correct:
        out.append((msg, k["rightAnswer"], nt_literal(c.right_answer)))
    if c.session_id:
        out.append((msg, k["session"], nt_literal(c.session_id)))
    if c.topic and c.relations:
        out.append((msg, k["topic"], _nt(c.topic)))
        out.append((msg, k["path"], nt_literal(json.dumps([list(r) for r in c.relations]))))
    if c.comment:
        out.append((msg, f"<{RDFS.comment}>", nt_literal(c.comment)))
    old_nodes = [(_statement(vocab, c.id, "old", t), t) for t in plan.supersede]
    new_nodes = [(_statement(vocab, c.id, "new", t), t) for t in plan.add]
    for st, t in new_nodes:
        out += [t, (st, a, f"<{RDF.Statement}>"), (st, a, f"<{vocab.FeedbackStatement}>"),
                (st, f"<{RDF.subject}>", t[0]), (st, f"<{RDF.predicate}>", t[1]), (st, f"<{RDF.object}>", t[2]),
                (st, f"<{PROV.wasDerivedFrom}>", msg), (st, f"<{PROV.wasGeneratedBy}>", act),
                (st, f"<{PROV.generatedAtTime}>", nt_literal(at, dt))]
        out += [(st, f"<{vocab.supersedes}>", old) for old, _ in old_nodes]
    for st, t in old_nodes:
        out += [(st, a, f"<{RDF.Statement}>"), (st, a, f"<{vocab.SupersededStatement}>"),
                (st, f"<{RDF.subject}>", t[0]), (st, f"<{RDF.predicate}>", t[1]), (st, f"<{RDF.object}>", t[2]),
                (st, f"<{PROV.invalidatedAtTime}>", nt_literal(at, dt)),
                (st, f"<{PROV.wasInvalidatedBy}>", act)]
        out += [(st, f"<{vocab.superseded_by}>", new) for new, _ in new_nodes]
    out += plan.labels
    return list(dict.fromkeys(out))


def apply_correction(store: KnowledgeStore, c: Correction, graph: GraphIndex | None = None) -> Applied:
    """Write ``c`` as a feedback source (one transaction) and return what changed.

    The caller refreshes whatever answers from the graph (``QAEngine.reload()``; the
    service's write lock does it on release). Raises :class:`FeedbackError` when the fact
    cannot be identified or nothing would change."""
    g = graph or load_graph_index(store)
    plan = plan_correction(g, store.vocab, c, inverse_relations(store))
    at = now_iso()
    triples = correction_triples(store.vocab, c, plan, at)
    uri = feedback_uri(c.id)
    digest = hashlib.sha256("\n".join(" ".join(t) for t in triples).encode()).hexdigest()
    parsed = ParsedSource(uri, uri, "feedback", f"sha256:{digest}", triples,
                          {"verdict": "right" if c.correct else "wrong", "question": c.question[:200]},
                          digest[:16])
    report = store.write_source(parsed, kind="feedback")
    if plan.supersede and store._reasoning_active():
        # What the superseded triples entailed goes too (they are no longer premises).
        store.reason()
    return Applied(c.id, report.source_id, "right" if c.correct else "wrong", plan.add,
                   plan.supersede, plan.answers, plan.lines)


def corrections(store: KnowledgeStore, source_ids: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(source id, {question, topic, relations, verdict}) of stored corrections that name a
    topic and path, optionally only those of ``source_ids``: what QA pairs are made from."""
    by_graph = {r.graph: r.id for r in store.sources() if r.kind == "feedback"
                and (source_ids is None or r.id in source_ids)}
    if not by_graph:
        return []
    values = " ".join(f"<{g}>" for g in by_graph)
    rows = store.query(f"""SELECT ?g ?q ?topic ?path ?verdict ?t WHERE {{ VALUES ?g {{ {values} }}
        GRAPH ?g {{ ?m a kgv:Feedback ; kgv:question ?q ; kgv:topic ?topic ; kgv:path ?path ;
                   kgv:verdict ?verdict ; prov:generatedAtTime ?t }} }} ORDER BY ?t""").rows  # type: ignore[union-attr]
    out = []
    for graph, q, topic, path, verdict, _t in rows:
        out.append((by_graph[str(graph)], {"question": str(q), "topic": str(topic),
                                           "relations": [tuple(r) for r in json.loads(str(path))],
                                           "verdict": str(verdict)}))
    return out


# -- the queue ---------------------------------------------------------------------------------

@dataclass
class QueueItem:
    correction: Correction
    status: str = "pending"        # pending | applied | rejected | failed
    decided_at: str = ""
    detail: str = ""
    source_id: str = ""


class FeedbackQueue:
    """``<store>/feedback/feedback.jsonl``: feedback items, then decisions, one JSON object
    a line, appended only (a line is written whole under a lock, so a reader never sees
    half of one). A decision line is ``{"decision": status, "id": …, "at": …, …}``."""

    _locks: ClassVar[dict[str, threading.Lock]] = {}  # one per file, shared by instances

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / QUEUE_FILE
        self._lock = self._locks.setdefault(str(self.path), threading.Lock())

    def _append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def add(self, c: Correction, **extra: Any) -> None:
        self._append({**c.model_dump(mode="json"), **extra})

    def decide(self, cid: str, status: str, *, detail: str = "", source_id: str = "") -> None:
        self._append({"decision": status, "id": cid, "at": now_iso(), "detail": detail,
                      "source_id": source_id})

    def _records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash: the rest still counts

    def items(self) -> list[QueueItem]:
        out: dict[str, QueueItem] = {}
        for rec in self._records():
            if "decision" in rec:
                item = out.get(rec.get("id", ""))
                if item is not None:
                    item.status, item.decided_at = rec["decision"], rec.get("at", "")
                    item.detail, item.source_id = rec.get("detail", ""), rec.get("source_id", "")
                continue
            try:
                c = Correction.model_validate(rec)
            except ValidationError:
                continue
            out[c.id] = QueueItem(c)
        return list(out.values())

    def find(self, key: str) -> QueueItem:
        """By id or an id prefix naming exactly one item."""
        items = self.items()
        hits = [i for i in items if i.correction.id == key] or \
            [i for i in items if i.correction.id.startswith(key)]
        if len(hits) != 1:
            raise FeedbackError(f"no feedback item {key!r}" if not hits else
                                f"{key!r} names {len(hits)} feedback items; give more of the id")
        return hits[0]


def apply_queued(store: KnowledgeStore, queue: FeedbackQueue, key: str,
                 graph: GraphIndex | None = None) -> Applied:
    """Apply one pending item of the queue and record the decision."""
    item = queue.find(key)
    if item.status == "applied":
        raise FeedbackError(f"feedback {item.correction.id} was applied already ({item.source_id})")
    if not item.correction.identifiable() and not item.correction.correct:
        raise FeedbackError(
            f"feedback {item.correction.id} names no topic, path or fact (it came without an "
            "answer_id); it cannot become a triple — reject it, or state the fact in chat")
    applied = apply_correction(store, item.correction, graph)
    queue.decide(item.correction.id, "applied", detail=applied.describe(), source_id=applied.source_id)
    return applied


__all__ = ["Correction", "Fact", "Applied", "FeedbackQueue", "QueueItem", "apply_correction",
           "apply_queued", "plan_correction", "path_facts", "corrections", "feedback_uri",
           "FEEDBACK_URI"]
