from __future__ import annotations

from pathlib import Path

import pytest

from kg.config import ConfigError, load_settings


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "kgchat.toml").write_text('[query]\ntimeout = 5\n[import]\nliterals = "auto"\n')
    s = load_settings(tmp_path, env={})
    assert s.query.timeout == 5 and s.import_.literals == "auto"
    s = load_settings(tmp_path, env={"KGCHAT_QUERY_TIMEOUT": "7", "KGCHAT_IMPORT_LITERAL_RELATIONS": "a, b"})
    assert s.query.timeout == 7 and s.import_.literal_relations == ["a", "b"]
    s = load_settings(tmp_path, {"query": {"timeout": 9}}, env={"KGCHAT_QUERY_TIMEOUT": "7"})
    assert s.query.timeout == 9


def test_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="store.backend"):
        load_settings(None, {"store": {"backend": "postgres"}}, env={})
    with pytest.raises(ConfigError, match="query.timeout"):
        load_settings(None, env={"KGCHAT_QUERY_TIMEOUT": "soon"})
    (tmp_path / "kgchat.toml").write_text("[store\n")
    with pytest.raises(ConfigError, match="kgchat.toml"):
        load_settings(tmp_path, env={})
    with pytest.raises(ConfigError, match="store.colour: Extra inputs"):
        load_settings(None, {"store": {"colour": "red"}}, env={})
