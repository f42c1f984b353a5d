"""Benchmark: where the package stands against this machine's limit.

    python -m scratchgpt.bench [--quick] [--json bench.json] [--gpt2-steps 2] [--gen-tokens 200]
                               [--decode-rounds 3] [--compile]

`--quick` sets every size itself, so it is refused together with a size flag; a `--json` path that cannot
be written is refused before the run, not after it.

Prints one table: the measured limits (fp32 and bf16 matmul rates, the practical ceilings, and the
memory read bandwidth), training tokens per second and model FLOPs utilisation (MFU) for the tiny
profile's model and a GPT-2 124M-shaped model, teaching vs fused attention, and generation with and
without the key/value cache, with the fast decoder (eager, and compiled: not with --quick). Every
share is of the limit measured again just before and after its own figure (`Limits`), because on a
shared host the limits move while the benchmark runs; the table gives their range over the run. For
the same reason the GPT-2 124M model's fp32 and bf16 training steps are timed in alternating rounds,
and the bf16 / fp32 speed-up is given for each round.

FLOPs per token: `config.flops_per_token` (6·N + 12·L·d·T, as the usual reference GPT code counts them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..attention import MultiHeadAttention
from ..config import GPT2_SIZES, GPTConfig, count_parameters, flops_per_token
from ..course.profiles import profile
from ..data import atomic_write_bytes
from ..engine import keep_freed_memory, training_loss
from ..engine.decoding import Decoder, bandwidth_share
from ..engine.precision import CLEAR_WIN, matmul_rate
from ..generation import generate
from ..model import GPT
from ..training import make_optimizer


def cpu_features() -> dict:
    """The vector and matrix units this CPU reports (Linux's /proc/cpuinfo), and PyTorch's kernel choice."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    names = {"AVX2": "avx2", "AVX-512": "avx512f", "AVX512-BF16": "avx512_bf16", "AMX-BF16": "amx_bf16",
             "NEON": "asimd", "SVE": "sve", "ARM-BF16": "bf16"}
    return {"found": [k for k, v in names.items() if v in flags],
            "torch_kernels": torch.backends.cpu.get_cpu_capability()}


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Best read bandwidth in bytes/s over a tensor far larger than the caches, read once per pass by
    a sum and by a matrix-vector product (the memory-bound operation of decoding); the faster counts."""
    x = torch.ones(megabytes * 2**20 // 4)
    matrix, vector = x.view(-1, 4096), torch.ones(4096)
    best = float("inf")
    for op in (x.sum, lambda: torch.mv(matrix, vector)):
        op()
        for _ in range(repeats):
            t = time.perf_counter()
            op()
            best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best


class Limits:
    """The machine's limits (fp32 and bf16 matmul peaks in FLOP/s, read bandwidth in bytes/s), measured
    again beside each figure they judge, every sample kept.

    Why again: on a shared host other tenants' load moves the limits from one minute to the next, by
    up to a factor of two, and a share of a limit measured minutes earlier can read over 100% MFU, or
    half the real bandwidth share. The workload and the limit measured just before and after it saw
    the same host."""

    KINDS = ("fp32", "bf16", "read")

    def __init__(self, quick: bool = False):
        self.n, self.megabytes = (512, 128) if quick else (1024, 512)
        self.samples: dict[str, list[float]] = {k: [] for k in self.KINDS}

    def measure(self, kind: str) -> float:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        value = (memory_bandwidth(self.megabytes) if kind == "read"
                 else matmul_rate(self.n, 3072, 3072, 10,
                                  torch.bfloat16 if kind == "bf16" else torch.float32))
        self.samples[kind].append(value)
        return value

    def beside(self, kind: str, measure):
        """(`measure()`, the limit `kind` measured just before and just after it: the higher of the two,
        since a limit is the most the machine gave)."""
        result, limits = self.around([kind], measure)
        return result, limits[kind]

    def around(self, kinds, measure):
        """(`measure()`, {kind: the higher of the limit measured just before and just after it} for each
        kind)."""
        before = {k: self.measure(k) for k in kinds}
        result = measure()
        return result, {k: max(before[k], self.measure(k)) for k in kinds}


def training_step(cfg: GPTConfig, batch: int, T: int, fused: bool = True, compile: bool = False,
                  amp_dtype: torch.dtype | None = None):
    """A function that runs one training step (forward, backward and AdamW step) of a fresh model on a
    fixed random batch, with the command-line trainer's loss (`engine.training_loss`).
    `amp_dtype=torch.bfloat16` autocasts the forward pass; with `compile=True` the first call compiles."""
    torch.manual_seed(0)
    model = GPT(cfg.with_(dropout=0.0))
    opt = make_optimizer(model, lr=1e-4, fused=fused)
    net = torch.compile(model) if compile else model
    x = torch.randint(0, cfg.vocab_size, (batch, T))
    y = torch.randint(0, cfg.vocab_size, (batch, T))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            # as the trainer computes it
            loss = training_loss(net, x, y)
        loss.backward()
        opt.step()
    return step


def step_times(step, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def training_speed(cfg: GPTConfig, batch: int, T: int, steps: int, fused: bool = True, compile: bool = False,
                   amp_dtype: torch.dtype | None = None) -> float:
    """Training tokens per second of the median of `steps` steps (`training_step`), after one warm-up
    step (which also compiles, with `compile=True`). The median: one slow step (a busy host) moves it
    little."""
    step = training_step(cfg, batch, T, fused, compile, amp_dtype)
    step()
    return batch * T / statistics.median(step_times(step, steps))


def paired_training_speed(cfg: GPTConfig, batch: int, T: int, steps: int, amp_dtypes: list,
                          rounds: int = 2) -> tuple[list[float], list[list[float]]]:
    """Training tokens/s of one model in several precisions (`amp_dtypes`, None for fp32), timed in
    alternating rounds in one process: (median tokens/s of each precision over all its steps, and
    for each round each precision's speed-up over the first one, from that round's medians).

    Why alternate: on a shared host the machine's speed drifts from minute to minute, and a ratio of
    two figures measured minutes apart measures the drift too. Each round gives every precision
    `steps / rounds` steps (rounded up) back to back, so a ratio compares steps that saw the same
    host."""
    rounds = max(1, min(rounds, steps))
    per_round = -(-steps // rounds)                         # at least `steps` steps in all
    runs = [training_step(cfg, batch, T, amp_dtype=a) for a in amp_dtypes]
    for step in runs:                                       # warm-up (first-call allocations, kernel caches)
        step()
    times: list[list[float]] = [[] for _ in runs]
    ratios = []
    for _ in range(rounds):
        medians = []
        for step, kept in zip(runs, times):
            t = step_times(step, per_round)
            kept.extend(t)
            medians.append(statistics.median(t))
        ratios.append([medians[0] / m for m in medians])
    return [batch * T / statistics.median(t) for t in times], ratios


def attention_ratio(T: int, d: int = 768, n_head: int = 12, batch: int = 1,
                    repeats: int = 2) -> tuple[float, float]:
    """Seconds for forward+backward of one GPT-2-sized attention layer: (teaching, fast)."""
    cfg = GPTConfig(context_length=T, n_embd=d, n_head=n_head, dropout=0.0)
    layer = MultiHeadAttention(cfg)
    x = torch.randn(batch, T, d, requires_grad=True)
    times = []
    for fast in (False, True):
        layer.fast = fast
        layer(x).sum().backward()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            layer(x).sum().backward()
            best = min(best, time.perf_counter() - t)
        times.append(best)
    return times[0], times[1]


@torch.no_grad()
def generation_speed(cfg: GPTConfig, new_tokens: int, use_cache: bool, prompt: int = 8,
                     batch: int = 1) -> float:
    """Generated tokens per second (all sequences of the batch together), greedy, after a warm-up."""
    torch.manual_seed(0)
    model = GPT(cfg.with_(dropout=0.0)).eval()
    idx = torch.randint(0, cfg.vocab_size, (batch, prompt))
    generate(model, idx, 2, use_cache=use_cache)
    t = time.perf_counter()
    generate(model, idx, new_tokens, use_cache=use_cache)
    return batch * new_tokens / (time.perf_counter() - t)


@torch.no_grad()
def decoder_speed(cfg: GPTConfig, new_tokens: int, dtype: torch.dtype = torch.float32, batch: int = 1,
                  prompt: int = 8, compile: bool = False, rounds: int = 1,
                  limits: Limits | None = None) -> tuple[float, float, dict]:
    """Tokens per second of `decoding.Decoder` (all sequences together), greedy, after a warm-up: the
    best of `rounds` timed generations, each from the same prompt; the memory bandwidth measured
    beside that round (`limits.beside`; NaN without `limits`); the weight layouts it chose for this
    machine. With `limits`, the best round is the one with the highest share of its own bandwidth.
    `compile=True`: the decoder's compiled one-token step (compiled while the decoder is built)."""
    torch.manual_seed(0)
    dec = Decoder(GPT(cfg.with_(dropout=0.0)).eval(), dtype=dtype, max_batch=batch, compile=compile)
    idx = torch.randint(0, cfg.vocab_size, (batch, prompt))
    dec.generate(idx, 2)

    def timed() -> float:
        t = time.perf_counter()
        dec.generate(idx, new_tokens)
        return batch * new_tokens / (time.perf_counter() - t)

    runs = [limits.beside("read", timed) if limits else (timed(), math.nan) for _ in range(rounds)]
    tps, bandwidth = max(runs, key=lambda r: r[0] / r[1] if limits else r[0])
    return tps, bandwidth, dec.layouts


def weight_bytes_per_step(cfg: GPTConfig, bytes_per_weight: int = 4) -> int:
    """Bytes of weights one cached decoding step reads: every block, the final norm and the output
    head (the tied embedding, read whole); of the embeddings only a row each, which we neglect."""
    model_params = count_parameters(cfg)
    return bytes_per_weight * (model_params["blocks"] + model_params["final_norm"]
                               + cfg.vocab_size * cfg.n_embd)


def decode_flops_per_token(cfg: GPTConfig) -> float:
    """Multiply-adds x 2 of one cached step for one sequence: each weight is used once (2 FLOPs)."""
    return 2 * weight_bytes_per_step(cfg) / 4


def run(quick: bool = False, gpt2_steps: int = 2, gen_tokens: int = 200, gpt2_context: int = 256,
        gpt2_batch: int = 2, compile: bool = False, decode_rounds: int = 3) -> dict:
    started = time.perf_counter()
    if quick:  # the CI smoke test: the smallest sizes, figures printed but not asserted
        gpt2_steps, gen_tokens, gpt2_batch, decode_rounds = 1, 16, 1, 1
    results = {"machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                           "processor": platform.processor() or platform.machine(), **cpu_features()}}
    limits = Limits(quick)
    rate, bf16_rate, bandwidth = (limits.measure(k) for k in Limits.KINDS)
    results |= {"matmul_gflops": rate / 1e9, "bf16_matmul_gflops": bf16_rate / 1e9,
                "read_gb_s": bandwidth / 1e9}
    # what `--dtype auto` decides, from the same kind of timing
    use_bf16 = bf16_rate >= CLEAR_WIN * rate
    results["bf16_training"] = use_bf16
    rows = []
    tiny = profile("tiny")
    gpt2 = GPT2_SIZES["124M"]
    for name, cfg, batch, T, steps in [
        ("tiny profile", tiny.model, 2 if quick else 8, tiny.model.context_length, 2 if quick else 3),
        ("GPT-2 124M", gpt2, gpt2_batch, 32 if quick else gpt2_context, gpt2_steps),
    ]:
        # MFU against the peak of the precision it ran in, measured beside it
        def row(kind, tps, peak, compiled=False, name=name, cfg=cfg, batch=batch, T=T):
            return {"model": name + (", compiled" if compiled else ""), "precision": kind, "batch": batch,
                    "context": T, "tokens_per_s": tps, "mfu": tps * flops_per_token(cfg, T) / peak,
                    "peak_gflops": peak / 1e9}

        # fp32 and bf16 in alternating rounds: a ratio of the same host
        if use_bf16 and name == "GPT-2 124M":
            ((fp32_tps, bf16_tps), ratios), peaks = limits.around(
                ["fp32", "bf16"], lambda cfg=cfg, batch=batch, T=T, steps=steps: paired_training_speed(
                    cfg, batch, T, steps, [None, torch.bfloat16], rounds=max(1, steps // 2)))
            rows += [row("fp32", fp32_tps, peaks["fp32"]), row("bf16", bf16_tps, peaks["bf16"])]
            results["bf16_over_fp32_rounds"] = [r[1] for r in ratios]
        else:
            tps, peak = limits.beside("fp32", lambda cfg=cfg, batch=batch, T=T, steps=steps:
                                      training_speed(cfg, batch, T, steps))
            rows.append(row("fp32", tps, peak))
        if compile:
            tps, peak = limits.beside("fp32", lambda cfg=cfg, batch=batch, T=T, steps=steps:
                                      training_speed(cfg, batch, T, steps, compile=True))
            rows.append(row("fp32", tps, peak, compiled=True))
    results["training"] = rows
    results["attention"] = []
    for T in ([128] if quick else [256, 1024]):
        teaching, fast = attention_ratio(T)
        results["attention"].append({"context": T, "teaching_s": teaching, "fast_s": fast,
                                     "ratio": teaching / fast})
    gen_cfg = tiny.model if quick else gpt2
    uncached = generation_speed(gen_cfg, gen_tokens, use_cache=False)
    cached, cached_bandwidth = limits.beside("read",
                                             lambda: generation_speed(gen_cfg, gen_tokens, use_cache=True))
    step_bytes = weight_bytes_per_step(gen_cfg)
    results["generation"] = {"model": "tiny profile" if quick else "GPT-2 124M", "new_tokens": gen_tokens,
                             "rounds": decode_rounds, "uncached_tokens_per_s": uncached,
                             "cached_tokens_per_s": cached,
                             "ratio": cached / uncached, "weight_bytes_per_step": step_bytes,
                             "bandwidth_share": bandwidth_share(cached, step_bytes, cached_bandwidth)}
    g = results["generation"]
    for name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16)]:
        # compiling takes tens of seconds per precision for GPT-2 124M: not with --quick
        for key, compiled in ([(f"decoder_{name}", False)]
                              + [(f"decoder_{name}_compiled", True)] * (not quick)):
            tps, bw, layouts = decoder_speed(gen_cfg, gen_tokens, dtype, compile=compiled,
                                             rounds=decode_rounds, limits=limits)
            if not compiled:
                results[f"decoder_{name}_layouts"] = layouts
            g[f"{key}_tokens_per_s"], g[f"{key}_read_gb_s"] = tps, bw / 1e9
            g[f"{key}_bandwidth_share"] = bandwidth_share(tps, weight_bytes_per_step(gen_cfg, dtype.itemsize),
                                                          bw)
    # batches: one step reads the weights once for the whole batch, so tokens/s grows with the batch
    # until the matmuls' FLOPs, not the bytes, take the longer time: the crossover batch is where
    # batch x FLOPs per token / FLOP rate = bytes per step / bandwidth
    flops_token = decode_flops_per_token(gen_cfg)
    # from the highest limits measured so far: a single sample may have caught the host in a slow minute
    rate, bandwidth = max(limits.samples["fp32"]), max(limits.samples["read"])
    crossover = (step_bytes / bandwidth) / (flops_token / rate)
    batches = [1, 4] if quick else [1, 4, 16]
    results["batched_generation"] = {"predicted_crossover_batch": crossover, "rows": [
        {"batch": b, "tokens_per_s": decoder_speed(gen_cfg, max(4, gen_tokens // 4), batch=b)[0],
         "memory_bound_limit": b * bandwidth / step_bytes, "compute_bound_limit": rate / flops_token}
        for b in batches]}
    for kind in Limits.KINDS:   # the first samples are the ones above; the rest came beside the figures
        limits.measure(kind)
    results["limit_samples"] = {k: [v / 1e9 for v in vs] for k, vs in limits.samples.items()}
    results["wall_s"] = time.perf_counter() - started
    return results


def format_table(r: dict) -> str:
    m, ls = r["machine"], r["limit_samples"]
    lines = [(f"machine: {m['threads']} threads, torch {m['torch']}; "
              f"CPU features: {', '.join(m['found']) or 'none found'}; "
              f"PyTorch kernels: {m['torch_kernels']}"),
             (f"measured limits: fp32 matmul {r['matmul_gflops']:.1f} GFLOP/s, "
              f"bf16 matmul {r['bf16_matmul_gflops']:.1f} "
              f"GFLOP/s, memory read {r['read_gb_s']:.1f} GB/s"),
             ("over the run (at least {} samples each): fp32 matmul {:.0f}-{:.0f} GFLOP/s, "
              "bf16 matmul {:.1f}-{:.1f} GFLOP/s, "
              "memory read {:.1f}-{:.1f} GB/s; each share below is of the limit measured just before "
              "and after "
              "its figure (the higher)").format(min(len(v) for v in ls.values()),
                                                *(f(ls[k]) for k in Limits.KINDS for f in (min, max))),
             f"training precision chosen (--dtype auto): {'bf16 autocast' if r['bf16_training'] else 'fp32'}",
             *(f"decoder weight layouts timed and chosen, {name}: "
               + ", ".join(f"{k} {v}" for k, v in r[key].items())
               for name in ("fp32", "bf16") if (key := f"decoder_{name}_layouts") in r), "",
             "| training | precision | batch x context | tokens/s | MFU (of that precision's peak) |",
             "|---|---|---|---|---|"]
    lines += [f"| {t['model']} | {t['precision']} | {t['batch']} x {t['context']} | "
              f"{t['tokens_per_s']:.0f} | {t['mfu']:.0%} |"
              for t in r["training"]]
    if "bf16_over_fp32_rounds" in r:
        by_round = r["bf16_over_fp32_rounds"]
        tps = {t["precision"]: t["tokens_per_s"] for t in r["training"] if t["model"] == "GPT-2 124M"}
        lines.append(f"GPT-2 124M bf16 / fp32, timed in {len(by_round)} "
                     f"alternating round{'s' * (len(by_round) != 1)}: "
                     + ", ".join(f"{x:.2f}x" for x in by_round)
                     + f" (all steps' medians: {tps['bf16'] / tps['fp32']:.2f}x)")
    lines += ["", "| attention (d=768, 12 heads, fwd+bwd) | teaching | fast | teaching / fast |",
              "|---|---|---|---|"]
    lines += [f"| context {a['context']} | {a['teaching_s'] * 1e3:.1f} ms | {a['fast_s'] * 1e3:.1f} ms | "
              f"{a['ratio']:.2f}x |"
              for a in r["attention"]]
    g = r["generation"]
    lines += ["", f"| generation ({g['model']}, batch 1, {g['new_tokens']} new tokens, fp32; "
              "decoders: best of "
              f"{g['rounds']}) | tokens/s | weights read |",
              "|---|---|---|",
              f"| without KV cache | {g['uncached_tokens_per_s']:.1f} | |",
              f"| with KV cache | {g['cached_tokens_per_s']:.1f} | "
              f"{g['bandwidth_share']:.0%} of the memory bandwidth |",
              f"| speed-up | {g['ratio']:.1f}x | |",
              f"| fast decoder (decoding.Decoder), fp32 weights | {g['decoder_fp32_tokens_per_s']:.1f} | "
              f"{g['decoder_fp32_bandwidth_share']:.0%} of the memory bandwidth |",
              f"| fast decoder, bf16 weights | {g['decoder_bf16_tokens_per_s']:.1f} | "
              f"{g['decoder_bf16_bandwidth_share']:.0%} of the memory bandwidth |"]
    lines += [f"| fast decoder compiled (compile=True), {name} weights | {g[key + '_tokens_per_s']:.1f} | "
              f"{g[key + '_bandwidth_share']:.0%} of the memory bandwidth |"
              for name in ("fp32", "bf16") if (key := f"decoder_{name}_compiled") + "_tokens_per_s" in g]
    b = r["batched_generation"]
    lines += ["", "| fast decoder (fp32), batch | tokens/s | memory-bound limit | compute-bound limit |",
              "|---|---|---|---|"]
    lines += [f"| {row['batch']} | {row['tokens_per_s']:.1f} | {row['memory_bound_limit']:.0f} | "
              f"{row['compute_bound_limit']:.0f} |"
              for row in b["rows"]]
    lines += ["predicted crossover from memory-bound to compute-bound: "
              f"batch {b['predicted_crossover_batch']:.0f} "
              "(the limits: the highest fp32 peak and bandwidth measured before it)",
              "", f"benchmark wall time: {r['wall_s']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgpt.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smallest sizes (a smoke test); sets the sizes below itself")
    # the sizes default to None, so that a size given with --quick is seen (and refused, not ignored)
    sizes = {"--gpt2-steps": (2, "timed training steps of the GPT-2 124M shape per precision "
                                 "(fp32 and bf16 alternate, two a round)"),
             "--gpt2-context": (256, "context of the GPT-2 124M training steps"),
             "--gpt2-batch": (2, "batch of the GPT-2 124M training steps"),
             "--gen-tokens": (200, "new tokens in the generation test"),
             "--decode-rounds": (3, "timed generations per decoder (the best counts)")}
    for flag, (default, text) in sizes.items():
        parser.add_argument(flag, type=int, default=None, help=f"{text} (default {default})")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile'd training (compiling takes minutes on a CPU)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    given = [flag for flag in sizes if getattr(args, flag[2:].replace("-", "_")) is not None]
    if args.quick and given:
        parser.error(f"--quick sets its own sizes: give {', '.join(given)} or --quick, not both")
    for flag, (default, _) in sizes.items():
        name = flag[2:].replace("-", "_")
        value = getattr(args, name)
        if value is None:
            setattr(args, name, default)
        elif value < 1:
            parser.error(f"{flag} must be 1 or more, got {value}")
    if args.json:
        problem = unwritable(args.json)
        if problem:     # found now, not after minutes of measuring
            parser.error(f"--json {args.json}: {problem}")
    keep_freed_memory()    # as the command-line trainer runs (see engine/allocator.py)
    results = run(args.quick, args.gpt2_steps, args.gen_tokens, args.gpt2_context, args.gpt2_batch,
                  args.compile, args.decode_rounds)
    print(format_table(results))
    if args.json:
        save_results(results, args.json)


def unwritable(path: str) -> str | None:
    """Why a results file cannot be written at `path` (None if it can), tried by creating a scratch file
    beside it: permissions alone do not tell (a read-only disk, root)."""
    target = Path(path)
    if target.is_dir():
        return "is a folder"
    if not target.parent.is_dir():
        return f"there is no folder {target.parent}"
    try:
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".check"):
            pass
    except OSError as err:
        return f"cannot write there ({err.strerror or err})"
    return None


def save_results(results: dict, path: str) -> None:
    """Write the results as JSON to `path`; if that fails after all (the folder changed during the run),
    to a temporary file whose name is printed, so that the run's figures are never lost."""
    text = json.dumps(results, indent=1)
    try:
        atomic_write_bytes(Path(path), text.encode())
    except OSError as err:
        fd, kept = tempfile.mkstemp(prefix="bench-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(f"could not write {path} ({err.strerror or err}); the results are in {kept}", file=sys.stderr)


if __name__ == "__main__":
    main()
