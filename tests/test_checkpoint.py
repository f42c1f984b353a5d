"""Checkpoints: a round trip continues training exactly; mismatched, corrupted, flipped and half-written
files are refused or cleaned up with an error that names the problem."""

import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from scratchgpt.model import GPT
from scratchgpt.training import make_optimizer

CFG = GPTConfig(vocab_size=200, context_length=8, n_embd=32, n_layer=2, n_head=2, dropout=0.1)
SMALL = CFG.with_(n_layer=1, n_embd=16, dropout=0.0)


def steps(model, opt, data):
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()


def test_checkpoint_round_trip_continues_training_exactly(tmp_path, token_batches):
    data = token_batches(4)
    torch.manual_seed(0)
    straight = GPT(CFG)
    opt = make_optimizer(straight, lr=1e-2)
    torch.manual_seed(1)
    steps(straight, opt, data)                       # four straight steps

    torch.manual_seed(0)
    first = GPT(CFG)
    opt1 = make_optimizer(first, lr=1e-2)
    torch.manual_seed(1)
    steps(first, opt1, data[:2])                     # two steps, save
    rng = torch.get_rng_state()
    save_checkpoint(tmp_path / "ck.safetensors", first, opt1, step=2)
    resumed = GPT(CFG)
    opt2 = make_optimizer(resumed, lr=1e-2)
    meta = load_checkpoint(tmp_path / "ck.safetensors", resumed, opt2)
    assert meta["step"] == 2 and meta["config"] == CFG
    torch.set_rng_state(rng)                         # dropout continues from the same random state
    steps(resumed, opt2, data[2:])                   # two more
    for (n, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=n)
    assert list(tmp_path.iterdir()) == [tmp_path / "ck.safetensors"]  # no temporary file left


def test_mismatched_configuration_names_the_tensors(tmp_path):
    save_checkpoint(tmp_path / "a.safetensors", GPT(CFG))
    other = GPT(CFG.with_(n_embd=64))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"another model configuration.*"
                                              r"transformer.h.0.attn.c_attn.weight "
                                              r"\(checkpoint \(96, 32\), model \(192, 64\)\)"):
        load_checkpoint(tmp_path / "a.safetensors", other)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())  # nothing changed
    with pytest.raises(CheckpointError, match="missing: transformer.h.2"):
        load_checkpoint(tmp_path / "a.safetensors", GPT(CFG.with_(n_layer=3)))


def test_corrupted_and_missing_checkpoints(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", GPT(CFG))
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors is not a readable"):
        load_checkpoint(tmp_path / "cut.safetensors", GPT(CFG))
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 100)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.safetensors", GPT(CFG))
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "none.safetensors", GPT(CFG))
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        m = GPT(CFG)
        load_checkpoint(path, m, make_optimizer(m, 1e-3))


def test_checkpoint_is_plain_safetensors(tmp_path):
    from safetensors.torch import load_file

    model = GPT(CFG)
    save_checkpoint(tmp_path / "a.safetensors", model)
    tensors = load_file(tmp_path / "a.safetensors")
    assert "model.lm_head.weight" not in tensors          # tied head stored once
    assert torch.equal(tensors["model.transformer.wte.weight"], model.transformer.wte.weight)


def test_a_flipped_byte_in_a_checkpoint_is_caught(tmp_path):
    torch.manual_seed(0)
    model = GPT(SMALL)
    path = save_checkpoint(tmp_path / "c.safetensors", model)
    payload = bytearray(path.read_bytes())
    payload[-100] ^= 0x01                                # one bit of one weight, deep in the tensor data
    path.write_bytes(bytes(payload))
    with pytest.raises(CheckpointError, match="c.safetensors is corrupted: its tensors' sha256 differs"):
        load_checkpoint(path, GPT(model.config))


def test_a_save_removes_the_leftovers_of_an_interrupted_one(tmp_path):
    model = GPT(SMALL)
    stale = tmp_path / ".c.safetensors.x1y2z3.part"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "c.safetensors", model)
    assert not stale.exists() and (tmp_path / "c.safetensors").exists()
