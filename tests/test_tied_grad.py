"""The tied embedding's gradient added in place (`GPT.tied_grad_in_place`) equals autograd's own sum."""

import torch
import torch.nn.functional as F
from scratchgpt.config import GPTConfig
from scratchgpt.model import GPT

CFG = GPTConfig(vocab_size=97, context_length=16, n_embd=32, n_layer=2, n_head=4)


def grads_after(in_place: bool, batches, zero_between: bool = False):
    torch.manual_seed(0)
    model = GPT(CFG)
    model.tied_grad_in_place = in_place
    for x, y in batches:
        if zero_between:
            model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def batches(n):
    g = torch.Generator().manual_seed(1)
    # repeated ids on purpose: index_add_ must sum the rows of a token that occurs several times
    return [(torch.randint(0, 20, (3, 16), generator=g), torch.randint(0, 97, (3, 16), generator=g)) for _ in range(n)]


def test_same_gradients_as_autograd_for_every_parameter():
    data = batches(1)
    plain, fast = grads_after(False, data), grads_after(True, data)
    assert plain.keys() == fast.keys()
    for name in plain:
        torch.testing.assert_close(fast[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_accumulating_over_batches_and_zeroing_work_as_with_autograd():
    data = batches(3)
    for zero in (False, True):
        plain, fast = grads_after(False, data, zero), grads_after(True, data, zero)
        torch.testing.assert_close(fast["transformer.wte.weight"], plain["transformer.wte.weight"], rtol=1e-5, atol=1e-7)


def test_off_by_default_and_inactive_without_gradients():
    model = GPT(CFG)
    assert model.tied_grad_in_place is False
    model.tied_grad_in_place = True
    x = torch.randint(0, 97, (2, 8))
    with torch.no_grad():
        out = model.token_embeddings(x)
    assert not out.requires_grad and torch.equal(out, model.transformer.wte.weight[x])
    untied = GPT(CFG.with_(tie_weights=False))
    untied.tied_grad_in_place = True
    F.cross_entropy(untied(x).flatten(0, 1), x.flatten()).backward()   # plain path: the lookup's own gradient
    assert untied.transformer.wte.weight.grad is not None and untied.lm_head.weight.grad is not None
