"""The command-line trainer: pretrain a GPT on pre-tokenized shards, on one process or many.

    python -m scratchgpt.pretrain --profile tiny --out runs/tiny
    torchrun --nproc_per_node=2 -m scratchgpt.pretrain --profile tiny --out runs/tiny-ddp
    python -m scratchgpt.pretrain --profile gpu --data runs/tokens/mycorpus --out runs/gpt2-124M

The profile gives every default (model, batch, learning rate, device, bf16, compile); flags override
them. Without `--data`, the profile's text is pre-tokenized into `runs/tokens/<name>` first.

Under `torchrun` the same command trains data-parallel with PyTorch's DistributedDataParallel (gloo
on CPUs, NCCL on GPUs). Each optimizer step takes one *global* batch of `world_size x batch_size`
consecutive windows from the token stream; rank r reads its own `batch_size` of them, so N processes
with batch b see exactly the tokens one process with batch N·b sees, and DDP's gradient averaging
makes the two give the same updates.

Rank 0 writes to `--out`: `log.jsonl` (a line per evaluation: step, tokens, training and validation
loss, learning rate, tokens per second), `checkpoint.safetensors` every `--ckpt-every` steps and at
the end, and finally `loss.png` and `sample.txt`. A checkpoint holds the model, the optimizer, the
step, the data position, the running loss, and every rank's random-number-generator states; it is
written to a temporary file and renamed, so a kill at any moment leaves the previous checkpoint
whole. Running the same command again resumes from it and, on a CPU, continues exactly as if the
run had never stopped.

Bad input never costs good work: every flag is checked (an error names it), a second trainer on the
same `--out` is refused (`--out/.lock` holds the owner's pid), a resume with other settings or other
data is refused, and a loss or gradient that stops being finite ends the run before the last good
checkpoint could be overwritten.

Speed comes from the engine, applied from outside the plain model: the output head and the loss fused
(`engine.training_loss`), freed memory kept in the process (`engine.keep_freed_memory`), and bf16
autocast where the hardware has bf16 units (`--dtype auto`, `engine.precision`). PERFORMANCE.md has
the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..config import GPTConfig, flops_per_token
from ..course.profiles import profile
from ..data import atomic_write_bytes
from ..engine import keep_freed_memory, training_loss
from ..engine.precision import autocast_dtype, bf16_speedup_cpu
from ..model import GPT
from ..paths import REPO_ROOT
from ..training import (
    History,
    NonFiniteError,
    lr_at,
    make_optimizer,
    optimizer_step,
    plot_losses,
    set_lr,
)
from .pretokenize import ShardError, pretokenize, read_header, read_shard, shard_paths

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"
LOCK = ".lock"
TOKENIZER = "gpt2"  # what the shards must hold: the trainer's samples decode with GPT-2's tokenizer


class TokenStream:
    """The tokens of a split's shards, read as one long sequence (through memory maps)."""

    def __init__(self, paths: list[Path]):
        self.headers = [read_header(p) | {"file": p.name} for p in paths]
        self.shards = [read_shard(p) for p in paths]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])
        self.size = int(self.starts[-1])

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length), across shard boundaries, as int64."""
        out, pos = [], start
        while pos < start + length:
            i = int(np.searchsorted(self.starts, pos, side="right")) - 1
            take = min(start + length, int(self.starts[i + 1])) - pos
            local = pos - int(self.starts[i])
            out.append(self.shards[i][local: local + take])
            pos += take
        return np.concatenate(out).astype(np.int64)

    def batch(self, position: int, batch_size: int, context: int, rank: int = 0, world: int = 1):
        """This rank's part of the global batch at `position`: (x, y, position of the next batch).

        A global batch is `world x batch_size` consecutive windows of `context` tokens (targets are
        the inputs shifted by one). At the end of the stream it wraps to the start: a new epoch.
        """
        span = world * batch_size * context
        if span + 1 > self.size:
            raise ValueError(f"a global batch needs {span + 1:,} tokens ({world} process(es) "
                             f"x batch {batch_size} "
                             f"x context {context}), but the split has only {self.size:,}: "
                             "use a smaller batch or context")
        if position + span + 1 > self.size:
            position = 0
        chunk = self.read(position + rank * batch_size * context, batch_size * context + 1)
        x = torch.from_numpy(chunk[:-1].reshape(batch_size, context))
        y = torch.from_numpy(chunk[1:].reshape(batch_size, context))
        return x, y, position + span


def check_shards(streams: dict[str, TokenStream], vocab_size: int) -> str:
    """Check that every shard holds GPT-2 tokens that fit the model; return the data's fingerprint
    (a sha256 of every shard's name, size and crc32), which a resume must match."""
    for _split, stream in streams.items():
        for h in stream.headers:
            if h["tokenizer"] != TOKENIZER:
                raise ShardError(f"{h['file']} holds {h['tokenizer']!r} tokens; "
                                 f"this trainer reads {TOKENIZER!r} tokens")
            if h["vocab_size"] > vocab_size:
                raise ShardError(f"{h['file']} has a vocabulary of {h['vocab_size']:,} tokens, "
                                 f"more than the model's {vocab_size:,}")
    listing = [(split, h["file"], h["tokens"], h["crc32"]) for split, s in streams.items() for h in s.headers]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


@dataclass
class RunConfig:
    """Everything a run's result depends on. Saved in its checkpoints; a resume must match it."""
    profile: str
    data: str
    data_sha256: str         # the shards' fingerprint: the same data, wherever the folder now lies
    model: GPTConfig
    batch_size: int          # per process
    grad_accum: int
    world_size: int
    steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    grad_clip: float
    eval_every: int
    eval_batches: int
    ckpt_every: int
    seed: int
    amp_dtype: str | None
    compile: bool

    @property
    def tokens_per_step(self) -> int:
        return self.world_size * self.batch_size * self.grad_accum * self.model.context_length


# --- the command line: every flag checked, its name in the error ------------------------------------

def _number(kind, low: float, low_ok: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


positive_int = _number(int, 1, True, "a positive integer")
count_int = _number(int, 0, True, "0 or more")
positive_float = _number(float, 0.0, False, "a positive finite number")
nonneg_float = _number(float, 0.0, True, "a finite number, 0 or more")


def dropout_float(text: str) -> float:
    value = nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def device_name(text: str) -> str:
    if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use cpu, cuda, cuda:N, mps or auto")
    return text


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scratchgpt.pretrain",
                                description=__doc__.splitlines()[0])
    p.add_argument("--profile", default=None,
                   help="named profile for the defaults (default: $SCRATCHGPT_PROFILE or tiny)")
    p.add_argument("--data", default=None,
                   help="folder of train_*.bin / val_*.bin shards "
                        "(default: the profile's text, pre-tokenized)")
    p.add_argument("--out", default=None, help="output folder (default: runs/pretrain-<profile>)")
    g = p.add_argument_group("model (default: the profile's)")
    g.add_argument("--n-layer", type=positive_int)
    g.add_argument("--n-head", type=positive_int)
    g.add_argument("--n-embd", type=positive_int)
    g.add_argument("--context", type=positive_int, help="context length")
    g.add_argument("--dropout", type=dropout_float)
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=positive_int, help="windows per process per micro-batch")
    g.add_argument("--grad-accum", type=positive_int, help="micro-batches per optimizer step")
    g.add_argument("--steps", type=positive_int,
                   help="optimizer steps (default: the profile's epochs over the training split)")
    g.add_argument("--lr", type=positive_float, help="peak learning rate")
    g.add_argument("--min-lr", type=nonneg_float,
                   help="learning rate at the end of the cosine decay (default: lr / 10)")
    g.add_argument("--warmup-steps", type=count_int, help="linear warmup steps (default: 5%% of the steps)")
    g.add_argument("--weight-decay", type=nonneg_float)
    g.add_argument("--grad-clip", type=nonneg_float, default=1.0, help="gradient norm limit (0: no clipping)")
    g.add_argument("--eval-every", type=positive_int, help="steps between evaluations and log lines")
    g.add_argument("--eval-batches", type=positive_int, default=4,
                   help="validation batches per evaluation, each the size of one optimizer step's")
    g.add_argument("--ckpt-every", type=positive_int,
                   help="steps between checkpoints (default: every evaluation)")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--device", type=device_name,
                   help="cpu, cuda, cuda:N, mps or auto (default: the profile's)")
    g.add_argument("--dtype", choices=["auto", "float32", "bfloat16"],
                   help="bfloat16: autocast the forward pass; "
                        "auto (the default, unless the profile names one): "
                        "bfloat16 where this device multiplies bf16 matrices clearly faster than fp32")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model")
    g.add_argument("--peak-tflops", type=positive_float, default=None,
                   help="one device's peak TFLOP/s (e.g. 989 for an H100's dense bf16): also log MFU")
    g = p.add_argument_group("output")
    g.add_argument("--sample-prompt", default="Every effort moves you")
    g.add_argument("--sample-tokens", type=count_int, default=40)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def run_config(args, world: int, data: Path, data_sha256: str, train_tokens: int, device=None) -> RunConfig:
    """The run's settings: each flag if given, else the profile's value (a given 0 is never replaced)."""
    prof = profile(args.profile, check_device=False)

    def given(value, default):
        return default if value is None else value

    overrides = {k: v for k, v in dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                                       context_length=args.context, dropout=args.dropout).items()
                 if v is not None}
    model = prof.model.with_(**overrides)
    batch, accum = given(args.batch_size, prof.batch_size), given(args.grad_accum, prof.grad_accum)
    steps = given(args.steps,
                  prof.epochs * max(1, train_tokens // (world * batch * accum * model.context_length)))
    lr = given(args.lr, prof.learning_rate)
    min_lr = given(args.min_lr, lr / 10)
    if min_lr > lr:
        raise ValueError(f"--min-lr {min_lr:g} is above the peak learning rate {lr:g}")
    warmup = given(args.warmup_steps, steps // 20)
    if warmup > steps:
        raise ValueError(f"--warmup-steps {warmup} is more than the run's {steps} steps")
    eval_every = given(args.eval_every, prof.eval_every)
    dtype = given(args.dtype, prof.amp_dtype or "auto")
    if dtype == "auto":
        dtype = autocast_dtype(device or torch.device("cpu"))
    return RunConfig(
        profile=prof.name, data=str(data), data_sha256=data_sha256, model=model, batch_size=batch,
        grad_accum=accum, world_size=world, steps=steps, lr=lr, min_lr=min_lr, warmup_steps=warmup,
        weight_decay=given(args.weight_decay, prof.weight_decay), grad_clip=args.grad_clip,
        eval_every=eval_every,
        eval_batches=args.eval_batches, ckpt_every=given(args.ckpt_every, eval_every), seed=args.seed,
        amp_dtype=None if dtype in (None, "float32") else dtype,
        compile=given(args.compile, prof.compile))


def config_dict(cfg: RunConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# --- one trainer per output folder --------------------------------------------------------------------

class RunLock:
    """`out/.lock`, holding the owner's pid and host: a second trainer on the same folder is refused
    (two writers would overwrite each other's checkpoints). A lock whose process no longer runs on
    this host is stale and taken over; the lock is removed when the run ends, however it ends."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK
        self.held = False

    def __enter__(self):
        mine = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale():
                    raise
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
            self.held = True
            return self
        raise RuntimeError(f"could not take {self.path}")

    def _stale(self) -> bool:
        try:
            owner = json.loads(self.path.read_text())
            pid, host = int(owner["pid"]), owner["host"]
        except (OSError, ValueError, KeyError, TypeError):
            return True          # unreadable: a lock cut short while being written
        if host != socket.gethostname():
            raise RunLockedError(f"{self.path.parent} is in use by a trainer on host {host} (pid {pid}); "
                                 f"if none runs there any more, delete {self.path}")
        if pid != os.getpid() and _alive(pid):
            raise RunLockedError(f"{self.path.parent} is in use by another trainer (pid {pid}): "
                                 "two runs on one "
                                 "folder would overwrite each other's checkpoints. "
                                 "Wait for it, or use another --out")
        return True

    def __exit__(self, *exc):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


class RunLockedError(RuntimeError):
    """Another trainer holds the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the steps of a run ----------------------------------------------------------------------------------

def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group when launched by torchrun."""
    if "RANK" not in os.environ:
        return 0, 1, 0
    backend = ("nccl" if torch.cuda.is_available() and os.environ.get("SCRATCHGPT_DDP_BACKEND") != "gloo"
               else "gloo")
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(requested: str | None, prof, local_rank: int) -> torch.device:
    """The device to train on: the flag, else the profile's; a clear error for CUDA without a GPU."""
    name = requested or prof.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"the {prof.name} profile trains on a CUDA GPU and this machine has none; "
                             "add --device cpu (and --no-compile --dtype float32 for a CPU's speed)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def open_data(args, prof, world: int, main_process: bool) -> tuple[Path, TokenStream, TokenStream]:
    """The training and validation token streams (the profile's text is pre-tokenized first if need be)."""
    data = Path(args.data) if args.data else REPO_ROOT / "runs" / "tokens" / Path(prof.pretrain_text).stem
    if args.data is None and not (data / "tokens.json").exists():
        if main_process:
            pretokenize([prof.pretrain_text], data, progress=not args.no_progress)
        if world > 1:
            dist.barrier()
    return data, TokenStream(shard_paths(data, "train")), TokenStream(shard_paths(data, "val"))


@dataclass
class Progress:
    """Where a run stands: what a checkpoint saves besides the weights."""
    step: int = 0
    position: int = 0          # the next training batch's place in the token stream
    loss_sum: float = 0.0      # training losses since the last log line
    loss_count: int = 0
    train_time: float = 0.0


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def gather_rng(device: torch.device, world: int) -> dict[str, torch.Tensor]:
    """Every rank's generator states, as tensors named rng.<rank>.<kind> (collected on all ranks)."""
    mine = {k: v.numpy() for k, v in rng_state(device).items()}
    states = [mine]
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, mine)
    return {f"rng.{r}.{k}": torch.from_numpy(np.array(v)) for r, s in enumerate(states) for k, v in s.items()}


def restore_rng(tensors: dict[str, torch.Tensor], rank: int, device: torch.device) -> None:
    torch.set_rng_state(tensors[f"rng.{rank}.torch"])
    if device.type == "cuda" and f"rng.{rank}.cuda" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng.{rank}.cuda"], device)


def resume(path: Path, model, optimizer, cfg: RunConfig, args, rank: int, device) -> Progress:
    """Load the checkpoint at `path` if there is one and it belongs to this run; else a fresh start."""
    if not path.exists():
        torch.manual_seed(cfg.seed + 1 + rank)           # dropout differs between ranks, as their data does
        return Progress()
    meta = load_checkpoint(path, model, optimizer)       # refuses another model before changing anything
    saved = meta["extra"].get("run", {})
    if args.warmup_steps is None and "warmup_steps" in saved:
        cfg.warmup_steps = saved["warmup_steps"]         # its default follows --steps, which may grow
    if args.dtype in (None, "auto") and "amp_dtype" in saved:
        cfg.amp_dtype = saved["amp_dtype"]               # "auto" is a timing: the run keeps its first choice
    mine = config_dict(cfg)
    differ = {k: (saved.get(k), mine[k]) for k in mine
              if k not in ("steps", "data") and saved.get(k) != mine[k]}
    if differ:
        raise CheckpointError(f"{path} belongs to a run with other settings; "
                              + "; ".join(f"{k}: checkpoint {a}, now {b}" for k, (a, b) in differ.items())
                              + ". Use another --out, or the checkpoint's settings")
    extra = meta["extra"]
    restore_rng(meta["tensors"], rank, device)
    if rank == 0:
        print(f"resuming from {CHECKPOINT} at step {meta['step']} (data position {extra['position']:,})")
    return Progress(step=meta["step"], position=extra["position"], loss_sum=extra["loss_sum"],
                    loss_count=extra["loss_count"])


def train_step(net, ddp, model, optimizer, stream: TokenStream, cfg: RunConfig, state: Progress, rank: int,
               world: int, device, autocast) -> float:
    """One optimizer step over one global batch (gradient accumulation, DDP); returns its mean loss."""
    started = time.perf_counter()
    lr = lr_at(state.step, cfg.lr, cfg.steps, cfg.warmup_steps, cfg.min_lr)
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    step_loss = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        x, y, state.position = stream.batch(state.position, cfg.batch_size, cfg.model.context_length, rank,
                                            world)
        # DDP averages gradients on the last micro-batch only
        sync = world == 1 or micro == cfg.grad_accum - 1
        with (nullcontext() if sync else ddp.no_sync()), autocast:
            loss = training_loss(net, x.to(device), y.to(device)) / cfg.grad_accum
        loss.backward()
        step_loss += loss.detach()
    # NonFiniteError before a NaN reaches the weights
    optimizer_step(model, optimizer, cfg.grad_clip, state.step)
    state.step += 1
    state.loss_sum += all_mean(step_loss, world)
    state.loss_count += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    state.train_time += time.perf_counter() - started
    return lr


def evaluate(model, stream: TokenStream, cfg: RunConfig, rank: int, world: int, device, autocast) -> float:
    """Mean loss over the first `eval_batches` step-sized batches of `stream` (the same ones every time):
    as many windows as `eval_batches` optimizer steps consume, however they are split into processes
    and micro-batches."""
    model.eval()
    total, n, position = torch.zeros((), device=device), 0, 0
    with torch.no_grad():
        for _ in range(cfg.eval_batches * cfg.grad_accum):
            x, y, position = stream.batch(position, cfg.batch_size, cfg.model.context_length, rank, world)
            with autocast:
                total += training_loss(model, x.to(device), y.to(device))
            n += 1
            if position == 0:
                break
    model.train()
    return all_mean(total / n, world)


def all_mean(value: torch.Tensor, world: int) -> float:
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value.item()


def log_entry(state: Progress, cfg: RunConfig, lr: float, val_loss: float, peak_tflops: float | None) -> dict:
    """A log line: step, tokens, mean training loss since the last line, validation loss, speed."""
    entry = {"step": state.step, "tokens": state.step * cfg.tokens_per_step,
             "train_loss": state.loss_sum / state.loss_count, "val_loss": val_loss, "lr": lr,
             "tokens_per_s": state.loss_count * cfg.tokens_per_step / state.train_time}
    if not all(math.isfinite(entry[k]) for k in ("train_loss", "val_loss")):
        raise NonFiniteError(f"step {state.step}: training loss {entry['train_loss']:.4g}, validation loss "
                             f"{entry['val_loss']:.4g}: not finite, the run diverged (try a smaller --lr); "
                             "the last good checkpoint is kept")
    if peak_tflops:
        # model FLOPs utilisation, counted as the benchmark does (6·N + 12·L·d·T per token)
        entry["mfu"] = entry["tokens_per_s"] * flops_per_token(cfg.model, cfg.model.context_length) \
            / (peak_tflops * 1e12 * cfg.world_size)
    return entry


def save(path: Path, model, optimizer, cfg: RunConfig, state: Progress, rng: dict) -> None:
    """Write the checkpoint, unless the weights hold a NaN or inf: never replace good work by bad."""
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteError(f"step {state.step}: weights {', '.join(bad[:3])} are not finite; "
                             f"{path.name} keeps the last good state")
    save_checkpoint(path, model, optimizer, state.step,
                    extra={"run": config_dict(cfg), "position": state.position,
                           "loss_sum": state.loss_sum, "loss_count": state.loss_count},
                    extra_tensors=rng)


def read_log(path: Path) -> list[dict]:
    """The log's entries; a last line cut short by a kill is dropped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


def write_log(path: Path, entries: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(e) + "\n" for e in entries).encode())


def train(args) -> dict:
    """A whole run: set up, resume if a checkpoint is there, train, evaluate and checkpoint, finish."""
    rank, world, local_rank = distributed()
    main_process = rank == 0
    prof = profile(args.profile, check_device=False)
    device = pick_device(args.device, prof, local_rank)
    out = Path(args.out or REPO_ROOT / "runs" / f"pretrain-{prof.name}")

    data, train_stream, val_stream = open_data(args, prof, world, main_process)
    model_vocab = prof.model.vocab_size
    fingerprint = check_shards({"train": train_stream, "val": val_stream}, model_vocab)
    cfg = run_config(args, world, data, fingerprint, train_stream.size, device)
    T = cfg.model.context_length
    train_stream.batch(0, cfg.batch_size, T, 0, world)  # fail early and clearly if a split is too short
    val_stream.batch(0, cfg.batch_size, T, 0, world)

    if main_process:
        out.mkdir(parents=True, exist_ok=True)
    with RunLock(out) if main_process else nullcontext():
        last = _run(args, cfg, out, train_stream, val_stream, rank, world, device, main_process)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last


def _run(args, cfg: RunConfig, out: Path, train_stream, val_stream, rank, world, device,
         main_process) -> dict:
    torch.manual_seed(cfg.seed)                          # the same initial weights on every rank
    model = GPT(cfg.model).to(device)
    optimizer = make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                               fused=True if device.type in ("cpu", "cuda") else None)
    ckpt_path = out / CHECKPOINT
    state = resume(ckpt_path, model, optimizer, cfg, args, rank, device)
    if main_process:
        write_log(out / LOG, [e for e in read_log(out / LOG) if e["step"] <= state.step])
        atomic_write_bytes(out / "run.json", (json.dumps(config_dict(cfg), indent=1) + "\n").encode())

    net = ddp = model
    if world > 1:
        net = ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    autocast = (torch.autocast(device.type, dtype=getattr(torch, cfg.amp_dtype)) if cfg.amp_dtype
                else nullcontext())

    if main_process:
        print(f"precision: {'bf16 autocast' if cfg.amp_dtype else 'fp32'} on {device}"
              + (f" (bf16 matrix products {bf16_speedup_cpu():.1f}x as fast as fp32 here)"
                 if device.type == "cpu" else ""))
    bar = tqdm(total=cfg.steps, initial=state.step, desc="pretraining",
               disable=not main_process or args.no_progress)
    model.train()
    last = {}
    while state.step < cfg.steps:
        lr = train_step(net, ddp, model, optimizer, train_stream, cfg, state, rank, world, device, autocast)
        bar.update(1)
        if state.step % cfg.eval_every == 0 or state.step == cfg.steps:
            val_loss = evaluate(net, val_stream, cfg, rank, world, device, autocast)
            last = log_entry(state, cfg, lr, val_loss, args.peak_tflops)
            if main_process:
                with open(out / LOG, "a") as f:
                    f.write(json.dumps(last) + "\n")
                bar.write(f"step {state.step:>5}: train loss {last['train_loss']:.3f}, "
                          f"val loss {last['val_loss']:.3f}, "
                          f"lr {lr:.2e}, {last['tokens_per_s']:,.0f} tokens/s"
                          + (f", MFU {last['mfu']:.0%}" if "mfu" in last else ""))
            state.loss_sum, state.loss_count, state.train_time = 0.0, 0, 0.0
        if state.step % cfg.ckpt_every == 0 or state.step == cfg.steps:
            rng = gather_rng(device, world)  # a collective: every rank takes part
            if main_process:
                save(ckpt_path, model, optimizer, cfg, state, rng)
    bar.close()
    if main_process:
        finish(model, out, args)
    return last


def finish(model, out: Path, args) -> None:
    """The loss plot and a sample generation, from the whole log (across resumes)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting backend stays as it was

    from ..generation import generate_text

    log = read_log(out / LOG)
    if log:
        history = History(steps=[e["step"] for e in log], tokens_seen=[e["tokens"] for e in log],
                          train_loss=[e["train_loss"] for e in log], val_loss=[e["val_loss"] for e in log])
        fig = Figure(figsize=(6, 3.5))
        plot_losses(history, fig.add_subplot())
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
    sample = generate_text(model, args.sample_prompt, args.sample_tokens)
    atomic_write_bytes(out / "sample.txt", (sample + "\n").encode())
    print(f"sample: {sample!r}")
    print(f"wrote {LOG}, {CHECKPOINT}, loss.png and sample.txt to {out}")


def main(argv=None) -> None:
    """The command line: a clear `error: ...` line, not a traceback, for every refused input."""
    args = parse_args(argv)
    keep_freed_memory()    # a training process: no fresh pages at every step (see engine/allocator.py)
    try:
        train(args)
    except (ShardError, CheckpointError, ValueError, NonFiniteError, RunLockedError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
