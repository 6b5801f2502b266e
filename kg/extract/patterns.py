"""Dependency patterns: which (subject, relation, object) a parsed sentence states.

Each pattern points at *head tokens*; :class:`~kg.extract.mentions.MentionIndex` turns a
head into a mention or literal later. Patterns, with the normal form each produces:

=============== =============================================== =============================
pattern         example                                         triple
=============== =============================================== =============================
svo             Dana leads the platform team.                   (Dana, lead, team)
verb-prep       Our office moved to Leeds.                      (office, move to, Leeds)
passive         X was founded by Y.                             (Y, found, X)   — made active
passive-prep    X was born in Y. / the airport located in Y     (X, born in, Y)
copula-role     X is the capital of Y. / The leader of Y is X.  (X, capital of, Y)
copula-value    The population of Y is 2000.                    (Y, population, 2000)
copula-type     X is a skeleton racer.                          (X, is a, skeleton racer)
copula-prep     X is in Y. / X is close to Y.                   (X, located in, Y)
copula-name     Its ground is called Y.                         (its ground, known as, Y)
apposition-role X, the CEO of Y, … / the CEO of Y, X, …         (X, ceo of, Y)
apposition-type X, a German racer, …                            (X, is a, German racer)
possessive      Y's founder X …                                 (X, founder of, Y)
have-value      X has a population of 2000. / … 29 members.     (X, population, 2000)
noun-place      the Eiffel Tower in Paris                       (Eiffel Tower, located in, Paris)
=============== =============================================== =============================

Passives are turned active when the agent is named ("X was founded by Y" and "Y founded
X" give the same triple); without an agent the participle is the relation ("born in").
Relative clauses ("the airport, which serves X"; "the book that Jane wrote"), reduced
relatives ("the airport located in X"), coordinated subjects/objects ("X and Y starred in
Z") and coordinated verbs ("was born in X and died in Y") share arguments; ``via`` records
how an argument was reached, for the confidence heuristic. A clause on a predicate noun
describes the subject ("X is a dish made from Y" → (X, made from, Y)); a relational noun
in a where-clause belongs to the place described ("Indonesia, where the leader is Y" →
(Y, leader of, Indonesia)); "one of the Ns" stands for the Ns. Negated statements give
nothing: "X did not found Y" must not become (X, found, Y).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from spacy.tokens import Span, Token

from kg.extract import relations
from kg.extract.mentions import NOUNISH, MentionIndex

NOMINAL = NOUNISH | {"PRON", "NUM"}
_SUBJECT_DEPS = ("nsubj", "nsubjpass")
_RELATIVE = {"which", "that", "who", "whom", "whose"}
_COPULAS = {"be", "become", "remain"}
_PLACE_PREPS = {"in", "at"}
_NAMING = {"call", "name", "know", "title"}          # "a variation called Y"
_INCLUDING = {"include", "comprise", "consist"}       # "The ingredients of X include Y"
_ROLE_PREPS = {"of", "for", "in"}  # "the capital of X", "the area code for X", "the largest city in X"
_QUANTITY_WORDS = {"one", "two", "three", "four", "some", "many", "several", "both", "all", "each"}


@dataclass(frozen=True)
class Candidate:
    subject: Token
    relation: str              # normalised label, synonyms applied
    object: Token
    words: tuple[Token, ...]   # the relation as written, for ExtractedTriple.relation_phrase
    pattern: str
    via: str = ""              # "", "relcl", "conj", "acl", "xcomp", "advcl": how args were shared


def candidates(sent: Span, index: MentionIndex) -> Iterator[Candidate]:
    """Every pattern match in one sentence, in token order."""
    for tok in sent:
        if tok.pos_ in ("VERB", "AUX") and tok.dep_ not in ("aux", "auxpass") and not _negated(tok):
            if _copular(tok):
                yield from _copula(tok, index)
            else:
                yield from _verbal(tok, index)
        if tok.pos_ in NOUNISH:
            if tok.dep_ == "appos":
                yield from _apposition(tok, index)
            yield from _possessive(tok)
            yield from _noun_place(tok, index)


# --- shared helpers ---------------------------------------------------------------------

def _negated(tok: Token) -> bool:
    return any(c.dep_ == "neg" for c in tok.children)


def _coordinated(tok: Token) -> list[Token]:
    """``tok`` and the nouns coordinated with it ("X, Y and Z")."""
    out = [tok]
    for c in tok.children:
        if c.dep_ == "conj" and c.pos_ in NOMINAL:
            out.extend(_coordinated(c))
    return out


def _relative_antecedent(tok: Token) -> Token:
    """"which"/"that"/"who"/"whose" → the noun its relative clause modifies."""
    if tok.lower_ not in _RELATIVE or tok.tag_ not in ("WDT", "WP", "WP$"):
        return tok
    node = tok
    for _ in range(4):
        node = node.head
        if node.dep_ == "relcl":
            return node.head
        if node.head == node:
            break
    return tok


def _objects(prep: Token) -> list[Token]:
    """The objects of a preposition; "one of the Ns" stands for the Ns."""
    objs = [_unquantified(o) for c in prep.children if c.dep_ == "pobj" for o in _coordinated(c)]
    if not objs and prep.i + 1 < len(prep.doc):
        # "an elevation of 210 metres above sea level": the parser hangs the value elsewhere
        nxt = prep.doc[prep.i + 1]
        if nxt.ent_type_ in ("QUANTITY", "CARDINAL", "MONEY", "PERCENT", "DATE"):
            objs = [nxt]
    return objs


def _unquantified(tok: Token) -> Token:
    """"one of the ethnic groups" → groups; anything else → itself."""
    if tok.lower_ in _QUANTITY_WORDS or tok.pos_ == "NUM" and tok.ent_type_ == "CARDINAL":
        for prep in tok.children:
            if prep.dep_ == "prep" and prep.lower_ == "of":
                for obj in prep.children:
                    if obj.dep_ == "pobj" and obj.pos_ in NOUNISH:
                        return obj
    return tok


def _args(heads: list[Token]) -> list[tuple[Token, str]]:
    """Coordinated expansions of ``heads`` tagged "conj" when they are not the head itself."""
    return [(t, "" if t == h else "conj") for h in heads for t in _coordinated(h)]


def subjects(verb: Token) -> list[tuple[Token, str]]:
    """The subjects of ``verb``: its own, or shared through coordination/relative clauses."""
    own = [_unquantified(c) for c in verb.children if c.dep_ in _SUBJECT_DEPS]
    if own:
        out = []
        for s, via in _args(own):
            head = _relative_antecedent(s)
            out.append((_described(head), "relcl") if head != s else (head, via))
        return out
    dep = verb.dep_
    if dep in ("conj", "xcomp", "advcl") and verb.head != verb:
        return [(s, via or dep) for s, via in subjects(verb.head)]
    if dep in ("relcl", "acl") and verb.head.pos_ in NOUNISH:
        return [(_described(verb.head), dep)]
    return []


def _described(noun: Token) -> Token:
    """A clause on a predicate noun describes the subject: in "X is a dish made from Y" or
    "X, a dessert that comes from Y," it is X that is made from / comes from Y."""
    if noun.pos_ != "NOUN":
        return noun
    if noun.dep_ == "pobj" and noun.head.lower_ == "of" and noun.head.head.lower_ in _QUANTITY_WORDS:
        noun = noun.head.head  # "X is one of the languages spoken in Y"
    if noun.dep_ == "attr" and noun.head.lemma_ in _COPULAS:
        subject = next((c for c in noun.head.children if c.dep_ in _SUBJECT_DEPS), None)
        if subject is not None:
            return _relative_antecedent(subject)
    if noun.dep_ == "appos" and noun.head.pos_ in NOUNISH:
        return noun.head
    return noun


def _copular(verb: Token) -> bool:
    """"is/becomes <attr|adjective|place>", and "is called <name>"."""
    lemma = verb.lemma_.lower()
    if lemma in _COPULAS:
        return any(c.dep_ in ("attr", "acomp") or c.dep_ == "prep" and lemma == "be"
                   for c in verb.children)
    return lemma in _NAMING and _participle(verb) and any(c.dep_ == "oprd" for c in verb.children)


def _participle(verb: Token) -> bool:
    """Passive, or a bare past participle ("located in X", "Born in Y, she …")."""
    if any(c.dep_ in ("auxpass", "nsubjpass") for c in verb.children):
        return True
    return verb.tag_ == "VBN" and not any(c.dep_ in ("nsubj", "aux") for c in verb.children)


def _role(noun: Token, index: MentionIndex) -> tuple[Token, Token, Token] | None:
    """A relational noun, its owner and the word between: "the capital of France",
    "France's capital"."""
    if noun.pos_ != "NOUN" or index.classified_name(noun) != noun:
        return None
    for c in noun.children:
        if c.dep_ == "poss":
            return noun, _relative_antecedent(c), c
        if c.dep_ == "prep" and c.lower_ in _ROLE_PREPS:  # "the area code for X"
            objs = _objects(c)
            if objs:
                return noun, objs[0], c
    return _where_owner(noun)


def _role_label(noun: Token, marker: Token) -> str:
    """"capital of", "largest city in" (a possessive or "for" reads as "of")."""
    return relations.noun_label(noun, "in" if marker.lower_ == "in" else "of", skip=marker)


def _compound_owner(noun: Token) -> tuple[Token, Token, Token] | None:
    """"Athens mayor", "the Apple CEO": a name in front of a relational noun owns it. Only
    asked where a name or value follows ("Athens mayor is Giorgos Kaminis")."""
    if noun.pos_ != "NOUN":
        return None
    owner = next((c for c in reversed(list(noun.lefts))
                  if c.dep_ == "compound" and (c.pos_ == "PROPN" or c.ent_type_)), None)
    return (noun, owner, owner) if owner is not None else None


def _where_owner(noun: Token) -> tuple[Token, Token, Token] | None:
    """"Indonesia, where the leader is X" / "… Serie B, in which X are the champions":
    a relational noun in a where-clause belongs to what the clause describes."""
    anchor = noun
    if noun.dep_ == "pobj" and noun.head.lower_ == "of" and noun.head.head.lower_ in _QUANTITY_WORDS:
        anchor = noun.head.head  # "where one of the ethnic groups is …"
    if anchor.dep_ not in ("nsubj", "nsubjpass", "attr"):
        return None
    verb = anchor.head
    marker = next((c for c in verb.children if c.lower_ == "where" and c.dep_ == "advmod"), None)
    if marker is None:
        marker = next((c for c in verb.children if c.dep_ == "prep" and any(
            o.dep_ == "pobj" and o.lower_ == "which" for o in c.children)), None)
    if marker is None:
        return None
    if verb.dep_ == "relcl":
        return noun, verb.head, marker
    if verb.dep_ in ("ccomp", "advcl", "conj"):  # "It is also where the currency is X"
        owner = next((c for c in verb.head.children if c.dep_ == "nsubj"), None)
        if owner is not None:
            return noun, owner, marker
    return None


def _is_value(tok: Token, index: MentionIndex) -> bool:
    arg = index.argument(tok)
    return arg is not None and arg.source == "literal"


# --- verbs ------------------------------------------------------------------------------

def _verbal(verb: Token, index: MentionIndex) -> Iterator[Candidate]:
    subs = subjects(verb)
    if not subs:
        return
    passive = _participle(verb)
    aux = tuple(c for c in verb.children if c.dep_ in ("aux", "auxpass", "prt"))
    base = aux + (verb,)
    for subject, via in subs:
        role = _role(subject, index) if verb.lemma_ in _INCLUDING else None
        if role is not None:
            # "The main ingredients of X include Y" reads like "Y is a main ingredient of X"
            noun, owner, marker = role
            for c in verb.children:
                objs = _args([c]) if c.dep_ == "dobj" else [(o, "") for o in _objects(c)] \
                    if c.dep_ == "prep" else []
                for obj, via2 in objs:
                    yield Candidate(obj, _role_label(noun, marker), owner,
                                    (noun, marker, verb), "copula-role", via or via2)
            continue
        for c in verb.children:
            if c.dep_ in ("dobj", "dative") and not passive:
                for obj, via2 in _args([c]):
                    obj = _relative_antecedent(obj)
                    if verb.lemma_ == "have":
                        found = list(_have(subject, verb, obj, c, via or via2))
                        if found:
                            yield from found
                            continue
                    yield Candidate(subject, relations.verb_label(verb), obj, base, "svo",
                                    via or via2)
            elif c.dep_ == "dobj" and passive:
                # "X was awarded the Eisner Award": the second object of a passive
                for obj, via2 in _args([c]):
                    yield Candidate(subject, relations.verb_label(verb, participle=True), obj,
                                    base, "passive-prep", via or via2)
            elif c.dep_ == "agent" and passive:
                for n, agent in enumerate(_objects(c)):
                    yield Candidate(agent, relations.verb_label(verb), subject, base + (c,),
                                    "passive", via or ("conj" if n else ""))
            elif c.dep_ == "prep":
                label = relations.verb_label(verb, c, participle=passive)
                pattern = "passive-prep" if passive else "verb-prep"
                for n, obj in enumerate(_objects(c)):
                    yield Candidate(subject, label, _relative_antecedent(obj), base + (c,),
                                    pattern, via or ("conj" if n else ""))
            elif c.dep_ == "npadvmod" and _is_value(c, index):
                # "born 13 March 1963": a date right after the verb
                label = relations.canonical(relations.verb_label(verb, participle=passive) + " on")
                yield Candidate(subject, label, c, base, "passive-prep" if passive else "verb-prep",
                                via)


def _have(subject: Token, verb: Token, obj: Token, first: Token, via: str) -> Iterator[Candidate]:
    """"has a population of 2000" / "has the ISBN number 0-439-17684-0" → an attribute;
    "has 29 members" → a count; "has a variation called Y" → (X, variation, Y); "has the
    main ingredients bread, almonds …" → (X, ingredient, bread), … (``first``: the first
    of coordinated objects, which carries the attribute noun)."""
    label_noun = next((c for c in first.children if c.dep_ == "compound" and c.tag_ == "NNS"), None)
    if label_noun is not None:
        yield Candidate(subject, relations.noun_label(label_noun), obj, (verb, label_noun),
                        "have-value", via)
        return
    if obj.pos_ != "NOUN":
        return
    plural = obj.tag_ in ("NNS", "NNPS")
    for c in obj.children:
        if c.dep_ == "prep" and c.lower_ == "of":
            for value in _objects(c):
                yield Candidate(subject, relations.noun_label(obj), value, (verb, obj, c),
                                "have-value", via)
        elif c.dep_ in ("nummod", "appos") and (c.pos_ in ("NUM", "PROPN", "X") or c.like_num):
            if c.dep_ == "nummod" and plural:
                yield Candidate(subject, f"number of {obj.lower_}", c, (verb, obj), "have-value", via)
            elif not plural:
                yield Candidate(subject, relations.noun_label(obj), c, (verb, obj), "have-value", via)
                return
        elif c.dep_ == "acl" and c.lemma_ in _NAMING:
            for name in (o for o in c.children if o.dep_ in ("oprd", "attr", "dobj")):
                yield Candidate(subject, relations.noun_label(obj), name, (verb, obj, c),
                                "have-value", via)


# --- copulas ----------------------------------------------------------------------------

def _copula(verb: Token, index: MentionIndex) -> Iterator[Candidate]:
    subs = subjects(verb)
    # "is Greek": a nationality/language adjective names something, like a noun would
    attrs = [_unquantified(a) for c in verb.children if c.dep_ in ("attr", "oprd")
             or c.dep_ == "acomp" and c.ent_type_ in ("NORP", "LANGUAGE") for a in _coordinated(c)]
    for subject, via in subs:
        role = _role(subject, index)
        for attr in attrs:
            attr = _relative_antecedent(attr)
            value = _is_value(attr, index)
            this = role or (_compound_owner(subject) if value or attr.pos_ == "PROPN" else None)
            if this is not None:
                # "The capital of Y is X" / "Y's population is 2000" / "Athens mayor is X"
                noun, owner, marker = this
                if value:
                    yield Candidate(owner, relations.noun_label(noun, skip=marker), attr,
                                    (noun, verb), "copula-value", via)
                else:
                    yield Candidate(attr, _role_label(noun, marker), owner,
                                    (noun, marker, verb), "copula-role", via)
                continue
            attr_role = _role(attr, index)
            if _is_value(subject, index) and attr_role is not None:
                # "325 is the area code for Abilene": a value cannot be a subject
                yield Candidate(attr_role[1], relations.noun_label(attr), subject, (verb, attr),
                                "copula-value", via)
                continue
            if verb.lemma_ in _NAMING:  # "… is called Y": a name, not a type
                yield Candidate(subject, "known as", attr, (verb,), "copula-name", via)
            else:
                yield from _predicate_noun(subject, attr, (verb,), index, "copula", via)
        for c in verb.children:
            if c.dep_ == "acomp":
                for prep in (p for p in c.children if p.dep_ == "prep"):
                    for obj in _objects(prep):
                        yield Candidate(subject, relations.adjective_label(c, prep), obj,
                                        (verb, c, prep), "copula-prep", via)
            elif c.dep_ == "prep" and verb.lemma_ == "be" and _measure(c, index) is not None:
                # "X is 13 metres above sea level" → (X, above sea level, 13)
                amount = _measure(c, index)
                label = " ".join([c.lower_] + [relations.noun_label(o) for o in _objects(c)])
                yield Candidate(subject, label, amount, (verb, c), "copula-value", via)
            elif c.dep_ == "prep" and verb.lemma_ == "be":
                for obj in _objects(c):
                    if role is not None and role[2].dep_ == "poss":
                        # "Their ground is in Athens" → (they, ground in, Athens)
                        label = relations.canonical(f"{relations.noun_label(role[0])} {c.lower_}")
                        yield Candidate(role[1], label, obj, (role[0], verb, c), "copula-prep", via)
                    else:
                        yield Candidate(subject, relations.verb_label(verb, c), obj, (verb, c),
                                        "copula-prep", via)


def _measure(prep: Token, index: MentionIndex) -> Token | None:
    """The amount measured off from a preposition's object: "13 metres above sea level"."""
    for c in prep.children:
        if c.dep_ == "npadvmod" and _is_value(c, index):
            return c
    return None


def _predicate_noun(subject: Token, noun: Token, words: tuple[Token, ...], index: MentionIndex,
                    kind: str, via: str) -> Iterator[Candidate]:
    """What "X is <noun …>" or "X, <noun …>," says about X."""
    role = _role(noun, index)
    if role is not None:
        yield Candidate(subject, _role_label(noun, role[2]), role[1],
                        words + (noun, role[2]), f"{kind}-role", via)
    elif noun.pos_ == "NOUN":
        # "an ingredient in Y", "the sequel to Y" relate X to Y and say little about X's
        # kind; "a city in Texas" does both.
        relational = any(p.dep_ == "prep" and _objects(p) and not (
            p.lower_ in _PLACE_PREPS and all(index.is_place(o) for o in _objects(p)))
            for p in noun.children)
        if not relational:
            yield Candidate(subject, relations.IS_A, noun, words, f"{kind}-type", via)
        # "X is a Tunisian writer": the nationality adjective is a fact of its own
        for adj in (c for c in noun.lefts if c.ent_type_ == "NORP" and c.dep_ in ("amod", "compound")):
            subject_span = index.entity_of.get(subject.i)
            person = subject_span is not None and subject_span.label_ == "PERSON"
            yield Candidate(subject, "nationality" if person else "origin", adj, words + (adj,),
                            f"{kind}-type", via)
    elif kind == "apposition" and index.is_place(subject) and index.is_place(noun):
        yield Candidate(subject, "located in", noun, words, "apposition", via)
    if noun.pos_ != "NOUN":
        return
    for prep in (p for p in noun.children if p.dep_ == "prep" and (role is None or p != role[2])):
        for obj in _objects(prep):
            if prep.lower_ in _PLACE_PREPS and index.is_place(obj):
                label = "located in"
            else:
                label = relations.noun_label(noun, prep.lower_)
            yield Candidate(subject, label, obj, words + (noun, prep), f"{kind}-role", via)


# --- noun phrases -----------------------------------------------------------------------

def _apposition(appos: Token, index: MentionIndex) -> Iterator[Candidate]:
    head = appos.head
    role = _role(head, index)
    if role is not None and appos.pos_ == "PROPN":
        # "the CEO of Apple, Tim Cook"
        yield Candidate(appos, _role_label(head, role[2]), role[1], (head, role[2]),
                        "apposition-role")
        return
    if head.pos_ in NOUNISH:
        yield from _predicate_noun(head, appos, (), index, "apposition", "")


def _possessive(noun: Token) -> Iterator[Candidate]:
    """"Apple's founder Steve Jobs": a possessed role noun used as a title of a name."""
    if noun.pos_ != "NOUN" or noun.dep_ != "compound" or noun.head.pos_ != "PROPN":
        return
    for c in noun.children:
        if c.dep_ == "poss":
            yield Candidate(noun.head, relations.noun_label(noun, "of"), _relative_antecedent(c),
                            (noun,), "possessive")


def _noun_place(noun: Token, index: MentionIndex) -> Iterator[Candidate]:
    """"the Eiffel Tower in Paris": a named thing with an in/at place attached."""
    if noun.dep_ in ("attr", "appos") or noun.pos_ != "PROPN" and noun.i not in index.entity_of:
        return
    for prep in noun.children:
        if prep.dep_ == "prep" and prep.lower_ in _PLACE_PREPS:
            for obj in _objects(prep):
                if index.is_place(obj):
                    yield Candidate(noun, "located in", obj, (prep,), "noun-place")
