"""The command-line trainer: end to end, two-process DDP against one process, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from scratchgpt.checkpoint import CheckpointError, read_checkpoint
from scratchgpt.tools.pretokenize import pretokenize
from scratchgpt.tools.pretrain import parse_args, train

# fp32: these tests compare runs to within 1e-5 (bf16 is tested on its own, with its own tolerance)
SMALL = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--context", "32", "--no-progress",
         "--sample-tokens", "5", "--dtype", "float32"]


def run(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def log(folder):
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def weights(folder):
    tensors, meta = read_checkpoint(folder / "checkpoint.safetensors")
    return tensors, json.loads(meta["extra"])


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict")
    pretokenize(["the-verdict.txt"], out, progress=False)
    return out


@pytest.mark.slow
def test_tiny_profile_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = run("scratchgpt.pretrain", "--profile", "tiny", "--steps", "30", "--eval-every", "15",
                 "--no-progress", "--peak-tflops", "1000", "--out", str(out))
    entries = log(out)
    assert [e["step"] for e in entries] == [15, 30]
    assert entries[-1]["train_loss"] < entries[0]["train_loss"] < 10.9     # it learns (ln 50257 = 10.8)
    assert entries[-1]["tokens"] == 30 * 128 and entries[-1]["tokens_per_s"] > 0 \
        and 0 < entries[-1]["mfu"] < 1
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "sample.txt").read_text().startswith("Every effort moves you")
    assert "sample:" in result.stdout
    tensors, extra = weights(out)
    assert extra["run"]["model"]["n_layer"] == 4 and extra["run"]["steps"] == 30


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tokens, tmp_path):
    common = ["--data", str(tokens), *SMALL, "--steps", "6", "--eval-every", "1", "--dropout", "0.0"]
    train(parse_args([*common, "--batch-size", "4", "--out", str(tmp_path / "one")]))
    # each rank: 2 micro-batches of 1 window (DDP syncs gradients on the last one only): the same
    # 4 windows per step as the single process
    run("torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "scratchgpt.pretrain", *common,
        "--batch-size", "1", "--grad-accum", "2", "--out", str(tmp_path / "two"))
    one, two = log(tmp_path / "one"), log(tmp_path / "two")
    assert [e["step"] for e in one] == [e["step"] for e in two] == [1, 2, 3, 4, 5, 6]
    assert [e["tokens"] for e in one] == [e["tokens"] for e in two]      # the same global batch
    gaps = {key: max(abs(a[key] - b[key]) for a, b in zip(one, two)) for key in ("train_loss", "val_loss")}
    assert gaps["train_loss"] < 1e-5 and gaps["val_loss"] < 1e-5
    assert one[-1]["train_loss"] < one[0]["train_loss"]
    (w1, _), (w2, _) = weights(tmp_path / "one"), weights(tmp_path / "two")
    weight_gap = max((w1[k] - w2[k]).abs().max().item() for k in w1 if k.startswith("model."))
    assert weight_gap < 1e-5
    print(f"2 processes vs 1, 6 steps: max |difference| training loss {gaps['train_loss']:.1e}, "
          f"validation loss {gaps['val_loss']:.1e}, weights {weight_gap:.1e}; "
          f"losses {one[0]['train_loss']:.4f} -> {one[-1]['train_loss']:.4f}")


@pytest.mark.slow
def test_killed_run_resumes_exactly(tokens, tmp_path):
    # dropout on: resuming must also restore the random number generators
    flags = ["--data", str(tokens), *SMALL, "--batch-size", "2", "--steps", "24", "--eval-every", "1",
             "--ckpt-every", "3", "--dropout", "0.1"]
    command = ["scratchgpt.pretrain", *flags]
    # in this process: the same arithmetic
    train(parse_args([*flags, "--out", str(tmp_path / "whole")]))

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", *command, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "log.jsonl").exists() and len((out / "log.jsonl").read_text().splitlines()) >= 10:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL                               # killed, not finished
    tensors, extra = weights(out)                                       # the checkpoint left behind is whole
    assert 3 <= int(read_checkpoint(out / "checkpoint.safetensors")[1]["step"]) < 24

    killed_at = len(log(out))
    saved_step = int(read_checkpoint(out / "checkpoint.safetensors")[1]["step"])
    resumed = run(*command, "--out", str(out))
    assert "resuming from checkpoint.safetensors at step" in resumed.stdout
    assert not list(out.glob(".*.part"))
    (whole, _), (again, _) = weights(tmp_path / "whole"), weights(out)
    assert whole.keys() == again.keys()
    # model, optimizer and generator states
    assert all(torch.equal(whole[k], again[k]) for k in whole)
    print(f"killed after step {killed_at} (last checkpoint: step {saved_step}), resumed to step 24: "
          f"all {len(whole)} tensors bit-identical to the uninterrupted run")
    drop = ("tokens_per_s",)
    assert [{k: v for k, v in e.items() if k not in drop} for e in log(out)] == \
           [{k: v for k, v in e.items() if k not in drop} for e in log(tmp_path / "whole")]


def test_resume_with_other_settings_is_refused(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--data", str(tokens), *SMALL, "--batch-size", "2", "--steps", "20", "--eval-every", "10",
            "--out", str(out)]
    train(parse_args(base))
    before = (out / "checkpoint.safetensors").read_bytes()
    with pytest.raises(CheckpointError,
                       match="belongs to a run with other settings; lr: checkpoint 0.001, now 0.01"):
        train(parse_args([*base, "--lr", "0.01"]))
    with pytest.raises(CheckpointError, match="another model configuration"):
        train(parse_args([*base, "--n-embd", "64"]))
    assert (out / "checkpoint.safetensors").read_bytes() == before     # nothing saved is lost
    train(parse_args([*base, "--steps", "40"]))      # more steps: the run goes on (warmup stays at 20 // 20)
    assert "resuming from checkpoint.safetensors at step 20" in capsys.readouterr().out
    assert [e["step"] for e in log(out)] == [10, 20, 30, 40]


def test_missing_data_and_a_too_short_split_are_clear_errors(tokens, tmp_path):
    result = run("scratchgpt.pretrain", "--data", str(tmp_path), *SMALL, "--out", str(tmp_path / "o"),
                 check=False)
    assert result.returncode != 0 and "no train_*.bin shards" in result.stderr \
        and "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="a global batch needs 8,193 tokens .* but the split has only 4,613"):
        train(parse_args(["--data", str(tokens), "--context", "4096", "--batch-size", "2",
                          "--out", str(tmp_path / "o")]))
    assert not (tmp_path / "o").exists()                                # failed before writing anything


def test_gpu_profile_without_a_gpu_says_so(tokens, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="trains on a CUDA GPU and this machine has none; add --device cpu"):
        train(parse_args(["--profile", "gpu", "--data", str(tokens), "--out", str(tmp_path / "o")]))
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bf16_training_stays_close_to_fp32(tokens, tmp_path):
    """bf16 autocast (what `--dtype auto` picks on CPUs and GPUs with bf16 units) against fp32, the
    same run otherwise: every logged training loss within 2% (bf16 keeps 8 bits of mantissa, so not
    float tolerance), and the losses do differ (proof that bf16 really ran)."""
    common = ["--data", str(tokens), *SMALL[:-2], "--batch-size", "4", "--steps", "30", "--eval-every", "10",
              "--dropout", "0.0"]
    runs = {}
    for dtype in ("float32", "bfloat16"):
        train(parse_args([*common, "--dtype", dtype, "--out", str(tmp_path / dtype)]))
        runs[dtype] = log(tmp_path / dtype)
    gaps = [abs(a["train_loss"] - b["train_loss"]) / a["train_loss"]
            for a, b in zip(runs["float32"], runs["bfloat16"])]
    assert max(gaps) < 0.02 and max(gaps) > 0
    assert json.loads((tmp_path / "bfloat16" / "run.json").read_text())["amp_dtype"] == "bfloat16"
    print(f"bf16 vs fp32, 30 steps: largest relative gap in training loss {max(gaps):.2%}; "
          f"final {runs['float32'][-1]['train_loss']:.4f} vs {runs['bfloat16'][-1]['train_loss']:.4f}")


def test_the_trainer_computes_its_loss_with_the_fused_head(tokens, tmp_path, monkeypatch):
    """One process, eager: every training and evaluation loss goes through the engine's fused head and
    loss (tested for equality with F.cross_entropy in test_loss.py)."""
    import scratchgpt.engine.loss as engine_loss

    seen = []
    real = engine_loss.fused_loss

    def spy(model, inputs, targets, chunk=512):
        seen.append(torch.is_grad_enabled())
        return real(model, inputs, targets, chunk)

    monkeypatch.setattr(engine_loss, "fused_loss", spy)
    train(parse_args(["--data", str(tokens), *SMALL, "--batch-size", "2", "--steps", "4", "--eval-every", "2",
                      "--out", str(tmp_path / "run")]))
    assert seen.count(True) == 4 and False in seen


def test_auto_precision_is_kept_on_resume(tokens, tmp_path, monkeypatch):
    """`--dtype auto` is decided by timing: a resume must keep the run's first choice, not time again."""
    import scratchgpt.tools.pretrain as trainer

    out = tmp_path / "run"
    flags = ["--data", str(tokens), *SMALL[:-2], "--batch-size", "2", "--eval-every", "2", "--out", str(out)]
    monkeypatch.setattr(trainer, "autocast_dtype", lambda device: "bfloat16")
    train(parse_args([*flags, "--steps", "2"]))
    monkeypatch.setattr(trainer, "autocast_dtype", lambda device: None)     # the timing now says fp32
    # ... and the resume goes on in bf16
    train(parse_args([*flags, "--steps", "4"]))
    assert json.loads((out / "run.json").read_text())["amp_dtype"] == "bfloat16"


def test_choosing_the_precision_draws_no_random_numbers():
    """`--dtype auto` times matrix products; it must not move the generator that dropout and the
    initial weights use (a resumed run would otherwise differ from an uninterrupted one)."""
    from scratchgpt.engine.precision import autocast_dtype, bf16_speedup_cpu

    bf16_speedup_cpu.cache_clear()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    autocast_dtype("cpu")
    assert torch.equal(torch.get_rng_state(), before)
