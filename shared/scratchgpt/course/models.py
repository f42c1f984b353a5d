"""The models the notebooks start from, cached: `pretrained(profile)` and `instruction_tuned(profile)`.

- A profile with GPT-2 weights loads them (fetched and checksummed through the data manifest).
- Otherwise the model is the one notebook 04 pretrains: `pretrain(profile)` trains it on the
  profile's text, deterministically, and the result is cached in `data/<profile>-pretrained.safetensors`.
  A missing, stale or damaged cache (weights or metadata) is rebuilt by training again the same way,
  with a one-line note, so any notebook runs on its own.
- `instruction_tuned(profile)`: notebook 08's instruction-tuned model (the start of notebook 12),
  cached the same way in `data/<profile>-instruct.safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..data import read_text
from ..dataset import create_dataloader, split_text
from ..gpt2_weights import gpt2_model
from ..instruction import (
    SPLIT_SEED,
    WARMUP_STEPS,
    finetune_instructions,
    instruction_loaders,
    load_instructions,
    split_instructions,
)
from ..model import GPT
from ..paths import DATA_DIR
from ..seeding import seed_everything
from ..training import History, make_optimizer, train
from .profiles import Profile
from .profiles import profile as default_profile

SAMPLE_PROMPT = "Every effort moves you"


def pretraining_loaders(p: Profile):
    """Data loaders over the profile's pretraining text: windows of `p.window` tokens, no overlap."""
    train_text, val_text = split_text(read_text(p.pretrain_text), p.train_ratio)
    T = p.window
    train_loader = create_dataloader(train_text, batch_size=p.batch_size, max_length=T, stride=T,
                                     shuffle=True, drop_last=True, seed=123)
    val_loader = create_dataloader(val_text, batch_size=p.batch_size, max_length=T, stride=T,
                                   shuffle=False, drop_last=False)
    return train_loader, val_loader


SEED = 123
WARMUP_FRACTION = 0.1   # of all steps
MIN_LR_FRACTION = 0.1   # of the peak rate, at the end of the cosine decay
GRAD_CLIP = 1.0


def pretrain(p: Profile, log=print, progress: bool = True) -> tuple[GPT, History]:
    """Train the profile's model from scratch on its text: AdamW, warmup and cosine decay, clipping."""
    seed_everything(SEED)
    train_loader, val_loader = pretraining_loaders(p)
    model = GPT(p.model).to(p.torch_device())
    optimizer = make_optimizer(model, lr=p.learning_rate, weight_decay=p.weight_decay)
    total = p.epochs * (len(train_loader) // p.grad_accum)
    history = train(model, optimizer, train_loader, val_loader, epochs=p.epochs, eval_every=p.eval_every,
                    warmup_steps=max(1, int(total * WARMUP_FRACTION)),
                    min_lr=p.learning_rate * MIN_LR_FRACTION, grad_clip=GRAD_CLIP,
                    sample_prompt=SAMPLE_PROMPT, log=log, progress=progress, grad_accum=p.grad_accum)
    return model.eval(), history


def cache_path(p: Profile):
    return DATA_DIR / f"{p.name}-pretrained.safetensors"


def _recipe(p: Profile) -> str:
    """Every setting that changes the weights `pretrain` makes; a cache made with others is not reused.

    (How often it evaluates is not one of them: evaluations read the data in order and draw no random
    numbers, see `training.in_order`.)
    """
    return repr((p.model, p.pretrain_text, p.train_ratio, p.window, p.batch_size, p.epochs, p.learning_rate,
                 p.weight_decay, p.grad_accum, p.amp_dtype, SEED, WARMUP_FRACTION, MIN_LR_FRACTION,
                 GRAD_CLIP))


def cache_pretrained(p: Profile, model: GPT):
    """Save `model` as the profile's pretrained model (what notebook 04 does after training).

    A profile with GPT-2 weights caches nothing: its later notebooks start from those weights, and a
    model pretrained here on one short story would only be a large, useless file. Returns the path, or
    None when nothing was saved.
    """
    if p.weights:
        return None
    return save_checkpoint(cache_path(p), model, extra={"recipe": _recipe(p)})


def _cache_metadata(path: Path) -> dict:
    """The metadata header of a cached model, checked before any weight is read: the step a whole
    number and `extra` a JSON object (a damaged header would otherwise fail after the weights were
    loaded)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"{path.name} is not a file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except SafetensorError as err:
        raise CheckpointError(f"{path.name} is not a readable safetensors file: {err}") from err
    int(meta.get("step", "0"))
    extra = json.loads(meta.get("extra", "{}"))
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path.name}'s metadata 'extra' is not a JSON object")
    return extra


def _load_cache(path: Path, model, recipe: str, made: str, again: str) -> bool:
    """Load the cached model at `path` into `model` if it was made with `recipe`. False, with a one-line
    note, when it is missing, damaged in any way (weights or metadata) or made otherwise: the caller
    then makes it again, in a fresh model (this one may hold some of the cache's weights)."""
    if not path.exists():
        return False
    try:
        if _cache_metadata(path).get("recipe") != recipe:
            print(f"the cached {path.name} was {made} with other settings; {again}")
            return False
        load_checkpoint(path, model)
        return True
    except (CheckpointError, OSError, ValueError, TypeError) as err:   # JSONDecodeError is a ValueError
        print(f"ignoring the cached model {path.name} (damaged: {err}); {again}")
        return False


def _save_cache(path: Path, model, recipe: str):
    """Cache `model` at `path`; where that is impossible (the path is a folder, the disk read-only), say
    so in one line and go on with the model uncached. Returns the path, or None."""
    try:
        return save_checkpoint(path, model, extra={"recipe": recipe})
    except OSError as err:
        print(f"could not cache the model at {path} ({err.strerror or err}); it will be made again next time")
        return None


def pretrained(p: Profile | None = None) -> GPT:
    """The pretrained model of profile `p` (default: the active profile), in eval mode."""
    p = p or default_profile()
    if p.weights:
        return gpt2_model(p.weights, path=p.weights_file).to(p.torch_device())
    model = GPT(p.model).to(p.torch_device())
    if _load_cache(cache_path(p), model, _recipe(p), "trained", "training it again (about a minute)"):
        return model.eval()
    model, _ = pretrain(p, log=lambda *_: None)
    _save_cache(cache_path(p), model, _recipe(p))
    return model


def _instruct_recipe(p: Profile) -> str:
    return repr((_recipe(p), p.weights, p.instruct_epochs, p.instruct_batch_size, p.instruct_lr,
                 SPLIT_SEED, WARMUP_STEPS) + ((p.tuning_examples,) if p.tuning_examples else ()))


def instruct_cache_path(p: Profile) -> Path:
    """`data/<profile>-instruct.safetensors`; with test-only stand-in weights, beside the stand-in file
    instead (a folder the tests own), so that no file in `data/` looks like a real GPT-2 fine-tune."""
    folder = Path(p.weights_file).parent if p.weights and p.weights_file else DATA_DIR
    return folder / f"{p.name}-instruct.safetensors"


def cache_instruction_tuned(p: Profile, model: GPT) -> Path:
    """Save notebook 08's fine-tuned model for later notebooks; returns the path."""
    return save_checkpoint(instruct_cache_path(p), model, extra={"recipe": _instruct_recipe(p)})


def instruction_tuned(p: Profile | None = None) -> GPT:
    """The profile's instruction-tuned model of notebook 08, in eval mode: loaded from its cache, or
    fine-tuned again the same way (deterministically) when the cache is missing or stale."""
    p = p or default_profile()
    model = pretrained(p)
    if _load_cache(instruct_cache_path(p), model, _instruct_recipe(p), "fine-tuned", "fine-tuning it again"):
        return model.eval()
    model = pretrained(p)
    train_data, _, val_data = split_instructions(load_instructions(), seed=SPLIT_SEED)
    finetune_instructions(model, p, *instruction_loaders(p, train_data, val_data), log=lambda *_: None)
    _save_cache(instruct_cache_path(p), model, _instruct_recipe(p))
    return model.eval()
