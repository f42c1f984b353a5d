"""The fast decoder computes what the model computes: same logits and greedy tokens in fp32, a stated
agreement in bf16."""

import pytest
import torch
from scratchgpt import GPTConfig
from scratchgpt.bench import weight_bytes_per_step
from scratchgpt.decoding import LAYOUTS, Decoder, onednn_available
from scratchgpt.generation import generate, logits_finite
from scratchgpt.model import GPT

CFG = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = GPT(CFG).eval()
    with torch.no_grad():   # larger weights than the initialisation: peaked logits, few near-ties
        for p in m.parameters():
            p.mul_(8 if p.dim() >= 2 else 1)
    return m


def test_logits_equal_the_models(model):
    idx = torch.randint(0, 300, (3, 10))
    dec = Decoder(model, max_batch=3)
    with torch.no_grad():
        torch.testing.assert_close(dec.step(idx[:, :6]), model(idx[:, :6])[:, -1], atol=1e-5, rtol=1e-5)
        for t in range(6, 10):                                       # one token at a time, from the cache
            torch.testing.assert_close(dec.step(idx[:, t: t + 1]), model(idx[:, : t + 1])[:, -1], atol=1e-5, rtol=1e-5)
        dec.length = 4                                               # several new tokens after cached ones
        torch.testing.assert_close(dec.step(idx[:, 4:9]), model(idx[:, :9])[:, -1], atol=1e-5, rtol=1e-5)


def test_greedy_tokens_equal_generate_also_past_the_context(model):
    prompt = torch.randint(0, 300, (2, 5))
    expected = generate(model, prompt, 40)                          # 45 tokens: outgrows the context of 16
    assert torch.equal(Decoder(model, max_batch=2).generate(prompt, 40), expected)


def test_sampling_and_end_of_text_follow_generate(model):
    prompt = torch.randint(0, 300, (1, 4))
    a = generate(model, prompt, 12, temperature=1.0, top_k=20, generator=torch.Generator().manual_seed(1))
    b = Decoder(model).generate(prompt, 12, temperature=1.0, top_k=20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    eos = int(generate(model, prompt, 3)[0, -1])                    # the 3rd greedy token, as end-of-text
    assert Decoder(model).generate(prompt, 20, eos_id=eos).size(1) == 4 + 3


def test_bf16_copy_agrees_with_fp32_and_reads_half_the_bytes(model):
    fp32, bf16 = Decoder(model), Decoder(model, dtype=torch.bfloat16)
    assert fp32.weight_bytes_per_step() == weight_bytes_per_step(CFG)
    assert bf16.weight_bytes_per_step() < 0.52 * fp32.weight_bytes_per_step()    # the norms stay fp32
    torch.manual_seed(1)
    agree = total = 0
    for _ in range(20):                                              # teacher-forced next-token choices
        idx = torch.randint(0, 300, (1, 16))
        fp32.length = bf16.length = 0
        for t in range(16):
            a, b = fp32.step(idx[:, t: t + 1]), bf16.step(idx[:, t: t + 1])
            agree += int(a.argmax() == b.argmax())
            total += 1
    rate = agree / total
    print(f"bf16 decoder: the same next token as fp32 at {rate:.1%} of {total} positions")
    assert rate >= 0.95


def test_a_batch_larger_than_the_decoder_is_refused(model):
    with pytest.raises(ValueError, match="batch 2 is larger than this decoder's max_batch=1"):
        Decoder(model).step(torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_weight_layout_computes_the_models_logits(model, layout):
    """oneDNN's packed weights (where this PyTorch has them), the transposed and the model's own layout
    all equal GPT.forward, one row at a time and for several rows; the bf16 copy picks the same token as
    the model nearly always."""
    if layout == "packed" and not onednn_available():
        pytest.skip("this PyTorch has no oneDNN weight packing")
    dec = Decoder(model, max_batch=2, layout=layout)
    assert set(dec.layouts.values()) == {layout}
    idx = torch.randint(0, 300, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(dec.step(idx[:, :8]), model(idx[:, :8])[:, -1], atol=1e-5, rtol=1e-5)
        for t in range(8, 12):
            torch.testing.assert_close(dec.step(idx[:, t: t + 1]), model(idx[:, : t + 1])[:, -1], atol=1e-5, rtol=1e-5)
        one = Decoder(model, layout=layout)                         # a batch of one: the matrix-vector path
        torch.testing.assert_close(one.step(idx[:1, :8]), model(idx[:1, :8])[:, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(one.step(idx[:1, 8:9]), model(idx[:1, :9])[:, -1], atol=1e-5, rtol=1e-5)
        bf16 = Decoder(model, dtype=torch.bfloat16, max_batch=2, layout=layout)
        agree = sum((bf16.step(idx[:, t: t + 1]).argmax(-1) == model(idx[:, : t + 1])[:, -1].argmax(-1)).sum().item()
                    for t in range(12))
    assert agree >= 0.9 * 24                                         # teacher-forced, 2 x 12 positions


def test_auto_layout_picks_a_candidate_per_kind_of_matrix_and_refuses_unknown_ones(model):
    dec = Decoder(model)
    assert set(dec.layouts) == {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "lm_head"}
    assert set(dec.layouts.values()) <= set(LAYOUTS)
    with pytest.raises(ValueError, match="layout must be 'auto' or one of .*, got 'sideways'"):
        Decoder(model, layout="sideways")


def test_logits_finite_catches_nan_and_inf_but_not_large_values():
    big = torch.full((2, 50257), 3e38)                              # a float32 sum of these would overflow
    assert logits_finite(big) and logits_finite(-big)
    for bad in (float("nan"), float("inf"), float("-inf")):
        x = torch.zeros(2, 50257)
        x[1, 123] = bad
        assert not logits_finite(x)
