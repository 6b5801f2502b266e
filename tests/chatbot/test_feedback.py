"""Feedback and active learning on a real store built from data/sample: a correction becomes
a triple in a feedback source with PROV-O provenance, the contradicted triple is kept with
its validity ended and no longer used; pending feedback waits for `kgchat feedback apply`;
a learning round teaches the new truth; an unsure answer asks back and learns the reply,
in a ChatSession and through POST /chat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from chatbot.answer import Answer, QAEngine, open_engine
from chatbot.cli import main
from chatbot.server import ServerConfig, ServiceState, create_app
from chatbot.session import ChatSession
from kg.errors import FeedbackError
from kg.feedback import Correction, FeedbackQueue, apply_correction
from kg.graphindex import load_graph_index
from kg.store import KnowledgeStore
from kg.validity import superseded
from tests.conftest import SAMPLE, make_settings

TOKEN = "feedback-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENT = "https://w3id.org/kgchat/entity/"
FG_DIRECTED_BY_RZ = (f"<{ENT}Forrest_Gump>", "<https://w3id.org/kgchat/relation/directed_by>",
                     f"<{ENT}Robert_Zemeckis>")


def sample_store(root: Path, *, reason: bool = False, kb: tuple[str, ...] = ("films.txt", "people.ttl",
                                                                           "schema.ttl")) -> KnowledgeStore:
    kg = KnowledgeStore.open(root, make_settings(reason={"auto": reason}), create=True)
    kg.import_files([SAMPLE / name for name in kb])
    if reason:
        kg.reason()
    return kg


def ask(engine: QAEngine, question: str) -> Answer:
    a = engine.ask(question)
    assert a.status == "answered", a
    return a


def rows(kg: KnowledgeStore, query: str) -> list[tuple[str, ...]]:
    return [tuple(str(x) for x in row) for row in kg.query(query).rows]  # type: ignore[union-attr]


# -- supersession -------------------------------------------------------------------------------

def test_a_correction_supersedes_the_old_triple_and_changes_the_answer(tmp_path: Path, embedder) -> None:
    with sample_store(tmp_path / "s", reason=True) as kg:
        engine = open_engine(kg, embedder=embedder)
        a = ask(engine, "Who directed Forrest Gump?")
        assert a.entities == ["Robert Zemeckis"] and a.topic_id == f"{ENT}Forrest_Gump" and a.relations
        last = a.evidence[0][-1]  # the /chat response names the fact the answer rests on
        assert last.subject_id and last.relation_id and last.object_id
        c = Correction(question=a.question, answer=a.answer, right_answer="Steven Spielberg",
                       speaker="alice", session_id="s-1", topic=a.topic_id, relations=a.relations)
        applied = apply_correction(kg, c, engine.graph)
        assert FG_DIRECTED_BY_RZ in applied.superseded and applied.answers == ["Steven Spielberg"]
        record = kg.source(applied.source_id)
        assert record is not None and record.kind == "feedback" and record.uri == f"urn:kgchat:feedback:{c.id}"

        # provenance: who, when, which question, in the feedback source's own graph
        prov = rows(kg, f"""SELECT DISTINCT ?q ?who ?when ?src WHERE {{ GRAPH <{record.graph}> {{
            ?st a kgv:FeedbackStatement ; rdf:subject|rdf:object kg:Steven_Spielberg ;
                prov:wasDerivedFrom ?m .
            ?m kgv:question ?q ; kgv:session "s-1" ; prov:wasAttributedTo ?agent ; prov:generatedAtTime ?when .
            ?agent rdfs:label ?who .
            {{ kg:Forrest_Gump kgr:directed_by kg:Steven_Spielberg }} UNION
            {{ kg:Steven_Spielberg kgr:directed kg:Forrest_Gump }} }}
            GRAPH kgg:provenance {{ <{record.graph}> prov:wasDerivedFrom ?src }} }}""")
        assert len(prov) == 1 and prov[0][:2] == ("Who directed Forrest Gump?", "alice")
        assert prov[0][2].startswith(c.received_at[:19]) and prov[0][3] == record.uri

        # the old triple is kept, its validity ended; SPARQL users see both
        assert kg.query("ASK { GRAPH ?g { kg:Forrest_Gump kgr:directed_by kg:Robert_Zemeckis } "
                        "FILTER(?g != kgg:inferred) }").boolean  # type: ignore[union-attr]
        ended = rows(kg, """SELECT DISTINCT ?t WHERE { ?st a kgv:SupersededStatement ; rdf:subject kg:Forrest_Gump ;
            rdf:predicate kgr:directed_by ; rdf:object kg:Robert_Zemeckis ; prov:invalidatedAtTime ?t ;
            kgv:supersededBy ?new . ?new rdf:subject|rdf:object kg:Steven_Spielberg }""")
        assert len(ended) == 1 and ended[0][0][:4].isdigit()
        assert FG_DIRECTED_BY_RZ in superseded(kg.backend, kg.vocab)
        # what the superseded triple entailed went with it (kgr:directed is its inverse)
        assert not kg.query("ASK { GRAPH kgg:inferred { kg:Robert_Zemeckis kgr:directed kg:Forrest_Gump } }").boolean  # type: ignore[union-attr]

        # answers use the new value; the superseded one is not evidence
        engine.reload()
        again = ask(engine, "Who directed Forrest Gump?")
        assert again.entities == ["Steven Spielberg"]
        hops = [h for chain in again.evidence for h in chain]
        assert all("Robert Zemeckis" not in (h.subject, h.object) for h in hops)
        assert any(s.kind == "feedback" and "alice" in s.sentence and s.document == record.uri
                   for s in again.sources)
        films = ask(engine, "Which films did Robert Zemeckis direct?").entities
        assert "Forrest Gump" not in films and "Cast Away" in films

        # a later correction can make the old triple valid again
        back = Correction(question=a.question, answer="Steven Spielberg.", right_answer="Robert Zemeckis",
                          speaker="bob", topic=again.topic_id, relations=again.relations)
        apply_correction(kg, back, engine.graph)
        assert FG_DIRECTED_BY_RZ not in superseded(kg.backend, kg.vocab)
        engine.reload()
        assert ask(engine, "Who directed Forrest Gump?").entities == ["Robert Zemeckis"]


def test_corrections_that_cannot_be_applied_say_why(tmp_path: Path, embedder) -> None:
    with sample_store(tmp_path / "s", kb=("films.txt",)) as kg:
        g = load_graph_index(kg)
        a = ask(open_engine(kg, embedder=embedder), "Who directed Forrest Gump?")
        same = Correction(question=a.question, answer=a.answer, right_answer="Robert Zemeckis",
                          topic=a.topic_id, relations=a.relations)
        with pytest.raises(FeedbackError, match="says already"):
            apply_correction(kg, same, g)
        with pytest.raises(FeedbackError, match="cannot tell which fact"):
            apply_correction(kg, Correction(question="Who?", answer="x", right_answer="y"), g)
        value = Correction(question="When?", answer=a.answer, right_answer="1994",
                           topic=a.topic_id, relations=a.relations)
        with pytest.raises(FeedbackError, match="looks like a value"):
            apply_correction(kg, value, g)
        assert not [r for r in kg.sources() if r.kind == "feedback"]


# -- the service: pending without a token, applied with one ----------------------------------------

def served(kg: KnowledgeStore, embedder, **config) -> ServiceState:
    return ServiceState(kg, ServerConfig(**config), lambda store: open_engine(store, embedder=embedder)).open()


def test_feedback_without_a_token_waits_for_the_operator(tmp_path: Path, embedder, capsys) -> None:
    root = tmp_path / "s"
    kg = sample_store(root, kb=("films.txt",))
    state = served(kg, embedder, token=TOKEN)
    with TestClient(create_app(state)) as client:
        a = client.post("/chat", json={"session_id": "p", "message": "Who directed Forrest Gump?"}).json()
        hop = a["answer"]["evidence"][0][-1]
        assert hop["subject_id"] == f"{ENT}Forrest_Gump" and hop["object_id"] == f"{ENT}Robert_Zemeckis"
        assert a["answer"]["relations"] == [["https://w3id.org/kgchat/relation/directed_by", 1]]
        r = client.post("/feedback", json={"answer_id": a["answer_id"], "correct": False,
                                           "right_answer": "Steven Spielberg", "speaker": "carol"})
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        pending_id = r.json()["id"]
        r = client.post("/feedback", json={"session_id": "p", "question": "Who wrote Cast Away?",
                                           "answer": "William Broyles Jr.", "correct": False,
                                           "right_answer": "Nobody", "topic": "Cast Away",
                                           "relations": [["https://w3id.org/kgchat/relation/written_by", 1]]})
        assert r.status_code == 201 and r.json()["status"] == "pending"
        rejected_id = r.json()["id"]
        # nothing changed in the graph
        a = client.post("/chat", json={"session_id": "p", "message": "Who directed Forrest Gump?"}).json()
        assert a["answer"]["entities"] == ["Robert Zemeckis"]
        # with the token a correction is applied at once
        b = client.post("/chat", json={"session_id": "q", "message": "Who wrote Forrest Gump?"}).json()
        r = client.post("/feedback", json={"answer_id": b["answer_id"], "correct": False,
                                           "right_answer": "Winston Groom"}, headers=AUTH)
        assert r.status_code == 201 and r.json()["status"] == "applied" and r.json()["source_id"]
        b = client.post("/chat", json={"session_id": "q", "message": "Who wrote Forrest Gump?"}).json()
        assert b["answer"]["entities"] == ["Winston Groom"]
        r = client.post("/feedback", json={"answer_id": b["answer_id"], "correct": False,
                                           "right_answer": "Winston Groom"}, headers=AUTH)
        assert r.status_code == 400 and "already" in r.json()["error"]
    state.close()
    kg.close()

    def cli(*args: str) -> str:
        try:
            main(["--store", str(root), "feedback", *args])
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()
        return capsys.readouterr().out

    capsys.readouterr()
    listed = cli("list", "--json")
    assert pending_id in listed and rejected_id in listed and "Winston Groom" not in listed
    cli("reject", rejected_id[:10], "--reason", "not a fact")
    cli("apply", pending_id[:10])
    assert cli("list") .strip() == "no feedback waiting"
    statuses = {i.correction.id: i.status for i in FeedbackQueue(root).items()}
    assert statuses[pending_id] == "applied" and statuses[rejected_id] == "rejected"
    with KnowledgeStore.open(root, make_settings(reason={"auto": False})) as kg:
        engine = open_engine(kg, embedder=embedder)
        assert ask(engine, "Who directed Forrest Gump?").entities == ["Steven Spielberg"]
        assert ask(engine, "Who wrote Cast Away?").entities == ["William Broyles Jr."]


# -- learning round -------------------------------------------------------------------------------

def test_a_learning_round_after_feedback_teaches_the_new_answer(tmp_path: Path) -> None:
    from learners.continual import RoundConfig, run_round
    from learners.qa import feedback_pairs
    from learners.replay import ReplayBuffer

    cfg = RoundConfig(new_pairs=40, max_steps=10, eval_pairs=4, gate=False, closed_book=False)
    with sample_store(tmp_path / "s", kb=("films.txt",)) as kg:
        first = run_round(kg, cfg)
        assert first.accepted and first.new > 0
        buffer = ReplayBuffer.from_disk(kg.root / "replay" / "buffer")
        g = load_graph_index(kg)
        pair = next(p for p in sorted(buffer.pairs.values(), key=lambda p: p.id)
                    if p.hops == 1 and p.relations[0][1] == 1 and len(p.answers) == 1
                    and not g.is_literal(g.node_of(_entity_of(g, p.answers[0]))))
        c = Correction(question=pair.question, answer=pair.answers[0], right_answer="Quentin Newname",
                       topic=pair.topic_iri, relations=[tuple(r) for r in pair.relations])
        applied = apply_correction(kg, c, g)
        # a correction about a fact no earlier pair asked about is taught too, as asked
        from learners.qa import make_pair
        known = set(buffer.pairs) | set(ReplayBuffer.from_disk(kg.root / "replay" / "held").pairs)
        unseen = next(q for node in range(len(g.nodes)) if not g.is_literal(node)
                      for hop in sorted(h for h in g.adj[node] if h[1] > 0)
                      if (q := make_pair(g, node, (hop,), "and the other one?")) is not None
                      and q.id not in known and len(q.answers) == 1
                      and not g.is_literal(g.node_of(_entity_of(g, q.answers[0]))))
        apply_correction(kg, Correction(question="who is it, really?", answer=unseen.answers[0],
                                        right_answer="Zed Newperson", topic=unseen.topic_iri,
                                        relations=[tuple(r) for r in unseen.relations]), load_graph_index(kg))

        # the correction's own training pair: same id as the earlier pair, the new answer
        made = feedback_pairs(kg, load_graph_index(kg), [applied.source_id])
        assert [(p.id, p.answers, p.question) for p in made] == [(pair.id, ["Quentin Newname"], pair.question)]

        second = run_round(kg, cfg)
        assert second.round == 2 and second.changed_sources == 2 and second.accepted
        assert second.updated >= 1 and second.steps > 0
        after = ReplayBuffer.from_disk(kg.root / "replay" / "buffer")
        assert after.pairs[pair.id].answers == ["Quentin Newname"] and after.pairs[pair.id].round == 2
        held = ReplayBuffer.from_disk(kg.root / "replay" / "held")
        taught = after.pairs.get(unseen.id) or held.pairs[unseen.id]
        assert (taught.answers, taught.question) == (["Zed Newperson"], "who is it, really?")


def _entity_of(g, label: str) -> str:
    from kg.graphindex import tokens
    return g.nodes[g.by_label[" ".join(tokens(label))][0]]


# -- active learning ----------------------------------------------------------------------------

def test_an_unsure_answer_asks_back_and_learns_the_reply_in_a_session(tmp_path: Path, embedder) -> None:
    with sample_store(tmp_path / "s") as kg:
        session = ChatSession(open_engine(kg, embedder=embedder), speaker="dana")
        try:
            a = session.turn("Where does Tom Hanks come from?")
            assert isinstance(a, Answer) and a.confidence < kg.settings.answer.ask_below
            assert a.unsure and a.answer.startswith("I'm not sure — is it Concord?") and session.pending
            assert session.turn("no") == "What is it, then?" and session.pending  # still open
            said = session.turn("It's Oakland.")
            assert isinstance(said, str) and said.startswith("Thanks — learned") and "Oakland" in said
            assert session.pending is None
            b = session.turn("Where was Tom Hanks born?")
            assert isinstance(b, Answer) and b.entities == ["Oakland"]
            fb = [r for r in kg.sources() if r.kind == "feedback"]
            assert len(fb) == 1 and rows(kg, f"""SELECT ?q WHERE {{ GRAPH <{fb[0].graph}> {{
                ?m kgv:question ?q ; kgv:verdict "wrong" ; kgv:rightAnswer "Oakland" }} }}""") == [
                ("Where does Tom Hanks come from?",)]

            # "yes" confirms: a feedback source re-asserting the fact, nothing superseded
            c = session.turn("Who made Forrest Gump?")
            assert isinstance(c, Answer) and c.unsure
            assert session.turn("yes").startswith("Thanks — learned: confirmed")
            assert len([r for r in kg.sources() if r.kind == "feedback"]) == 2
            assert len(superseded(kg.backend, kg.vocab)) == 1

            # nothing answers: the reply is stored as the fact it states (a chat turn)
            d = session.turn("Who directed Big?")
            assert isinstance(d, Answer) and d.status == "unknown" and d.unsure
            said = session.turn("Penny Marshall")
            assert isinstance(said, str) and said.startswith("Learned") and "Penny Marshall" in said
            assert session.turn("Who directed Big?").entities == ["Penny Marshall"]
            statuses = [i.status for i in FeedbackQueue(kg.root).items()]
            assert statuses == ["applied", "applied", "applied"]
        finally:
            session.close()


@pytest.fixture
def service(tmp_path: Path, embedder) -> Iterator[tuple[TestClient, ServiceState]]:
    kg = sample_store(tmp_path / "s")
    state = served(kg, embedder, token=TOKEN)
    with TestClient(create_app(state)) as client:
        yield client, state
    state.close()
    kg.close()


def test_an_unsure_answer_asks_back_through_post_chat(service: tuple[TestClient, ServiceState]) -> None:
    client, state = service

    def chat(sid: str, message: str, **kw) -> dict:
        r = client.post("/chat", json={"session_id": sid, "message": message}, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    a = chat("u1", "Where does Tom Hanks come from?")
    assert a["awaiting_reply"] and a["answer"]["unsure"] and a["text"].startswith("I'm not sure")
    # without the token the reply is a suggestion: queued, not written
    r = chat("u1", "No, it's Oakland")
    assert r["kind"] == "feedback" and r["feedback"]["status"] == "pending" and not r["stored"]
    assert chat("u1", "Where was Tom Hanks born?")["answer"]["entities"] == ["Concord"]
    # with the token it is learned at once
    chat("u2", "Where does Tom Hanks come from?", headers=AUTH)
    r = chat("u2", "Oakland", headers=AUTH)
    assert r["kind"] == "feedback" and r["stored"] and r["feedback"]["status"] == "applied"
    assert "Oakland" in r["text"] and r["feedback"]["source_id"]
    b = chat("u2", "Where was Tom Hanks born?")
    assert b["answer"]["entities"] == ["Oakland"] and not b["awaiting_reply"]
    assert any(s["kind"] == "feedback" for s in b["answer"]["sources"])
    # the entity page still shows the old edge, marked superseded
    born = [e for e in client.get("/entities/Tom_Hanks").json()["outgoing"] if e["relation"].endswith("born_in")]
    assert {(e["label"], e["superseded"]) for e in born} == {("Concord", True), ("Oakland", False)}
    items = FeedbackQueue(state.store.root).items()
    assert [(i.correction.via, i.status) for i in items] == [("chat", "pending"), ("chat", "applied")]
    assert json.loads((state.store.root / "feedback" / "feedback.jsonl").read_text().splitlines()[0])["question"] \
        == "Where does Tom Hanks come from?"
