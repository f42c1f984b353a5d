"""The command-line trainer refuses bad input and never destroys good work.

Each test gives one bad input and checks two things: the error names the problem, and what was saved
before (checkpoint, shards) is still there, byte for byte.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from scratchgpt.checkpoint import CheckpointError, read_checkpoint
from scratchgpt.tools import pretrain as trainer
from scratchgpt.tools.pretokenize import ShardError, pretokenize, write_shard
from scratchgpt.tools.pretrain import RunLockedError, parse_args, train
from scratchgpt.training import NonFiniteError

SMALL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--context", "16", "--batch-size", "2",
         "--no-progress", "--sample-tokens", "3", "--dtype", "float32"]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict")
    pretokenize(["the-verdict.txt"], out, progress=False)
    return out


def small_run(tokens, out, *extra):
    return parse_args(["--data", str(tokens), *SMALL, "--out", str(out), *extra])


@pytest.mark.parametrize("flag, value, message", [
    ("--lr", "0", "must be a positive finite number, got 0"),
    ("--lr", "inf", "must be a positive finite number, got inf"),
    ("--lr", "-1e-3", "must be a positive finite number"),
    ("--grad-clip", "nan", "must be a finite number, 0 or more, got nan"),
    ("--batch-size", "0", "must be a positive integer, got 0"),
    ("--grad-accum", "0", "must be a positive integer, got 0"),
    ("--eval-every", "0", "must be a positive integer, got 0"),
    ("--steps", "-5", "must be a positive integer, got -5"),
    ("--ckpt-every", "0", "must be a positive integer"),
    ("--context", "0", "must be a positive integer"),
    ("--n-layer", "2.5", "'2.5' is not an integer"),
    ("--dropout", "1", "must be at least 0 and below 1"),
    ("--warmup-steps", "-1", "must be 0 or more"),
    ("--device", "cdua", "unknown device 'cdua'"),
])
def test_every_flag_is_checked_and_named(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args([f"{flag}={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {message}" in err


def test_a_given_zero_is_not_replaced_by_the_profile_default(tokens, tmp_path):
    # --min-lr 0 and --warmup-steps 0 are legitimate values: `args.x or default` would have lost them
    args = small_run(tokens, tmp_path / "o", "--lr", "1e-3", "--min-lr", "0", "--warmup-steps", "0",
                     "--steps", "2")
    cfg = trainer.run_config(args, 1, tokens, "x", 10_000)
    assert (cfg.min_lr, cfg.warmup_steps, cfg.lr) == (0.0, 0, 1e-3)
    with pytest.raises(ValueError, match="--min-lr 0.01 is above the peak learning rate 0.001"):
        trainer.run_config(small_run(tokens, tmp_path / "o", "--lr", "1e-3", "--min-lr", "1e-2"),
                           1, tokens, "x", 10_000)
    with pytest.raises(ValueError, match="--warmup-steps 9 is more than the run's 4 steps"):
        trainer.run_config(small_run(tokens, tmp_path / "o", "--steps", "4", "--warmup-steps", "9"),
                           1, tokens, "x", 10_000)


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tokens, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(small_run(tokens, out, "--steps", "4", "--eval-every", "2"))
    good = (out / "checkpoint.safetensors").read_bytes()

    real_loss = trainer.training_loss
    calls = {"n": 0}

    def diverging(model, x, y):    # the resumed run's 2nd training batch: a NaN loss
        loss = real_loss(model, x, y)
        calls["n"] += model.training
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(trainer, "training_loss", diverging)
    with pytest.raises(NonFiniteError, match="step 6: the gradient norm is nan, not a finite number"):
        train(small_run(tokens, out, "--steps", "8", "--eval-every", "2", "--warmup-steps", "0"))
    assert (out / "checkpoint.safetensors").read_bytes() == good     # step 4's checkpoint, untouched
    assert not (out / ".lock").exists()                              # the lock went with the run
    monkeypatch.undo()
    tensors, meta = read_checkpoint(out / "checkpoint.safetensors")
    assert meta["step"] == "4" and all(torch.isfinite(t).all() for t in tensors.values()
                                       if t.is_floating_point())


def test_an_infinite_learning_rate_in_effect_is_stopped_from_the_command_line(tokens, tmp_path):
    # a finite but absurd rate blows the weights up; the run must fail, not write a NaN checkpoint
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "scratchgpt.pretrain", "--data", str(tokens), *SMALL,
                             "--out", str(out), "--steps", "6", "--lr", "1e30", "--warmup-steps", "0",
                             "--grad-clip", "0", "--eval-every", "1", "--ckpt-every", "1"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "error: step" in result.stderr and "not finite" in result.stderr \
        and "Traceback" not in result.stderr
    if (out / "checkpoint.safetensors").exists():          # whatever was saved holds finite numbers
        tensors, _ = read_checkpoint(out / "checkpoint.safetensors")
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_a_second_trainer_on_the_same_folder_is_refused(tokens, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        with pytest.raises(RunLockedError, match=f"in use by another trainer \\(pid {sleeper.pid}\\)"):
            train(small_run(tokens, out, "--steps", "2"))
        assert not (out / "checkpoint.safetensors").exists()
        assert json.loads((out / ".lock").read_text())["pid"] == sleeper.pid    # still the owner's
    finally:
        sleeper.kill()
        sleeper.wait()
    # the owner is gone: its lock is stale and the next run takes it over, then releases it
    train(small_run(tokens, out, "--steps", "2"))
    assert (out / "checkpoint.safetensors").exists() and not (out / ".lock").exists()


def test_a_resume_on_other_data_is_refused(tokens, tmp_path):
    out = tmp_path / "run"
    train(small_run(tokens, out, "--steps", "2"))
    before = (out / "checkpoint.safetensors").read_bytes()
    other = tmp_path / "other"
    pretokenize(["tinyshakespeare.txt"], other, progress=False)
    with pytest.raises(CheckpointError,
                       match="belongs to a run with other settings; data_sha256: checkpoint"):
        train(parse_args(["--data", str(other), *SMALL, "--out", str(out), "--steps", "2"]))
    assert (out / "checkpoint.safetensors").read_bytes() == before
    # the same data in another folder is the same data: the resume goes on
    moved = tmp_path / "moved"
    tokens_copy = [p.read_bytes() for p in sorted(tokens.iterdir()) if p.is_file()]
    moved.mkdir()
    for p, payload in zip(sorted(q for q in tokens.iterdir() if q.is_file()), tokens_copy):
        (moved / p.name).write_bytes(payload)
    train(parse_args(["--data", str(moved), *SMALL, "--out", str(out), "--steps", "3"]))
    assert read_checkpoint(out / "checkpoint.safetensors")[1]["step"] == "3"


def test_shards_of_another_tokenizer_or_vocabulary_are_refused(tmp_path):
    for split in ("train", "val"):
        write_shard(tmp_path / "foreign" / f"{split}_000000.bin", np.arange(500) % 100, tokenizer="llama",
                    vocab_size=100)
        write_shard(tmp_path / "wide" / f"{split}_000000.bin", np.arange(500), vocab_size=60_000)
    with pytest.raises(ShardError, match="holds 'llama' tokens; this trainer reads 'gpt2' tokens"):
        train(parse_args(["--data", str(tmp_path / "foreign"), *SMALL, "--out", str(tmp_path / "o")]))
    with pytest.raises(ShardError, match="vocabulary of 60,000 tokens, more than the model's 50,257"):
        train(parse_args(["--data", str(tmp_path / "wide"), *SMALL, "--out", str(tmp_path / "o")]))
    assert not (tmp_path / "o").exists()


