"""Named profiles: the one place that fixes sizes, epochs and data for every notebook.

`profile()` reads `SCRATCHGPT_PROFILE` (default `tiny`). Every notebook starts with
`PROFILE = scratchgpt.profile()` in a cell tagged `parameters`, so a learner can edit it, the
environment can choose it, and papermill can inject another one. The code path is the same at every
size; only these numbers change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .config import GPT2_SIZES, GPTConfig

PROFILE_ENV = "SCRATCHGPT_PROFILE"
DEFAULT_PROFILE = "tiny"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: GPTConfig                      # architecture of the model the notebooks build and train
    weights: str | None = None            # GPT-2 release to load ("124M", ...), None: train our own
    device: str = "cpu"                   # "cpu", "cuda", or "auto" (cuda when available)
    pretrain_text: str = "the-verdict.txt"
    train_ratio: float = 0.9              # train/validation split of the pretraining text
    batch_size: int = 8
    epochs: int = 10                      # pretraining epochs over the text
    learning_rate: float = 4e-4
    weight_decay: float = 0.1
    eval_every: int = 10                  # optimizer steps between evaluations
    grad_accum: int = 1                   # batches whose gradients add up to one optimizer step
    amp_dtype: str | None = None          # "bfloat16": autocast the forward pass (GPUs with bf16 units)
    compile: bool = False                 # torch.compile the model (the command-line trainer)
    classify_epochs: int = 5              # classification fine-tuning (stage 3)
    classify_batch_size: int = 8
    classify_trainable: str = "last_block"  # which parameters fine-tune: "all", "last_block" or "head"
    classify_lr: float = 5e-5
    instruct_epochs: int = 2              # instruction fine-tuning (stage 3)
    instruct_batch_size: int = 8
    instruct_lr: float = 5e-5
    extra: dict = field(default_factory=dict)

    def torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            name="tiny",
            description="A 4-layer, 128-wide GPT with GPT-2's vocabulary, trained here on the-verdict.txt; "
            "CI and a 2-core laptop run every notebook in minutes.",
            # dropout 0 and batches of one window: on 4,600 training tokens, more small updates beat
            # fewer large ones (measured: final training loss 4.5 vs 5.3 with batches of 2 and dropout 0.1)
            model=GPTConfig(context_length=128, n_embd=128, n_layer=4, n_head=4, dropout=0.0),
            batch_size=1,
            epochs=8,
            learning_rate=1e-3,
            eval_every=36,
            # a model pretrained on one short story knows little English: all its weights fine-tune
            classify_trainable="all",
            classify_lr=5e-4,
            instruct_epochs=2,
            instruct_lr=2e-3,
        ),
        Profile(
            name="gpt2",
            description="OpenAI's GPT-2 124M weights (Hugging Face model.safetensors); runs on a CPU, "
            "fine-tuning is faster on a GPU.",
            model=GPT2_SIZES["124M"],
            weights="124M",
            device="auto",
            batch_size=2,
            epochs=1,
            learning_rate=5e-5,
            classify_batch_size=8,
            instruct_batch_size=8,
        ),
        Profile(
            name="gpt2-medium",
            description="GPT-2 355M weights, the size the usual instruction fine-tuning recipe uses; wants a GPU.",
            model=GPT2_SIZES["355M"],
            weights="355M",
            device="auto",
            batch_size=2,
            epochs=1,
            learning_rate=5e-5,
        ),
        Profile(
            name="gpu",
            description="GPT-2 124M architecture trained from scratch on a GPU: context 1024, larger batches, "
            "bf16 autocast, fused AdamW, torch.compile (python -m scratchgpt.pretrain --profile gpu).",
            model=GPT2_SIZES["124M"],
            device="cuda",
            pretrain_text="tinyshakespeare.txt",
            batch_size=16,
            epochs=2,
            learning_rate=6e-4,
            eval_every=50,
            amp_dtype="bfloat16",
            compile=True,
        ),
    ]
}


def profile(name: str | None = None) -> Profile:
    """The profile called `name`, else the one `SCRATCHGPT_PROFILE` names, else `tiny`."""
    source = "argument" if name else f"{PROFILE_ENV} environment variable"
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from the {source}); "
            f"valid profiles: {', '.join(PROFILES)}"
        )
    return PROFILES[name]
