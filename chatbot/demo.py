"""The README's main job: import the sample knowledge base, ingest the sample documents
and chat transcript, reason, train the default generator briefly on QA pairs generated
from the graph, answer plain multi-hop questions with evidence and sources, and show SPARQL
queries over the same graph."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from kg.errors import KgchatError
from kg.results import write_table
from kg.store import KnowledgeStore

QUERIES: list[tuple[str, str]] = [
    ("Who directed the films that Tom Hanks starred in? (2 hops)", """
SELECT DISTINCT ?director (GROUP_CONCAT(DISTINCT ?title; separator=", ") AS ?films) WHERE {
  ?actor rdfs:label "Tom Hanks" .
  ?film kgr:starred_actors ?actor ; kgr:directed_by ?d ; rdfs:label ?title .
  ?d rdfs:label ?director .
} GROUP BY ?director ORDER BY ?director"""),
    ("Who wrote the other films of the directors of Tom Hanks's films? (3 hops)", """
SELECT ?director ?other_film (GROUP_CONCAT(DISTINCT ?w; separator=", ") AS ?writers) WHERE {
  ?actor rdfs:label "Tom Hanks" .
  ?film kgr:starred_actors ?actor ; kgr:directed_by ?d .
  ?other kgr:directed_by ?d ; kgr:written_by ?writer .
  FILTER NOT EXISTS { ?other kgr:starred_actors ?actor }
  ?d rdfs:label ?director . ?other rdfs:label ?other_film . ?writer rdfs:label ?w .
} GROUP BY ?director ?other_film ORDER BY ?director ?other_film"""),
    ("Which directors were born in the United States? (inferred types + transitive places)", """
SELECT DISTINCT ?name ?born_in WHERE {
  ?p a <https://w3id.org/kgchat/sample/film#Director> ;
     kgr:born_in ?place ; rdfs:label ?name .
  ?place kgr:located_in kg:United_States ; rdfs:label ?born_in .
} ORDER BY ?name"""),
    ("Which films did Thomas Jeffrey Hanks act in? (owl:sameAs + owl:inverseOf)", """
SELECT DISTINCT ?film WHERE {
  kg:Thomas_Jeffrey_Hanks kgr:acted_in ?f . ?f rdfs:label ?film .
} ORDER BY ?film"""),
    ("What do the documents say about Robert Zemeckis, and in which sentence? (extracted facts)", """
SELECT ?relation ?object ?confidence ?sentence WHERE {
  ?st rdf:subject kg:Robert_Zemeckis ; rdf:predicate ?p ; rdf:object ?o ;
      kgv:confidence ?confidence ; prov:wasDerivedFrom ?s .
  ?s kgv:text ?sentence . ?p rdfs:label ?relation .
  OPTIONAL { ?o rdfs:label ?label } BIND(COALESCE(?label, STR(?o)) AS ?object)
} ORDER BY ?relation"""),
    ("Where was the director of Cast Away born, and which sources say so? (KB + documents)", """
SELECT DISTINCT ?director ?place ?source WHERE {
  ?film rdfs:label "Cast Away" ; kgr:directed_by ?d . ?d rdfs:label ?director .
  GRAPH ?g { ?d kgr:born_in ?p } ?p rdfs:label ?place .
  GRAPH kgg:provenance { ?g prov:wasDerivedFrom ?source }
} ORDER BY ?source"""),
    ("What did people state in the team chat, and who said it? (conversation provenance)", """
SELECT ?speaker ?subject ?relation ?object WHERE {
  ?st kgv:turn ?turn ; rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o .
  ?turn kgv:speaker ?speaker . ?s rdfs:label ?subject . ?p rdfs:label ?relation .
  OPTIONAL { ?o rdfs:label ?label } BIND(COALESCE(?label, STR(?o)) AS ?object)
} ORDER BY ?subject ?relation"""),
    ("Which source says that Robert Zemeckis directed Forrest Gump? (provenance)", """
SELECT ?file ?imported ?hash WHERE {
  GRAPH ?g { kg:Forrest_Gump kgr:directed_by kg:Robert_Zemeckis }
  GRAPH kgg:provenance { ?g prov:wasDerivedFrom ?file ; prov:generatedAtTime ?imported ;
                                kgv:contentHash ?hash }
}"""),
]

ASK = [
    "Who directed the films that Tom Hanks starred in?",
    "Who wrote the films directed by Robert Zemeckis?",
    "When were the films starring Helen Hunt released?",
    "Where was Robert Zemeckis born?",
    "Who leads the archive team?",
    "What is the capital of Atlantis?",
]


def run_demo(kg: KnowledgeStore, data: Path, console: Console, *,
             train_pairs: int = 1500, train_steps: int = 300) -> None:
    kb = Path(data) / "kb"
    files = sorted(p for p in kb.iterdir() if p.is_file() and not p.name.startswith(".")) if kb.is_dir() else []
    if not files:
        raise KgchatError(f"no sample knowledge base in {kb}")
    console.rule("[bold]1. import the sample knowledge base")
    for report in kg.import_files(files):
        line = f"{report.action:9} {Path(report.path).name:12} {report.triples:5} triples"
        console.print(line if not report.error else f"[red]{report.error}[/red]")
    docs = Path(data) / "docs"
    if docs.is_dir():
        console.rule("[bold]2. ingest documents and a chat transcript")
        from kg.ingest import open_ingestor

        with open_ingestor(kg, n_process=1) as ingestor:
            summary = ingestor.ingest([str(docs)])
        console.print(f"{summary.new} new, {summary.unchanged} unchanged, {summary.failed} failed "
                      f"documents; {summary.facts} facts, {summary.entities_new} new entities")
        for item, message in summary.errors:
            console.print(f"[red]{message}[/red]")
    console.rule("[bold]3. reason (RDFS + OWL 2 RL)")
    s = kg.reason()
    console.print(f"{s.total} inferred triples in {s.seconds:.2f} s")
    console.rule("[bold]4. train the default generator (briefly) on QA pairs from the graph")
    from kg.resolve import SentenceTransformerEmbedder
    from chatbot.train_cli import print_round
    from learners.train import TrainPlan, train

    embedder = SentenceTransformerEmbedder(kg.settings.resolve.embedding_model)
    report = train(kg, TrainPlan(pairs=train_pairs, generator_steps=train_steps), embedder)
    print_round(console, report.generator)
    console.rule("[bold]5. ask in plain words: answers with evidence paths and sources")
    from chatbot.answer import open_engine
    from chatbot.ask_cli import print_answer

    engine = open_engine(kg, embedder=embedder)
    for question in ASK:
        console.print(f"\n[bold cyan]Q:[/bold cyan] {question}")
        print_answer(console, engine.ask(question))
    console.rule("[bold]6. the same graph through SPARQL")
    for question, query in QUERIES:
        console.print(f"\n[bold cyan]Q:[/bold cyan] {question}")
        console.print(f"[dim]{query.strip()}[/dim]")
        result = kg.query(query)
        assert result is not None
        write_table(result, kg.vocab.prefixes(), console)
    st = kg.status()
    console.rule("[bold]7. the store")
    console.print(f"{st.triples} triples ({st.asserted} asserted, {st.inferred} inferred, "
                  f"{st.provenance} provenance), {st.entities} entities, {st.sources} sources, "
                  f"{st.named_graphs} named graphs in {st.location}")
