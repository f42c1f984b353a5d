"""Generation at the speed of memory: a GPT's weights laid out for producing one token at a time.

With the key/value cache, each new token is one row pushed through every weight matrix: a
matrix-vector product, which does 2 FLOPs per weight it reads. The CPU can compute far faster than
memory can deliver weights, so the time per token is the time to read the weights once (0.5 GB for
GPT-2 124M in fp32). `Decoder` makes that read as fast as it can be:

- each matrix is stored in the layout whose one-row product streams it fastest **on this machine**,
  chosen by timing (`layout="auto"`): which one wins depends on the CPU and the precision. The
  candidates (`LAYOUTS`):
  - `"packed"`: oneDNN's own blocked layout, packed once for a batch of one
    (`torch.ops.mkldnn._reorder_linear_weight`, the packing `torch.compile` uses for CPU inference),
    with the bias and GELU run inside the same call; where PyTorch has oneDNN;
  - `"in_out"`: the transpose, `(in, out)` and contiguous, for `x @ W`;
  - `"out_in"`: the model's own `(out, in)`, for a matrix-vector product (`torch.addmv`).
  Measured over 1.2 GB of GPT-2-shaped matrices, one row at a time: on a 2-core AMD EPYC (Zen 4),
  fp32 packed 24 GB/s against 19 for `in_out`; on a 2-core Xeon with AMX, fp32 `in_out` 30 GB/s
  against 18-28 packed, but bf16 packed or `out_in` 22-26 against 9-13 for `in_out`;
- the key/value cache is allocated once, for the whole context, and filled in place: no tensor is
  re-allocated or copied per token;
- the output head is computed for the last position only;
- `dtype=torch.bfloat16` keeps a bf16 copy of the weights: half the bytes per token, so about twice
  the tokens per second, at bf16's precision (the residual stream and the norms stay in fp32).

It computes what `GPT.forward` computes (tested, for every layout: the same greedy tokens as `generate`
in fp32) and is meant for inference only: it copies the weights, so later training of the model does
not reach it.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .generation import filter_logits, logits_finite
from .model import GPT

LAYOUTS = ("packed", "in_out", "out_in")


class Decoder:
    """Inference copy of `model` for fast token-by-token generation (batch up to `max_batch`).

    `layout`: "auto" (time the candidates for each kind of matrix and keep the fastest) or one of
    `LAYOUTS` for all of them. `self.layouts` says what was chosen, per kind of matrix.
    """

    def __init__(self, model: GPT, dtype: torch.dtype = torch.float32, max_batch: int = 1, layout: str = "auto"):
        cfg = model.config
        self.config, self.dtype, self.max_batch = cfg, dtype, max_batch
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.onednn = onednn_available() and model.lm_head.weight.is_cpu     # oneDNN packs for CPUs only
        candidates = [x for x in LAYOUTS if x != "packed" or self.onednn]
        if layout != "auto" and layout not in candidates:
            raise ValueError(f"layout must be 'auto' or one of {candidates} here, got {layout!r}")

        tr = model.transformer
        linears = {"c_attn": [h.attn.c_attn for h in tr.h], "attn.c_proj": [h.attn.c_proj for h in tr.h],
                   "c_fc": [h.mlp.c_fc for h in tr.h], "mlp.c_proj": [h.mlp.c_proj for h in tr.h],
                   "lm_head": [model.lm_head]}
        self.layouts, products = {}, {}
        for kind, mods in linears.items():
            gelu = kind == "c_fc"
            if layout == "auto":
                self.layouts[kind], products[kind] = self._fastest(mods, candidates, gelu)
            else:
                self.layouts[kind], products[kind] = layout, [self._product(m, layout, gelu) for m in mods]
        self._bytes = sum(p.nbytes for ps in products.values() for p in ps)

        def ln(norm):
            self._bytes += sum(x.numel() * x.element_size() for x in (norm.weight, norm.bias) if x is not None)
            return (norm.weight.detach(), None if norm.bias is None else norm.bias.detach())

        self.wte, self.wpe = tr.wte.weight.detach(), tr.wpe.weight.detach()
        self.blocks = [dict(ln_1=ln(h.ln_1), attn=products["c_attn"][i], proj=products["attn.c_proj"][i],
                            ln_2=ln(h.ln_2), fc=products["c_fc"][i], fc2=products["mlp.c_proj"][i])
                       for i, h in enumerate(tr.h)]
        self.ln_f = ln(tr.ln_f)
        self.head = products["lm_head"][0]
        # keys and values of layer i: self.kv[i, 0] and self.kv[i, 1], each (B, H, context, hd)
        self.kv = torch.zeros(cfg.n_layer, 2, max_batch, self.n_head, cfg.context_length, self.head_dim,
                              dtype=dtype, device=self.wte.device)
        self.length = 0

    def _product(self, linear: torch.nn.Linear, layout: str, gelu: bool) -> Product:
        w = linear.weight.detach().to(self.dtype)                               # (out, in)
        bias = None if linear.bias is None else linear.bias.detach().to(self.dtype)
        if layout == "packed":
            w = torch.ops.mkldnn._reorder_linear_weight(w, 1)
        elif layout == "in_out":
            w = w.t().contiguous()
        return Product(layout, w, bias, gelu, linear.weight.numel() * self.dtype.itemsize)

    def _fastest(self, mods: list, candidates: list[str], gelu: bool) -> tuple[str, list[Product]]:
        """Build each candidate layout for these matrices in turn and keep the one that runs them fastest
        (best of 2 passes over all of them, `max_batch` rows, after a warm-up pass)."""
        x = torch.randn(self.max_batch, mods[0].in_features, generator=torch.Generator().manual_seed(0)).to(self.dtype)
        best = (math.inf, None, None)
        for layout in candidates:
            products = [self._product(m, layout, gelu) for m in mods]
            seconds = math.inf
            for rep in range(3):
                t = time.perf_counter()
                for p in products:
                    p(x)
                seconds = min(seconds, time.perf_counter() - t) if rep else seconds
            if seconds < best[0]:
                best = (seconds, layout, products)
            del products
        return best[1], best[2]

    def weight_bytes_per_step(self) -> int:
        """Bytes of weights one step reads (all matrices, biases and norms; one row of each embedding)."""
        return self._bytes

    @torch.no_grad()
    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """Feed the new tokens `idx` (B, T) after the cached ones; the last position's logits (B, V)."""
        B, T = idx.shape
        C, H, hd, start = self.config.n_embd, self.n_head, self.head_dim, self.length
        if B > self.max_batch:
            raise ValueError(f"batch {B} is larger than this decoder's max_batch={self.max_batch}")
        if start + T > self.config.context_length:
            raise ValueError(f"{start + T} tokens exceed the context length {self.config.context_length}")
        x = (self.wte[idx] + self.wpe[start: start + T]).view(B * T, C)        # (B*T, C), fp32
        mask = None
        if T > 1:   # the new tokens see the cached ones and those before them among themselves
            mask = torch.ones(T, start + T, dtype=torch.bool, device=idx.device).tril(diagonal=start)
        for blk, kv in zip(self.blocks, self.kv):                               # kv: (2, max_batch, H, context, hd)
            qkv = blk["attn"](F.layer_norm(x, (C,), *blk["ln_1"])).view(B, T, 3, H, hd)
            kv = kv if B == self.max_batch else kv[:, :B]
            kv[:, :, :, start: start + T] = qkv[:, :, 1:].permute(2, 0, 3, 1, 4)  # in place: no re-allocation
            y = F.scaled_dot_product_attention(qkv[:, :, 0].transpose(1, 2), kv[0, :, :, : start + T],
                                               kv[1, :, :, : start + T], attn_mask=mask)  # (B, H, T, hd)
            x += blk["proj"](y.transpose(1, 2).reshape(B * T, C))                # bf16 products add into fp32
            x += blk["fc2"](blk["fc"](F.layer_norm(x, (C,), *blk["ln_2"])))
        self.length = start + T
        last = F.layer_norm(x.view(B, T, C)[:, -1], (C,), *self.ln_f)            # (B, C): the head for the last only
        return self.head(last).float()                                         # (B, V)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """`generation.generate`'s loop on this decoder: (B, T) -> (B, T + new), same arguments."""
        if idx.dim() != 2 or idx.size(1) == 0:
            raise ValueError(f"the prompt must be a (batch, tokens) tensor with at least one token, got {tuple(idx.shape)}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens}")
        context = self.config.context_length
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        self.length = 0
        for _ in range(max_new_tokens):
            if self.length == 0 or idx.size(1) > context:
                self.length = 0                                                 # (re-)encode the visible text
                logits = self.step(idx[:, -context:])
            else:
                logits = self.step(idx[:, -1:])
            if not logits_finite(logits):
                raise ValueError("the model's logits are not finite (NaN or inf): its weights are broken")
            if temperature == 0.0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
                next_id = torch.multinomial(probs, 1, generator=generator)
            if eos_id is not None:
                next_id = next_id.masked_fill(finished.unsqueeze(1), eos_id)
                finished |= next_id.squeeze(1) == eos_id
            idx = torch.cat([idx, next_id], dim=1)
            if eos_id is not None and finished.all():
                break
        return idx


class Product:
    """One weight matrix in a chosen layout: `product(x)` is `x @ W.T + b` (then GELU's tanh form if
    `gelu`) for rows x (N, in), as the model's `nn.Linear` computes it; in the decoder's precision."""

    def __init__(self, layout: str, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool, nbytes: int):
        self.layout, self.weight, self.bias, self.gelu = layout, weight, bias, gelu
        self.nbytes = nbytes + (0 if bias is None else bias.numel() * bias.element_size())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if self.layout == "packed":   # one call: product, bias and (optionally) GELU's tanh form
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu" if self.gelu else "none",
                                                      [], "tanh" if self.gelu else "")
        if self.layout == "in_out":   # weight (in, out)
            y = x @ self.weight if self.bias is None else torch.addmm(self.bias, x, self.weight)
        elif x.size(0) == 1:          # weight (out, in), one row: a matrix-vector product
            v = x.view(-1)
            y = (torch.mv(self.weight, v) if self.bias is None else torch.addmv(self.bias, self.weight, v)).view(1, -1)
        else:
            y = F.linear(x, self.weight, self.bias)
        return F.gelu(y, approximate="tanh") if self.gelu else y


def onednn_available() -> bool:
    """Whether this PyTorch can pack weights for oneDNN's matrix products (checked on a tiny product)."""
    try:
        w, x = torch.ones(2, 3), torch.ones(1, 3)
        y = torch.ops.mkldnn._linear_pointwise(x, torch.ops.mkldnn._reorder_linear_weight(w, 1), None, "none", [], "")
        return torch.equal(y, torch.full((1, 2), 3.0))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def bandwidth_share(tokens_per_s: float, bytes_per_step: int, bandwidth: float) -> float:
    """Achieved weight bytes per second as a share of the memory's read bandwidth."""
    return tokens_per_s * bytes_per_step / bandwidth if bandwidth > 0 else math.nan
