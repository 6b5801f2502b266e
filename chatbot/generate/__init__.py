"""Answer generation: prompt(question, evidence) → :class:`Generator` → answer text.

``TransformersGenerator`` is imported lazily so that importing the protocol or the prompt
format does not pull in torch.
"""

from __future__ import annotations

from typing import Any

from chatbot.generate.base import MARKER, Generator
from chatbot.generate.prompt import build_prompt, format_target, parse_answer

__all__ = ["Generator", "MARKER", "TransformersGenerator", "build_prompt", "format_target",
           "parse_answer"]


def __getattr__(name: str) -> Any:
    if name == "TransformersGenerator":
        from chatbot.generate.hf import TransformersGenerator

        return TransformersGenerator
    raise AttributeError(name)
