"""In-document coreference by simple, predictable rules (no model).

Three kinds of link, each from a later mention back to an earlier one:

- **pronouns**: he/she → a person, it → a thing or organisation, they → a group or plural
  noun. The antecedent is the nearest compatible mention, searching the pronoun's own
  sentence first and then up to :data:`WINDOW` sentences back; within one sentence a
  proper name beats a common noun and a subject beats a non-subject (subjects are what
  later pronouns usually continue);
- **short names**: "Hanks" after "Tom Hanks", "Apple" after "Apple Inc." — a person's or
  organisation's name whose words are a contiguous part (a person: surname or first name;
  an organisation: leading words) of an earlier, longer name;
- **definite descriptions**: "the airport" after "Abilene Regional Airport" — "the" plus
  a common noun that is a word of an earlier proper name; "the country" (city, state, …)
  after a place name.

Places are never shortened ("Texas" after "Taylor County, Texas" is Texas). A link stores
the name the mention stands for, which becomes ``Mention.canonical``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from spacy.tokens import Doc, Span, Token

WINDOW = 3  # sentences a pronoun may look back

PRONOUN_KINDS = {
    **dict.fromkeys(["he", "him", "his", "himself", "she", "her", "hers", "herself"], "person"),
    **dict.fromkeys(["it", "its", "itself"], "thing"),
    **dict.fromkeys(["they", "them", "their", "theirs", "themselves"], "group"),
}
# Which referent kinds each pronoun kind may point at ("any": a proper name NER missed).
_COMPATIBLE = {
    "person": {"person", "any"},
    "thing": {"thing", "organisation", "any"},
    "group": {"group", "organisation", "any"},
}
_KIND_OF_LABEL = {
    "PERSON": "person",
    "ORG": "organisation", "NORP": "group",
    "GPE": "thing", "LOC": "thing", "FAC": "thing", "PRODUCT": "thing",
    "WORK_OF_ART": "thing", "EVENT": "thing", "LAW": "thing", "LANGUAGE": "thing",
}
_SHORTENABLE = {"PERSON", "ORG", ""}
PLACE_NOUNS = {"country", "city", "town", "state", "nation", "region", "island", "village"}
REGION_NOUNS = {"region", "island", "continent", "area"}  # may also name a LOC (not GPE)


@dataclass(frozen=True)
class Link:
    """What a mention stands for: the earlier name and its entity type."""

    name: str
    type: str
    kind: str  # "pronoun" | "alias"


@dataclass(frozen=True)
class _Referent:
    name: str
    type: str
    kind: str
    token: int
    sent: int
    subject: bool
    proper: bool
    words: tuple[str, ...]


def _is_subject(token: Token) -> bool:
    return token.dep_ in ("nsubj", "nsubjpass") or (
        token.dep_ == "conj" and token.head.dep_ in ("nsubj", "nsubjpass"))


def _referent_kind(span: Span, label: str) -> str:
    if label:
        return _KIND_OF_LABEL.get(label, "thing")
    root = span.root
    if root.tag_ in ("NNS", "NNPS"):
        return "group"
    return "any" if root.pos_ == "PROPN" else "thing"


def _is_proper(span: Span, label: str) -> bool:
    return bool(label) or span.root.pos_ == "PROPN"


class Coreference:
    """Links for one parsed document, keyed by the token index of the referring word."""

    def __init__(self, doc: Doc, mentions: Iterable[tuple[Span, str, str]]) -> None:
        """``mentions``: (span, entity label or "", name as the extractor writes it)."""
        self.links: dict[int, Link] = {}
        sent_of = {}
        for n, sent in enumerate(doc.sents):
            for tok in sent:
                sent_of[tok.i] = n
        spans = {span.root.i: (span, label, name) for span, label, name in mentions}
        history: list[_Referent] = []
        for tok in doc:
            kind = PRONOUN_KINDS.get(tok.lower_) if tok.pos_ == "PRON" else None
            if kind is not None:
                found = self._antecedent(tok, kind, sent_of[tok.i], history)
                if found is not None:
                    self.links[tok.i] = Link(found.name, found.type, "pronoun")
                    history.append(_Referent(found.name, found.type, found.kind, tok.i,
                                             sent_of[tok.i], _is_subject(tok), True, found.words))
            elif tok.i in spans:
                span, label, name = spans[tok.i]
                link = self._alias(span, label, sent_of[tok.i], history)
                if link is not None:
                    self.links[tok.i] = link
                    name = link.name
                words = tuple(w.lower_ for w in span if not w.is_punct and w.dep_ != "det")
                label = label or (link.type if link else "")
                history.append(_Referent(name, label, _referent_kind(span, label), tok.i,
                                         sent_of[tok.i], _is_subject(tok),
                                         _is_proper(span, label), words))

    @staticmethod
    def _antecedent(tok: Token, kind: str, sent: int, history: list[_Referent]) -> _Referent | None:
        allowed = _COMPATIBLE[kind]
        best: _Referent | None = None
        best_key: tuple[int, int, int, int] | None = None
        for ref in history:
            distance = sent - ref.sent
            if distance > WINDOW or ref.kind not in allowed or not ref.proper and kind == "person":
                continue
            key = (distance, 0 if ref.proper else 1, 0 if ref.subject else 1, -ref.token)
            if best_key is None or key < best_key:
                best, best_key = ref, key
        return best

    @staticmethod
    def _alias(span: Span, label: str, sent: int, history: list[_Referent]) -> Link | None:
        words = tuple(w.lower_ for w in span if not w.is_punct and w.dep_ != "det")
        if not words:
            return None
        # A short name is capitalised; spaCy may tag a sentence-initial "Hanks" as a noun.
        if label in _SHORTENABLE and all(w.is_title or w.is_upper or w.is_punct or w.dep_ == "det"
                                         for w in span):
            for ref in reversed(history):
                if ref.type in ("PERSON", "ORG") and len(ref.words) > len(words) and (
                        label in ("", ref.type)) and _part_of_name(words, ref.words, ref.type):
                    return Link(ref.name, ref.type, "alias")
        definite = any(c.dep_ == "det" and c.lower_ == "the" for c in span.root.children)
        if not label and definite and span.root.pos_ == "NOUN" and len(words) == 1:
            noun = {span.root.lower_, span.root.lemma_.lower()}
            for ref in reversed(history):
                if sent - ref.sent > WINDOW or not ref.proper:
                    continue
                # "the airport" → "Abilene Regional Airport"; "the country" → the last country
                if len(ref.words) > 1 and noun & set(ref.words) or (
                        noun & PLACE_NOUNS and ref.type == "GPE") or (
                        noun & REGION_NOUNS and ref.type == "LOC"):
                    return Link(ref.name, ref.type, "alias")
        return None


def _part_of_name(short: tuple[str, ...], full: tuple[str, ...], label: str) -> bool:
    """Surname or first name of a person; leading words of an organisation."""
    n = len(short)
    if label == "ORG":
        return full[:n] == short
    return full[-n:] == short or full[:n] == short
