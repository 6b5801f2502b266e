"""A :class:`~chatbot.generate.base.Generator` over any transformers causal LM.

Loads from a local directory (a kgchat checkpoint or any Hugging Face model folder) or a
hub id that is already in the local cache; downloads happen only when asked for, because
most machines running kgchat have no route to a model hub.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from chatbot.generate.base import MARKER
from chatbot.generate.constrain import choice_grammar, prefix_fn
from kg.errors import ModelError

__all__ = ["TransformersGenerator", "prompt_ids", "auto_device"]


def auto_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def prompt_ids(tokenizer: Any, prompt: str, *, use_chat_template: bool = False) -> list[int]:
    """Token ids of ``prompt`` as the model sees it, shared by training and generation.

    No automatic special tokens (a BERT-style tokenizer would append ``[SEP]``, which is
    our end-of-sequence), only the tokenizer's bos in front when it has one.
    """
    if use_chat_template:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + list(ids)


def _read_marker(directory: Path) -> dict[str, Any]:
    marker = directory / MARKER
    if not marker.is_file():
        return {}  # a plain Hugging Face model: trained by someone else
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{marker} is unreadable ({exc}); delete it or save the model again") from exc
    if not isinstance(info, dict):
        raise ModelError(f"{marker} must hold a JSON object; delete it or save the model again")
    return info


def _looks_like_path(name: str) -> bool:
    # "org/name" is a hub id; anything absolute, relative-dotted or deeper is a path.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


class TransformersGenerator:
    """Greedy generation with a causal LM and its tokenizer.

    ``info`` is the checkpoint marker (see :data:`~chatbot.generate.base.MARKER`); without
    one the model counts as trained.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "",
                 info: Mapping[str, Any] | None = None, use_chat_template: bool = False) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = dict(info or {})
        self.use_chat_template = use_chat_template
        self._name = name or str(getattr(model.config, "name_or_path", "") or "model")

    @property
    def name(self) -> str:
        return self._name

    @property
    def trained(self) -> bool:
        return bool(self.info.get("trained", True))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, name_or_path: str | Path, device: str | None = None, *,
             allow_download: bool = False, use_chat_template: bool = False) -> "TransformersGenerator":
        """A model directory or a cached hub id; bf16 on CUDA, float32 on CPU."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a chat
        name = str(name_or_path)
        local = Path(name).expanduser()
        if not local.is_dir() and (_looks_like_path(name) or local.exists()):
            raise ModelError(
                f"no model directory at {local}; train one (kgchat learns one from your "
                f"graph) or pass a folder holding config.json and model weights")
        if (local / "adapter_config.json").is_file():
            return cls._load_adapter(local, device, use_chat_template)
        source = str(local) if local.is_dir() else name
        offline = not allow_download
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError) as exc:
            if local.is_dir():
                problem = f"{local} has no usable config.json ({exc})"
            else:
                problem = f"{name!r} is not a local folder and not in the Hugging Face cache"
                if offline:
                    problem += (" (downloads are off); download it where there is internet "
                                f"(`hf download {name}`) and copy the cache here")
            raise ModelError(f"cannot load generator: {problem}; or pass a local model "
                             f"folder or a kgchat checkpoint") from exc
        archs = list(getattr(config, "architectures", None) or [])
        if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            raise ModelError(
                f"{name} is a {'/'.join(archs)} model, not a causal language model; pass a "
                f"decoder-only model (e.g. a Qwen or Llama instruct model) or a kgchat checkpoint")
        device = auto_device(device)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, local_files_only=offline).to(device)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load generator {name} as a causal LM with its tokenizer ({exc}); pass a "
                f"decoder-only model folder or a kgchat checkpoint") from exc
        info = _read_marker(local) if local.is_dir() else {}
        return cls(model, tokenizer, name=name, info=info, use_chat_template=use_chat_template)

    @classmethod
    def _load_adapter(cls, local: Path, device: str | None, use_chat_template: bool) -> "TransformersGenerator":
        """A PEFT (LoRA) adapter folder: its base (recorded by kgchat, or in the adapter's
        config) is loaded first, then the adapter is merged into it."""
        from peft import PeftConfig, PeftModel

        info = _read_marker(local)
        base = info.get("base") or PeftConfig.from_pretrained(str(local)).base_model_name_or_path
        if not base:
            raise ModelError(f"{local} holds a LoRA adapter but names no base model")
        parent = cls.load(base, device)
        model = PeftModel.from_pretrained(parent.model, str(local)).merge_and_unload()
        return cls(model, parent.tokenizer, name=str(local), info=info,
                   use_chat_template=use_chat_template)

    def save(self, directory: str | Path, info: Mapping[str, Any] | None = None) -> Path:
        """Model, tokenizer and the marker (``self.info`` updated with ``info``)."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.info.update(info or {})
        self.info.setdefault("trained", True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        (directory / MARKER).write_text(json.dumps(self.info, indent=2, default=str) + "\n",
                                        encoding="utf-8")
        return directory

    def _inputs(self, prompt: str, max_new_tokens: int,
                choices: Sequence[str] | None = None) -> dict[str, Any]:
        ids = torch.tensor([prompt_ids(self.tokenizer, prompt,
                                       use_chat_template=self.use_chat_template)], device=self.device)
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        if isinstance(eos, list):
            eos = eos[0]
        pad = self.tokenizer.pad_token_id
        inputs = dict(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
            # Greedy whatever the checkpoint's generation_config says (instruct models ship
            # sampling defaults); pad falls back to eos for tokenizers without one.
            do_sample=False, num_beams=1, eos_token_id=eos,
            pad_token_id=pad if pad is not None else eos,
        )
        if choices:
            grammar = choice_grammar(self.tokenizer, choices, eos)
            inputs["prefix_allowed_tokens_fn"] = prefix_fn(grammar, ids.shape[1])
        return inputs

    def generate(self, prompt: str, *, max_new_tokens: int = 32,
                 choices: Sequence[str] | None = None) -> str:
        inputs = self._inputs(prompt, max_new_tokens, choices)
        with torch.inference_mode():
            out = self.model.generate(**inputs)
        new = out[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def stream(self, prompt: str, *, max_new_tokens: int = 32,
               choices: Sequence[str] | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs(prompt, max_new_tokens, choices)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():  # grad mode is per thread
                    self.model.generate(**inputs, streamer=streamer)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)
                streamer.end()  # unblock the consumer

        thread = threading.Thread(target=run, name="kgchat-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            thread.join()
        if errors:
            raise ModelError(f"generation with {self.name} failed: {errors[0]}") from errors[0]
