"""The replay buffer: earlier QA pairs mixed into each learning round so the model does
not forget them.

Two policies decide which pairs stay when the buffer is full:

- ``reservoir`` (Vitter's algorithm R): every pair ever offered has the same chance of
  being in the buffer, whatever round it came from;
- ``balanced``: the source with the most pairs gives one up, so a large document cannot
  crowd out a small one.

A pair whose facts were retracted is *retired* (removed), and a pair offered again under
the same id (a changed fact: same question, new answer) replaces the old one in place.
The buffer saves itself, random state included, so a resumed round samples exactly what
the interrupted one would have.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Literal

from learners.qa import QAPair

__all__ = ["ReplayBuffer", "Policy"]

Policy = Literal["reservoir", "balanced"]


class ReplayBuffer:
    def __init__(self, capacity: int = 5000, policy: Policy = "reservoir", seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError("the replay buffer needs a capacity of at least 1")
        if policy not in ("reservoir", "balanced"):
            raise ValueError(f"unknown buffer policy {policy!r}: use reservoir or balanced")
        self.capacity, self.policy = capacity, policy
        self.pairs: dict[str, QAPair] = {}
        self.offered = 0  # distinct new pairs offered so far (the reservoir's n)
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __contains__(self, pid: str) -> bool:
        return pid in self.pairs

    def add(self, pairs: Iterable[QAPair]) -> int:
        """Offer pairs; returns how many are in the buffer afterwards among them."""
        kept = 0
        for p in pairs:
            if p.id in self.pairs:  # the same question again: its newest answer wins
                self.pairs[p.id] = p
                kept += 1
                continue
            self.offered += 1
            if len(self.pairs) < self.capacity:
                self.pairs[p.id] = p
                kept += 1
            elif self.policy == "reservoir":
                j = self.rng.randrange(self.offered)
                if j < self.capacity:
                    victim = list(self.pairs)[j]
                    del self.pairs[victim]
                    self.pairs[p.id] = p
                    kept += 1
            else:
                self.pairs[p.id] = p
                self._evict_from_largest()
                kept += p.id in self.pairs
        return kept

    def _evict_from_largest(self) -> None:
        counts = Counter(_source(p) for p in self.pairs.values())
        largest = max(counts.values())
        crowded = sorted(s for s, c in counts.items() if c == largest)
        source = crowded[self.rng.randrange(len(crowded))]
        ids = [pid for pid, p in self.pairs.items() if _source(p) == source]
        del self.pairs[ids[self.rng.randrange(len(ids))]]

    def retire(self, ids: Iterable[str]) -> int:
        """Remove pairs (their facts are gone); returns how many were here."""
        return sum(self.pairs.pop(pid, None) is not None for pid in ids)

    def sample(self, k: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[QAPair]:
        """``k`` pairs without repeats (fewer if the buffer is smaller). ``balanced`` draws
        round-robin over sources, so each source is replayed about equally."""
        pool = [p for pid, p in self.pairs.items() if pid not in exclude]
        if k >= len(pool):
            return pool
        if self.policy == "reservoir":
            return self.rng.sample(pool, k)
        by_source: dict[str, list[QAPair]] = {}
        for p in pool:
            by_source.setdefault(_source(p), []).append(p)
        queues = [self.rng.sample(v, len(v)) for _, v in sorted(by_source.items())]
        out: list[QAPair] = []
        while len(out) < k:
            for q in queues:
                if q and len(out) < k:
                    out.append(q.pop())
        return out

    def draw(self, k: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[QAPair]:
        """``k`` pairs, repeating once every pair has been drawn: whole shuffled passes over
        the buffer, then :meth:`sample` for the rest, so each pair comes ⌊k/n⌋ or ⌈k/n⌉ times.
        Replay spread this way reaches every earlier pair in each round."""
        pool = [p for pid, p in self.pairs.items() if pid not in exclude]
        if not pool or k <= 0:
            return []
        out: list[QAPair] = []
        while k - len(out) >= len(pool):
            out.extend(self.rng.sample(pool, len(pool)))
        return out + self.sample(k - len(out), exclude)

    # -- persistence ------------------------------------------------------------------
    def to_disk(self, path: Path) -> None:
        """``pairs.jsonl`` and ``state.json`` (policy, counters, random state), each written
        to a temporary file and renamed, state last."""
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "pairs.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for p in self.pairs.values():
                f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
        tmp.replace(path / "pairs.jsonl")
        state = {"capacity": self.capacity, "policy": self.policy, "offered": self.offered,
                 "rng": _jsonable(self.rng.getstate())}
        (path / "state.json.tmp").write_text(json.dumps(state))
        (path / "state.json.tmp").replace(path / "state.json")

    @classmethod
    def from_disk(cls, path: Path, *, capacity: int | None = None,
                  policy: Policy | None = None) -> "ReplayBuffer":
        """The saved buffer; a new capacity or policy applies from the next addition (a
        smaller capacity trims at once, by the buffer's own policy)."""
        state = json.loads((path / "state.json").read_text())
        buf = cls(capacity or state["capacity"], policy or state["policy"])
        buf.offered = state["offered"]
        buf.rng.setstate(_tuples(state["rng"]))
        with open(path / "pairs.jsonl", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    p = QAPair(**json.loads(line))
                    buf.pairs[p.id] = p
        while len(buf.pairs) > buf.capacity:
            if buf.policy == "balanced":
                buf._evict_from_largest()
            else:
                del buf.pairs[list(buf.pairs)[buf.rng.randrange(len(buf.pairs))]]
        return buf


def _source(p: QAPair) -> str:
    return p.sources[0] if p.sources else ""


def _jsonable(state: object) -> object:
    return [_jsonable(x) for x in state] if isinstance(state, tuple) else state


def _tuples(state: object) -> object:
    return tuple(_tuples(x) for x in state) if isinstance(state, list) else state
