"""What every extractor produces and the protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

from kg.sources import Document


@dataclass(frozen=True)
class Mention:
    """A span of the document naming an entity (or holding a literal value)."""

    text: str          # the surface form as written ("Dana", "the platform team")
    start: int         # character offsets into Document.text
    end: int
    type: str = ""     # spaCy NER label (PERSON, ORG, GPE, DATE, …) or "" for noun chunks
    canonical: str = ""  # the name this mention stands for after in-document coreference
                         # ("he" → "Tom Hanks"); empty when it is its own name

    @property
    def name(self) -> str:
        return self.canonical or self.text


@dataclass(frozen=True)
class Literal:
    """A typed value (dates, numbers) instead of an entity."""

    value: str         # lexical form, e.g. "2025", "2025-03-01", "42"
    datatype: str      # full XSD IRI
    start: int
    end: int


@dataclass
class ExtractedTriple:
    subject: Mention
    relation: str                  # normalised relation label: "born in", "lead", "ceo of"
    object: Mention | Literal
    sentence: tuple[int, int]      # character span of the sentence it came from
    confidence: float              # 0..1
    relation_phrase: str = ""      # the phrase as written ("was born in")
    turn: str | None = None        # conversation turn id, when the document is a conversation
    speaker: str | None = None
    extractor: str = "spacy"
    extras: dict[str, str] = field(default_factory=dict)


class Extractor(Protocol):
    """Turns documents into triples. Models load once, in the constructor."""

    name: str

    def extract(self, docs: Iterable[Document]) -> Iterator[tuple[Document, list[ExtractedTriple]]]:
        """Yield each document with its triples, in input order, batching internally."""
