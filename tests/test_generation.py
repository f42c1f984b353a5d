import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.generation import filter_logits, generate, generate_text
from scratchgpt.model import GPT

CFG = GPTConfig(vocab_size=300, context_length=8, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(CFG).eval()


def test_greedy_is_deterministic_and_equals_argmax_loop(model):
    idx = torch.tensor([[1, 2, 3]])
    a, b = generate(model, idx, 10), generate(model, idx, 10)
    assert torch.equal(a, b) and a.shape == (1, 13)
    manual = idx
    for _ in range(10):
        with torch.no_grad():
            nxt = model(manual[:, -8:])[:, -1].argmax(-1, keepdim=True)
        manual = torch.cat([manual, nxt], 1)
    assert torch.equal(a, manual)


def test_temperature_zero_is_greedy_even_with_filters(model):
    idx = torch.tensor([[5, 6]])
    assert torch.equal(generate(model, idx, 6, temperature=0.0, top_k=5, top_p=0.5), generate(model, idx, 6))


def test_sampling_is_reproducible_with_a_generator(model):
    idx = torch.tensor([[5, 6]])
    runs = [generate(model, idx, 8, temperature=1.5, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert torch.equal(*runs)


def test_sampling_applies_temperature_then_top_k_then_top_p_then_draws(model):
    """The order notebook 05's own loop follows: an independent loop (top-p token by token in Python)
    with the same generator draws the same tokens."""
    idx, T, k, p = torch.tensor([[5, 6]]), 0.7, 20, 0.8
    manual, gen = idx, torch.Generator().manual_seed(5)
    for _ in range(10):
        with torch.no_grad():
            logits = model(manual[:, -CFG.context_length:])[:, -1] / T
        top = torch.topk(logits[0], k).indices                        # the k best, most likely first
        probs = torch.softmax(logits[0, top], dim=0)                  # renormalised over the k
        keep, mass = [], 0.0
        for j, token in enumerate(top.tolist()):
            if mass >= p:
                break
            keep.append(token)
            mass += probs[j].item()
        filtered = torch.full_like(logits, float("-inf"))
        filtered[0, keep] = logits[0, keep]
        nxt = torch.multinomial(torch.softmax(filtered, dim=-1), 1, generator=gen)
        manual = torch.cat([manual, nxt], 1)
    out = generate(model, idx, 10, temperature=T, top_k=k, top_p=p,
                   generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, manual)


def test_top_k_never_samples_outside_the_k_best():
    torch.manual_seed(0)
    logits = torch.randn(4, 300)
    allowed = torch.topk(logits, 5).indices
    for _ in range(200):
        probs = torch.softmax(filter_logits(logits / 2.0, top_k=5), -1)
        picked = torch.multinomial(probs, 1)
        assert all(picked[b, 0] in allowed[b] for b in range(4))


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = filter_logits(logits, top_p=0.75) > float("-inf")
    assert kept.tolist() == [[True, True, False, False]]   # 0.5 < 0.75, 0.5 + 0.3 >= 0.75
    kept = filter_logits(logits, top_p=0.8) > float("-inf")
    assert kept.tolist() == [[True, True, False, False]]
    kept = filter_logits(logits, top_p=0.81) > float("-inf")
    assert kept.tolist() == [[True, True, True, False]]
    assert (filter_logits(logits, top_p=0.01) > float("-inf")).sum() == 1  # the best token always stays


def test_top_p_never_samples_outside_the_nucleus():
    torch.manual_seed(1)
    logits = torch.randn(2, 300) * 3
    nucleus = filter_logits(logits, top_p=0.6) > float("-inf")
    for _ in range(200):
        picked = torch.multinomial(torch.softmax(filter_logits(logits, top_p=0.6), -1), 1)
        assert nucleus.gather(1, picked).all()


def test_long_prompt_is_cropped_to_the_context(model):
    idx = torch.randint(0, 300, (1, 20))          # longer than context 8
    out = generate(model, idx, 3)
    assert out.shape == (1, 23) and torch.equal(out[:, :20], idx)
    assert torch.equal(out[:, 20:21], generate(model, idx[:, -8:], 1)[:, -1:])


def test_stops_at_eos(model):
    idx = torch.tensor([[1, 2]])
    first = generate(model, idx, 1)[0, -1].item()
    out = generate(model, idx, 10, eos_id=first)
    assert out.shape == (1, 3)


def test_bad_prompts_are_errors(model):
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate_text(model, "", 5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, torch.tensor([[1]]), 2, temperature=-1)
    with pytest.raises(ValueError, match="token ids must lie"):
        generate(model, torch.tensor([[1, 400]]), 2)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(torch.zeros(1, 5), top_k=0)


@pytest.mark.parametrize("fast", [True, False])
def test_kv_cache_generates_the_same_tokens_as_recomputing(fast):
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    for block in model.transformer.h:
        block.attn.fast = fast
    idx = torch.randint(0, 300, (2, 3))
    # 20 new tokens with a context of 8: the cache fills, overflows and is rebuilt
    assert torch.equal(generate(model, idx, 20, use_cache=True), generate(model, idx, 20, use_cache=False))
    g1, g2 = (torch.Generator().manual_seed(5) for _ in range(2))
    assert torch.equal(generate(model, idx, 12, temperature=1.0, top_k=50, generator=g1, use_cache=True),
                       generate(model, idx, 12, temperature=1.0, top_k=50, generator=g2, use_cache=False))


def test_cached_forward_in_chunks_equals_one_pass(model):
    idx = torch.randint(0, 300, (2, 8))
    with torch.no_grad():
        full = model(idx)
        cache = model.new_cache()
        parts = [model(idx[:, :3], cache), model(idx[:, 3:4], cache), model(idx[:, 4:], cache)]
    assert cache.length == 8
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="longer than the context"):
        model(idx[:, :1], cache)                     # a ninth position does not exist


def test_last_only_gives_the_last_positions_logits():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=16, n_embd=32, n_layer=2, n_head=4,
                          dropout=0.0)).eval()
    idx = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        full, last = model(idx), model(idx, last_only=True)
    assert last.shape == (2, 1, 50)
    assert torch.allclose(last[:, 0], full[:, -1], atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_the_transposed_head_gives_the_heads_logits(kind):
    """`generate` multiplies by a transposed copy of the head's weight (faster for one row on CPUs): the
    logits equal `lm_head`'s, and greedy tokens equal an argmax loop over the plain forward pass."""
    torch.manual_seed(0)
    if kind == "gpt":
        cfg = GPTConfig(vocab_size=500, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)
        model = GPT(cfg).eval()
    else:
        from scratchgpt.llama import Llama, LlamaConfig

        cfg = LlamaConfig(vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16)
        model = Llama(cfg).eval()
    idx = torch.randint(0, 500, (3, 7))
    with torch.no_grad():
        plain = model(idx)                                                   # lm_head, every position
        fast = model(idx, last_only=True)
        torch.testing.assert_close(fast[:, 0], plain[:, -1], atol=1e-5, rtol=1e-5)
        manual = idx[:1]
        for _ in range(6):
            manual = torch.cat([manual, model(manual)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generate(model, idx[:1], 6), manual)


def test_a_wrapped_output_head_keeps_its_own_forward():
    """With LoRA on every linear layer, the head included, `generate` uses the wrapped head (its update
    counts), not a copy of the frozen weight."""
    from scratchgpt.lora import apply_lora

    torch.manual_seed(0)
    model = apply_lora(GPT(GPTConfig(vocab_size=500, context_length=16, n_embd=32, n_layer=2, n_head=4,
                                     dropout=0.0)), rank=4).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.5)                      # a LoRA update that changes the logits
        idx = torch.randint(0, 500, (1, 5))
        manual = idx
        for _ in range(6):
            manual = torch.cat([manual, model(manual)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generate(model, idx, 6), manual)
