"""Entity linking from a plain question: n-gram lookup against labels and aliases.

A user types "who directed the films Tom Hanks starred in", with no markup. Every span of
up to ``max_label_tokens`` tokens is looked up in the label table (case and punctuation
folded); spans that are only stop words are ignored unless written with a capital, since
"Up", "Her" or "It" name films but are far more often just words. Longer spans, capitalised
spans and rarer names score higher; the final choice among the top candidates is made by
graph context in :mod:`chatbot.retrieve` (which candidate has a path that fits the question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

from kg.graphindex import GraphIndex

_WORD = re.compile(r"[^\W_]+")
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how",
                   "movie", "movies", "film", "films", "people", "person", "year", "years"}


@dataclass(frozen=True)
class Mention:
    start: int            # character offsets in the question
    end: int
    text: str
    nodes: tuple[int, ...]
    score: float


def question_words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]


def link(g: GraphIndex, question: str, *, top: int = 4) -> list[Mention]:
    """Candidate mentions, best first (at most ``top``, overlapping spans allowed)."""
    words = question_words(question)
    found: list[Mention] = []
    for i in range(len(words)):
        for n in range(min(g.max_label_tokens, len(words) - i), 0, -1):
            key = " ".join(w for w, _, _ in words[i:i + n])
            nodes = g.by_label.get(key)
            if not nodes:
                continue
            start, end = words[i][1], words[i + n - 1][2]
            surface = question[start:end]
            content = [w for w, _, _ in words[i:i + n] if w not in STOP_WORDS]
            capital = surface[:1].isupper() or surface[:1].isdigit()
            if not content and not capital:
                continue  # "the", "in", "it" as words
            if n == 1 and (key in _QUESTION_WORDS or (not capital and len(key) < 3)):
                continue
            score = n + (1.0 if capital else 0.0) + 0.5 * len(content) / n
            if i == 0 and surface[:1].isupper() and not content:
                score -= 1.0  # a sentence-initial capital says nothing
            found.append(Mention(start, end, surface, tuple(nodes), score))
    return best_mentions(found, top)


def best_mentions(found: list[Mention], top: int) -> list[Mention]:
    """The ``top`` best mentions; a span inside a better one ("Tom" in "Tom Hanks") is dropped."""
    kept = [m for m in found if not any(
        o is not m and o.start <= m.start and m.end <= o.end and o.score > m.score for o in found)]
    kept.sort(key=lambda m: (-m.score, m.start))
    return kept[:top]


def mask(question: str, mention: Mention, placeholder: str = "X") -> str:
    """The question with the mention replaced: what the path scorers compare."""
    return question[:mention.start] + placeholder + question[mention.end:]
