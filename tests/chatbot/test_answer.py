"""Question answering on the sample film graph: linking, paths, answer sets, citations,
"I don't know", clarifying questions, chat context and the batch output — all offline, with
the real MiniLM embedder and the real Oxigraph store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.answer import Answer, QAEngine, open_engine
from chatbot.linking import link
from chatbot.session import ChatSession, is_question
from kg.graphindex import GraphIndex, load_graph_index, tokens
from kg.paths import ZeroShotScorer, candidate_paths, follow
from kg.resolve import SentenceTransformerEmbedder
from kg.store import KnowledgeStore
from tests.conftest import make_settings

HANKS_DIRECTORS = {"Robert Zemeckis", "Steven Spielberg", "Frank Darabont", "John Lasseter",
                   "Lee Unkrich"}


@pytest.fixture(scope="module")
def engine(films: KnowledgeStore, embedder: SentenceTransformerEmbedder) -> QAEngine:
    return open_engine(films, embedder=embedder)


def node(g: GraphIndex, label: str) -> int:
    return g.by_label[" ".join(tokens(label))][0]


# -- the graph index, linking and paths ---------------------------------------------------

def test_graph_index_is_saved_and_rebuilt_when_the_graph_changes(films: KnowledgeStore, tmp_path: Path) -> None:
    g = load_graph_index(films)
    assert (films.root / "index" / "graph" / "graph.pkl").exists()
    assert "starred_actors" in g.relation_labels and "Tom Hanks" in g.labels
    again = load_graph_index(films)
    assert again.stamp == g.stamp and len(again.nodes) == len(g.nodes)
    extra = tmp_path / "extra.txt"
    extra.write_text("Big|starred_actors|Tom Hanks\n")
    report = films.import_file(extra)
    try:
        changed = load_graph_index(films)
        assert changed.stamp != g.stamp and "Big" in changed.labels
    finally:
        films.remove_source(report.source_id)


def test_linking_finds_the_entity_in_a_plain_question(engine: QAEngine) -> None:
    mentions = link(engine.graph, "who directed the films that Tom Hanks starred in")
    assert mentions[0].text == "Tom Hanks"
    assert engine.graph.labels[mentions[0].nodes[0]] == "Tom Hanks"
    # stop words that happen to be labels are not entities
    assert not link(engine.graph, "what is the of in")


def test_paths_follow_both_directions_and_answer_sets(engine: QAEngine) -> None:
    g = engine.graph
    hanks = node(g, "Tom Hanks")
    starred, directed = g.relations.index(next(r for r in g.relations if r.endswith("starred_actors"))), \
        g.relations.index(next(r for r in g.relations if r.endswith("directed_by")))
    path = ((starred, -1), (directed, 1))
    assert path in candidate_paths(g, hanks)
    answers, _ = follow(g, hanks, path)
    assert {g.labels[a] for a in answers} == HANKS_DIRECTORS


def test_zero_shot_scorer_ranks_the_path_the_question_names(engine: QAEngine, embedder) -> None:
    g = engine.graph
    scorer = ZeroShotScorer(embedder)
    paths = candidate_paths(g, node(g, "Tom Hanks"))
    scores = scorer.score(g, "who directed the films that X starred in", paths)
    best = paths[int(scores.argmax())]
    assert [g.relation_labels[r] for r, _ in best] == ["starred_actors", "directed_by"]


# -- answers ------------------------------------------------------------------------------

def test_two_hop_answer_is_the_whole_set_with_evidence_and_sources(engine: QAEngine) -> None:
    a = engine.ask("Who directed the films that Tom Hanks starred in?")
    assert a.status == "answered" and a.topic == "Tom Hanks"
    assert set(a.entities) == HANKS_DIRECTORS
    for chain in a.evidence:  # every chain starts at the topic and ends at an answer
        assert chain[0].object == "Tom Hanks" and chain[0].relation == "starred_actors"
        assert chain[-1].relation == "directed_by" and chain[-1].object in HANKS_DIRECTORS
    assert any(s.document.endswith("films.txt") for s in a.sources)
    assert a.latency_ms > 0 and 0 < a.confidence <= 1
    # clear enough not to be asked back: readings that reach the same answers agree
    assert a.confidence > 0.9, a.confidence


def test_misspelt_name_is_linked_fuzzily_and_said_so(engine: QAEngine) -> None:
    a = engine.ask("Who directed Forest Gumpp?")
    assert a.status == "answered" and a.topic == "Forrest Gump"
    assert a.entities == ["Robert Zemeckis"]
    assert 'read "Forest Gumpp" as "Forrest Gump"' in a.note
    assert (engine.store.root / "index" / "labels" / "labels.faiss").exists()
    # a name that is merely similar in meaning is not a typo of one in the graph
    assert engine.ask("Who directed Sunrise Boulevard?").status == "unknown"


def test_unknown_entity_gets_i_dont_know(engine: QAEngine) -> None:
    a = engine.ask("What is the capital of Atlantis?")
    assert a.status == "unknown" and "don't know" in a.answer and not a.entities


def test_ambiguous_name_gets_a_clarifying_question(tmp_path: Path, embedder) -> None:
    kb = tmp_path / "jordan.ttl"
    kb.write_text("""@prefix kg: <https://w3id.org/kgchat/entity/> .
@prefix kgr: <https://w3id.org/kgchat/relation/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
kg:Jordan_country rdfs:label "Jordan" ; kgr:located_in kg:Asia .
kg:Jordan_person rdfs:label "Jordan" ; kgr:located_in kg:Chicago .
kg:Asia rdfs:label "Asia" . kg:Chicago rdfs:label "Chicago" .
kgr:located_in rdfs:label "located in" .
""")
    with KnowledgeStore.open(tmp_path / "s", make_settings(reason={"auto": False}), create=True) as kg:
        kg.import_file(kb)
        a = open_engine(kg, embedder=embedder).ask("Where is Jordan located?")
    assert a.status == "clarify"
    assert "Which one do you mean" in a.answer and "Asia" in a.answer and "Chicago" in a.answer


def test_generator_that_names_unretrieved_entities_is_overruled(engine: QAEngine) -> None:
    class Liar:
        name, trained = "liar", True

        def generate(self, prompt: str, *, max_new_tokens: int = 32, choices=None) -> str:
            return "tom hanks , alfred hitchcock"

        def stream(self, prompt: str, *, max_new_tokens: int = 32, choices=None):
            yield self.generate(prompt)

    class Echo(Liar):
        name = "echo"

        offered: list = []
        prompts: list = []

        def generate(self, prompt: str, *, max_new_tokens: int = 32, choices=None) -> str:
            self.offered.append(choices)
            self.prompts.append(prompt)
            return "frank darabont"  # uncased, as the tiny model writes

    try:
        engine.generator = Liar()
        a = engine.ask("Who directed the films that Tom Hanks starred in?")
        assert a.generator == "retrieval" and "not among the retrieved answers" in a.note
        assert set(a.entities) == HANKS_DIRECTORS
        engine.generator = Echo()
        b = engine.ask("Who directed the films that Tom Hanks starred in?")
        assert b.generator == "echo" and b.answer.startswith("Frank Darabont, ") and b.entities[0] == "Frank Darabont"
        assert set(b.entities) == HANKS_DIRECTORS
        # constrained decoding is offered the answers of the evidence lines, nothing else
        assert Echo.offered[-1] and set(Echo.offered[-1]) <= HANKS_DIRECTORS
        first_line = Echo.prompts[-1].split("evidence: ")[1]
        assert first_line.startswith(f"{Echo.offered[-1][0]} <- Tom Hanks starred actors of ")
    finally:
        engine.generator = None


def test_untrained_generator_falls_back_visibly(engine: QAEngine) -> None:
    class Untrained:
        name, trained = "tiny", False

        def generate(self, prompt: str, *, max_new_tokens: int = 32) -> str:
            raise AssertionError("an untrained model must not be asked")

    try:
        engine.generator = Untrained()
        a = engine.ask("Who directed Forrest Gump?")
        assert a.entities == ["Robert Zemeckis"] and "untrained" in a.note
    finally:
        engine.generator = None


# -- chat ---------------------------------------------------------------------------------

def test_chat_keeps_context_for_follow_up_questions(engine: QAEngine) -> None:
    session = ChatSession(engine)
    first = session.turn("Which films did Robert Zemeckis direct?")
    assert isinstance(first, Answer)
    assert set(first.entities) == {"Forrest Gump", "Cast Away", "Back to the Future",
                                   "Who Framed Roger Rabbit"}
    follow_up = session.turn("and who wrote them?")
    assert isinstance(follow_up, Answer) and follow_up.status == "answered"
    assert {"Eric Roth", "Bob Gale", "William Broyles Jr."} <= set(follow_up.entities)


def test_questions_and_statements_are_told_apart() -> None:
    assert is_question("who wrote them") and is_question("Dana leads what?")
    assert not is_question("Dana leads the platform team.")


def test_batch_mode_writes_one_json_object_per_question(films: KnowledgeStore, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from chatbot.cli import main

    questions = tmp_path / "q.txt"
    questions.write_text("Who directed Forrest Gump?\n\nWhat is the capital of Atlantis?\n")
    root = str(films.root)
    films.close()  # the CLI opens the store itself
    try:
        main(["--store", root, "ask", "--file", str(questions), "--format", "jsonl"])
    except SystemExit as exc:
        assert not exc.code
    finally:
        reopened = KnowledgeStore.open(Path(root), films.settings)
        films.__dict__.update(reopened.__dict__)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(lines) == 2
    for row in lines:
        assert {"question", "answer", "entities", "evidence", "sources", "confidence",
                "latency_ms"} <= set(row)
    assert lines[0]["entities"][0] == "Robert Zemeckis" and lines[1]["status"] == "unknown"


def test_chat_learns_a_stated_fact_and_answers_from_it(tmp_path: Path, embedder) -> None:
    with KnowledgeStore.open(tmp_path / "s", make_settings(reason={"auto": False}), create=True) as kg:
        session = ChatSession(open_engine(kg, embedder=embedder), speaker="Sam")
        try:
            assert session.turn("What is the capital of Atlantis?").status == "unknown"
            reply = session.turn("Dana Whitfield leads the platform team.")
            assert isinstance(reply, str) and reply.startswith("Learned") and "Dana Whitfield" in reply
            a = session.turn("Who leads the platform team?")
            assert isinstance(a, Answer) and a.entities == ["Dana Whitfield"]
            # cited: the conversation turn it was stated in, with its sentence
            assert any(s.document.startswith("urn:kgchat:chat:") and "Dana Whitfield" in s.sentence
                       for s in a.sources if s.kind == "fact")
        finally:
            session.close()
