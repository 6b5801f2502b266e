"""Constrained decoding: the generated text can only be a list of given choices.

Grounded answering shows the model evidence lines and lets it name only entities that are
in them. Instead of generating freely and throwing away what is not allowed, decoding
follows a token trie (as GENRE does for entity names): at each step only the tokens that
continue some choice are allowed, and after a complete choice also the separator (starting
the next choice) and end-of-sequence. The model still decides which choices to name, in
which order, and when to stop.

The grammar, in token ids: ``first (sep next)* eos`` where ``first`` is one of
``ids(" " + choice)`` and ``sep next`` one of ``ids(" ," + " " + choice)`` — the same
text :func:`~chatbot.generate.prompt.format_target` produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from chatbot.generate.prompt import ANSWER_SEPARATOR, format_target

__all__ = ["Trie", "ChoiceGrammar", "choice_grammar"]


@dataclass
class Trie:
    children: dict[int, "Trie"] = field(default_factory=dict)
    terminal: bool = False  # a whole choice ends here

    def add(self, ids: Sequence[int]) -> None:
        node = self
        for t in ids:
            node = node.children.setdefault(t, Trie())
        node.terminal = True


@dataclass
class ChoiceGrammar:
    first: Trie      # choices as the first item
    later: Trie      # separator + choice, for every later item
    eos: int

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Token ids that may follow ``generated`` (the tokens after the prompt)."""
        node = self.first
        for t in generated:
            if t in node.children:
                node = node.children[t]
            elif node.terminal and t in self.later.children:
                node = self.later.children[t]
            else:
                return [self.eos]  # off the grammar (cannot happen while it is enforced)
        out = list(node.children)
        if node.terminal:
            out += [t for t in self.later.children if t not in node.children] + [self.eos]
        return out or [self.eos]


def choice_grammar(tokenizer: Any, choices: Sequence[str], eos: int) -> ChoiceGrammar:
    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    first, later = Trie(), Trie()
    for c in dict.fromkeys(choices):
        one = format_target([c])
        if ids(one):
            first.add(ids(one))
            # The separator is encoded with the choice: BPE tokenizers merge " ," differently
            # from "," and a leading space changes a word's first token.
            later.add(ids(ANSWER_SEPARATOR.rstrip() + one))
    return ChoiceGrammar(first, later, eos)


def prefix_fn(grammar: ChoiceGrammar, prompt_len: int) -> Callable[[int, Any], list[int]]:
    """For ``model.generate(prefix_allowed_tokens_fn=...)``."""
    def fn(batch_id: int, input_ids: Any) -> list[int]:
        return grammar.allowed(input_ids[prompt_len:].tolist())
    return fn
