"""The LLM extractor: schema validation, retries, grounding — with a scripted model
standing in for the server (the unit under test is the extractor), plus the real HTTP
client against a local stub server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import pytest

from kg.config import ExtractSettings
from kg.errors import SourceError
from kg.extract.llm import LLMExtractor, OpenAICompatibleClient, chunks
from kg.sources import Document, Turn

TEXT = "Dana leads the platform team. The office moved to Leeds in 2025."


class Scripted:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]]) -> str:
        self.calls.append(list(messages))
        return self.answers.pop(0)


def triple(subject: str, relation: str, obj: str, sentence: str, **extra: object) -> dict:
    return {"subject": subject, "relation": relation, "object": obj, "sentence": sentence, **extra}


GOOD = json.dumps({"triples": [
    triple("Dana", "Leads", "the platform team", "Dana leads the platform team.", subject_type="person"),
    triple("office", "moved to", "Leeds", "The office moved to Leeds in 2025.", object_type="GPE"),
]})


def doc(text: str = TEXT) -> Document:
    return Document(uri="file:///t.txt", text=text, content_hash="sha256:x")


def run(extractor: LLMExtractor, d: Document) -> list:
    [(out_doc, triples)] = list(extractor.extract([d]))
    assert out_doc is d
    return triples


def test_valid_answer_is_grounded_with_offsets() -> None:
    model = Scripted(GOOD)
    triples = run(LLMExtractor(ExtractSettings(), model), doc())
    assert [(t.subject.text, t.relation, t.object.text) for t in triples] == [
        ("Dana", "leads", "the platform team"), ("office", "moved to", "Leeds")]
    for t in triples:
        assert TEXT[t.subject.start:t.subject.end] == t.subject.text
        assert TEXT[t.sentence[0]:t.sentence[1]].endswith(".")
    assert triples[0].subject.type == "PERSON"
    assert "untrusted" in model.calls[0][0]["content"]


def test_invalid_json_is_retried_with_the_error() -> None:
    model = Scripted("Sure! Here are the triples: Dana -> leads -> team", "```json\n" + GOOD + "\n```")
    triples = run(LLMExtractor(ExtractSettings(llm_retries=1), model), doc())
    assert len(triples) == 2 and len(model.calls) == 2
    assert "not valid" in model.calls[1][-1]["content"]


def test_gives_up_after_retries_and_reports() -> None:
    model = Scripted('{"triples": "none"}', "{}", "[]")
    d = doc()
    assert run(LLMExtractor(ExtractSettings(llm_retries=2), model), d) == []
    assert "no valid JSON after 3 attempts" in d.metadata["extraction_error"]


def test_hallucinations_are_dropped() -> None:
    answer = json.dumps({"triples": [
        triple("Dana", "founded", "Acme", "Dana founded Acme."),               # sentence not in text
        triple("Bob", "leads", "the platform team", "Dana leads the platform team."),  # subject not there
    ]})
    assert run(LLMExtractor(ExtractSettings(), Scripted(answer)), doc()) == []


def test_conversation_keeps_user_turns_only() -> None:
    text = "Dana leads the platform team.\n\nDana leads the platform team."
    d = Document(uri="urn:kgchat:chat:c1", text=text, content_hash="sha256:y", kind="conversation",
                 turns=[Turn("1", "assistant", 0, 29, role="assistant"), Turn("2", "sam", 31, 60)])
    answer = json.dumps({"triples": [triple("Dana", "leads", "the platform team",
                                            "Dana leads the platform team.")]})
    [t] = run(LLMExtractor(ExtractSettings(), Scripted(answer)), d)
    assert (t.turn, t.speaker, t.subject.start) == ("2", "sam", 31)  # not the assistant's turn
    d.turns[1] = Turn("2", "bot", 31, 60, role="assistant")
    assert run(LLMExtractor(ExtractSettings(), Scripted(answer)), d) == []


def test_relation_map_and_chunks() -> None:
    settings = ExtractSettings(relation_map={"moved to": "http://schema.org/location"})
    triples = run(LLMExtractor(settings, Scripted(GOOD)), doc())
    assert triples[1].extras["relation_iri"] == "http://schema.org/location"
    long = "One sentence here. " * 400
    pieces = list(chunks(long, 1000))
    assert "".join(p for _, p in pieces) == long
    assert all(len(p) <= 1000 for _, p in pieces) and all(long[o:o + len(p)] == p for o, p in pieces)


@pytest.fixture
def stub_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert body["response_format"] == {"type": "json_object"}
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": GOOD}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(out.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_openai_compatible_client(stub_server: str) -> None:
    settings = ExtractSettings(extractor="llm", llm_endpoint=stub_server, llm_model="any")
    triples = run(LLMExtractor(settings), doc())
    assert len(triples) == 2


def test_unreachable_server_fails_the_document_only() -> None:
    client = OpenAICompatibleClient("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(SourceError, match="cannot reach"):
        client.complete([{"role": "user", "content": "x"}])
    d = doc()
    assert run(LLMExtractor(ExtractSettings(), client), d) == []
    assert "cannot reach" in d.metadata["extraction_error"]
