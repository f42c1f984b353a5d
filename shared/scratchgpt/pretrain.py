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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from .bench import flops_per_token
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import GPTConfig
from .data import atomic_write_bytes
from .model import GPT
from .paths import REPO_ROOT
from .pretokenize import ShardError, pretokenize, read_shard, shard_paths
from .profiles import profile
from .training import History, lr_at, make_optimizer, plot_losses

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"


class TokenStream:
    """The tokens of a split's shards, read as one long sequence (through memory maps)."""

    def __init__(self, paths: list[Path]):
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
            raise ValueError(f"a global batch needs {span + 1:,} tokens ({world} process(es) x batch {batch_size} "
                             f"x context {context}), but the split has only {self.size:,}: use a smaller batch or context")
        if position + span + 1 > self.size:
            position = 0
        chunk = self.read(position + rank * batch_size * context, batch_size * context + 1)
        x = torch.from_numpy(chunk[:-1].reshape(batch_size, context))
        y = torch.from_numpy(chunk[1:].reshape(batch_size, context))
        return x, y, position + span


@dataclass
class RunConfig:
    """Everything a run's result depends on. Saved in its checkpoints; a resume must match it."""
    profile: str
    data: str
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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scratchgpt.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default=None, help="named profile for the defaults (default: $SCRATCHGPT_PROFILE or tiny)")
    p.add_argument("--data", default=None, help="folder of train_*.bin / val_*.bin shards (default: the profile's text, pre-tokenized)")
    p.add_argument("--out", default=None, help="output folder (default: runs/pretrain-<profile>)")
    g = p.add_argument_group("model (default: the profile's)")
    g.add_argument("--n-layer", type=int)
    g.add_argument("--n-head", type=int)
    g.add_argument("--n-embd", type=int)
    g.add_argument("--context", type=int, help="context length")
    g.add_argument("--dropout", type=float)
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, help="windows per process per micro-batch")
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    g.add_argument("--steps", type=int, help="optimizer steps (default: the profile's epochs over the training split)")
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay (default: lr / 10)")
    g.add_argument("--warmup-steps", type=int, help="linear warmup steps (default: 5%% of the steps)")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--grad-clip", type=float, default=1.0)
    g.add_argument("--eval-every", type=int, help="steps between evaluations and log lines")
    g.add_argument("--eval-batches", type=int, default=4, help="validation batches per evaluation, each the size of one optimizer step's")
    g.add_argument("--ckpt-every", type=int, help="steps between checkpoints (default: every evaluation)")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--device", help="cpu, cuda, or auto (default: the profile's)")
    g.add_argument("--dtype", choices=["float32", "bfloat16"], help="autocast dtype (default: the profile's)")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model")
    g.add_argument("--peak-tflops", type=float, default=None,
                   help="one device's peak TFLOP/s (e.g. 989 for an H100's dense bf16): also log MFU")
    g = p.add_argument_group("output")
    g.add_argument("--sample-prompt", default="Every effort moves you")
    g.add_argument("--sample-tokens", type=int, default=40)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group when launched by torchrun."""
    if "RANK" not in os.environ:
        return 0, 1, 0
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("SCRATCHGPT_DDP_BACKEND") != "gloo" else "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


def run_config(args, world: int, data: Path, train_tokens: int) -> RunConfig:
    prof = profile(args.profile)
    overrides = {k: v for k, v in dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                                       context_length=args.context, dropout=args.dropout).items() if v is not None}
    model = prof.model.with_(**overrides)
    batch = args.batch_size or prof.batch_size
    accum = args.grad_accum or prof.grad_accum
    steps = args.steps
    if steps is None:
        steps = prof.epochs * max(1, train_tokens // (world * batch * accum * model.context_length))
    lr = args.lr or prof.learning_rate
    eval_every = args.eval_every or prof.eval_every
    dtype = args.dtype or prof.amp_dtype
    return RunConfig(
        profile=prof.name, data=str(data), model=model, batch_size=batch, grad_accum=accum, world_size=world,
        steps=steps, lr=lr, min_lr=lr / 10 if args.min_lr is None else args.min_lr,
        warmup_steps=steps // 20 if args.warmup_steps is None else args.warmup_steps,
        weight_decay=prof.weight_decay if args.weight_decay is None else args.weight_decay,
        grad_clip=args.grad_clip, eval_every=eval_every, eval_batches=args.eval_batches,
        ckpt_every=args.ckpt_every or eval_every, seed=args.seed,
        amp_dtype=None if dtype in (None, "float32") else dtype,
        compile=prof.compile if args.compile is None else args.compile)


def config_dict(cfg: RunConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


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
                logits = model(x.to(device))
            total += F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten())
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
    rank, world, local_rank = distributed()
    prof = profile(args.profile)
    device = torch.device(args.device or prof.device)
    if device.type == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"the {prof.name} profile trains on a CUDA GPU and this machine has none; "
                             "add --device cpu (and --no-compile --dtype float32 for a CPU's speed)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    main_process = rank == 0
    out = Path(args.out or REPO_ROOT / "runs" / f"pretrain-{prof.name}")

    data = Path(args.data) if args.data else REPO_ROOT / "runs" / "tokens" / Path(prof.pretrain_text).stem
    if args.data is None and not (data / "tokens.json").exists():
        if main_process:
            pretokenize([prof.pretrain_text], data, progress=not args.no_progress)
        if world > 1:
            dist.barrier()
    train_stream = TokenStream(shard_paths(data, "train"))
    val_stream = TokenStream(shard_paths(data, "val"))
    cfg = run_config(args, world, data, train_stream.size)
    T = cfg.model.context_length
    train_stream.batch(0, cfg.batch_size, T, 0, world)  # fail early and clearly if a split is too short
    val_stream.batch(0, cfg.batch_size, T, 0, world)

    torch.manual_seed(cfg.seed)                          # the same initial weights on every rank
    model = GPT(cfg.model).to(device)
    optimizer = make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                               fused=True if device.type in ("cpu", "cuda") else None)
    step, position, loss_sum, loss_count, train_time = 0, 0, 0.0, 0, 0.0
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists():
        meta = load_checkpoint(ckpt_path, model, optimizer)     # refuses another model before changing anything
        saved = meta["extra"].get("run", {})
        if args.warmup_steps is None and "warmup_steps" in saved:
            cfg.warmup_steps = saved["warmup_steps"]     # its default follows --steps, which may grow
        mine = config_dict(cfg)
        differ = {k: (saved.get(k), mine[k]) for k in mine if k not in ("steps", "data") and saved.get(k) != mine[k]}
        if differ:
            raise CheckpointError(f"{ckpt_path} belongs to a run with other settings; "
                                  + "; ".join(f"{k}: checkpoint {a}, now {b}" for k, a, b in
                                              ((k, *v) for k, v in differ.items()))
                                  + ". Use another --out, or the checkpoint's settings")
        step, position = meta["step"], meta["extra"]["position"]
        loss_sum, loss_count = meta["extra"]["loss_sum"], meta["extra"]["loss_count"]
        restore_rng(meta["tensors"], rank, device)
        if main_process:
            print(f"resuming from {CHECKPOINT} at step {step} (data position {position:,})")
    else:
        torch.manual_seed(cfg.seed + 1 + rank)           # dropout differs between ranks, as their data does
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f".{CHECKPOINT}.*.part"):  # a write cut short by a kill (never under the real name)
            stale.unlink()
        write_log(out / LOG, [e for e in read_log(out / LOG) if e["step"] <= step])
        atomic_write_bytes(out / "run.json", (json.dumps(config_dict(cfg), indent=1) + "\n").encode())

    net = ddp = model
    if world > 1:
        net = ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    autocast = (torch.autocast(device.type, dtype=getattr(torch, cfg.amp_dtype)) if cfg.amp_dtype else nullcontext())

    bar = tqdm(total=cfg.steps, initial=step, desc="pretraining", disable=not main_process or args.no_progress)
    model.train()
    last = {}
    while step < cfg.steps:
        started = time.perf_counter()
        lr = lr_at(step, cfg.lr, cfg.steps, cfg.warmup_steps, cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros((), device=device)
        for micro in range(cfg.grad_accum):
            x, y, position = train_stream.batch(position, cfg.batch_size, T, rank, world)
            sync = world == 1 or micro == cfg.grad_accum - 1   # DDP averages gradients on the last micro-batch only
            with (nullcontext() if sync else ddp.no_sync()), autocast:
                logits = net(x.to(device, non_blocking=True))               # (B, T, V)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten()) / cfg.grad_accum
            loss.backward()
            step_loss += loss.detach()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        loss_sum += all_mean(step_loss, world)
        loss_count += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time += time.perf_counter() - started
        bar.update(1)

        if step % cfg.eval_every == 0 or step == cfg.steps:
            last = {"step": step, "tokens": step * cfg.tokens_per_step, "train_loss": loss_sum / loss_count,
                    "val_loss": evaluate(net, val_stream, cfg, rank, world, device, autocast), "lr": lr,
                    "tokens_per_s": loss_count * cfg.tokens_per_step / train_time}
            if args.peak_tflops:
                # model FLOPs utilisation, counted as the benchmark does (6·N + 12·L·d·T per token)
                last["mfu"] = last["tokens_per_s"] * flops_per_token(cfg.model, T) / (args.peak_tflops * 1e12 * world)
            if main_process:
                with open(out / LOG, "a") as f:
                    f.write(json.dumps(last) + "\n")
                bar.write(f"step {step:>5}: train loss {last['train_loss']:.3f}, val loss {last['val_loss']:.3f}, "
                          f"lr {lr:.2e}, {last['tokens_per_s']:,.0f} tokens/s"
                          + (f", MFU {last['mfu']:.0%}" if "mfu" in last else ""))
            loss_sum, loss_count, train_time = 0.0, 0, 0.0
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            rng = gather_rng(device, world)  # a collective: every rank takes part
            if main_process:
                save_checkpoint(ckpt_path, model, optimizer, step,
                                extra={"run": config_dict(cfg), "position": position,
                                       "loss_sum": loss_sum, "loss_count": loss_count},
                                extra_tensors=rng)
    bar.close()

    if main_process:
        finish(model, out, args)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last


def finish(model, out: Path, args) -> None:
    """The loss plot and a sample generation, from the whole log (across resumes)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting backend stays as it was

    from .generation import generate_text

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
    train(parse_args(argv))


if __name__ == "__main__":
    try:
        main()
    except (ShardError, CheckpointError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
