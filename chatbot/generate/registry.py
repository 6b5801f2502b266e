"""Versioned generator checkpoints in a store: ``<store>/models/generator/``.

    versions/v0001/   Hugging Face save_pretrained layout + kgchat_generator.json (metrics,
    versions/v0002/   round, parent, config); a LoRA round saves a PEFT adapter instead
    CURRENT           the name of the version answering questions (one line)

A new version is written to a temporary folder and renamed into ``versions/``; ``CURRENT``
is replaced by rename too. So a crash leaves either the old or the new version current,
never half a model. Rolling back only rewrites ``CURRENT``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.generate.base import MARKER
from kg.errors import ModelError

__all__ = ["ModelRegistry", "Version"]

_NAME = re.compile(r"^v(\d{4,})$")


@dataclass
class Version:
    name: str
    path: Path
    info: dict[str, Any]
    current: bool = False

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.info.get("metrics", {}))


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    # -- reading ----------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted((d.name for d in self.versions_dir.iterdir() if _NAME.match(d.name)),
                      key=lambda n: int(n[1:]))

    def current(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return name if name in self.names() else None

    def current_path(self) -> Path | None:
        """The folder to load: the current version, or a checkpoint saved directly in the
        root by kgchat before versions existed."""
        name = self.current()
        if name:
            return self.versions_dir / name
        return self.root if (self.root / "config.json").is_file() else None

    def get(self, name: str) -> Version:
        name = _normalise(name)
        if name not in self.names():
            known = ", ".join(self.names()) or "none yet (run `kgchat train`)"
            raise ModelError(f"no model version {name!r}; versions: {known}")
        path = self.versions_dir / name
        try:
            info = json.loads((path / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        return Version(name, path, info, current=name == self.current())

    def list(self) -> list[Version]:
        return [self.get(n) for n in self.names()]

    # -- writing ----------------------------------------------------------------------
    def add(self, folder: Path, *, make_current: bool = True) -> str:
        """Move a finished checkpoint folder in as the next version; returns its name."""
        self._adopt_legacy()
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        names = self.names()
        name = f"v{(int(names[-1][1:]) + 1) if names else 1:04d}"
        Path(folder).rename(self.versions_dir / name)
        if make_current:
            self.set_current(name)
        return name

    def set_current(self, name: str) -> str:
        """Make ``name`` the answering version (``rollback`` uses this)."""
        name = self.get(name).name
        tmp = self.root / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(name + "\n", encoding="utf-8")
        tmp.replace(self.root / "CURRENT")
        return name

    def _adopt_legacy(self) -> None:
        # A checkpoint written straight into the root (before versions) becomes v0001.
        if (self.root / "config.json").is_file() and not self.names():
            legacy = self.root.with_name(self.root.name + ".legacy")
            self.root.rename(legacy)
            self.root.mkdir(parents=True)
            (self.root / "versions").mkdir()
            legacy.rename(self.root / "versions" / "v0001")
            self.set_current("v0001")


def _normalise(name: str) -> str:
    """"3", "v3" and "v0003" all name v0003."""
    digits = name[1:] if name.lower().startswith("v") else name
    return f"v{int(digits):04d}" if digits.isdigit() else name
