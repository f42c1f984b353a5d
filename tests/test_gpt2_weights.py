"""The GPT-2 weight mapping, proven offline against the `transformers` implementation.

`transformers` builds a small randomly initialised GPT-2 and saves it in the real
`model.safetensors` format; we load that file and compare logits with `transformers`' own.
"""

import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.gpt2_weights import load_gpt2_weights
from scratchgpt.model import GPT

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=1000, n_positions=32, n_embd=64, n_layer=3, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # random, non-trivial biases and norms, so every tensor's mapping matters
        for name, p in hf.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(path, safe_serialization=True)
    return path, hf


OURS = GPTConfig(vocab_size=1000, context_length=32, n_embd=64, n_layer=3, n_head=4, dropout=0.0)


def test_logits_match_transformers(hf_model_dir):
    path, hf = hf_model_dir
    model = load_gpt2_weights(GPT(OURS), path / "model.safetensors").eval()
    idx = torch.randint(0, 1000, (2, 32))
    with torch.no_grad():
        ours, theirs = model(idx), hf(idx).logits
    err = (ours - theirs).abs().max().item()
    assert err < 1e-4, err


def test_hub_layout_without_prefix_loads(hf_model_dir, tmp_path):
    """OpenAI's files on the hub have no `transformer.` prefix and carry attention-mask buffers."""
    from safetensors.torch import load_file, save_file

    path, hf = hf_model_dir
    tensors = {k.removeprefix("transformer."): v.contiguous()
               for k, v in load_file(path / "model.safetensors").items() if k != "lm_head.weight"}
    tensors |= {f"h.{i}.attn.bias": torch.tril(torch.ones(1, 1, 32, 32)) for i in range(3)}
    save_file(tensors, tmp_path / "model.safetensors")
    model = load_gpt2_weights(GPT(OURS), tmp_path / "model.safetensors").eval()
    idx = torch.randint(0, 1000, (1, 16))
    with torch.no_grad():
        assert (model(idx) - hf(idx).logits).abs().max().item() < 1e-4


def test_wrong_size_is_a_clear_error(hf_model_dir):
    path, _ = hf_model_dir
    with pytest.raises(ValueError, match="does not fit this GPT configuration"):
        load_gpt2_weights(GPT(OURS.with_(n_embd=128)), path / "model.safetensors")
