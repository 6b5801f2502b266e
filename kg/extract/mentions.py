"""From a token a pattern points at to the Mention (or Literal) it stands for.

Named entities win over noun chunks; a chunk loses its leading article ("the platform
team" → "platform team", so the same thing gets the same name in every sentence). Two
conventions that decide names:

- "City, State" sequences of place names are one mention ("Abilene, Texas"), the form
  encyclopedias use to tell places apart; the extractor adds (city, located in, state).
- "the city of Abilene" names Abilene: a classifier noun (:data:`CLASSIFIERS`) followed
  by "of" and a proper name stands for the name.

Dates and numbers become :class:`~kg.extract.base.Literal` values; a date that does not
read as one (e.g. "the 1990s") gives no argument at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from spacy.tokens import Doc, Span, Token

from kg.extract import literals
from kg.extract.base import Literal, Mention
from kg.extract.coref import Coreference, Link

LITERAL_LABELS = literals.DATE_LABELS | literals.NUMBER_LABELS | {"TIME", "ORDINAL"}
PLACE_LABELS = {"GPE", "LOC", "FAC"}
ARTICLES = {"a", "an", "the"}
# Nouns that name the kind of a place before its name: "the city of Abilene".
CLASSIFIERS = {"city", "town", "village", "state", "country", "county", "province",
               "region", "district", "island", "municipality", "borough", "parish",
               "republic", "kingdom", "territory", "nation", "port"}
NOUNISH = {"NOUN", "PROPN"}
NAME_LINKS = {"of", "di", "de", "del", "della", "du", "des", "von", "van", "der"}


@dataclass(frozen=True)
class Argument:
    """A resolved argument and how it was found (the confidence heuristic reads ``source``)."""

    value: Mention | Literal
    source: str  # "entity" | "proper" | "chunk" | "literal" | "pronoun" | "alias"


class MentionIndex:
    """Entities, chunks and coreference links of one parsed document."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.entity_of: dict[int, Span] = {}
        # (place, the place it lies in): ("Abilene, Texas", "Texas"), ("Chicago", "DuPage County")
        self.place_links: list[tuple[Span, Span]] = []
        for span in self._entities(doc):
            for i in range(span.start, span.end):
                self.entity_of[i] = span
        for tok in doc:  # "the Andalusia region of Spain": Andalusia lies in Spain
            name = self.classified_name(tok)
            if name != tok and name.dep_ == "compound" and name.i in self.entity_of:
                for prep in (c for c in tok.children if c.dep_ == "prep" and c.lower_ == "of"):
                    for obj in (o for o in prep.children if o.dep_ == "pobj"):
                        if self.entity_of.get(obj.i) is not None and \
                                self.entity_of[obj.i].label_ in PLACE_LABELS:
                            self.place_links.append((self.entity_of[name.i], self.entity_of[obj.i]))
        self.identifier_of: dict[int, Span] = {}
        for span in self._identifiers(doc):
            for i in range(span.start, span.end):
                self.identifier_of[i] = span
        self.chunk_of: dict[int, Span] = {}
        for chunk in doc.noun_chunks:
            for i in range(chunk.start, chunk.end):
                self.chunk_of[i] = chunk
        named = []
        for span in {id(s): s for s in self.entity_of.values()}.values():
            if span.label_ not in LITERAL_LABELS:
                grown = self._grow_to_chunk(span, span.root)
                named.append((self._trim(self._extend_name(grown)), span.label_))
        for chunk in doc.noun_chunks:
            if chunk.root.i not in self.entity_of and chunk.root.pos_ in NOUNISH:
                named.append((self._trim(self._extend_name(chunk)), ""))
        for tok in doc:  # "the country's leader": a possessor is a mention too
            chunk = self.chunk_of.get(tok.i)
            if tok.dep_ == "poss" and tok.pos_ == "NOUN" and tok.i not in self.entity_of \
                    and (chunk is None or chunk.root != tok):
                named.append((doc[tok.left_edge.i:tok.i + 1], ""))
        self.coref = Coreference(doc, [(s, label, s.text) for s, label in named if len(s)])

    def _entities(self, doc: Doc) -> list[Span]:
        """doc.ents, with a "Place, Place" pair merged into one span.

        Longer comma chains ("Chicago, DuPage County, Illinois, United States") stay
        separate mentions, each recorded as lying in the next one.
        """
        ents = list(doc.ents)
        out: list[Span] = []
        i = 0
        while i < len(ents):
            chain = [ents[i]]
            while i + 1 < len(ents) and _continues_place(doc, chain[-1], ents[i + 1]):
                chain.append(ents[i + 1])
                i += 1
            if len(chain) == 2:
                first, part = chain
                label = first.label_ if first.label_ in PLACE_LABELS else "GPE"
                whole = Span(doc, first.start, part.end, label=label)
                self.place_links.append((whole, part))
                out.append(whole)
            else:
                self.place_links.extend(pairwise(chain))
                out.extend(chain)
            i += 1
        return out

    @staticmethod
    def _identifiers(doc: Doc) -> list[Span]:
        """Codes written without spaces: "978-0-15-204770-2", "1360-0443", "4/22"."""
        out = []
        i = 0
        while i < len(doc):
            j = i
            while j + 1 < len(doc) and not doc[j].whitespace_ and not doc[j + 1].is_space:
                j += 1
            while j > i and doc[j].is_punct:
                j -= 1
            span = doc[i:j + 1]
            groups = [t for t in span if any(ch.isdigit() for ch in t.text)]
            if (len(span) >= 3 and len(groups) >= 2 and any(t.text in ("-", "/") for t in span)
                    and all(t.text in ("-", "/", ".") or t.text.isalnum() for t in span)
                    and not any(t.ent_type_ in ("DATE", "TIME") for t in span)):
                out.append(span)
            i = max(j, i) + 1
        return out

    def _grow_to_chunk(self, span: Span, tok: Token) -> Span:
        """NER found part of a name ("F.C." of "AEK Athens F.C."): take the whole proper
        noun chunk around it when the chunk adds only proper nouns and numbers."""
        chunk = self.chunk_of.get(tok.i)
        if chunk is None or chunk.root.i not in range(span.start, span.end) or (
                chunk.start >= span.start and chunk.end <= span.end):
            return span
        extra = [t for t in chunk if t.i not in range(span.start, span.end)]
        if all(t.pos_ in ("PROPN", "NUM", "DET") or t.is_punct for t in extra) and \
                not any(self.entity_of.get(t.i) not in (None, span) for t in extra):
            return Span(self.doc, min(chunk.start, span.start), max(chunk.end, span.end),
                        label=span.label_)
        return span

    def _extend_name(self, span: Span) -> Span:
        """Numbers and "of"-phrases that belong to a proper name: "Apollo 12", "11 Diagonal
        Street", "A Wizard of Mars", "Accademia di Architettura di Mendrisio"."""
        doc = self.doc
        if span.root.pos_ != "PROPN" or span.label_ in LITERAL_LABELS:
            return span
        start, end = span.start, span.end
        while True:
            inside = range(start, end)
            if end < len(doc) and _attached_number(doc[end], inside) and doc[end - 1].whitespace_:
                end += 1
            elif start > 0 and _attached_number(doc[start - 1], inside) and doc[start - 1].whitespace_:
                start -= 1
            elif (end + 1 < len(doc) and doc[end].lower_ in NAME_LINKS and doc[end].head.i in inside
                  and doc[end - 1].pos_ == "PROPN" and span.label_ not in ("PERSON", "GPE")):
                first = end + 2 if doc[end + 1].lower_ == "the" else end + 1
                last = first
                while last < len(doc) and doc[last].pos_ == "PROPN" and doc[last].is_title:
                    last += 1
                if last == first or not any(c.i in range(first, last) for c in doc[end].children):
                    break
                end = last
            else:
                break
        if (start, end) == (span.start, span.end):
            return span
        return Span(doc, start, end, label=span.label_)

    @staticmethod
    def _trim(span: Span) -> Span:
        """Drop a leading article and surrounding punctuation; keep "The" inside a name."""
        start, end = span.start, span.end
        doc = span.doc
        while start < end and (doc[start].is_punct or doc[start].lower_ in ARTICLES
                               and not (doc[start].text == "The" and not doc[start].is_sent_start
                                        and span.label_ == "WORK_OF_ART")):
            start += 1
        while end > start and (doc[end - 1].is_punct or doc[end - 1].tag_ == "POS"):
            end -= 1  # "Efxeinoupolis's" → "Efxeinoupolis"
        return doc[start:end]

    def through_classifier(self, tok: Token) -> Token:
        """The name a descriptive noun stands for: "the city of Abilene" → Abilene,
        "France's capital, Paris," → Paris."""
        if tok.pos_ in ("NOUN", "ADJ") and tok.dep_ != "appos":  # ADJ: "the American national, Y"
            for c in tok.children:
                if c.dep_ == "appos" and c.pos_ == "PROPN":
                    return c
        return self.classified_name(tok)

    def classified_name(self, tok: Token) -> Token:
        """"the city of Abilene", "the Jalisco region" → the name; any other token → itself."""
        if tok.lemma_.lower() in CLASSIFIERS and tok.pos_ == "NOUN":
            named = [c for c in tok.lefts if c.dep_ == "compound" and c.pos_ == "PROPN"]
            if named:
                return named[-1]
            for prep in tok.children:
                if prep.dep_ == "prep" and prep.lower_ == "of":
                    for obj in prep.children:
                        if obj.dep_ == "pobj" and obj.pos_ == "PROPN":
                            return obj
        return tok

    def argument(self, tok: Token, *, speaker: str | None = None) -> Argument | None:
        """The mention or literal ``tok`` heads, or None when it names nothing usable."""
        tok = self.through_classifier(tok)
        if tok.i in self.identifier_of:
            ident = self.identifier_of[tok.i]
            parsed = literals.parse_date(ident.text)
            value, datatype = parsed if parsed else (ident.text, literals.XSD_STRING)
            return Argument(Literal(value, datatype, ident.start_char, ident.end_char), "literal")
        span = self.entity_of.get(tok.i)
        if span is not None and span.label_ in LITERAL_LABELS:
            value = self._literal(span)
            if value is not None or tok.pos_ not in NOUNISH:
                return value
            span = None  # NER took a name for a number ("3Arena"): treat it as a name
        elif tok.like_num or tok.tag_ == "CD" and tok.pos_ not in NOUNISH:
            return self._literal(self.doc[tok.i:tok.i + 1])
        if tok.pos_ == "PRON":
            return self._pronoun(tok, speaker)
        if span is not None:
            source, label = "entity", span.label_
            span = self._grow_to_chunk(span, tok)
        else:
            chunk = self.chunk_of.get(tok.i)
            if chunk is not None and chunk.root.i == tok.i:
                span = chunk
            elif tok.pos_ in NOUNISH:
                left = tok.i
                while left > 0 and self.doc[left - 1].dep_ == "compound" \
                        and self.doc[left - 1].head.i == tok.i:
                    left -= 1
                span = self.doc[left:tok.i + 1]
            else:
                return None
            source, label = ("proper" if span.root.pos_ == "PROPN" else "chunk"), ""
            # "the main ingredients bread": a plural compound is a label, not part of a name
            labels = [c.i for c in span.root.lefts if c.dep_ == "compound" and c.tag_ == "NNS"]
            if labels and labels[-1] + 1 < span.end:
                span = self.doc[labels[-1] + 1:span.end]
        span = self._trim(self._extend_name(span))
        if not len(span):
            return None
        link = self.coref.links.get(span.root.i)
        canonical = link.name if link is not None and link.name != span.text else ""
        mention = Mention(text=span.text, start=span.start_char, end=span.end_char,
                          type=label or (link.type if link is not None else ""),
                          canonical=canonical)
        return Argument(mention, "alias" if canonical else source)

    def _pronoun(self, tok: Token, speaker: str | None) -> Argument | None:
        # In a conversation "I" is the speaker of the turn; in a document nobody.
        if tok.lower_ in ("i", "me", "my", "myself") and speaker:
            return Argument(Mention(tok.text, tok.idx, tok.idx + len(tok.text), "PERSON",
                                    speaker), "pronoun")
        link: Link | None = self.coref.links.get(tok.i)
        if link is None:
            return None
        return Argument(Mention(tok.text, tok.idx, tok.idx + len(tok.text), link.type,
                                link.name), "pronoun")

    def _literal(self, span: Span) -> Argument | None:
        text = span.text
        if span.label_ in ("DATE", "TIME") or (len(span) == 1 and literals.is_year(text)
                                                 and span.label_ != "CARDINAL"):
            parsed = literals.parse_date(text)
            if parsed is None and len(span) == 1 and span[0].like_num:  # NER took 69618 for a date
                parsed = literals.parse_number(text)
        elif span.label_ == "ORDINAL":
            parsed = None
        else:
            parsed = literals.parse_number(text)
        if parsed is None:
            return None
        value, datatype = parsed
        return Argument(Literal(value, datatype, span.start_char, span.end_char), "literal")

    def is_place(self, tok: Token) -> bool:
        span = self.entity_of.get(self.through_classifier(tok).i)
        return span is not None and span.label_ in PLACE_LABELS


def _continues_place(doc: Doc, span: Span, nxt: Span) -> bool:
    """Is ``nxt`` the ", Place" that locates ``span`` ("Abilene, Texas")?"""
    return (span.label_ in PLACE_LABELS | {"ORG"} and nxt.label_ == "GPE"
            and nxt.start == span.end + 1 and doc[span.end].text == ","
            and nxt.root.dep_ in ("appos", "npadvmod", "conj")
            and span.start <= nxt.root.head.i < span.end)


def _attached_number(tok: Token, name: range) -> bool:
    """A number that is part of the name next to it ("Apollo 12", "14th … Monument")."""
    return (tok.pos_ == "NUM" or tok.tag_ == "CD" or tok.ent_type_ == "ORDINAL") \
        and tok.head.i in name and tok.dep_ in ("nummod", "appos", "compound", "npadvmod", "amod")
