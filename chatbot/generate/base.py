"""The :class:`Generator` protocol: prompt in, answer text out (whole or streamed).

A generator is deliberately plain text-to-text: the prompt format lives in
:mod:`chatbot.generate.prompt`, so training and serving share one definition and any
provider (a local transformers model today, an OpenAI-compatible server later) plugs in.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

__all__ = ["Generator", "MARKER"]

MARKER = "kgchat_generator.json"
"""File in a checkpoint directory written by kgchat: ``{"trained": bool, "steps": ...,
"examples": ..., "metrics": {...}, "config": {...}}``. A model directory without it
(any Hugging Face model) counts as trained."""


@runtime_checkable
class Generator(Protocol):
    """Greedy, deterministic text generation."""

    @property
    def name(self) -> str:
        """Identifies the model (path or hub id)."""
        ...

    @property
    def trained(self) -> bool:
        """False for a freshly initialised model that has never been trained: its output is
        noise, so callers should fall back to showing the evidence instead."""
        ...

    def generate(self, prompt: str, *, max_new_tokens: int = 32,
                 choices: Sequence[str] | None = None) -> str:
        """The continuation of ``prompt`` (without the prompt), special tokens removed.

        With ``choices``, decoding is constrained: the text is a comma-separated list of
        some of those strings (in :func:`~chatbot.generate.prompt.format_target`'s format),
        so a grounded answer can only name what the evidence holds."""
        ...

    def stream(self, prompt: str, *, max_new_tokens: int = 32,
               choices: Sequence[str] | None = None) -> Iterator[str]:
        """The same text as :meth:`generate`, in pieces as they are produced."""
        ...
