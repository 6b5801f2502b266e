"""Answering: link → rank relation paths → follow → evidence and sources → generate → ground.

:class:`QAEngine` holds everything that loads once (graph index, scorers, generator) and
turns a plain question into an :class:`Answer`. It never answers from nothing: with no
linked entity or no path that reaches anything it says it does not know; with two entities
sharing the mention's name and no graph context to choose, it asks which one is meant. The
generated text may only name entities that are in the evidence; otherwise the answer falls
back (visibly) to the retrieval's own ranking.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel

from chatbot.generate.base import Generator
from chatbot.generate.prompt import build_prompt, evidence_line, parse_answer
from chatbot.labelindex import LabelIndex, fuzzy_link, load_label_index
from chatbot.linking import Mention, link, mask
from chatbot.textindex import TextIndex, load_text_index
from kg.feedback import FEEDBACK_URI
from kg.graphindex import GraphIndex, load_graph_index, tokens
from kg.paths import PathScorer, Path, ZeroShotScorer, candidate_paths, chain, follow, walk_text
from kg.pathscore import CombinedScorer, LearnedScorer
from kg.store import KnowledgeStore
from kg.vocab import OWL

MAX_ENTITIES = 20
MAX_CHAINS = 3


class Hop(BaseModel):
    subject: str
    relation: str
    object: str
    # The triple itself, as feedback names it: IRIs, or an N-Triples literal for a literal
    # object. ``forward``: the walk went subject → object (False: followed backwards).
    subject_id: str = ""
    relation_id: str = ""
    object_id: str = ""
    forward: bool = True


class Source(BaseModel):
    document: str                 # source URI (file, URL, conversation) or "inferred"
    sentence: str = ""            # the sentence (or passage) text, when there is one
    start: int | None = None
    end: int | None = None
    kind: Literal["fact", "file", "inferred", "passage", "feedback"] = "fact"
    """fact: the sentence an evidence triple was extracted from; file: the imported file
    holding an evidence triple; inferred: the reasoner's; passage: a text chunk found by
    text retrieval (it may hold what the extractor missed); feedback: a user's correction
    or confirmation (``sentence`` says who said what about which question)."""
    title: str = ""


class Answer(BaseModel):
    question: str
    status: Literal["answered", "unknown", "clarify"]
    answer: str                           # the answer sentence (or the question back)
    entities: list[str] = []              # answer entity labels, best first
    evidence: list[list[Hop]] = []        # one chain of hops per shown answer entity
    sources: list[Source] = []
    confidence: float = 0.0
    latency_ms: float = 0.0
    topic: str = ""                       # the linked entity
    path: list[str] = []                  # relation labels of the chosen path ("~" = backwards)
    generator: str = ""                   # who wrote the answer text
    note: str = ""                        # e.g. why the generator was not used
    topic_id: str = ""                    # the linked entity's IRI
    relations: list[tuple[str, int]] = [] # [relation IRI, direction] per hop of ``path``
    unsure: bool = False
    """Confidence fell below ``answer.ask_below`` (or nothing was found) and a chat session
    asked the user back: ``answer`` holds that question; the next message is the reply."""


@dataclass
class _Choice:
    mention: Mention
    node: int
    path: Path
    score: float
    answers: set[int]
    parents: list[dict[int, int]]
    rivals: tuple[float, ...] = ()   # scores of this node's next-best readings (paths)


@dataclass
class QAEngine:
    store: KnowledgeStore
    graph: GraphIndex
    scorer: PathScorer
    generator: Generator | None = None
    clarify_margin: float = 0.05
    max_hops: int = 3
    text: "TextIndex | None" = None       # text retrieval beside the graph
    embedder: object | None = None
    passages: int = 5
    labels: "LabelIndex | None" = None    # fuzzy linking, built on first need
    constrained: bool = True              # decode only lists of the evidence's answers

    # -- the steps ---------------------------------------------------------------------
    def _choices(self, question: str, span: tuple[int, int] | None = None) -> list[_Choice]:
        """Per (mention, node): its best path that reaches something, scored. ``span``
        pins the topic mention (character offsets) instead of linking."""
        mentions = link(self.graph, question)
        if span is not None:
            text = question[span[0]:span[1]]
            nodes = self.graph.by_label.get(" ".join(tokens(text)), [])
            mentions = [Mention(span[0], span[1], text, tuple(nodes), 10.0)] if nodes else []
        out = self._score_mentions(question, mentions)
        if not out and span is None and self.embedder is not None:
            # Nothing links exactly: a misspelt name ("Forest Gump") may still be near one.
            out = self._score_mentions(question, self._fuzzy(question))
        return out

    def _fuzzy(self, question: str) -> list[Mention]:
        if self.labels is None or self.labels.stamp != self.graph.stamp:
            self.labels = load_label_index(self.store.root, self.graph, self.embedder)
        return fuzzy_link(self.graph, self.labels, self.embedder, question)

    def _score_mentions(self, question: str, mentions: list[Mention]) -> list[_Choice]:
        out: list[_Choice] = []
        for m in mentions:
            masked = mask(question, m)
            for node in m.nodes[:5]:
                paths = candidate_paths(self.graph, node, max_hops=self.max_hops)
                if not paths:
                    continue
                scores = self.scorer.score(self.graph, masked, paths)
                # Ties (a question that names no relation) break by relation labels, not
                # by relation ids, which follow the store's internal order: the same graph
                # then gets the same reading on every machine.
                top = np.argsort(-scores)[:26]  # the 20 tried and 6 rivals, with every tie
                pool = np.flatnonzero(scores >= scores[top[-1]])
                order = sorted(pool.tolist(), key=lambda j: (-float(scores[j]), [
                    (self.graph.relation_labels[r], -d) for r, d in paths[j]]))
                for i in order[:20]:
                    answers, parents = follow(self.graph, node, paths[i])
                    if answers:
                        # A label written exactly as in the question beats a case-folded
                        # match ("Wanda Sykes" the actor over the tag "wanda sykes").
                        exact = 0.2 if self.graph.labels[node] == m.text else 0.0
                        bonus = 0.05 * m.score + exact
                        # How clearly the question picks this reading of the entity: the
                        # next-best paths compete for the confidence, unless they reach the
                        # same answers (a relation and its inverse, a KB and a document
                        # saying the same thing agree rather than compete).
                        rivals = tuple(float(scores[j]) + bonus for j in order[:6]
                                       if j != i and (alt := follow(self.graph, node, paths[j])[0])
                                       and set(alt) != set(answers))[:5]
                        out.append(_Choice(m, node, paths[i], float(scores[i]) + bonus,
                                           answers, parents, rivals))
                        break
        out.sort(key=lambda c: -c.score)
        return out

    def ask(self, question: str, *, span: tuple[int, int] | None = None) -> Answer:
        """Answer ``question``; ``span`` (character offsets) marks the topic entity when the
        caller knows it (MetaQA's bracketed questions), otherwise it is linked."""
        t0 = time.perf_counter()
        answer = self._ask(question if span else question.strip(), span)
        if self.text is not None and answer.status != "clarify" and answer.question:
            self._add_passages(answer)
        answer.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
        return answer

    def _ask(self, question: str, span: tuple[int, int] | None = None) -> Answer:
        if not question:
            return Answer(question=question, status="unknown", answer="Please ask a question.")
        choices = self._choices(question, span)
        if not choices:
            return Answer(question=question, status="unknown",
                          answer="I don't know: nothing in the graph matches this question.")
        best = choices[0]
        rivals = [c for c in choices[1:] if c.mention == best.mention and c.node != best.node
                  and best.score - c.score < self.clarify_margin]
        rivals = [c for c in rivals if not self._same(best.node, c.node)]
        if rivals:
            return self._clarify(question, best, rivals)
        g = self.graph
        ranked = sorted(best.answers, key=lambda n: (-g.degree(n), g.labels[n]))[:MAX_ENTITIES]
        chains = [chain(g, best.parents, n) for n in ranked[:MAX_CHAINS]]
        evidence = [self._hops(best.path, c) for c in chains]
        confidence = _confidence([best.score, *best.rivals,
                                  *(c.score for c in choices[1:] if set(c.answers) != set(best.answers))])
        result = Answer(
            question=question, status="answered", answer="", topic=g.labels[best.node],
            entities=[g.labels[n] for n in ranked], evidence=evidence,
            sources=self._sources(chains, best.path),
            confidence=confidence,
            path=[("" if d > 0 else "~") + g.relation_labels[r] for r, d in best.path],
            topic_id=g.nodes[best.node], relations=[(g.relations[r], d) for r, d in best.path],
        )
        self._write(result, [(g.labels[c[-1]], walk_text(g, best.path, c)) for c in chains])
        if " ".join(tokens(best.mention.text)) not in g.by_label:  # linked fuzzily
            read = f'read "{best.mention.text}" as "{result.topic}"'
            result.note = f"{read}; {result.note}" if result.note else read
        return result

    def _add_passages(self, answer: Answer) -> None:
        """The best text chunks for the question, after the graph's own sources.

        Dense similarity ranks the chunks; a chunk whose document title the question names
        or whose document backs the graph evidence is moved up."""
        q = np.asarray(self.embedder.embed([answer.question])[0], dtype=np.float32)
        hits = self.text.search(q, k=50)
        if not hits:
            return
        folded_q = _fold(answer.question)
        cited = {s.document for s in answer.sources}

        def named(title: str, text: str) -> bool:
            t = _fold(title)
            return len(t) >= 4 and f" {t} " in f" {text} "

        scores = {}
        for score, c in hits:
            scores[c] = score + 0.15 * named(c.title, folded_q) + 0.1 * (c.document in cited)
        # Second hop (multi-hop questions rest on a passage the question does not resemble):
        # the question plus the best passage is a new query; passages it finds, and those
        # whose title the best passage names, join the ranking.
        top = max(scores, key=lambda c: scores[c])
        q2 = np.asarray(self.embedder.embed([f"{answer.question} {top.text}"])[0], dtype=np.float32)
        top_text = _fold(top.text)
        for score, c in self.text.search(q2, k=20):
            if c != top:
                scores[c] = max(scores.get(c, -1.0), score + 0.1 * named(c.title, top_text))
        seen: set[str] = set()
        for c in sorted(scores, key=lambda c: -scores[c]):
            if c.document in seen:
                continue
            seen.add(c.document)
            answer.sources.append(Source(document=c.document, title=c.title, sentence=c.text,
                                         start=c.start, end=c.end, kind="passage"))
            if len(seen) >= self.passages:
                break
        if answer.status == "unknown" and answer.sources:
            answer.answer = ("I don't know from the graph: no relation path answers this. "
                             "The passages below may hold the answer.")

    def ask_about(self, question: str, labels: Sequence[str], mention: str) -> Answer:
        """A follow-up ("and who wrote them?") about earlier answer entities: ``mention``
        (the pronoun) is masked, the path is chosen from the first entity and followed from
        all of them."""
        t0 = time.perf_counter()
        g = self.graph
        nodes = [n for lab in labels for n in g.by_label.get(" ".join(tokens(lab)), [])[:1]]
        i = question.find(mention)
        if not nodes or i < 0:
            return self.ask(question)
        m = Mention(i, i + len(mention), mention, tuple(nodes), 1.0)
        paths = candidate_paths(g, nodes[0], max_hops=2)
        scores = self.scorer.score(g, mask(question, m), paths)
        for k in np.argsort(-scores)[:20]:
            found: dict[int, tuple[int, list[dict[int, int]]]] = {}
            for n in nodes:
                answers, parents = follow(g, n, paths[k])
                for a in answers - set(nodes):
                    found.setdefault(a, (n, parents))
            if not found:
                continue
            ranked = sorted(found, key=lambda n: (-g.degree(n), g.labels[n]))[:MAX_ENTITIES]
            chains = [chain(g, found[n][1], n) for n in ranked[:MAX_CHAINS]]
            evidence = [self._hops(paths[k], c) for c in chains]
            result = Answer(question=question, status="answered", answer="", topic=", ".join(labels[:5]),
                            entities=[g.labels[n] for n in ranked], evidence=evidence,
                            sources=self._sources(chains, paths[k]), confidence=0.5,
                            path=[("" if d > 0 else "~") + g.relation_labels[r] for r, d in paths[k]],
                            relations=[(g.relations[r], d) for r, d in paths[k]])
            self._write(result, [(g.labels[c[-1]], walk_text(g, paths[k], c)) for c in chains])
            result.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
            return result
        return Answer(question=question, status="unknown",
                      answer="I don't know: the graph has nothing more about those.")

    def reload(self) -> None:
        """Pick up graph changes (after a stated fact was stored): the graph index and, when
        text retrieval is on, the passage index (only new chunks are embedded)."""
        self.graph = load_graph_index(self.store)
        if self.text is not None:
            self.text = load_text_index(self.store, self.embedder, self.graph.stamp)

    def _hops(self, path: Path, nodes: list[int]) -> list[Hop]:
        g = self.graph
        hops = []
        for (rel, d), a, b in zip(path, nodes, nodes[1:]):
            s, o = (a, b) if d > 0 else (b, a)
            hops.append(Hop(subject=g.labels[s], relation=g.relation_labels[rel], object=g.labels[o],
                            subject_id=g.nodes[s], relation_id=g.relations[rel], object_id=g.nodes[o],
                            forward=d > 0))
        return hops

    def _same(self, a: int, b: int) -> bool:
        """owl:sameAs-linked nodes are one entity, not an ambiguity to ask about."""
        g = self.graph
        same = [i for i, iri in enumerate(g.relations) if iri == str(OWL.sameAs)]
        return any(b in g.adj[a].get((r, d), ()) for r in same for d in (1, -1))

    def _clarify(self, question: str, best: _Choice, rivals: list[_Choice]) -> Answer:
        g = self.graph
        options = [best, *rivals][:4]
        described = [f"{g.labels[c.node]} ({self._describe(c.node)})" for c in options]
        text = (f'"{best.mention.text}" could mean several things in the graph: '
                + "; ".join(described) + ". Which one do you mean?")
        return Answer(question=question, status="clarify", answer=text,
                      entities=[g.labels[c.node] for c in options], topic=best.mention.text)

    def _describe(self, node: int) -> str:
        g = self.graph
        for (rel, d), others in sorted(g.adj[node].items(), key=lambda kv: -len(kv[1])):
            label = g.relation_labels[rel].replace("_", " ")
            return f"{label} {g.labels[others[0]]}" if d > 0 else f"{g.labels[others[0]]} {label} it"
        return g.nodes[node]

    def _write(self, result: Answer, shown: list[tuple[str, str]]) -> None:
        """The answer sentence: generated from the evidence when a trained generator is
        there and names only evidence entities; composed from the retrieval otherwise.

        ``shown`` holds ``(answer label, walk)`` per evidence line. With
        ``answer.constrained`` decoding can only name those answers; the generator still
        chooses which, in which order."""
        composed = _compose(result.entities)
        gen = self.generator
        if gen is None:
            result.answer, result.generator = composed, "retrieval"
            result.note = "no generator loaded: answer composed from the retrieved graph paths"
            return
        if not gen.trained:
            result.answer, result.generator = composed, "retrieval"
            result.note = ("the default generator is untrained (run `kgchat train`): "
                           "answer composed from the retrieved graph paths")
            return
        prompt = build_prompt(result.question, [evidence_line(a, w) for a, w in shown])
        choices = [a for a, _ in shown] if self.constrained else None
        text = gen.generate(prompt, choices=choices)
        # Only the retrieval's answer entities may be named: the evidence also holds the
        # topic and intermediate nodes, which are never the answer.
        allowed = {_fold(e): e for e in result.entities}
        named = parse_answer(text)
        grounded = [allowed[_fold(n)] for n in named if _fold(n) in allowed]
        if named and len(grounded) == len(named):
            rest = [e for e in result.entities if e not in grounded]
            result.entities = grounded + rest
            result.answer, result.generator = _compose(result.entities), gen.name
        else:
            result.answer, result.generator = composed, "retrieval"
            result.note = (f"the generator's answer ({text.strip()[:80]!r}) named something that is "
                           "not among the retrieved answers, so the retrieval's answer is shown instead")

    def _sources(self, chains: list[list[int]], path: Path) -> list[Source]:
        """Where each evidence fact is stated: the sentence for extracted facts, the
        source file for imported ones, "inferred" for the reasoner's."""
        g = self.graph
        values = []
        for nodes in chains:
            for (rel, d), a, b in zip(path, nodes, nodes[1:]):
                s, o = (a, b) if d > 0 else (b, a)
                obj = g.nodes[o] if g.is_literal(o) else f"<{g.nodes[o]}>"
                values.append(f"(<{g.nodes[s]}> <{g.relations[rel]}> {obj})")
        if not values:
            return []
        v = self.store.vocab
        rows = " ".join(dict.fromkeys(values))
        # Two small queries: an OPTIONAL over the reified statements made Oxigraph scan
        # every statement of the graph (≈ 200 ms on a 1k-document store).
        graphs = f"""SELECT DISTINCT ?g ?src WHERE {{ VALUES (?s ?p ?o) {{ {rows} }}
          GRAPH ?g {{ ?s ?p ?o }}
          OPTIONAL {{ GRAPH <{v.provenance_graph}> {{ ?g prov:wasDerivedFrom ?src }} }} }} LIMIT 50"""
        sentences = f"""SELECT DISTINCT ?g ?text ?start ?end WHERE {{ VALUES (?s ?p ?o) {{ {rows} }}
          GRAPH ?g {{ ?st rdf:subject ?s . ?st rdf:predicate ?p . ?st rdf:object ?o .
                      ?st prov:wasDerivedFrom ?sent . ?sent kgv:text ?text ;
                      kgv:start ?start ; kgv:end ?end }} }} LIMIT 50"""
        said: dict[str, list[tuple[str, int, int]]] = {}
        for graph, stext, start, end in self.store.query(sentences).rows:
            said.setdefault(str(graph), []).append((str(stext), int(start), int(end)))
        out: dict[tuple, Source] = {}
        for graph, src in ((str(a), None if b is None else str(b)) for a, b in self.store.query(graphs).rows):
            if graph == str(v.inferred_graph):
                out.setdefault(("inferred", ""), Source(document="inferred by reasoning", kind="inferred"))
                continue
            doc = src or graph
            kind = "feedback" if doc.startswith(FEEDBACK_URI) else "fact"
            for stext, start, end in said.get(graph, []):
                out.setdefault((doc, stext), Source(document=doc, sentence=stext, kind=kind,
                                                    start=start, end=end))
            if graph not in said:
                out.setdefault((doc, ""), Source(document=doc, kind="file"))
        return sorted(out.values(), key=lambda s: (not s.sentence, s.document))


def _fold(label: str) -> str:
    """Case, accents and spacing folded: the default model's vocabulary is uncased and
    accent-free, so "Gérard" comes back as "gerard"."""
    text = unicodedata.normalize("NFKD", label.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.findall(r"[^\W_]+", text))


def compose(entities: list[str]) -> str:
    """The answer sentence for a list of answer labels ("A, B and C.")."""
    return _compose(entities)


def _compose(entities: list[str]) -> str:
    if not entities:
        return "I don't know."
    if len(entities) == 1:
        return entities[0] if entities[0].endswith(".") else f"{entities[0]}."
    shown = entities[:8]
    more = len(entities) - len(shown)
    text = ", ".join(shown[:-1]) + (f", {shown[-1]}" if more else f" and {shown[-1]}")
    return text + (f" and {more} more." if more else "" if text.endswith(".") else ".")


def _confidence(scores: list[float]) -> float:
    """Softmax weight of the chosen reading (first) among the alternatives considered: the
    topic's next-best relation paths and the other entities' best ones."""
    s = np.array(scores[:12], dtype=np.float64)
    p = np.exp((s - s.max()) * 10)
    return round(float(p[0] / p.sum()), 3)


def models_dir(store: KnowledgeStore) -> "FsPath":
    return store.root / "models"


def open_engine(store: KnowledgeStore, *, generator: str | None = None,
                embedder: object | None = None) -> QAEngine:
    """Load what answering needs once: the graph index (rebuilt if stale), the learned path
    scorer when `kgchat train` made one (the zero-shot scorer otherwise) and the generator:
    ``generator`` (a local path or cached hub id), else the store's trained default."""
    from chatbot.generate.hf import TransformersGenerator
    from chatbot.generate.registry import ModelRegistry
    from kg.resolve import SentenceTransformerEmbedder

    graph = load_graph_index(store)
    cfg = store.settings.answer
    embedder = embedder or SentenceTransformerEmbedder(store.settings.resolve.embedding_model)
    scorer: PathScorer = ZeroShotScorer(embedder)
    learned = (LearnedScorer.from_disk(models_dir(store) / "scorer", embedder)
               if cfg.scorer == "learned" else None)
    if learned is not None:
        scorer = CombinedScorer(scorer, learned)
    gen = None
    default = ModelRegistry(models_dir(store) / "generator").current_path()
    name = generator or cfg.generator
    if name:
        gen = TransformersGenerator.load(name)
    elif default is not None:
        gen = TransformersGenerator.load(default)
    text = load_text_index(store, embedder, graph.stamp) if cfg.passages else None
    return QAEngine(store=store, graph=graph, scorer=scorer, generator=gen,
                    clarify_margin=cfg.clarify_margin, max_hops=cfg.max_hops, constrained=cfg.constrained,
                    text=text, embedder=embedder, passages=cfg.passages)
