"""A chat session: conversation context, stated facts and follow-up questions.

A turn is a *question* when it ends with "?" or starts like one ("who", "which", "is", …);
otherwise it is offered to the conversation extractor, and the facts it states are stored
with this turn and speaker as provenance. A question whose only reference is a pronoun
("and who wrote them?") is asked about the previous answer's entities.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from chatbot.answer import Answer, QAEngine
from chatbot.linking import link

_QUESTION_START = re.compile(
    r"^\s*(and\s+|so\s+|then\s+)?(who|whom|whose|what|which|when|where|why|how|is|are|was|were|"
    r"do|does|did|can|could|list|name|tell|show)\b", re.I)
_PRONOUN = re.compile(r"\b(them|they|those|these|it|him|her|its|their)\b", re.I)


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text))


@dataclass
class ChatSession:
    engine: QAEngine
    speaker: str = "user"
    conversation: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    last: Answer | None = None
    turns: int = 0
    _ingestor: object | None = None

    def turn(self, text: str) -> Answer | str:
        """An :class:`Answer` for a question; a short acknowledgement for a statement."""
        self.turns += 1
        if not is_question(text):
            return self._statement(text)
        pronoun = _PRONOUN.search(text)
        if pronoun and self.last and self.last.status == "answered" and not link(self.engine.graph, text):
            answer = self.engine.ask_about(text, self.last.entities, pronoun.group())
        else:
            answer = self.engine.ask(text)
        if answer.status == "answered":
            self.last = answer
        return answer

    def _statement(self, text: str) -> str:
        from kg.ingest import open_ingestor
        from kg.ingest.chat import ingest_turn

        if self._ingestor is None:
            self._ingestor = open_ingestor(self.engine.store, n_process=1)
        result = ingest_turn(self._ingestor, self.conversation, str(self.turns), text,
                             speaker=self.speaker)
        if not result.facts:
            return "Noted (I found no fact to store in that)."
        self.engine.reload()
        said = "; ".join(f"{f.subject.name} — {f.relation} → "
                         f"{getattr(f.object, 'name', None) or f.object.value}" for f in result.facts)
        return f"Learned: {said}."

    def close(self) -> None:
        if self._ingestor is not None:
            self._ingestor.close()
