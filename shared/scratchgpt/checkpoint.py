"""Checkpoints: model and optimizer state in one safetensors file, written atomically.

safetensors stores plain tensors plus a string-to-string metadata header; unlike `torch.save` it
never unpickles code, so a checkpoint from a stranger is safe to open. Non-tensor state (the model's
configuration, the optimizer's hyperparameters, the step) goes into the metadata as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from .config import GPTConfig
from .data import atomic_write_bytes

FORMAT = "scratchgpt-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded: unreadable, or made for another model."""


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state, with a tied output head stored once (safetensors refuses shared tensors)."""
    state = model.state_dict()
    head, wte = getattr(model, "lm_head", None), getattr(getattr(model, "transformer", None), "wte", None)
    if head is not None and wte is not None and head.weight is wte.weight:
        state.pop("lm_head.weight", None)
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(path: str | Path, model, optimizer=None, step: int = 0, extra: dict | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write model (and optimizer) state to `path` atomically: a crash never leaves half a file.

    `extra` (JSON-able) and `extra_tensors` (random-number-generator states, ...) come back from
    `load_checkpoint` as `meta["extra"]` and `meta["tensors"]`.
    """
    path = Path(path)
    tensors = {f"model.{k}": v for k, v in model_tensors(model).items()}
    tensors |= {f"extra.{k}": v.detach().contiguous().cpu() for k, v in (extra_tensors or {}).items()}
    meta = {"format": FORMAT, "step": str(step), "extra": json.dumps(extra or {})}
    if getattr(model, "config", None) is not None and dataclasses.is_dataclass(model.config):
        meta["config"] = json.dumps(dataclasses.asdict(model.config))
    if optimizer is not None:
        names = {id(p): n for n, p in model.named_parameters()}
        state = optimizer.state_dict()
        index_to_name = {}
        for group, sd_group in zip(optimizer.param_groups, state["param_groups"]):
            for p, i in zip(group["params"], sd_group["params"]):
                index_to_name[i] = names[id(p)]
        for i, s in state["state"].items():
            for key, value in s.items():
                value = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{index_to_name[i]}.{key}"] = value.detach().contiguous().cpu()
        groups = [{k: v for k, v in g.items() if k != "params"}
                  | {"params": [index_to_name[i] for i in g["params"]]}
                  for g in state["param_groups"]]
        meta["optimizer"] = json.dumps({"class": type(optimizer).__name__, "param_groups": groups})
    # a checksum of the tensor bytes: a flipped bit on disk would otherwise load as a slightly wrong weight
    meta["tensors_sha256"] = _data_sha256(save_bytes(tensors, metadata=meta))
    for stale in path.parent.glob(f".{path.name}.*.part"):   # left by a save that was killed half-way
        stale.unlink(missing_ok=True)
    atomic_write_bytes(path, save_bytes(tensors, metadata=meta))
    return path


def _data_sha256(payload: bytes) -> str:
    """sha256 of a safetensors file's tensor bytes (everything after its JSON header)."""
    header_len = int.from_bytes(payload[:8], "little")
    return hashlib.sha256(memoryview(payload)[8 + header_len:]).hexdigest()


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint file, with a clear error for a damaged one."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint file {path.name} in its folder")
    data = path.read_bytes()
    try:
        tensors = load_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path.name} is not a readable safetensors checkpoint "
                              f"(truncated or corrupted?): {err}") from err
    expected = meta.get("tensors_sha256")
    if expected is not None and _data_sha256(data) != expected:
        raise CheckpointError(f"{path.name} is corrupted: its tensors' sha256 differs from the one "
                              "saved with them (a changed byte on disk); "
                              "use an earlier checkpoint or train again")
    return tensors, meta


def load_checkpoint(path: str | Path, model, optimizer=None, strict: bool = True) -> dict:
    """Load a checkpoint into `model` (and `optimizer`); returns its metadata (`step`, `extra`, ...).

    A checkpoint of another configuration is refused with the list of mismatched tensors, before
    anything in the model is changed.
    """
    tensors, meta = read_checkpoint(path)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = model_tensors(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
             for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if strict and (missing or unexpected or wrong):
        parts = [f"{label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
                 for label, items in (("shape mismatch", wrong), ("missing", missing),
                                      ("unexpected", unexpected))
                 if items]
        saved = meta.get("config", "unknown")
        raise CheckpointError(f"{Path(path).name} was saved from another model configuration ({saved}); "
                              + "; ".join(parts))
    model.load_state_dict(state, strict=False)  # a tied head is restored through the embedding

    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{Path(path).name} holds no optimizer state")
        saved = json.loads(meta["optimizer"])
        names = {id(p): n for n, p in model.named_parameters()}
        name_to_index, param_groups = {}, []
        for group, saved_group in zip(optimizer.param_groups, saved["param_groups"]):
            ours = [names[id(p)] for p in group["params"]]
            if ours != saved_group["params"]:
                raise CheckpointError(f"{Path(path).name}: the optimizer's parameter groups differ "
                                      "from the checkpoint's")
            for n in ours:
                name_to_index[n] = len(name_to_index)
            param_groups.append(saved_group | {"params": [name_to_index[n] for n in ours]})
        opt_state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                name, field = key[len("optim."):].rsplit(".", 1)
                opt_state.setdefault(name_to_index[name], {})[field] = value
        optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})
    meta = dict(meta)
    meta["tensors"] = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    meta["step"] = int(meta.get("step", 0))
    meta["extra"] = json.loads(meta.get("extra", "{}"))
    if "config" in meta:
        meta["config"] = GPTConfig(**json.loads(meta["config"]))
    return meta
