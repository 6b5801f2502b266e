"""Shared fixtures: settings that ignore the developer's environment, fresh stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from kg.config import Settings, load_settings
from kg.store import KnowledgeStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "kb"
FIXTURES = ROOT / "data" / "fixtures"


def make_settings(**sections: dict[str, Any]) -> Settings:
    """Defaults plus ``sections`` (e.g. ``reason={"auto": False}``), never the environment."""
    overrides = {("import" if k == "import_" else k): v for k, v in sections.items()}
    return load_settings(None, overrides, env={})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def store(tmp_path: Path, settings: Settings) -> Iterator[KnowledgeStore]:
    kg = KnowledgeStore.open(tmp_path / "store", settings, create=True)
    yield kg
    kg.close()


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeStore]:
    """The sample film KB in a store of its own, shared by one test module."""
    kg = KnowledgeStore.open(tmp_path_factory.mktemp("films") / "store",
                             make_settings(reason={"auto": False}), create=True)
    kg.import_file(SAMPLE / "films.txt")
    yield kg
    kg.close()


@pytest.fixture(scope="module")
def embedder():
    """The real MiniLM sentence embedder (from the PyPI package, offline)."""
    from kg.resolve import SentenceTransformerEmbedder
    return SentenceTransformerEmbedder()


def free_port() -> int:
    """A TCP port on loopback nobody listens on now (for servers a test starts)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
