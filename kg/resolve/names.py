"""Names: how entity names are normalised, compared and typed (used by the resolver)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable

from kg.vocab import Vocabulary

# -- type classes ------------------------------------------------------------------

TYPE_CLASSES: dict[str, str] = {
    "PERSON": "Person", "PER": "Person",
    "ORG": "Organization",
    "GPE": "Place", "LOC": "Place", "FAC": "Place",
    "NORP": "Group",
    "EVENT": "Event",
    "WORK_OF_ART": "Work", "LAW": "Work",
    "PRODUCT": "Product",
    "LANGUAGE": "Language",
    "DATE": "Date", "TIME": "Date",
    "PERCENT": "Quantity", "MONEY": "Quantity", "QUANTITY": "Quantity",
    "ORDINAL": "Quantity", "CARDINAL": "Quantity",
    "": "Thing",
}
"""spaCy NER label → class local name in the kgchat vocabulary (``kgv:Person`` …).

Two names can only be one entity when their classes agree; the table itself is the
compatibility relation (GPE, LOC and FAC are all Place). Unknown labels are Thing."""

CLASSES = ("Person", "Organization", "Place", "Group", "Event", "Work", "Product",
           "Language", "Date", "Quantity", "Thing")
_EXACT_ONLY = frozenset({"Date", "Quantity"})
_CLASS_BY_LOWER = {c.lower(): c for c in CLASSES}


def type_class(ner_label: str) -> str:
    """The class local name for a spaCy NER label, a class name or a class IRI (so
    ``type_iri(type_iri(x)) == type_iri(x)``); Thing if unknown."""
    label = (ner_label or "").strip()
    if "#" in label or "/" in label:
        label = re.split(r"[#/]", label)[-1]
    return TYPE_CLASSES.get(label.upper()) or _CLASS_BY_LOWER.get(label.lower(), "Thing")


def type_iri(ner_label: str, vocab: Vocabulary | None = None) -> str:
    """The class IRI (``kgv:Person`` …) for a spaCy NER label."""
    return str((vocab or Vocabulary()).KGV[type_class(ner_label)])


# -- names -------------------------------------------------------------------------

_APOS = "'’`´"
_POSSESSIVE = re.compile(rf"[{_APOS}]s?(?=\s|$)")
_DROP = re.compile(rf"[.{_APOS}]")
_NON_WORD = re.compile(r"[\W_]+")
_DESIGNATORS = frozenset({"inc", "incorporated", "corp", "corporation", "ltd", "limited",
                          "llc", "plc", "gmbh", "co"})
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor",
                     "sir", "dame", "lord", "lady", "rev", "reverend", "fr", "father"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_STOPWORDS = frozenset({"the", "of", "and", "a", "an"})
_WORD_SIMILARITY = 0.8
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve "
    "first second third fourth fifth sixth seventh eighth ninth tenth "
    "i ii iii iv v vi vii viii ix x xi xii xiii xiv xv".split()
)


@lru_cache(maxsize=200_000)
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


@lru_cache(maxsize=200_000)
def _tokens(name: str) -> tuple[str, ...]:
    text = _fold(name)
    text = _POSSESSIVE.sub("", text)              # Hanks's, Hanks' → hanks
    text = _DROP.sub("", text)                    # U.S. → us, O'Brien → obrien
    text = text.replace("&", " and ")
    tokens = _NON_WORD.sub(" ", text).split()
    while len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _DESIGNATORS:
        tokens = tokens[:-1]
    return tuple(tokens)  # cached: immutable


def normalise_name(name: str) -> str:
    """The key exact matching compares: ``"The Beatles"`` and ``"the beatles"`` agree."""
    tokens = _tokens(name)
    return " ".join(tokens) if tokens else " ".join(_fold(name).split())


@dataclass(frozen=True)
class _PersonName:
    tokens: tuple[str, ...]   # given names … surname, titles and suffix removed
    suffix: str

    @property
    def key(self) -> str:
        return " ".join(self.tokens + ((self.suffix,) if self.suffix else ()))


@lru_cache(maxsize=200_000)
def _person(name: str) -> _PersonName:
    tokens = _tokens(name)
    while len(tokens) > 1 and tokens[0] in _TITLES:
        tokens = tokens[1:]
    suffix = ""
    if len(tokens) > 1 and tokens[-1] in _NAME_SUFFIXES:
        suffix, tokens = tokens[-1], tokens[:-1]
    return _PersonName(tuple(tokens), suffix)


def _keys(alias: str) -> set[str]:
    """Every key an alias is found under: its normalised name and its person key."""
    keys = {normalise_name(alias)}
    person = _person(alias)
    if person.tokens:
        keys.add(person.key)
    return keys


def _given_compatible(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def _full_names_compatible(a: _PersonName, b: _PersonName) -> bool:
    """Two multi-token person names may denote one person."""
    if a.tokens[-1] != b.tokens[-1] or not _given_compatible(a.tokens[0], b.tokens[0]):
        return False
    if a.suffix != b.suffix:                      # Dale Earnhardt ≠ Dale Earnhardt Jr.
        return False
    ma, mb = a.tokens[1:-1], b.tokens[1:-1]
    if ma and mb:
        return len(ma) == len(mb) and all(_given_compatible(x, y) for x, y in zip(ma, mb))
    return True


def _person_fits(name: _PersonName, aliases: Iterable[str]) -> bool:
    """``name`` could be the person known by ``aliases`` (not an exact alias of it)."""
    people = [_person(a) for a in aliases]
    full = [p for p in people if len(p.tokens) >= 2]
    if name.suffix and any(p.suffix != name.suffix for p in full):
        return False
    if len(name.tokens) == 1:
        return bool(full) and all(p.tokens[-1] == name.tokens[0] for p in full)
    # A full name never joins a surname-only entity: "Williams" alone is too ambiguous.
    return bool(full) and all(_full_names_compatible(name, p) for p in full)


def _numbers(tokens: Iterable[str]) -> frozenset[str]:
    return frozenset(t for t in tokens if t in _NUMBER_WORDS or any(c.isdigit() for c in t))


def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@lru_cache(maxsize=200_000)
def _near(x: str, y: str) -> bool:
    """Two words nearly equal; cheap upper bounds first (difflib's ratio is the cost)."""
    if x == y:
        return True
    shorter, total = min(len(x), len(y)), len(x) + len(y)
    if shorter < 4 or 2 * shorter < _WORD_SIMILARITY * total:
        return False
    m = SequenceMatcher(None, x, y, autojunk=False)
    return m.quick_ratio() >= _WORD_SIMILARITY and m.ratio() >= _WORD_SIMILARITY


def _each_has_counterpart(ta: list[str], tb: list[str]) -> bool:
    """Every word of one side is (nearly) a word of the other: "Theatre"~"Theater",
    "Tibetans"~"Tibetan", but "Rural Oahu Association" has no counterpart for "rural"."""
    return all(any(_near(x, y) for y in tb) for x in ta)


@lru_cache(maxsize=200_000)
def string_similarity(a: str, b: str) -> float:
    """0..1: difflib ratio of the sorted content words (or of the plain keys, if higher).
    0 when the names carry different numbers ("World War I"/"II"), when either is shorter
    than 4 characters, or when a content word of one has no counterpart in the other."""
    ta, tb = _tokens(a), _tokens(b)
    ka, kb = " ".join(ta), " ".join(tb)
    if min(len(ka), len(kb)) < 4 or _numbers(ta) != _numbers(tb):
        return 0.0
    ca = [t for t in ta if t not in _STOPWORDS] or ta
    cb = [t for t in tb if t not in _STOPWORDS] or tb
    if not (_each_has_counterpart(ca, cb) and _each_has_counterpart(cb, ca)):
        return 0.0
    return max(_ratio(" ".join(sorted(ca)), " ".join(sorted(cb))), _ratio(ka, kb))


def _surface(name: str) -> str:
    return " ".join(name.split())


_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+(?=\S)")
_TRAILING_POSSESSIVE = re.compile(rf"(?<=\w)[{_APOS}]s?$")


def _canonical(surface: str) -> str:
    """The label a new entity gets: the surface form less what NER spans drag along —
    a lowercase leading article ("the Theatre Royal"; "The Beatles" keeps its "The"),
    a possessive ("Franz Schubert's"), an unclosed bracket ("League (NBL"), a stray
    double quote and trailing commas or colons."""
    label = _LEADING_ARTICLE.sub("", surface)
    label = _TRAILING_POSSESSIVE.sub("", label)
    for opening, closing in ("()", "[]", "{}"):
        if label.count(opening) > label.count(closing):
            label = label[: label.rindex(opening)]
    if label.count('"') % 2:                      # 'Margaret Mary "Madge' → no stray quote
        label = " ".join(label.replace('"', " ").split())
    label = label.rstrip(" ,;:-–—“")
    return label if label.strip() else surface


def _order_tokens(surface: str, cls: str) -> int:
    return len(_person(surface).tokens) if cls == "Person" else len(_tokens(surface))


def _alias_id(iri: str, alias: str) -> int:
    """A content-derived FAISS id, so ids never depend on insertion order."""
    digest = hashlib.sha256(f"{iri}\x00{alias}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF
