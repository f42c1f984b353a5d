"""Benchmark: where the package stands against this machine's limit.

    python -m scratchgpt.bench [--quick] [--json bench.json] [--gpt2-steps 2] [--gen-tokens 200] [--compile]

Prints one table: the measured fp32 matmul rate (the practical ceiling), training tokens per second
and model FLOPs utilisation (MFU) for the tiny profile's model and a GPT-2 124M-shaped model,
teaching vs fused attention, and generation with and without the key/value cache.

FLOPs per token follow the usual reference GPT code, 6·N + 12·L·d·T, where N counts the
non-embedding parameters plus the output head (the head's matmul is real work even when its weight is
tied to the embedding), L the layers, d the width and T the context.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from .config import GPT2_SIZES, GPTConfig
from .generation import generate
from .model import GPT
from .profiles import profile
from .training import make_optimizer


def matmul_rate(n: int = 1024, k: int = 3072, repeats: int = 10) -> float:
    """Best fp32 matmul rate in FLOP/s for (n x k) @ (k x k) products, GPT-2-like shapes."""
    a, b = torch.randn(n, k), torch.randn(k, k)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n * k * k / best


def flops_per_token(cfg: GPTConfig, T: int) -> float:
    d, L = cfg.n_embd, cfg.n_layer
    non_embedding = L * (12 * d * d + 13 * d) + 2 * d
    head = cfg.vocab_size * d
    return 6 * (non_embedding + head) + 12 * L * d * T


def training_speed(cfg: GPTConfig, batch: int, T: int, steps: int, fused: bool = True, compile: bool = False) -> float:
    """Training tokens per second: forward, backward and AdamW step, after one warm-up step (which
    also compiles, with `compile=True`)."""
    torch.manual_seed(0)
    model = GPT(cfg.with_(dropout=0.0))
    opt = make_optimizer(model, lr=1e-4, fused=fused)
    net = torch.compile(model) if compile else model
    x = torch.randint(0, cfg.vocab_size, (batch, T))
    y = torch.randint(0, cfg.vocab_size, (batch, T))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = net(x)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * T * steps / (time.perf_counter() - t)


def attention_ratio(T: int, d: int = 768, n_head: int = 12, batch: int = 1, repeats: int = 2) -> tuple[float, float]:
    """Seconds for forward+backward of one GPT-2-sized attention layer: (teaching, fast)."""
    from .attention import MultiHeadAttention

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
def generation_speed(cfg: GPTConfig, new_tokens: int, use_cache: bool, prompt: int = 8) -> float:
    torch.manual_seed(0)
    model = GPT(cfg.with_(dropout=0.0)).eval()
    idx = torch.randint(0, cfg.vocab_size, (1, prompt))
    generate(model, idx, 2, use_cache=use_cache)
    t = time.perf_counter()
    generate(model, idx, new_tokens, use_cache=use_cache)
    return new_tokens / (time.perf_counter() - t)


def run(quick: bool = False, gpt2_steps: int = 2, gen_tokens: int = 200, gpt2_context: int = 256,
        gpt2_batch: int = 2, compile: bool = False) -> dict:
    started = time.perf_counter()
    if quick:  # the CI smoke test: the smallest sizes, figures printed but not asserted
        gpt2_steps, gen_tokens = 1, 16
    results = {"machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                           "processor": platform.processor() or platform.machine()}}
    rate = matmul_rate(512 if quick else 1024)
    results["matmul_gflops"] = rate / 1e9
    rows = []
    tiny = profile("tiny")
    gpt2 = GPT2_SIZES["124M"]
    for name, cfg, batch, T, steps in [
        ("tiny profile", tiny.model, 8, tiny.model.context_length, 2 if quick else 3),
        ("GPT-2 124M", gpt2, gpt2_batch, 64 if quick else gpt2_context, gpt2_steps),
    ]:
        for compiled in ([False, True] if compile else [False]):
            tps = training_speed(cfg, batch, T, steps, compile=compiled)
            mfu = tps * flops_per_token(cfg, T) / rate
            rows.append({"model": name + (", compiled" if compiled else ""), "batch": batch, "context": T,
                         "tokens_per_s": tps, "mfu": mfu})
    results["training"] = rows
    results["attention"] = []
    for T in ([128] if quick else [256, 1024]):
        teaching, fast = attention_ratio(T)
        results["attention"].append({"context": T, "teaching_s": teaching, "fast_s": fast, "ratio": teaching / fast})
    gen_cfg = tiny.model if quick else gpt2
    uncached = generation_speed(gen_cfg, gen_tokens, use_cache=False)
    cached = generation_speed(gen_cfg, gen_tokens, use_cache=True)
    results["generation"] = {"model": "tiny profile" if quick else "GPT-2 124M", "new_tokens": gen_tokens,
                             "uncached_tokens_per_s": uncached, "cached_tokens_per_s": cached,
                             "ratio": cached / uncached}
    results["wall_s"] = time.perf_counter() - started
    return results


def format_table(r: dict) -> str:
    lines = [f"machine: {r['machine']['threads']} threads, torch {r['machine']['torch']}",
             f"fp32 matmul rate (measured ceiling): {r['matmul_gflops']:.1f} GFLOP/s", "",
             "| training | batch x context | tokens/s | MFU |", "|---|---|---|---|"]
    lines += [f"| {t['model']} | {t['batch']} x {t['context']} | {t['tokens_per_s']:.0f} | {t['mfu']:.0%} |"
              for t in r["training"]]
    lines += ["", "| attention (d=768, 12 heads, fwd+bwd) | teaching | fast | teaching / fast |", "|---|---|---|---|"]
    lines += [f"| context {a['context']} | {a['teaching_s'] * 1e3:.1f} ms | {a['fast_s'] * 1e3:.1f} ms | {a['ratio']:.2f}x |"
              for a in r["attention"]]
    g = r["generation"]
    lines += ["", f"| generation ({g['model']}, batch 1, {g['new_tokens']} new tokens) | tokens/s |", "|---|---|",
              f"| without KV cache | {g['uncached_tokens_per_s']:.1f} |", f"| with KV cache | {g['cached_tokens_per_s']:.1f} |",
              f"| speed-up | {g['ratio']:.1f}x |", "", f"benchmark wall time: {r['wall_s']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgpt.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes (a smoke test)")
    parser.add_argument("--gpt2-steps", type=int, default=2, help="timed training steps of the GPT-2 124M shape")
    parser.add_argument("--gpt2-context", type=int, default=256)
    parser.add_argument("--gpt2-batch", type=int, default=2)
    parser.add_argument("--gen-tokens", type=int, default=200, help="new tokens in the generation test")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd training (compiling takes minutes on a CPU)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results = run(args.quick, args.gpt2_steps, args.gen_tokens, args.gpt2_context, args.gpt2_batch, args.compile)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
