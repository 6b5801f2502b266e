"""The one prompt format shared by training (:mod:`learners.recipes.generator_sft`) and
serving. It is short on purpose: the offline default model is tiny and every prompt token
costs training time.

    question: who directed forrest gump ? evidence: robert zemeckis <- forrest gump
    directed by robert zemeckis ; ... answer: robert zemeckis , ron howard

Each evidence line starts with the entity it supports, then the walk that reaches it: a
tiny model learns to copy a name from a fixed place far sooner than from the end of a walk
of unknown length.
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["build_prompt", "evidence_line", "format_target", "parse_answer", "ANSWER_SEPARATOR",
           "MAX_EVIDENCE"]

MAX_EVIDENCE = 6
ANSWER_SEPARATOR = " , "
_EVIDENCE_SEPARATOR = " ; "
_SPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    # One line per field: a newline or stray separator inside a label must not break the format.
    return _SPACE.sub(" ", text).strip()


def evidence_line(answer: str, walk: str) -> str:
    """One evidence line: ``"{answer} <- {walk}"`` (the walk ends at the answer)."""
    return f"{_clean(answer)} <- {_clean(walk)}"


def build_prompt(question: str, evidence: Sequence[str], max_evidence: int = MAX_EVIDENCE) -> str:
    """``"question: {q} evidence: {e1} ; {e2} ; ... answer:"`` with the first
    ``max_evidence`` lines (retrieval ranks them, so the first are the most relevant)."""
    lines = [_clean(e) for e in evidence[:max_evidence] if _clean(e)]
    return f"question: {_clean(question)} evidence: {_EVIDENCE_SEPARATOR.join(lines)} answer:"


def format_target(answer: Sequence[str]) -> str:
    """The training target for an answer set: ``" " + "a , b"`` (the space separates it from
    ``answer:``)."""
    return " " + ANSWER_SEPARATOR.join(_clean(a) for a in answer)


def parse_answer(text: str) -> list[str]:
    """Generated text back into entity strings: split on commas, strip, drop empties and
    repeats (order kept)."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        part = _clean(part)
        if part:
            seen.setdefault(part, None)
    return list(seen)
