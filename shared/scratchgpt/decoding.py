"""Generation at the speed of memory: a GPT's weights laid out for producing one token at a time.

With the key/value cache, each new token is one row pushed through every weight matrix: a
matrix-vector product, which does 2 FLOPs per weight it reads. The CPU can compute far faster than
memory can deliver weights, so the time per token is the time to read the weights once (0.5 GB for
GPT-2 124M in fp32). `Decoder` makes that read as fast as it can be:

- each matrix is stored in the layout whose one-row product streams it fastest. Where PyTorch has
  oneDNN (x86 and most ARM builds), that is oneDNN's own blocked layout, packed once for a batch of
  one (`torch.ops.mkldnn._reorder_linear_weight`, the packing `torch.compile` uses for CPU
  inference), and the bias and GELU run inside the same call. Measured on the weights of GPT-2 124M,
  one row at a time, on a 2-core AMD EPYC (Zen 4, torch 2.13): fp32 24 GB/s packed against 19 for
  `x @ W` on a transposed copy and 12 for `F.linear`; bf16 18 GB/s packed against 11 for `F.linear`
  and 8 for `torch.mv`. Elsewhere: fp32 transposed and contiguous, `(in, out)`, for `x @ W`; bf16
  the usual `(out, in)` for a matrix-vector product (`torch.mv`), which read bf16 fastest on a
  Sapphire Rapids with AMX (41 vs 26 GB/s for `x @ W`);
- the key/value cache is allocated once, for the whole context, and filled in place: no tensor is
  re-allocated or copied per token;
- the output head is computed for the last position only;
- `dtype=torch.bfloat16` keeps a bf16 copy of the weights: half the bytes per token, so about twice
  the tokens per second, at bf16's precision (the residual stream and the norms stay in fp32).

It computes what `GPT.forward` computes (tested: the same greedy tokens as `generate` in fp32) and is
meant for inference only: it copies the weights, so later training of the model does not reach it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .generation import filter_logits
from .model import GPT


class Decoder:
    """Inference copy of `model` for fast token-by-token generation (batch up to `max_batch`)."""

    def __init__(self, model: GPT, dtype: torch.dtype = torch.float32, max_batch: int = 1):
        cfg = model.config
        self.config, self.dtype, self.max_batch = cfg, dtype, max_batch
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head

        self.onednn = onednn_available()
        self.transposed = dtype == torch.float32 and not self.onednn
        self._bytes = 0

        def t(linear):   # oneDNN: packed; else fp32: (out, in) -> (in, out), contiguous; bf16: (out, in)
            w = linear.weight.detach().to(dtype)
            self._bytes += w.numel() * w.element_size()
            if self.onednn:
                return torch.ops.mkldnn._reorder_linear_weight(w, 1)
            return (w.t() if self.transposed else w).contiguous()

        def b(linear):
            if linear.bias is None:
                return None
            self._bytes += linear.bias.numel() * dtype.itemsize
            return linear.bias.detach().to(dtype)

        def ln(norm):
            self._bytes += sum(x.numel() * x.element_size() for x in (norm.weight, norm.bias) if x is not None)
            return (norm.weight.detach(), None if norm.bias is None else norm.bias.detach())

        tr = model.transformer
        self.wte, self.wpe = tr.wte.weight.detach(), tr.wpe.weight.detach()
        self.blocks = [dict(ln_1=ln(h.ln_1), attn_w=t(h.attn.c_attn), attn_b=b(h.attn.c_attn),
                            proj_w=t(h.attn.c_proj), proj_b=b(h.attn.c_proj), ln_2=ln(h.ln_2),
                            fc_w=t(h.mlp.c_fc), fc_b=b(h.mlp.c_fc), fc2_w=t(h.mlp.c_proj), fc2_b=b(h.mlp.c_proj))
                       for h in tr.h]
        self.ln_f = ln(tr.ln_f)
        self.head = t(model.lm_head)                                            # (C, V)
        device = self.wte.device
        shape = (cfg.n_layer, max_batch, self.n_head, cfg.context_length, self.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)                 # filled in place
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    def weight_bytes_per_step(self) -> int:
        """Bytes of weights one step reads (all matrices, biases and norms; one row of each embedding)."""
        return self._bytes

    def _linear(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.onednn:   # one call: product, bias and (optionally) GELU's tanh form, as the model's MLP
            y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.size(-1)), w, bias, "gelu" if gelu else "none",
                                                   [], "tanh" if gelu else "")
            return y.view(*x.shape[:-1], -1)
        if self.transposed:
            y = x @ w                                                           # w: (in, out)
        elif x.shape[:-1].numel() == 1:
            y = torch.mv(w, x.reshape(-1)).view(*x.shape[:-1], -1)              # one row: w (out, in)
        else:
            y = F.linear(x, w)
        y = y if bias is None else y + bias
        return F.gelu(y, approximate="tanh") if gelu else y

    @torch.no_grad()
    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """Feed the new tokens `idx` (B, T) after the cached ones; the last position's logits (B, V)."""
        B, T = idx.shape
        C, start = self.config.n_embd, self.length
        if B > self.max_batch:
            raise ValueError(f"batch {B} is larger than this decoder's max_batch={self.max_batch}")
        if start + T > self.config.context_length:
            raise ValueError(f"{start + T} tokens exceed the context length {self.config.context_length}")
        x = self.wte[idx] + self.wpe[start: start + T]                          # (B, T, C), fp32
        mask = None
        if T > 1:   # the new tokens see the cached ones and those before them among themselves
            mask = torch.ones(T, start + T, dtype=torch.bool, device=idx.device).tril(diagonal=start)
        for i, blk in enumerate(self.blocks):
            h = F.layer_norm(x, (C,), *blk["ln_1"])
            q, k, v = self._linear(h, blk["attn_w"], blk["attn_b"]).split(C, dim=2)
            q, k, v = (z.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))
            self.k[i, :B, :, start: start + T] = k                              # in place: no re-allocation
            self.v[i, :B, :, start: start + T] = v
            keys, values = self.k[i, :B, :, : start + T], self.v[i, :B, :, : start + T]
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, H, T, hd)
            y = y.transpose(1, 2).reshape(B, T, C)
            x = x + self._linear(y, blk["proj_w"], blk["proj_b"]).float()
            h = F.layer_norm(x, (C,), *blk["ln_2"])
            h = self._linear(h, blk["fc_w"], blk["fc_b"], gelu=True)
            x = x + self._linear(h, blk["fc2_w"], blk["fc2_b"]).float()
        self.length = start + T
        last = F.layer_norm(x[:, -1], (C,), *self.ln_f)                          # (B, C): the head for the last only
        return self._linear(last, self.head, None).float()                     # (B, V)

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
            if not torch.isfinite(logits).all():
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
