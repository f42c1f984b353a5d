"""Named profiles: the one place that fixes sizes, epochs and data for every notebook.

`profile()` reads `SCRATCHGPT_PROFILE` (default `tiny`). Every notebook starts with
`PROFILE = scratchgpt.profile()` in a cell tagged `parameters`, so a learner can edit it, the
environment can choose it, and papermill can inject another one. The code path is the same at every
size; only these numbers change.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field

from ..config import GPT2_SIZES, GPTConfig, config_of

PROFILE_ENV = "SCRATCHGPT_PROFILE"
DEFAULT_PROFILE = "tiny"
# FOR TESTS ONLY: a GPT-2-format model.safetensors that stands in for OpenAI's weights, loaded WITHOUT
# the manifest's checksum. It lets the tests run every notebook under the gpt2 profiles with a tiny
# checkpoint they make themselves; the profiles then take its (small) shape.
STANDIN_ENV = "SCRATCHGPT_TEST_ONLY_UNVERIFIED_GPT2_WEIGHTS"
# With the stand-in, the profiles also run one pass of each training loop over shorter windows and
# fewer instruction and preference examples: the stand-in runs prove that every notebook runs to the
# end under the profile's code path, and more epochs, steps or examples would only repeat that path
# (the stand-in's outputs mean nothing either way).
STANDIN_LIMITS = {"pretrain_context": 32, "epochs": 1, "memorise_epochs": 1, "shakespeare_steps": 3,
                  "classify_epochs": 1, "instruct_epochs": 1, "dpo_epochs": 1, "compare_steps": 6,
                  "tuning_examples": 24}


class ProfileError(RuntimeError):
    """A profile that cannot run here (a GPU profile on a machine without one). Shown in a notebook as
    its one sentence, without a traceback."""

    def _render_traceback_(self):  # IPython shows these lines instead of the traceback
        return [f"ProfileError: {self}"]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: GPTConfig                      # architecture of the model the notebooks build and train
    weights: str | None = None            # GPT-2 release to load ("124M", ...), None: train our own
    weights_file: str | None = None       # a local GPT-2-format file loaded instead, unverified (tests only)
    device: str = "cpu"                   # "cpu", "cuda", or "auto" (cuda when available)
    pretrain_text: str = "the-verdict.txt"
    # windows for pretraining/evaluating on short texts (None: the model's)
    pretrain_context: int | None = None
    train_ratio: float = 0.9              # train/validation split of the pretraining text
    batch_size: int = 8
    epochs: int = 10                      # pretraining epochs over the text
    memorise_epochs: int = 40             # notebook 04's memorisation run: passes over the whole text
    shakespeare_steps: int = 800          # notebook 05's model of Tiny Shakespeare: optimizer steps...
    # ...of this many windows (800 x 2 x 128 tokens: two thirds of a pass in the tiny profile)
    shakespeare_batch_size: int = 2
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
    # LoRA adapters (notebook 09) like a larger rate than full fine-tuning
    lora_lr: float = 2e-4
    instruct_epochs: int = 2              # instruction fine-tuning (stage 3)
    instruct_batch_size: int = 8
    instruct_lr: float = 5e-5
    compare_text: str = "tinyshakespeare.txt"  # GPT-2 vs the modern decoder, same data and budget (stage 4)
    compare_steps: int = 150
    compare_batch_size: int = 2
    dpo_epochs: int = 1                   # preference tuning (stage 4)
    dpo_batch_size: int = 8
    dpo_lr: float = 5e-6
    dpo_beta: float = 0.1
    # training examples used for instruction and preference tuning (None: all)
    tuning_examples: int | None = None
    extra: dict = field(default_factory=dict)

    def torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def window(self) -> int:
        """Tokens per training/evaluation window on the curriculum's short texts: the model's context,
        capped by `pretrain_context` (The Verdict's held-out part is 534 tokens, shorter than 1024)."""
        return min(self.model.context_length, self.pretrain_context or self.model.context_length)


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
            # 2e-4, not 5e-4: at 5e-4 the last epochs swing (test accuracy 92-98% across floating-point
            # paths, tests/numerics_matrix.py); at 2e-4 every path measured lands at 97-98%
            classify_lr=2e-4,
            # 1e-3, not 2e-3: at 2e-3 a rank-32 adapter swings across floating-point paths (test accuracy
            # 87.7% vs 58.0%, tests/numerics_matrix.py); at 1e-3 ranks 2, 8 and 32 land within a point on each
            lora_lr=1e-3,
            # three epochs: the validation loss is lowest at the third, and rises again as the training
            # accuracy reaches 100% (notebook 07's log, at five epochs)
            classify_epochs=3,
            # two passes: after one the responses have not yet learnt an answer's shape (they run on
            # past "### Response:"), and token F1 is ~0.10 instead of ~0.13
            instruct_epochs=2,
            instruct_lr=2e-3,
            dpo_lr=5e-5,            # a small model moves little at GPT-2's 5e-6 in one epoch
        ),
        Profile(
            name="gpt2",
            description="OpenAI's GPT-2 124M weights (Hugging Face model.safetensors); runs on a CPU, "
            "fine-tuning is faster on a GPU.",
            model=GPT2_SIZES["124M"],
            weights="124M",
            device="auto",
            pretrain_context=256,           # as the book: the 124M architecture from scratch, context 256
            batch_size=2,
            epochs=1,
            memorise_epochs=10,             # the book's 10 epochs over The Verdict
            shakespeare_steps=300,
            learning_rate=5e-5,
            classify_batch_size=8,
            instruct_batch_size=8,
        ),
        Profile(
            name="gpt2-medium",
            description="GPT-2 355M weights, the size the usual instruction fine-tuning recipe uses; "
            "wants a GPU.",
            model=GPT2_SIZES["355M"],
            weights="355M",
            device="auto",
            pretrain_context=256,
            batch_size=2,
            epochs=1,
            memorise_epochs=10,
            shakespeare_steps=300,
            learning_rate=5e-5,
        ),
        Profile(
            name="gpu",
            description="GPT-2 124M architecture trained from scratch on a GPU: context 1024, "
            "larger batches, bf16 autocast, fused AdamW, torch.compile "
            "(python -m scratchgpt.pretrain --profile gpu).",
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


_chosen: str | None = None      # the name the last `profile()` call chose


def active_profile_name() -> str:
    """The profile the notebook chose (its last `profile()` call), else the one the environment names."""
    return _chosen or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def profile(name: str | None = None, *, check_device: bool = True) -> Profile:
    """The profile called `name`, else the one `SCRATCHGPT_PROFILE` names, else `tiny`.

    `check_device`: a profile that needs a CUDA GPU raises `ProfileError` on a machine without one (the
    notebooks stop at their first cell); the command-line trainer, whose `--device` can override it,
    turns this off.
    """
    source = "argument" if name else f"{PROFILE_ENV} environment variable"
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from the {source}); "
            f"valid profiles: {', '.join(PROFILES)}"
        )
    p = PROFILES[name]
    global _chosen
    _chosen = name
    if check_device and p.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ProfileError(f"the {name} profile needs a CUDA GPU and this machine has none: "
                               "choose another profile, e.g. SCRATCHGPT_PROFILE=tiny or gpt2.")
    standin = os.environ.get(STANDIN_ENV)   # read here only: the profile carries it on (`weights_file`)
    if p.weights and standin:
        print(f"WARNING: {STANDIN_ENV} is set: the {name} profile uses the TEST-ONLY stand-in weights "
              f"{os.path.basename(standin)}, NOT OpenAI's, and skips the manifest's checksum",
              file=sys.stderr)
        p = dataclasses.replace(p, model=config_of(standin), weights_file=standin, **STANDIN_LIMITS)
    return p
