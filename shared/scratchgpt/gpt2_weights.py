"""Load OpenAI's GPT-2 weights from the Hugging Face `model.safetensors` files into our GPT.

Our parameter names are GPT-2's own, so the mapping is by name. One twist: GPT-2's checkpoints store
the attention and MLP projections as `Conv1D` layers, whose weight is the transpose of an
`nn.Linear` weight. Files saved by the `transformers` package prefix every name with `transformer.`;
the files published by OpenAI on the hub do not. Both load.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from .config import GPT2_HF_NAMES, GPT2_SIZES, config_of
from .data import DataError, fetch, load_manifest
from .model import GPT

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def load_gpt2_weights(model: GPT, path: str | Path) -> GPT:
    """Copy the weights of a GPT-2 `model.safetensors` file into `model` (shapes must match)."""
    hf = {k.removeprefix("transformer."): v for k, v in load_file(str(path)).items()}
    ours = model.state_dict()
    missing, wrong = [], []
    with torch.no_grad():
        for name, param in ours.items():
            if name == "lm_head.weight":
                # GPT-2 ties its head to the token embedding; some files store the head anyway
                source = hf.get("lm_head.weight", hf.get("wte.weight"))
            else:
                source = hf.get(name.removeprefix("transformer."))
            if source is None:
                missing.append(name)
                continue
            if name.endswith(CONV1D):
                source = source.t()
            if source.shape != param.shape:
                wrong.append(f"{name} (file {tuple(source.shape)}, model {tuple(param.shape)})")
                continue
            param.copy_(source)
    if missing or wrong:
        raise ValueError(f"{path} does not fit this GPT configuration: "
                         f"missing {missing[:5]}, shape mismatch {wrong[:5]}")
    return model


def gpt2_model(size: str = "124M", dropout: float = 0.0, path: str | Path | None = None) -> GPT:
    """OpenAI's GPT-2 of the given size, its weights fetched (and checksummed) through the data manifest.

    `path`: a GPT-2-format `model.safetensors` to load instead, as it is (no checksum), its shape read
    from the file; the test suite's small stand-in checkpoints come this way (`Profile.weights_file`)."""
    if size not in GPT2_SIZES:
        raise ValueError(f"unknown GPT-2 size {size!r}; sizes: {', '.join(GPT2_SIZES)}")
    if path is not None:
        return load_gpt2_weights(GPT(config_of(path).with_(dropout=dropout)), path).eval()
    name = f"gpt2-{size}.safetensors"
    url = f"https://huggingface.co/openai-community/{GPT2_HF_NAMES[size]}/resolve/main/model.safetensors"
    if name not in load_manifest():
        raise DataError(f"data/manifest.json has no entry for {name} yet: add its URL ({url}), "
                        "sha256 and size, so that the download can be verified; "
                        f"then save the download as data/{name}")
    try:
        path = fetch(name)
    except DataError as err:
        raise DataError(f"GPT-2 {size}'s weights are not here. Download {url} and save it as data/{name} "
                        f"(or put {name} in the folder SCRATCHGPT_DATA_MIRROR names). "
                        f"Details: {err}") from None
    return load_gpt2_weights(GPT(GPT2_SIZES[size].with_(dropout=dropout)), path).eval()
