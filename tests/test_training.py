import math

import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.model import GPT
from scratchgpt.training import loss_loader, lr_at, make_optimizer, train

CFG = GPTConfig(vocab_size=200, context_length=8, n_embd=32, n_layer=2, n_head=2, dropout=0.1)


def test_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 1.0, total_steps=100, warmup_steps=10, min_lr=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))            # rising during warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))            # falling after
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(100, 1.0, 100, 10, 0.1) == 0.1 and lr_at(500, 1.0, 100, 10, 0.1) == 0.1


def test_train_lowers_the_loss_and_records_history(token_batches):
    torch.manual_seed(0)
    model = GPT(CFG.with_(dropout=0.0))
    data = token_batches(4) * 1
    before = loss_loader(model, data)
    history = train(model, make_optimizer(model, 3e-3), data, data, epochs=5, eval_every=5,
                    warmup_steps=2, min_lr=1e-4, log=lambda *a: None, progress=False)
    assert history.steps == [5, 10, 15, 20] and history.tokens_seen[-1] == 20 * 16
    assert history.train_loss[-1] < before - 0.5


def test_empty_loader_is_an_error():
    model = GPT(CFG)
    with pytest.raises(ValueError, match="empty"):
        loss_loader(model, [])
    with pytest.raises(ValueError, match="empty"):
        train(model, make_optimizer(model, 1e-3), [], [], epochs=1)


def test_optimizer_step_clips_like_torch_and_stops_on_nan():
    """`optimizer_step` against PyTorch's own `clip_grad_norm_` on the same gradients."""
    from scratchgpt.training import NonFiniteError, optimizer_step

    def grads_after(clip_with_torch: bool):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=100, context_length=8, n_embd=16, n_layer=1, n_head=2))
        x = torch.randint(0, 100, (2, 8))
        (model(x).square().mean() * 1000).backward()                  # a large gradient
        opt = torch.optim.SGD(model.parameters(), lr=0.0)             # lr 0: the step changes nothing
        if clip_with_torch:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5).item()
        else:
            norm = optimizer_step(model, opt, 0.5, step=0)
        return norm, [p.grad.clone() for p in model.parameters()], model, opt

    norm, ours, model, opt = grads_after(False)
    ref_norm, theirs, _, _ = grads_after(True)
    assert norm == pytest.approx(ref_norm) and norm > 0.5
    assert all(torch.allclose(a, b) for a, b in zip(ours, theirs))
    assert torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in ours])) \
        == pytest.approx(0.5, rel=1e-4)
    next(model.parameters()).grad[0] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteError, match="step 4: the gradient norm is nan"):
        optimizer_step(model, opt, 0.5, step=3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_how_often_one_evaluates_does_not_change_the_weights():
    """Evaluations read the loaders in order with a generator of their own: the shuffle of the
    training data and the dropout masks are the same whether one evaluates every step or never."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    ids = torch.randint(0, 200, (12, 9))
    data = TensorDataset(ids[:, :-1], ids[:, 1:])
    weights = []
    for eval_every in (1, 1000):
        torch.manual_seed(1)
        # dropout 0.1: uses the global generator
        model = GPT(CFG)
        train_loader = DataLoader(data, batch_size=2, shuffle=True,
                                  generator=torch.Generator().manual_seed(2))
        val_loader = DataLoader(data, batch_size=4)                    # no generator of its own
        train(model, make_optimizer(model, 1e-3), train_loader, val_loader, epochs=2, eval_every=eval_every,
              log=lambda *a: None, progress=False)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
