"""A chat session: conversation context, stated facts, follow-up questions, and asking back.

A turn is a *question* when it ends with "?" or starts like one ("who", "which", "is", …);
otherwise it is offered to the conversation extractor, and the facts it states are stored
with this turn and speaker as provenance. A question whose only reference is a pronoun
("and who wrote them?") is asked about the previous answer's entities.

Active learning: when an answer's confidence is below ``answer.ask_below`` (or nothing
answers at all) the session says so and asks — "I'm not sure — is it X? If not, what is
it?" — and takes the next message that is not a question as the reply: "yes" confirms,
"no, it's Y" / "Y" corrects. Either becomes a :class:`kg.feedback.Correction` (a feedback
source with provenance, so the next learning round teaches it). Here a correction is
applied to the store at once (the person at `kgchat chat` owns it); the service decides for
itself (:func:`chatbot.server.chat.converse`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from chatbot.answer import Answer, QAEngine, _fold, compose
from chatbot.linking import link
from kg.errors import FeedbackError
from kg.feedback import Correction, Fact, FeedbackQueue, apply_correction

_QUESTION_START = re.compile(
    r"^\s*(and\s+|so\s+|then\s+)?(who|whom|whose|what|which|when|where|why|how|is|are|was|were|"
    r"do|does|did|can|could|list|name|tell|show)\b", re.I)
_PRONOUN = re.compile(r"\b(them|they|those|these|it|him|her|its|their)\b", re.I)
_YES = re.compile(r"^\s*(yes|yeah|yep|yup|correct|right|exactly|true|sure|indeed|"
                  r"that'?s (right|correct|it))\b[\s,.!]*", re.I)
_NO = re.compile(r"^\s*(no|nope|nah|wrong|incorrect|false|not really|not quite)\b[\s,.!;:-]*", re.I)
_LEAD = re.compile(r"^\s*(it'?s|it is|it was|the (right |correct )?answers? (is|are)|actually|"
                   r"rather|i think|that would be|that'?s|they are|they'?re)\b[\s,:]*", re.I)
_NEVER_MIND = re.compile(r"^\s*(never ?mind|skip|forget it|i don'?t know|no idea|dunno|"
                         r"not sure)\s*[.!]*\s*$", re.I)


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text))


_SUBJECT_QUESTION = re.compile(r"^\s*(who|what)\s+(?!(do|does|did|is it|was it)\b)(.+?)[\s?]*$", re.I)


def declarative(question: str, answer: str) -> str:
    """The question with its answer put in ("Who directed Big?" + "Penny Marshall" →
    "Penny Marshall directed Big."), for who/what questions about the subject; "" otherwise."""
    m = _SUBJECT_QUESTION.match(question)
    return f"{answer} {m.group(3)}." if m and answer and len(answer.split()) <= 8 else ""


def answer_facts(answer: Answer) -> list[Fact]:
    """The last hop of each evidence chain: the triples the shown answers rest on."""
    out = []
    for chain in answer.evidence:
        if chain and chain[-1].subject_id and chain[-1].relation_id and chain[-1].object_id:
            h = chain[-1]
            out.append(Fact(subject=h.subject_id, relation=h.relation_id, object=h.object_id,
                            forward=h.forward))
    return out


def answer_given(answer: Answer) -> str:
    """What the bot answered (an unsure answer's text is the question back)."""
    return compose(answer.entities) if answer.unsure and answer.entities else answer.answer


@dataclass
class ChatSession:
    engine: QAEngine
    speaker: str = "user"
    conversation: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    last: Answer | None = None
    turns: int = 0
    ingestor: object | None = None
    """Where stated facts go: a shared ingestor (the server's), or None to open one on
    the first statement; only one opened here is closed by :meth:`close`."""
    _owns_ingestor: bool = False
    ask_below: float | None = None
    """Confidence below which an answer is asked back (None: ``answer.ask_below``)."""
    pending: Answer | None = None
    """The answer the session asked the user about; the next non-question is the reply."""

    def turn(self, text: str) -> Answer | str:
        """An :class:`Answer` for a question; a short acknowledgement for a statement or
        for the reply to a question the session asked."""
        self.turns += 1
        if self.awaiting(text):
            reply = self.take_reply(text)
            return reply if isinstance(reply, str) else self.learn(reply)
        self.pending = None
        if not is_question(text):
            return self._statement(text)
        return self.ask(text)

    def ask(self, text: str) -> Answer:
        """Answer a question (a follow-up about the last answer when it only says "them"),
        asking back when unsure."""
        self.pending = None
        pronoun = _PRONOUN.search(text)
        if pronoun and self.last and self.last.status == "answered" and not link(self.engine.graph, text):
            answer = self.engine.ask_about(text, self.last.entities, pronoun.group())
        else:
            answer = self.engine.ask(text)
        if answer.status == "answered":
            self.last = answer
        self._maybe_ask_back(answer)
        return answer

    # -- asking back ---------------------------------------------------------------------
    def _threshold(self) -> float:
        if self.ask_below is not None:
            return self.ask_below
        return self.engine.store.settings.answer.ask_below

    def _maybe_ask_back(self, answer: Answer) -> None:
        threshold = self._threshold()
        if threshold <= 0 or not answer.question:
            return
        if answer.status == "answered" and answer.confidence < threshold and answer.topic_id:
            shown = compose(answer.entities).rstrip(".")
            reading = answer.topic + "".join(
                f" → {p.replace('_', ' ')}" if not p.startswith("~") else f" ← {p[1:].replace('_', ' ')}"
                for p in answer.path)
            answer.answer = (f"I'm not sure — is it {shown}? (I read the question as {reading}.) "
                             "If not, what is it?")
        elif answer.status == "unknown":
            answer.answer += " Do you know the answer? Tell me and I'll pass it on."
        else:
            return
        answer.unsure = True
        self.pending = answer

    def awaiting(self, text: str) -> bool:
        """Whether ``text`` is taken as the reply to the question the session asked."""
        return self.pending is not None and not is_question(text)

    def take_reply(self, text: str) -> Correction | str:
        """The reply to the pending question as a correction to learn, or a short answer
        (asking again when it said "no" and nothing else; dropping the matter when it said
        "never mind")."""
        asked = self.pending
        assert asked is not None
        if _NEVER_MIND.match(text):
            self.pending = None
            return "All right, never mind."
        given = answer_given(asked)
        yes, no = _YES.match(text), _NO.match(text)
        rest = text[(yes or no).end():] if (yes or no) else text
        while (lead := _LEAD.match(rest)) and lead.end():
            rest = rest[lead.end():]
        rest = rest.strip().rstrip(".!").strip()
        confirmed = (yes and not rest) or (asked.status == "answered" and rest and _fold(rest) == _fold(given))
        if confirmed and asked.status != "answered":
            return "What is it, then?"
        if not confirmed and not rest:
            return "What is it, then?"  # "no" alone: the question stays open
        self.pending = None
        statements: list[str] = []
        if asked.status != "answered":  # nothing to correct: the reply states the fact
            statements = list(dict.fromkeys(s for s in (text.strip(), declarative(asked.question, rest)) if s))
        return Correction(
            question=asked.question, answer=given if asked.status == "answered" else "",
            correct=bool(confirmed), right_answer=None if confirmed else rest,
            session_id=self.conversation, speaker=self.speaker, topic=asked.topic_id,
            relations=list(asked.relations), facts=answer_facts(asked), via="chat",
            statements=statements)

    def learn(self, correction: Correction) -> str:
        """Apply a correction to the store at once (the CLI's way) and say what changed. An
        answer to a question nothing answered is stored as a stated fact when the extractor
        finds one in it; otherwise it is kept in the feedback queue for review."""
        store = self.engine.store
        queue = FeedbackQueue(store.root)
        if not correction.identifiable():
            queue.add(correction)
            said = self.learn_statements(correction)
            if said:
                queue.decide(correction.id, "applied", detail=said)
                return said
            return ("Thanks — noted. I could not tie that to a fact in the graph, so it waits "
                    f"for review (`kgchat feedback list`, id {correction.id[:8]}).")
        try:
            applied = apply_correction(store, correction, self.engine.graph)
        except FeedbackError as exc:
            queue.add(correction)
            queue.decide(correction.id, "failed", detail=str(exc))
            return f"Thanks, but I could not learn that: {exc}"
        queue.add(correction)
        queue.decide(correction.id, "applied", detail=applied.describe(), source_id=applied.source_id)
        self.engine.reload()
        return f"Thanks — learned: {applied.describe()}."

    def learn_statements(self, correction: Correction) -> str | None:
        """Store the first of the correction's sentences that states a fact (as a chat
        turn of this session); None when none does."""
        for text in correction.statements:
            said = self._statement(text)
            if said.startswith("Learned"):
                return said
        return None

    # -- statements ------------------------------------------------------------------------
    def _statement(self, text: str) -> str:
        from kg.ingest import open_ingestor
        from kg.ingest.chat import ingest_turn

        if self.ingestor is None:
            self.ingestor = open_ingestor(self.engine.store, n_process=1)
            self._owns_ingestor = True
        result = ingest_turn(self.ingestor, self.conversation, str(self.turns), text,
                             speaker=self.speaker)
        if not result.facts:
            return "Noted (I found no fact to store in that)."
        self.engine.reload()
        said = "; ".join(f"{f.subject.name} — {f.relation} → "
                         f"{getattr(f.object, 'name', None) or f.object.value}" for f in result.facts)
        return f"Learned: {said}."

    def close(self) -> None:
        if self._owns_ingestor and self.ingestor is not None:
            self.ingestor.close()
            self.ingestor, self._owns_ingestor = None, False
