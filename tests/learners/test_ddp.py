"""The SFT recipe under torchrun: two CPU processes (gloo) train what one process trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.chatbot.test_generate import copy_task

ARGS = ["--steps", "6", "--batch-size", "8", "--hidden", "64", "--layers", "2", "--seed", "1"]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(asdict(e)) + "\n" for e in copy_task(40, seed=5)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    module = ["-m", "learners.recipes.sft_run", "--examples", str(examples)]
    root = Path(__file__).resolve().parents[2]
    one = subprocess.run([sys.executable, *module, "--out", str(tmp_path / "one"), *ARGS],
                         env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = Path(sys.executable).with_name("torchrun")
    two = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", *module,
                          "--out", str(tmp_path / "two"), *ARGS],
                         env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    info = json.loads((tmp_path / "two" / "kgchat_generator.json").read_text())
    assert info["metrics"]["world_size"] == 2 and info["steps"] == 6
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    gap = max((a[k] - b[k]).abs().max().item() for k in a)
    assert gap < 1e-4, gap
    from learners.tiny import build_tiny_model  # and training did move the weights

    untrained = build_tiny_model(hidden=64, layers=2, seed=1)[0].state_dict()
    moved = max((a[k] - untrained[k]).abs().max().item() for k in a if k in untrained)
    assert moved > 100 * max(gap, 1e-7)
