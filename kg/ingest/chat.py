"""Facts people state in chat become triples whose provenance is that turn and speaker.

Each turn that states something is its own source (``urn:kgchat:chat:<conversation>/<turn>``),
so a correction later retracts exactly that turn. Questions and chit-chat add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from kg.extract.base import ExtractedTriple
from kg.ingest.pipeline import IngestSummary, Ingestor
from kg.sources import Document, Turn
from kg.sources.document import content_hash
from kg.vocab import source_id_for


@dataclass
class TurnResult:
    facts: list[ExtractedTriple] = field(default_factory=list)
    source_id: str | None = None   # None when the turn stated nothing
    summary: IngestSummary | None = None


def turn_uri(conversation_id: str, turn_id: str) -> str:
    return f"urn:kgchat:chat:{quote(conversation_id, safe='')}/{quote(turn_id, safe='')}"


def ingest_turn(ingestor: Ingestor, conversation_id: str, turn_id: str, text: str, *,
                speaker: str = "user", role: str = "user") -> TurnResult:
    """Extract and store what a chat turn states; returns the facts that were stored."""
    doc = Document(uri=turn_uri(conversation_id, turn_id), text=text,
                   content_hash=content_hash(text.encode("utf-8")), kind="conversation",
                   turns=[Turn(str(turn_id), speaker, 0, len(text), role=role)],
                   metadata={"conversation": conversation_id})
    [(doc, facts)] = list(ingestor.extractor.extract([doc]))
    if not facts:
        return TurnResult()
    summary = ingestor.store_extracted(doc, facts)
    return TurnResult(facts, source_id_for(doc.uri), summary)
