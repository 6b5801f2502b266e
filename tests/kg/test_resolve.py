"""Entity resolution with real MiniLM embeddings (loaded once for the module)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from kg.config import ResolveSettings
from kg.errors import StoreError
from kg.extract.base import Mention
from kg.resolve import (
    CachedEmbedder, EntityResolver, FaissIndex, ResolvedEntity, SentenceTransformerEmbedder,
    normalise_name, open_resolver, string_similarity, type_iri,
)
from kg.vocab import RDF, RDFS, SKOS, Vocabulary

VOCAB = Vocabulary()


def ent(name: str) -> str:
    return VOCAB.entity(name)


class CountingEmbedder:
    """Wraps a real embedder and counts the texts it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls = 0
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture
def resolver(minilm: SentenceTransformerEmbedder) -> EntityResolver:
    return EntityResolver(VOCAB, minilm, FaissIndex(minilm.dim), ResolveSettings())


def ingest(resolver: EntityResolver, source: str, mentions: list[tuple[str, str]],
           graph: list[tuple[str, str, str, str]] | None = None) -> dict[str, ResolvedEntity]:
    """resolve → (write the graph) → register, as ingest does; returns results by name."""
    resolved = resolver.resolve(mentions)
    if graph is not None:
        graph[:] = [row for row in graph if row[0] != source]
        graph.extend((source, str(s), str(p), str(o)) for r in resolved for s, p, o in r.triples())
    resolver.register(source, resolved)
    return {r.alias: r for r in resolved}


# -- names, types ------------------------------------------------------------------

def test_type_iri_maps_ner_labels_to_vocab_classes() -> None:
    assert type_iri("PERSON") == str(VOCAB.KGV["Person"])
    assert type_iri("GPE") == type_iri("LOC") == type_iri("FAC") == str(VOCAB.KGV["Place"])
    assert type_iri("ORG") == str(VOCAB.KGV["Organization"])
    assert type_iri("WORK_OF_ART") == str(VOCAB.KGV["Work"])
    assert type_iri("") == type_iri("SOMETHING_ELSE") == str(VOCAB.KGV["Thing"])
    assert type_iri(type_iri("PERSON")) == type_iri("Person") == type_iri("PERSON")


def test_normalise_name() -> None:
    assert normalise_name("The  Beatles") == normalise_name("the beatles") == "beatles"
    assert normalise_name("U.S.") == "us"
    assert normalise_name("Apple Inc.") == normalise_name("Apple") == "apple"
    assert normalise_name("Hanks's") == "hanks"
    assert normalise_name("Beyoncé") == "beyonce"
    assert normalise_name("The") == "the"


def test_string_similarity_guards() -> None:
    assert string_similarity("Oxford University", "University of Oxford") == 1.0
    assert string_similarity("Theatre Royal", "Theater Royal") > 0.9
    assert string_similarity("World War I", "World War II") == 0.0          # numbers differ
    assert string_similarity("BBC One", "BBC Two") == 0.0
    assert string_similarity("Rural Oahu Association", "Oahu Association") == 0.0


# -- matching rules ----------------------------------------------------------------

def test_exact_alias_is_reused(resolver: EntityResolver) -> None:
    first = ingest(resolver, "a", [("The Beatles", "ORG")])["The Beatles"]
    assert first.new and first.iri == ent("The Beatles") and first.rule == "new"
    again = resolver.resolve([("the  Beatles", "ORG"), ("The Beatles", "ORG")])
    assert {r.iri for r in again} == {first.iri}
    assert all(not r.new and not r.merged and r.rule == "exact" for r in again)
    assert again[0].alias == "the Beatles" and again[0].label == "The Beatles"


def test_ibm_and_its_full_name_stay_separate(resolver: EntityResolver) -> None:
    # MiniLM puts them at cosine ≈ 0.53, far below 0.86, and the strings share nothing:
    # acronyms are not resolved (no acronym rule; see the report).
    ingest(resolver, "a", [("IBM", "ORG")])
    full = resolver.resolve([("International Business Machines", "ORG")])[0]
    assert full.new and full.iri == ent("International Business Machines")


def test_tom_hanks_short_forms_merge_within_a_document(resolver: EntityResolver) -> None:
    got = ingest(resolver, "a", [("Hanks", "PERSON"), ("Mr. Hanks", "PERSON"), ("Tom Hanks", "PERSON")])
    assert {r.iri for r in got.values()} == {ent("Tom Hanks")}
    assert got["Tom Hanks"].rule == "new"
    assert {got["Hanks"].rule, got["Mr. Hanks"].rule} <= {"person", "exact"}
    assert got["Hanks"].merged or got["Mr. Hanks"].merged
    assert all(r.label == "Tom Hanks" and r.type == str(VOCAB.KGV["Person"]) for r in got.values())
    # Later documents find the registered aliases.
    later = resolver.resolve([("Mr. Hanks", "PERSON"), ("Tom Hanks", "PERSON")])
    assert {r.iri for r in later} == {ent("Tom Hanks")}
    assert resolver.info(ent("Tom Hanks")).aliases == ("Hanks", "Mr. Hanks", "Tom Hanks")


def test_bare_surname_follows_the_person_named_in_the_document(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Tom Hanks", "PERSON"), ("Hanks", "PERSON")])
    colin = ingest(resolver, "b", [("Colin Hanks", "PERSON"), ("Hanks", "PERSON")])
    assert colin["Hanks"].iri == colin["Colin Hanks"].iri == ent("Colin Hanks")
    assert colin["Hanks"].rule == "person" and colin["Hanks"].merged
    # Two Hankses named in one document, "Hanks" an alias of both: it stays apart.
    both = resolver.resolve([("Tom Hanks", "PERSON"), ("Colin Hanks", "PERSON"), ("Hanks", "PERSON")])
    assert both[2].iri == ent("Hanks") and both[2].rule == "new"


def test_bare_surname_alone_does_not_merge_across_documents(minilm: SentenceTransformerEmbedder) -> None:
    doc_scope = EntityResolver(VOCAB, minilm)
    ingest(doc_scope, "a", [("Stanley Kubrick", "PERSON")])
    assert doc_scope.resolve([("Kubrick", "PERSON")])[0].iri == ent("Kubrick")
    assert doc_scope.resolve([("Kubrick", "PERSON")], short_names="registry")[0].iri == \
        ent("Stanley Kubrick")                                  # per call, e.g. a chat turn
    wide = EntityResolver(VOCAB, minilm, short_names="registry")
    ingest(wide, "a", [("Stanley Kubrick", "PERSON"), ("Hamilton", "GPE"), ("Tom Hanks", "PERSON"),
                       ("Lewis Hamilton", "PERSON")])
    assert wide.resolve([("Kubrick", "PERSON")])[0].iri == ent("Stanley Kubrick")
    # … unless the surname is also a word of another entity's name (the city Hamilton).
    assert wide.resolve([("Hamilton", "PERSON")])[0].iri == ent("Hamilton (Person)")
    ingest(wide, "b", [("Colin Hanks", "PERSON")])
    assert wide.resolve([("Hanks", "PERSON")])[0].iri == ent("Hanks")     # two Hankses
    with pytest.raises(ValueError):
        wide.resolve([("Hanks", "PERSON")], short_names="everywhere")


def test_full_name_variants(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Christopher Edward Nolan", "PERSON"), ("Dale Earnhardt Jr.", "PERSON")])
    got = resolver.resolve([("Christopher Nolan", "PERSON"), ("C. Nolan", "PERSON"),
                            ("Dale Earnhardt", "PERSON")])
    assert got[0].iri == got[1].iri == ent("Christopher Edward Nolan") and got[0].merged
    assert got[2].iri == ent("Dale Earnhardt") and got[2].new          # father ≠ son
    # A full name never joins a surname-only entity.
    ingest(resolver, "b", [("Williams", "PERSON")])
    assert resolver.resolve([("Walter Williams", "PERSON")])[0].iri == ent("Walter Williams")


def test_paris_place_and_paris_hilton_stay_separate(resolver: EntityResolver) -> None:
    got = ingest(resolver, "a", [("Paris", "GPE"), ("Paris Hilton", "PERSON")])
    assert got["Paris"].iri == ent("Paris") and got["Paris"].type == str(VOCAB.KGV["Place"])
    assert got["Paris Hilton"].iri == ent("Paris Hilton")
    # A person called just "Paris" is neither the city nor (by first name) Paris Hilton;
    # the city holds the plain IRI, so the person's is disambiguated by class.
    person = resolver.resolve([("Paris", "PERSON")])[0]
    assert person.iri == ent("Paris (Person)") and person.new and person.label == "Paris"
    assert resolver.resolve([("Paris", "LOC")])[0].iri == ent("Paris")   # LOC ~ GPE


def test_apple_company_and_apple_noun_stay_separate(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Apple", "ORG")])
    noun = resolver.resolve([("apple", "")])[0]
    assert noun.iri == ent("apple") and noun.iri != ent("Apple")
    assert noun.type == str(VOCAB.KGV["Thing"]) and noun.new
    ingest(resolver, "b", [("apple", "")])
    again = resolver.resolve([("Apple", "ORG"), ("apple", "")])
    assert [r.iri for r in again] == [ent("Apple"), ent("apple")]


def test_untyped_name_gets_its_type_from_a_typed_mention(resolver: EntityResolver) -> None:
    graph: list[tuple[str, str, str, str]] = []
    ingest(resolver, "a", [("Tom Hanks", "")], graph)
    assert resolver.info(ent("Tom Hanks")).type == str(VOCAB.KGV["Thing"])
    typed = ingest(resolver, "b", [("Tom Hanks", "PERSON")], graph)["Tom Hanks"]
    assert typed.iri == ent("Tom Hanks") and typed.rule == "surface"
    assert resolver.info(ent("Tom Hanks")).type == str(VOCAB.KGV["Person"])
    rebuilt = EntityResolver(VOCAB, resolver.embedder)
    rebuilt.rebuild(graph)
    assert rebuilt.snapshot() == resolver.snapshot()


def test_embedding_merges_need_string_and_type_agreement(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Theatre Royal", "FAC"), ("Oxford University", "ORG"),
                           ("World War I", "EVENT"), ("Manchester United", "ORG")])
    got = resolver.resolve([("Theater Royal", "FAC"), ("University of Oxford", "ORG"),
                            ("World War II", "EVENT"), ("Manchester City", "ORG"),
                            ("Oxford University", "PERSON")])
    assert got[0].iri == ent("Theatre Royal") and got[0].rule == "embedding" and got[0].merged
    assert got[0].score >= 0.86 and got[0].string_score >= 0.9
    assert got[1].iri == ent("Oxford University") and got[1].merged
    assert got[2].iri == ent("World War II") and got[2].new
    assert got[3].iri == ent("Manchester City") and got[3].new
    assert got[4].iri == ent("Oxford University (Person)")                 # class disagrees


def test_dates_match_exactly_only(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("2019", "DATE")])
    assert resolver.resolve([("2018", "DATE")])[0].iri == ent("2018")
    assert resolver.resolve([("2019", "DATE")])[0].iri == ent("2019")


def test_canonical_label_drops_what_ner_spans_drag_along(resolver: EntityResolver) -> None:
    got = resolver.resolve([("the Theatre Royal", "FAC"), ("Franz Schubert's", "PERSON")])
    assert (got[0].iri, got[0].label, got[0].alias) == (ent("Theatre Royal"), "Theatre Royal",
                                                       "the Theatre Royal")
    assert got[1].iri == ent("Franz Schubert") and got[1].label == "Franz Schubert"
    triples = {(str(p), str(o)) for s, p, o in got[0].triples()}
    assert triples == {(str(RDFS.label), "Theatre Royal"), (str(SKOS.altLabel), "the Theatre Royal"),
                       (str(RDF.type), str(VOCAB.KGV["Place"]))}


def test_accepts_mentions_and_rejects_empty_names(resolver: EntityResolver) -> None:
    got = resolver.resolve([Mention("he", 0, 2, "PERSON", canonical="Tom Hanks")])
    assert got[0].iri == ent("Tom Hanks") and got[0].mention_type == "PERSON"
    with pytest.raises(ValueError):
        resolver.resolve([("  ", "ORG")])


def test_resolve_changes_nothing(resolver: EntityResolver) -> None:
    first = resolver.resolve([("Tom Hanks", "PERSON"), ("Hanks", "PERSON")])
    assert len(resolver) == 0 and len(resolver.index) == 0
    assert resolver.resolve([("Tom Hanks", "PERSON"), ("Hanks", "PERSON")]) == first


# -- determinism ---------------------------------------------------------------------

DOC_A = [("Tom Hanks", "PERSON"), ("Paris", "GPE"), ("Theatre Royal", "FAC"), ("Apple", "ORG")]
DOC_B = [("Tom Hanks", "PERSON"), ("Hanks", "PERSON"), ("Mr. Hanks", "PERSON"),
         ("Paris Hilton", "PERSON"), ("Paris", "GPE"), ("apple", ""), ("Theatre Royal", "FAC"),
         ("the Theatre Royal", "FAC")]
DOC_C = [("Theater Royal", "FAC"), ("University of Oxford", "ORG"), ("Oxford University", "ORG")]


def test_mention_order_within_a_document_does_not_matter(minilm: SentenceTransformerEmbedder) -> None:
    base = EntityResolver(VOCAB, minilm)
    ingest(base, "a", [("Oxford University", "ORG")])
    mentions = DOC_B + DOC_C
    expected = {(r.alias, r.mention_type): r for r in base.resolve(mentions)}
    rng = random.Random(7)
    for _ in range(5):
        shuffled = rng.sample(mentions, len(mentions))
        got = {(r.alias, r.mention_type): r for r in base.resolve(shuffled)}
        assert got == expected


def test_document_order_gives_the_same_iris(minilm: SentenceTransformerEmbedder) -> None:
    finals = []
    for order in itertools.permutations([("a", DOC_A), ("b", DOC_B), ("c", DOC_C)]):
        r = EntityResolver(VOCAB, minilm)
        names: dict[tuple[str, str], str] = {}
        for source, doc in order:
            for m, res in zip(doc, r.resolve(doc)):
                names[m] = res.iri
            r.register(source, r.resolve(doc))
        # Which names denote one entity never depends on the order …
        partition = sorted(sorted(m for m in names if names[m] == iri) for iri in set(names.values()))
        # … and the IRIs do not either, except where an embedding merge picks whichever
        # spelling came first ("Theatre Royal" vs "Theater Royal").
        stable = {m: iri for m, iri in names.items() if "Royal" not in m[0]}
        labels = {i.label for i in r.snapshot().values()} - {"Theatre Royal", "Theater Royal"}
        finals.append((partition, stable, labels))
    for f in finals[1:]:
        assert f == finals[0]
    partition, stable, _ = finals[0]
    assert stable[("Hanks", "PERSON")] == stable[("Tom Hanks", "PERSON")] == ent("Tom Hanks")
    assert stable[("apple", "")] != stable[("Apple", "ORG")]


def test_rebuild_reproduces_registry_and_decisions(minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    graph: list[tuple[str, str, str, str]] = []
    live = EntityResolver(VOCAB, minilm)
    for source, doc in (("a", DOC_A), ("b", DOC_B), ("c", DOC_C)):
        ingest(live, source, doc, graph)
    rebuilt = EntityResolver(VOCAB, minilm)
    rebuilt.rebuild(reversed(graph), stamp="42")
    assert rebuilt.stamp == "42"
    assert rebuilt.snapshot() == live.snapshot()
    aliases = sum(len(i.aliases) for i in live.snapshot().values())
    assert rebuilt.pending == live.pending == aliases      # the label index fills lazily …
    assert rebuilt.sync_index() == live.sync_index() == aliases
    assert len(rebuilt.index) == len(live.index) == aliases and rebuilt.pending == 0
    probe = [("Theater Royal", "FAC"), ("Hanks", "PERSON"), ("Paris", "PERSON"),
             ("Oxford Univ.", "ORG"), ("Tom Hanks", ""), ("Royal Theatre", "FAC")]
    assert rebuilt.resolve(probe) == live.resolve(probe)
    with pytest.raises(ValueError):
        rebuilt.rebuild([("a", ent("X"), "http://schema.org/name", "X")])


def test_label_search_finds_fuzzy_names(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Tom Hanks", "PERSON"), ("Paris", "GPE"), ("Theatre Royal", "FAC")])
    [hits] = resolver.search_labels(["Theater Royale"], k=2)
    assert hits[0][1:] == (ent("Theatre Royal"), "Theatre Royal") and hits[0][0] > hits[1][0]
    assert resolver.pending == 0 and len(resolver.index) == 3


def test_release_garbage_collects(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Tom Hanks", "PERSON"), ("Paris", "GPE")])
    ingest(resolver, "b", [("Tom Hanks", "PERSON"), ("Hanks", "PERSON"), ("Apple", "ORG")])
    assert resolver.release("b") == [ent("Apple")]
    assert ent("Apple") not in resolver and resolver.info(ent("Tom Hanks")).aliases == ("Tom Hanks",)
    assert resolver.sync_index() == 2 and len(resolver.index) == 2
    # The alias went with its source: "Hanks" alone no longer reaches Tom Hanks.
    assert resolver.resolve([("Hanks", "PERSON")])[0].iri == ent("Hanks")
    assert resolver.release("a") == [ent("Paris"), ent("Tom Hanks")]
    assert len(resolver) == 0 and len(resolver.index) == 0 and resolver.sources() == []
    assert resolver.release("never-seen") == []


def test_register_replaces_a_sources_support(resolver: EntityResolver) -> None:
    ingest(resolver, "a", [("Tom Hanks", "PERSON"), ("Paris", "GPE")])
    assert resolver.register("a", resolver.resolve([("Tom Hanks", "PERSON")])) == [ent("Paris")]
    assert resolver.info(ent("Tom Hanks")).sources == ("a",)


# -- persistence and caching -----------------------------------------------------------

def test_to_disk_from_disk_round_trip(minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    live = EntityResolver(VOCAB, minilm)
    for source, doc in (("a", DOC_A), ("b", DOC_B), ("c", DOC_C)):
        ingest(live, source, doc)
    live.stamp = "17"
    live.sync_index()
    live.to_disk(tmp_path / "entities")
    live.to_disk(tmp_path / "entities")                        # overwriting is fine
    counting = CountingEmbedder(minilm)
    loaded = EntityResolver.from_disk(tmp_path / "entities", VOCAB, counting, ResolveSettings())
    assert loaded.stamp == "17" and counting.texts == []      # the saved index was used
    assert loaded.snapshot() == live.snapshot() and len(loaded.index) == len(live.index)
    probe = [("Theater Royal", "FAC"), ("Hanks", "PERSON"), ("Paris Hilton", "PERSON")]
    assert loaded.resolve(probe) == live.resolve(probe)
    files = sorted(p.name for p in (tmp_path / "entities").iterdir()
                   if not p.name.endswith(("-wal", "-shm")))     # SQLite's own journal files
    assert len(files) == 3 and "meta.json" in files and "facts.sqlite" in files

    # A missing index is re-made from the facts (through the embedder) when needed.
    meta = json.loads((tmp_path / "entities" / "meta.json").read_text())
    (tmp_path / "entities" / meta["index"]).unlink()
    again = EntityResolver.from_disk(tmp_path / "entities", VOCAB, counting)
    assert again.snapshot() == live.snapshot() and again.pending == len(live.index)
    assert again.sync_index() == len(live.index) == len(again.index)
    assert again.resolve(probe) == live.resolve(probe)
    with pytest.raises(StoreError):
        EntityResolver.from_disk(tmp_path / "nothing-here", VOCAB, minilm)


def test_open_resolver_loads_a_fresh_cache_and_rebuilds_a_stale_one(
        minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    graph: list[tuple[str, str, str, str]] = []
    live = EntityResolver(VOCAB, minilm)
    for source, doc in (("a", DOC_A), ("b", DOC_B)):
        ingest(live, source, doc, graph)
    calls = []

    def rows() -> list[tuple[str, str, str, str]]:
        calls.append(1)
        return graph

    first = open_resolver(VOCAB, ResolveSettings(), tmp_path / "idx", stamp="s1", rows=rows,
                          embedder=minilm)
    assert len(calls) == 1 and first.snapshot() == live.snapshot() and first.stamp == "s1"
    second = open_resolver(VOCAB, ResolveSettings(), tmp_path / "idx", stamp="s1", rows=rows,
                           embedder=minilm)
    assert len(calls) == 1 and second.snapshot() == live.snapshot()       # loaded, not rebuilt
    ingest(live, "c", DOC_C, graph)
    third = open_resolver(VOCAB, ResolveSettings(), tmp_path / "idx", stamp="s2", rows=rows,
                          embedder=minilm)
    assert len(calls) == 2 and third.snapshot() == live.snapshot() and third.stamp == "s2"
    (tmp_path / "idx" / "meta.json").write_text("{not json")               # corrupt: rebuilt
    fourth = open_resolver(VOCAB, ResolveSettings(), tmp_path / "idx", stamp="s2", rows=rows,
                           embedder=minilm)
    assert len(calls) == 3 and fourth.snapshot() == live.snapshot()


def test_open_resolver_default_embedder_is_cached_minilm(tmp_path: Path) -> None:
    with open_resolver(VOCAB, ResolveSettings(), tmp_path / "idx", stamp="", rows=list) as r:
        assert isinstance(r.embedder, CachedEmbedder) and r.embedder.dim == 384
        ingest(r, "a", [("Tom Hanks", "PERSON")])
    assert (tmp_path / "idx" / "embeddings.sqlite").is_file()
    with pytest.raises(StoreError):
        r.search_labels(["Paris"])                                          # closed


def test_cached_embedder_never_embeds_a_text_twice(minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    counting = CountingEmbedder(minilm)
    with CachedEmbedder.open(counting, tmp_path / "cache.sqlite") as cache:
        first = cache.embed(["Tom Hanks", "Paris", "Tom Hanks"])
        assert counting.texts == ["Tom Hanks", "Paris"]
        assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
        second = cache.embed(["Paris", "Tom Hanks"])
        assert counting.calls == 1 and np.array_equal(second, first[[1, 0]])
        assert cache.embed([]).shape == (0, minilm.dim)

    with CachedEmbedder.open(counting, tmp_path / "cache.sqlite") as cache:   # a new run
        graph: list[tuple[str, str, str, str]] = []
        resolver = EntityResolver(VOCAB, cache)
        for source, doc in (("a", DOC_A), ("b", DOC_B)):
            ingest(resolver, source, doc, graph)
        seen = list(counting.texts)
        assert len(seen) == len(set(seen)) and "Tom Hanks" not in seen[2:]
        rebuilt = EntityResolver(VOCAB, cache)
        rebuilt.rebuild(graph)
        resolver.resolve(DOC_A + DOC_B)
        assert counting.texts == seen                          # rebuild re-embedded nothing
        assert len(cache) == len(set(seen))
    with pytest.raises(StoreError):
        cache.embed(["closed"])


def test_faiss_index_add_search_remove_persist(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 1050, dtype=np.int64) * 7_000_000_000_000   # large int64 ids
    index = FaissIndex(16)
    scores, found = index.search(vectors[:2], 3)
    assert found.shape == (2, 3) and (found == -1).all()
    index.add(ids, vectors)
    assert len(index) == 50
    scores, found = index.search(vectors[:5], 3)
    assert (found[:, 0] == ids[:5]).all() and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert index.remove(np.array([ids[0], ids[1], 12345])) == 2 and len(index) == 48
    _, found = index.search(vectors[:2], 1)
    assert not set(found.ravel()) & {ids[0], ids[1]}
    _, found = index.search(vectors[:1], 60)                 # k beyond the size: -1 padding
    assert (found[0, 48:] == -1).all()
    index.to_disk(tmp_path / "vectors.faiss")
    loaded = FaissIndex.from_disk(tmp_path / "vectors.faiss")
    assert len(loaded) == 48 and loaded.dim == 16
    assert set(loaded.ids().tolist()) == set(ids[2:].tolist())
    assert np.array_equal(loaded.search(vectors[2:4], 4)[1], index.search(vectors[2:4], 4)[1])
    with pytest.raises(ValueError):
        index.add(ids[:2], vectors[:2, :8])
    with pytest.raises(StoreError):
        FaissIndex.from_disk(tmp_path / "missing.faiss")
