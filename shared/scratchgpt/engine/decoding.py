"""Generation at the speed of memory: a GPT's weights laid out for producing one token at a time.

With the key/value cache, each new token is one row pushed through every weight matrix: a
matrix-vector product, which does 2 FLOPs per weight it reads. The CPU can compute far faster than
memory can deliver weights, so the time per token is the time to read the weights once (0.5 GB for
GPT-2 124M in fp32). `Decoder` makes that read as fast as it can be:

- each matrix is stored in the layout whose one-row product streams it fastest **on this machine**,
  chosen by timing (`layout="auto"`), since which one wins depends on the CPU and the precision. The
  candidates (`LAYOUTS`):
  - `"packed"`: oneDNN's own blocked layout, packed once for a batch of one
    (`torch.ops.mkldnn._reorder_linear_weight`, the packing `torch.compile` uses for CPU inference),
    with the bias and GELU run inside the same call; where PyTorch has oneDNN;
  - `"in_out"`: the transpose, `(in, out)` and contiguous, for `x @ W`;
  - `"out_in"`: the model's own `(out, in)`, for a matrix-vector product (`torch.addmv`);
- the key/value cache is allocated once, for the whole context, and filled in place. On a CPU it stays
  in fp32 even for bf16 weights (the keys and values are rounded to bf16 by the products that make
  them, then stored exactly): PyTorch's attention of one bf16 query is slow on CPUs, and the cache is
  small beside the weights;
- the output head is computed for the last position only;
- `dtype=torch.bfloat16` keeps a bf16 copy of the weights: half the bytes per token, at bf16's
  precision (the residual stream and the norms stay in fp32).

`compile=True` goes one step further: the one-token step (all blocks, the norms and the head) is
compiled by `torch.compile` into a single graph, with the weights frozen as constants. Inductor then
packs each matrix for its own one-row kernels and fuses the norms, GELU and residual adds around them,
so almost no Python runs per token. The cached attention stays one opaque operation
(`scratchgpt::cached_attention`): its length grows every token, and a graph with a growing shape would
lose the fast kernels. Compiling takes seconds and needs a C++ compiler; it is done once, when the
decoder is built. The compiled graph, with its own packed copy of the weights, stays in memory until
the process ends (torch.compile keeps it): build one compiled decoder per model and reuse it.
PERFORMANCE.md gives the measured tokens per second and shares of the memory bandwidth.

It computes what `GPT.forward` computes (tested, for every layout and compiled: the same greedy tokens
as `generate` in fp32), with `generate`'s checks and sampling, and is meant for inference only: it
copies the weights, so later training of the model does not reach it.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import types

import torch
import torch.nn.functional as F

from ..generation import check_request, decode
from ..model import GPT

LAYOUTS = ("packed", "in_out", "out_in")


class Decoder:
    """Inference copy of `model` for fast token-by-token generation (batch up to `max_batch`).

    `layout`: "auto" (time the candidates for each kind of matrix and keep the fastest) or one of
    `LAYOUTS` for all of them. `self.layouts` says what was chosen, per kind of matrix.
    `compile=True`: one-token steps of a full batch (`max_batch` sequences) run as one compiled graph
    (the prompt still goes through the layouts above, which are then the model's own, "out_in").
    """

    def __init__(self, model: GPT, dtype: torch.dtype = torch.float32, max_batch: int = 1,
                 layout: str = "auto", compile: bool = False):
        if not isinstance(model, GPT):
            raise TypeError("Decoder lays out a GPT's weights (scratchgpt.model.GPT), "
                            f"not a {type(model).__name__}; "
                            "use scratchgpt.generation.generate for other models")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"Decoder keeps its weights in torch.float32 or torch.bfloat16, not {dtype}")
        cfg = model.config
        if compile and layout not in ("auto", "out_in"):
            raise ValueError("compile=True keeps the weights in the model's own layout, 'out_in'; "
                             f"got layout={layout!r}")
        layout = "out_in" if compile else layout
        self.config, self.dtype, self.max_batch = cfg, dtype, max_batch
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.onednn = onednn_available(dtype) and model.lm_head.weight.is_cpu     # oneDNN packs for CPUs only
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
            self._bytes += sum(x.numel() * x.element_size() for x in (norm.weight, norm.bias)
                               if x is not None)
            return (norm.weight.detach(), None if norm.bias is None else norm.bias.detach())

        self.wte, self.wpe = tr.wte.weight.detach(), tr.wpe.weight.detach()
        self.blocks = [dict(ln_1=ln(h.ln_1), attn=products["c_attn"][i], proj=products["attn.c_proj"][i],
                            ln_2=ln(h.ln_2), fc=products["c_fc"][i], fc2=products["mlp.c_proj"][i])
                       for i, h in enumerate(tr.h)]
        self.ln_f = ln(tr.ln_f)
        self.head = products["lm_head"][0]
        # keys and values of layer i: self.kv[i, 0] and self.kv[i, 1], each (B, H, context, hd). On a CPU
        # the cache stays fp32 also for bf16 weights (see the module's doc); storing bf16 keys in fp32
        # loses nothing.
        self.cache_dtype = torch.float32 if self.wte.is_cpu else dtype
        self.kv = torch.zeros(cfg.n_layer, 2, max_batch, self.n_head, cfg.context_length, self.head_dim,
                              dtype=self.cache_dtype, device=self.wte.device)
        self.length = 0
        self.one_token = None
        if compile:   # built, and compiled by a first call, now: the cost is paid once, here
            # freezing: the weights become constants, which inductor packs for its kernels. Steps call
            # the same graph with inputs of the same shapes and dtypes, so it never compiles again.
            one_token = torch.compile(OneTokenStep(self), mode="max-autotune-no-cudagraphs")
            x = self.wte[torch.zeros(max_batch, dtype=torch.long, device=self.wte.device)] + self.wpe[0]
            # cpp_wrapper: the graph's kernels are called from C++, not Python. The autotuner's timing
            # tables (stderr) are kept in self.compile_log.
            log = io.StringIO()
            try:
                with torch.no_grad(), contextlib.redirect_stderr(log), torch._inductor.config.patch(
                        freezing=True, cpp_wrapper=True, max_autotune_report_choices_stats=False):
                    one_token(x, torch.tensor(0))
            except Exception as e:   # e.g. no C++ compiler: say what failed, keep inductor's error below
                raise RuntimeError(f"Decoder(compile=True): torch.compile could not compile "
                                   f"the one-token step "
                                   f"(it needs a working C++ compiler on a CPU); use compile=False. "
                                   f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
            self.compile_log = log.getvalue()
            self.kv.zero_()
            self.one_token = one_token

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
        x = torch.randn(self.max_batch, mods[0].in_features,
                        generator=torch.Generator().manual_seed(0)).to(self.dtype)
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
        if self.one_token is not None and T == 1 and B == self.max_batch:
            logits = self.one_token(x, torch.tensor(start))
            self.length = start + 1
            return logits
        mask = None
        if T > 1:   # the new tokens see the cached ones and those before them among themselves
            mask = torch.ones(T, start + T, dtype=torch.bool, device=idx.device).tril(diagonal=start)
        # kv: (2, max_batch, H, context, hd)
        for blk, kv in zip(self.blocks, self.kv):
            qkv = blk["attn"](F.layer_norm(x, (C,), *blk["ln_1"])).view(B, T, 3, H, hd)
            kv = kv if B == self.max_batch else kv[:, :B]
            kv[:, :, :, start: start + T] = qkv[:, :, 1:].permute(2, 0, 3, 1, 4)  # in place: no re-allocation
            y = F.scaled_dot_product_attention(qkv[:, :, 0].transpose(1, 2).to(kv.dtype),
                                               kv[0, :, :, : start + T],
                                               kv[1, :, :, : start + T], attn_mask=mask)  # (B, H, T, hd)
            x += blk["proj"](y.transpose(1, 2).reshape(B * T, C))                # bf16 products add into fp32
            x += blk["fc2"](blk["fc"](F.layer_norm(x, (C,), *blk["ln_2"])))
        self.length = start + T
        # (B, C): the head for the last only
        last = F.layer_norm(x.view(B, T, C)[:, -1], (C,), *self.ln_f)
        return self.head(last).float()                                         # (B, V)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """`generation.generate` on this decoder: (B, T) -> (B, T + new), the same arguments, checks and
        sampling (`generation.decode`)."""
        check_request(idx, max_new_tokens, temperature, self.config.vocab_size, top_k, top_p, eos_id)

        def step(visible: torch.Tensor, fresh: bool) -> torch.Tensor:
            if fresh:
                self.length = 0                                                 # (re-)encode the visible text
                return self.step(visible)
            return self.step(visible[:, -1:])

        return decode(step, idx, max_new_tokens, self.config.context_length, temperature, top_k, top_p,
                      eos_id, generator)


def cached_attention(qkv: torch.Tensor, kv: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """One new position per sequence: store its key and value in the cache `kv` (2, max_batch, H,
    context, hd) at `start`, and attend over positions 0..start; qkv (B, 3, H, hd) -> (B, H*hd), in the
    cache's precision.

    Registered below as the operation `scratchgpt::cached_attention`, which `torch.compile` leaves
    alone: its length, `start + 1`, changes every token, and inside a graph it would make shapes
    dynamic, which costs the matrix products their fast kernels. `start` is a 0-d tensor, not an int,
    so that the graph does not specialise on its value."""
    B, _, H, hd = qkv.shape
    start = int(start)
    kv = (kv if B == kv.size(1) else kv[:, :B]).narrow(3, 0, start + 1)       # (2, B, H, start + 1, hd)
    kv.select(3, start).copy_(qkv.narrow(1, 1, 2).transpose(0, 1))             # in place: no re-allocation
    q = qkv.select(1, 0).unsqueeze(2).to(kv.dtype)                            # (B, H, 1, hd)
    return F.scaled_dot_product_attention(q, kv[0], kv[1]).view(B, H * hd)


def _cached_attention_shape(qkv, kv, start):
    return kv.new_empty(qkv.size(0), qkv.size(2) * qkv.size(3))


# once per process, also if this module is reloaded
if not hasattr(torch.ops.scratchgpt, "cached_attention"):
    # a plain operator definition: it dispatches faster than `torch.library.custom_op`
    _LIB = torch.library.Library("scratchgpt", "DEF")
    _LIB.define("cached_attention(Tensor qkv, Tensor(a!) kv, Tensor start) -> Tensor")
    _LIB.impl("cached_attention", cached_attention, "CompositeExplicitAutograd")
    torch.library.register_fake("scratchgpt::cached_attention", _cached_attention_shape, lib=_LIB)


class OneTokenStep(torch.nn.Module):
    """`Decoder.step` for one new token per sequence, written for `torch.compile`: the decoder's weights
    are this module's buffers, so that freezing makes them constants of the graph (and inductor packs
    them for its one-row kernels). forward(x (B, C) fp32 embeddings, start) -> logits (B, V) fp32."""

    def __init__(self, dec: Decoder):
        super().__init__()
        self.dtype, self.n_head, self.head_dim = dec.dtype, dec.n_head, dec.head_dim
        names = ("ln_1", "attn", "proj", "ln_2", "fc", "fc2")
        for i, blk in enumerate(dec.blocks):
            for name in names:
                w, b = (blk[name].weight, blk[name].bias) if isinstance(blk[name], Product) else blk[name]
                self.register_buffer(f"h{i}_{name}_w", w, persistent=False)
                self.register_buffer(f"h{i}_{name}_b", b, persistent=False)
        self.register_buffer("ln_f_w", dec.ln_f[0], persistent=False)
        self.register_buffer("ln_f_b", dec.ln_f[1], persistent=False)
        self.register_buffer("head_w", dec.head.weight, persistent=False)
        self.register_buffer("kv", dec.kv, persistent=False)                   # the decoder's cache, shared
        self.n_layer = len(dec.blocks)
        # torch.compile keeps its graphs per code object, at most 8 each: with the one `forward` of the
        # class, a ninth compiled decoder in a process would silently run uncompiled (tested). So each
        # instance gets its own copy of the code, and of the globals, where dynamo stores the graph.
        fn = OneTokenStep.forward
        own = types.FunctionType(fn.__code__.replace(), dict(fn.__globals__), fn.__name__, fn.__defaults__,
                                 fn.__closure__)
        self.forward = types.MethodType(own, self)

    def forward(self, x: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        B, C = x.shape
        for i in range(self.n_layer):
            p = lambda name, i=i: (getattr(self, f"h{i}_{name}_w"), getattr(self, f"h{i}_{name}_b"))  # noqa: E731
            h = F.layer_norm(x, (C,), *p("ln_1")).to(self.dtype)
            qkv = F.linear(h, *p("attn")).view(B, 3, self.n_head, self.head_dim)
            y = torch.ops.scratchgpt.cached_attention(qkv, self.kv[i], start).to(self.dtype)   # (B, C)
            x = x + F.linear(y, *p("proj"))
            h = F.layer_norm(x, (C,), *p("ln_2")).to(self.dtype)
            x = x + F.linear(F.gelu(F.linear(h, *p("fc")), approximate="tanh"), *p("fc2"))
        x = F.layer_norm(x, (C,), self.ln_f_w, self.ln_f_b).to(self.dtype)
        return F.linear(x, self.head_w).float()                                # (B, V)


class Product:
    """One weight matrix in a chosen layout: `product(x)` is `x @ W.T + b` (then GELU's tanh form if
    `gelu`) for rows x (N, in), as the model's `nn.Linear` computes it; in the decoder's precision."""

    def __init__(self, layout: str, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool, nbytes: int):
        self.layout, self.weight, self.bias, self.gelu = layout, weight, bias, gelu
        self.nbytes = nbytes + (0 if bias is None else bias.numel() * bias.element_size())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if self.layout == "packed":   # one call: product, bias and (optionally) GELU's tanh form
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias,
                                                      "gelu" if self.gelu else "none",
                                                      [], "tanh" if self.gelu else "")
        if self.layout == "in_out":   # weight (in, out)
            y = x @ self.weight if self.bias is None else torch.addmm(self.bias, x, self.weight)
        elif x.size(0) == 1:          # weight (out, in), one row: a matrix-vector product
            v = x.view(-1)
            y = (torch.mv(self.weight, v) if self.bias is None
                 else torch.addmv(self.bias, self.weight, v)).view(1, -1)
        else:
            y = F.linear(x, self.weight, self.bias)
        return F.gelu(y, approximate="tanh") if self.gelu else y


def onednn_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether this PyTorch can pack weights of `dtype` for oneDNN's matrix products on this CPU (checked
    on a tiny product: bf16 packing needs AVX512-BF16-era or AVX-NE-CONVERT instructions)."""
    try:
        w, x = torch.ones(2, 3, dtype=dtype), torch.ones(1, 3, dtype=dtype)
        y = torch.ops.mkldnn._linear_pointwise(x, torch.ops.mkldnn._reorder_linear_weight(w, 1), None, "none",
                                               [], "")
        return torch.equal(y.float(), torch.full((1, 2), 3.0))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def bandwidth_share(tokens_per_s: float, bytes_per_step: int, bandwidth: float) -> float:
    """Achieved weight bytes per second as a share of the memory's read bandwidth."""
    return tokens_per_s * bytes_per_step / bandwidth if bandwidth > 0 else math.nan
