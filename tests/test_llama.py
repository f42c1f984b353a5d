"""The modern decoder against Hugging Face's LlamaForCausalLM, an independent implementation."""

import dataclasses

import pytest
import torch
import transformers

from scratchgpt.config import GPTConfig
from scratchgpt.generation import generate
from scratchgpt.llama import Llama, LlamaConfig, RMSNorm, apply_rope, rope_angles

SMALL = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64,
                    rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)


def hf_model(cfg: LlamaConfig, seed: int = 0):
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
              if f.name not in ("rope_theta", "rope_scaling")}
    rope = (cfg.rope_scaling or {"rope_type": "default"}) | {"rope_theta": cfg.rope_theta}
    hf_cfg = transformers.LlamaConfig(**fields, rope_parameters=rope,
                                      attention_bias=False, mlp_bias=False, attn_implementation="eager")
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(hf_cfg).eval()
    with torch.no_grad():  # the default init leaves the norms at 1: randomise them too, so they are tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("kv_heads,tied", [(2, False), (8, False), (1, True)])
def test_logits_equal_transformers(kv_heads, tied):
    cfg = SMALL.with_(num_key_value_heads=kv_heads, tie_word_embeddings=tied)
    reference = hf_model(cfg)
    ours = Llama(cfg).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)   # the same names: weights map one to one
    idx = torch.randint(0, cfg.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(idx).logits
        got = ours(idx)
    assert got.shape == expected.shape == (3, 40, cfg.vocab_size)
    assert (got - expected).abs().max().item() < 1e-4
    assert expected.std() > 0.1      # not a trivially flat output


def test_kv_cache_and_generation_match_transformers():
    reference = hf_model(SMALL, seed=3)
    ours = Llama(SMALL).eval()
    ours.load_state_dict(reference.state_dict())
    prompt = torch.randint(0, SMALL.vocab_size, (2, 7), generator=torch.Generator().manual_seed(2))
    cached = generate(ours, prompt, 20, use_cache=True)
    uncached = generate(ours, prompt, 20, use_cache=False)
    expected = reference.generate(prompt, max_new_tokens=20, do_sample=False,
                                  attention_mask=torch.ones_like(prompt), pad_token_id=0)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, expected)
    # several new tokens at once after a cached prefix (the mask's offset)
    cache = ours.new_cache()
    with torch.no_grad():
        ours(prompt[:, :4], cache)
        tail = ours(prompt[:, 4:], cache)
        full = ours(prompt)
    assert torch.allclose(tail, full[:, 4:], atol=1e-5)


def test_rmsnorm_against_torch():
    x = torch.randn(4, 10, 32)
    norm = RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
    expected = torch.nn.functional.rms_norm(x, (32,), norm.weight, eps=1e-6)
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_rope_is_a_rotation_that_depends_on_distance_only():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def dot(m, n):  # q at position m, k at position n
        cq, sq = rope_angles(16, torch.tensor([m]))
        ck, sk = rope_angles(16, torch.tensor([n]))
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    cos, sin = rope_angles(16, torch.tensor([5]))
    assert apply_rope(q, cos, sin).norm().item() == pytest.approx(q.norm().item(), rel=1e-6)  # lengths kept
    assert dot(3, 1) == pytest.approx(dot(12, 10), abs=1e-5)     # same distance, same score
    assert dot(3, 1) != pytest.approx(dot(3, 2), abs=1e-3)
    # position 0 is the identity; pair 0 turns by exactly 1 radian per position (frequency theta^0)
    c0, s0 = rope_angles(16, torch.tensor([0]))
    assert torch.equal(apply_rope(q, c0, s0), q)
    c1, s1 = rope_angles(16, torch.tensor([1]))
    assert c1[0, 0].item() == pytest.approx(torch.cos(torch.tensor(1.0)).item())


# Llama 3.2's shape, shrunk: tied head, a head_dim that is not width / heads (as in Llama 3.2 3B),
# theta 500,000 and Llama 3's rope scaling. original_max_position_embeddings is scaled down from 8192 so
# that within 40 positions some pairs keep their frequency (i = 0, 1), one is blended (2), the rest slowed.
LLAMA32 = SMALL.with_(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                      max_position_embeddings=128, rope_theta=500000.0, tie_word_embeddings=True,
                      rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64})


def test_a_llama_3_2_shaped_model_equals_transformers():
    """Llama 3.1 / 3.2 checkpoints load by name; their rope scaling and head_dim must be computed too,
    or the logits are wrong without an error."""
    reference = hf_model(LLAMA32, seed=4)
    ours = Llama(LLAMA32).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert ours.model.layers[0].self_attn.q_proj.weight.shape == (4 * 32, 64)
    idx = torch.randint(0, LLAMA32.vocab_size, (2, 40), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = reference(idx).logits
        unscaled = Llama(LLAMA32.with_(rope_scaling=None)).eval()
        unscaled.load_state_dict(reference.state_dict())
        assert (unscaled(idx) - expected).abs().max().item() > 1e-3     # the scaling matters here
        assert (ours(idx) - expected).abs().max().item() < 1e-4
    expected_ids = reference.generate(idx[:1, :6], max_new_tokens=10, do_sample=False,
                                      attention_mask=torch.ones(1, 6, dtype=torch.long), pad_token_id=0)
    assert torch.equal(generate(ours, idx[:1, :6], 10), expected_ids)


@pytest.mark.parametrize("changes, message", [
    (dict(num_attention_heads=0), "num_attention_heads must be a whole number >= 1, got 0"),
    (dict(num_key_value_heads=0), "num_key_value_heads must be a whole number >= 1, got 0"),
    (dict(num_hidden_layers=0), "num_hidden_layers must be a whole number >= 1, got 0"),
    (dict(hidden_size=64.0), "hidden_size must be a whole number >= 1, got 64.0"),
    (dict(head_dim=7), "head size must be even, got 7"),
    (dict(rope_theta=0.0), "rope_theta must be a positive number"),
    (dict(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "rope_type 'yarn' is not supported"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0}), "needs low_freq_factor, high_freq_factor"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0,
                        "original_max_position_embeddings": 64}), "high_freq_factor must be larger"),
])
def test_bad_llama_configs_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        SMALL.with_(**changes)


def test_head_dim_is_derived_again_when_the_width_changes():
    assert SMALL.head_dim == 8 and SMALL.with_(hidden_size=128).head_dim == 16
    assert LLAMA32.with_(hidden_size=96).head_dim == 32                 # set on its own: kept


def test_like_gpt_and_bad_configs():
    cfg = LlamaConfig.like_gpt(GPTConfig(n_embd=768, n_layer=12, n_head=12))
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_key_value_heads) == (768, 2048, 3)
    gpt = GPTConfig(n_embd=768, n_layer=12, n_head=12)
    assert LlamaConfig.like_gpt(gpt, num_key_value_heads=6).num_key_value_heads == 6
    # a number asked for is used as it is, or refused: not quietly lowered to 4, nor 0 taken as the default
    with pytest.raises(ValueError, match="not a multiple of num_key_value_heads=5"):
        LlamaConfig.like_gpt(gpt, num_key_value_heads=5)
    with pytest.raises(ValueError, match="num_key_value_heads must be a whole number >= 1, got 0"):
        LlamaConfig.like_gpt(gpt, num_key_value_heads=0)
    with pytest.raises(ValueError, match="not a multiple of num_key_value_heads"):
        LlamaConfig(num_attention_heads=12, num_key_value_heads=5)
    with pytest.raises(ValueError, match="not divisible"):
        LlamaConfig(hidden_size=100, num_attention_heads=12, num_key_value_heads=4)
    model = Llama(SMALL)
    with pytest.raises(ValueError, match="longer than the context length"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie"):
        model(torch.full((1, 3), 1000))


def test_kv_cache_bytes_equals_the_tensors_a_full_cache_holds():
    from scratchgpt.attention import kv_cache_bytes
    from scratchgpt.model import GPT

    gpt_cfg = GPTConfig(vocab_size=100, context_length=32, n_embd=48, n_layer=3, n_head=6)
    for model, (layers, kv, hd) in [(GPT(gpt_cfg), (3, 6, 8)), (Llama(SMALL), (2, 2, 8))]:
        cache = model.new_cache()
        with torch.no_grad():
            model(torch.zeros(2, 30, dtype=torch.long), cache)
        held = sum(t.nbytes for layer in cache.layers for t in (layer.k, layer.v))
        assert held == kv_cache_bytes(layers, kv, hd, tokens=30, batch=2) == layers * 2 * kv * hd * 30 * 2 * 4
