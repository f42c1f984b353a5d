import pytest
import torch
from torch import nn

from scratchgpt import GPTConfig
from scratchgpt.classification import to_classifier
from scratchgpt.lora import LinearWithLoRA, apply_lora, count_trainable, merge_lora
from scratchgpt.model import GPT

CFG = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


def test_fresh_lora_model_gives_identical_outputs():
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    idx = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        before = model(idx)
        apply_lora(model, rank=4, alpha=8)
        after = model(idx)
    assert torch.equal(before, after)


def test_trainable_parameter_count():
    model = to_classifier(GPT(CFG), num_classes=2, trainable="all")
    apply_lora(model, rank=4, alpha=8, keep_trainable=("lm_head",))
    d, r = 32, 4
    # c_attn, c_proj, c_fc, mlp.c_proj
    per_block = r * (d + 3 * d) + r * (d + d) + r * (d + 4 * d) + r * (4 * d + d)
    assert count_trainable(model) == CFG.n_layer * per_block + (d * 2 + 2)          # plus the full new head
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.endswith("linear.weight"))
    assert isinstance(model.transformer.h[0].attn.c_attn, LinearWithLoRA)
    assert isinstance(model.lm_head, nn.Linear)


def test_only_lora_weights_change_in_training():
    torch.manual_seed(0)
    model = apply_lora(GPT(CFG), rank=2, alpha=4)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    idx = torch.randint(0, 300, (2, 8))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.roll(-1, 1).flatten()).backward()
        opt.step()
    assert all(torch.equal(frozen[n], p) for n, p in model.named_parameters() if n in frozen)
    assert model.transformer.h[0].attn.c_attn.lora.B.abs().sum() > 0


def test_merge_gives_the_same_outputs_and_names():
    torch.manual_seed(0)
    model = apply_lora(GPT(CFG), rank=4, alpha=8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LinearWithLoRA):
                m.lora.B.normal_(0, 0.5)                    # a non-trivial update
    idx = torch.randint(0, 300, (2, 12))
    with torch.no_grad():
        lora_out = model(idx)
        merge_lora(model)
        merged_out = model(idx)
    torch.testing.assert_close(merged_out, lora_out, atol=1e-4, rtol=1e-4)
    # the base model's names again; a tied head that received its own update is now a separate tensor
    untied = GPT(CFG.with_(tie_weights=False))
    assert set(n for n, _ in model.named_parameters()) == set(n for n, _ in untied.named_parameters())


def test_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        apply_lora(GPT(CFG), rank=0)


def test_lora_layer_is_a_linear_layer_with_a_low_rank_weight_change():
    """Against an independent formula: LinearWithLoRA(x) = F.linear(x, W + (alpha / r) (A B)^T, bias), and
    the change has rank r at most; merged() stores exactly that weight."""
    torch.manual_seed(0)
    linear = nn.Linear(24, 40)
    layer = LinearWithLoRA(linear, rank=3, alpha=6)
    with torch.no_grad():
        layer.lora.B.normal_()
    A, B = layer.lora.A.detach(), layer.lora.B.detach()
    change = (6 / 3) * (B.T @ A.T)                               # (out, in), written as B^T A^T = (A B)^T
    x = torch.randn(5, 24)
    with torch.no_grad():
        expected = torch.nn.functional.linear(x, linear.weight + change, linear.bias)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer.merged().weight, linear.weight + change)
    assert torch.linalg.matrix_rank(change).item() == 3


def test_apply_lora_wraps_every_linear_and_only_those():
    model = GPT(CFG)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    apply_lora(model, rank=2, alpha=4)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LinearWithLoRA)]
    assert wrapped == linears and len(wrapped) == 4 * CFG.n_layer + 1           # four per block, the head
    assert all(p.requires_grad == (".lora." in n) for n, p in model.named_parameters())
