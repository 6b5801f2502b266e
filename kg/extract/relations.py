"""Relation labels: from the words of a dependency pattern to one normalised predicate.

A label is built from lemmas, lower-cased, with auxiliaries, negation, adverbs and
determiners left out, and a verb keeps its particle and preposition ("moved to" →
"move to", "set up" → "set up"). Two exceptions keep labels readable:

- a passive participle without an agent keeps its written form ("was born in" →
  "born in", "is located in" → "located in"); lemmas would give "bear in" and turn
  "was founded in" into the ambiguous "found in" (find or found?);
- a noun relation keeps its modifiers ("is the largest city of" → "largest city of").

Afterwards :data:`SYNONYMS` merges phrasings of one relation into one label. The table is
deliberately small: it holds only wordings that are clearly the same relation in almost
any text. Anything domain-specific belongs in ``extract.relation_map`` (normalised label
→ the user's own IRI), which :func:`relation_iri` looks up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from spacy.tokens import Token

# Words that never belong in a noun relation's label ("the", "very", "two", "its").
_DROP_POS = {"DET", "ADV", "PUNCT", "PART", "CCONJ", "SCONJ", "NUM", "PRON"}
# Modifiers of a relational noun that carry meaning ("largest city of", "former member of").
_NOUN_MODIFIERS = {"compound", "amod"}

# Normalised phrase → the one label used for that relation. Keys are what
# :func:`verb_label` / :func:`noun_label` produce for common wordings.
SYNONYMS: dict[str, str] = {
    # birth and death ("bear in" is the lemma form of "born in")
    "bear in": "born in", "be born in": "born in", "born at": "born in",
    "bear on": "born on", "be born on": "born on",
    "pass away in": "die in", "died in": "die in",
    # location
    "locate in": "located in", "be in": "located in", "be located in": "located in",
    "situate in": "located in", "situated in": "located in", "lie in": "located in",
    "locate at": "located at", "be at": "located at",
    "base in": "based in", "headquarter in": "headquartered in",
    # leadership and roles
    "head": "lead", "be led by": "lead",
    "chief executive of": "ceo of", "chief executive officer of": "ceo of",
    # founding and creation
    "establish": "found", "set up": "found", "co-found": "found", "cofound": "found",
    "established in": "founded in", "set up in": "founded in",
    "author": "write", "pen": "write",
    # membership and parts
    "be part of": "part of", "form part of": "part of", "a part of": "part of",
    "be member of": "member of",
    # origin
    "be from": "come from", "originate from": "come from", "originate in": "come from",
    # moving and working
    "relocate to": "move to",
    "work at": "work for",
    # performing
    "appear in": "star in", "act in": "star in",
    # naming
    "call": "known as", "know as": "known as", "also known as": "known as",
}

IS_A = "is a"   # copula or apposition with a common noun: "X is a skeleton racer"


def canonical(label: str) -> str:
    """The synonym table's label for ``label`` (itself when it has no entry)."""
    label = " ".join(label.lower().split())
    return SYNONYMS.get(label, label)


def _word(token: Token, *, keep_form: bool = False) -> str:
    return (token.text if keep_form else token.lemma_).lower()


def verb_label(verb: Token, preposition: Token | None = None, *, participle: bool = False) -> str:
    """"move to", "found", "born in": the verb's lemma (or participle), particles, preposition."""
    words = [_word(verb, keep_form=participle)]
    words += [_word(c) for c in verb.children if c.dep_ == "prt"]
    if preposition is not None:
        words.append(_word(preposition))
    return canonical(" ".join(words))


def noun_label(noun: Token, preposition: str = "", *, skip: Token | None = None) -> str:
    """"capital of", "largest city of", "runway length": a relational noun and its modifiers
    as written (but for ``skip``, an owner written in front: "Athens mayor")."""
    words = [c.lower_ for c in noun.lefts
             if c.dep_ in _NOUN_MODIFIERS and c.pos_ not in _DROP_POS and c != skip]
    words.append(_word(noun))
    if preposition:
        words.append(preposition.lower())
    return canonical(" ".join(words))


def adjective_label(adjective: Token, preposition: Token) -> str:
    """"close to", "famous for": a predicative adjective and its preposition."""
    return canonical(f"{_word(adjective)} {_word(preposition)}")


def phrase(tokens: Iterable[Token]) -> str:
    """The relation as written, in text order ("was born in")."""
    return " ".join(t.text for t in sorted(set(tokens), key=lambda t: t.i))


def relation_iri(label: str, relation_map: Mapping[str, str]) -> str | None:
    """The user's IRI for a normalised label (keys are compared normalised as well)."""
    if label in relation_map:
        return relation_map[label]
    for key, iri in relation_map.items():
        if canonical(key) == label:
            return iri
    return None
