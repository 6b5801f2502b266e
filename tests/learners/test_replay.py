"""The replay buffer: both policies, replacement, retirement and exact persistence."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from learners.qa import QAPair, pair_id
from learners.replay import ReplayBuffer


def pair(i: int, source: str = "a", answer: str = "x") -> QAPair:
    rel = [["urn:r", 1]]
    return QAPair(question=f"q{i}", topic=f"t{i}", path=[[0, 1]], path_labels=["r"],
                  answers=[answer], evidence=[f"t{i} r {answer}"], hops=1,
                  id=pair_id(f"urn:t{i}", rel), topic_iri=f"urn:t{i}", relations=rel,
                  sources=[source])


def test_reservoir_keeps_early_and_late_pairs_alike() -> None:
    buf = ReplayBuffer(capacity=100, policy="reservoir", seed=1)
    buf.add(pair(i) for i in range(1000))
    assert len(buf) == 100 and buf.offered == 1000
    early = sum(int(p.question[1:]) < 500 for p in buf.pairs.values())
    assert 30 <= early <= 70  # uniform over the stream, not just the first or last 100


def test_balanced_gives_a_small_source_its_share() -> None:
    buf = ReplayBuffer(capacity=100, policy="balanced", seed=1)
    buf.add(pair(i, "big") for i in range(900))
    buf.add(pair(1000 + i, "small") for i in range(100))
    counts = Counter(p.sources[0] for p in buf.pairs.values())
    assert len(buf) == 100 and counts["small"] == 50 == counts["big"]
    drawn = Counter(p.sources[0] for p in buf.sample(20))
    assert drawn == {"big": 10, "small": 10}


def test_same_question_is_replaced_and_retracted_pairs_retire() -> None:
    buf = ReplayBuffer(capacity=10)
    buf.add([pair(1, answer="old"), pair(2)])
    buf.add([pair(1, answer="new")])
    assert len(buf) == 2 and buf.pairs[pair(1).id].answers == ["new"]
    assert buf.retire([pair(2).id, "missing"]) == 1 and pair(2).id not in buf
    assert buf.sample(5, exclude={pair(1).id}) == []


@pytest.mark.parametrize("policy", ["reservoir", "balanced"])
def test_draw_spreads_replay_over_the_whole_buffer(policy: str) -> None:
    buf = ReplayBuffer(capacity=100, policy=policy, seed=3)  # type: ignore[arg-type]
    buf.add(pair(i, source="ab"[i % 2]) for i in range(10))
    drawn = buf.draw(25, exclude={pair(0).id})
    counts = Counter(p.question for p in drawn)
    assert len(drawn) == 25 and "q0" not in counts
    assert set(counts) == {f"q{i}" for i in range(1, 10)}   # every pair, ...
    assert set(counts.values()) <= {2, 3}                    # ... each ⌊25/9⌋ or ⌈25/9⌉ times
    assert buf.draw(0) == [] and ReplayBuffer().draw(5) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=0)
    with pytest.raises(ValueError, match="policy"):
        ReplayBuffer(policy="fifo")  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["reservoir", "balanced"])
def test_saved_buffer_continues_exactly(tmp_path: Path, policy: str) -> None:
    a = ReplayBuffer(capacity=50, policy=policy, seed=3)
    a.add(pair(i, f"s{i % 3}") for i in range(200))
    a.to_disk(tmp_path / "buf")
    b = ReplayBuffer.from_disk(tmp_path / "buf")
    assert list(b.pairs) == list(a.pairs) and b.offered == a.offered
    more = [pair(i, f"s{i % 3}") for i in range(200, 300)]
    a.add(more)
    b.add(more)
    assert list(b.pairs) == list(a.pairs)
    assert [p.id for p in b.sample(10)] == [p.id for p in a.sample(10)]
    smaller = ReplayBuffer.from_disk(tmp_path / "buf", capacity=20)
    assert len(smaller) == 20
