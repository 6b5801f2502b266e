"""The README's main job: import the sample data, reason over it, answer multi-hop
questions with SPARQL. Later issues add document ingestion and generated answers here."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from kg.errors import KgchatError
from kg.results import write_table
from kg.store import KnowledgeStore

QUESTIONS: list[tuple[str, str]] = [
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
    ("Which source says that Robert Zemeckis directed Forrest Gump? (provenance)", """
SELECT ?file ?imported ?hash WHERE {
  GRAPH ?g { kg:Forrest_Gump kgr:directed_by kg:Robert_Zemeckis }
  GRAPH kgg:provenance { ?g prov:wasDerivedFrom ?file ; prov:generatedAtTime ?imported ;
                                kgv:contentHash ?hash }
}"""),
]


def run_demo(kg: KnowledgeStore, data: Path, console: Console) -> None:
    files = sorted(p for p in Path(data).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise KgchatError(f"no sample files in {data}")
    console.rule("[bold]1. import the sample knowledge base")
    for report in kg.import_files(files):
        line = f"{report.action:9} {Path(report.path).name:12} {report.triples:5} triples"
        console.print(line if not report.error else f"[red]{report.error}[/red]")
    console.rule("[bold]2. reason (RDFS + OWL 2 RL)")
    s = kg.reason()
    console.print(f"{s.total} inferred triples in {s.seconds:.2f} s")
    console.rule("[bold]3. multi-hop questions, answered with SPARQL")
    for question, query in QUESTIONS:
        console.print(f"\n[bold cyan]Q:[/bold cyan] {question}")
        console.print(f"[dim]{query.strip()}[/dim]")
        result = kg.query(query)
        assert result is not None
        write_table(result, kg.vocab.prefixes(), console)
    st = kg.status()
    console.rule("[bold]4. the store")
    console.print(f"{st.triples} triples ({st.asserted} asserted, {st.inferred} inferred, "
                  f"{st.provenance} provenance), {st.entities} entities, {st.sources} sources, "
                  f"{st.named_graphs} named graphs in {st.location}")
