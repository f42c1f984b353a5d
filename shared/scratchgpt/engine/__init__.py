"""The speed engine: what the command-line trainer and the benchmark add to the plain model.

Nothing here changes what the notebooks build or compute; each piece is applied from outside:

- `fused_loss(model, idx, targets)`: the output head and the loss computed together, a chunk of rows
  at a time, with no (B·T, V) logits (`loss.py`, whose docstring gives the contract);
- `keep_freed_memory()`: the process keeps freed memory, so a training step finds its pages already
  mapped (`allocator.py`; it changes the whole process, so only the tools call it);
- `autocast_dtype(device)`: bf16 autocast where the hardware multiplies bf16 clearly faster
  (`precision.py`);
- `Decoder(model)`: an inference copy of a GPT laid out for one-token-at-a-time generation at the
  speed of memory, optionally compiled (`decoding.py`; import it from there: it registers an
  operator with PyTorch).

PERFORMANCE.md says what each piece gains, how it was measured, and how it is tested.
"""

from .allocator import keep_freed_memory
from .loss import can_fuse, chunked_cross_entropy, fused_loss, linear_cross_entropy, training_loss
from .precision import autocast_dtype, matmul_rate

__all__ = ["autocast_dtype", "can_fuse", "chunked_cross_entropy", "fused_loss", "keep_freed_memory",
           "linear_cross_entropy", "matmul_rate", "training_loss"]
