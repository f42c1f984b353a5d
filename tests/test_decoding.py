"""The fast decoder computes what the model computes: same logits and greedy tokens in fp32, a stated
agreement in bf16."""

import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.engine.decoding import LAYOUTS, Decoder, onednn_available
from scratchgpt.generation import generate, logits_finite
from scratchgpt.model import GPT
from scratchgpt.tools.bench import weight_bytes_per_step

CFG = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)


def make_model() -> GPT:
    torch.manual_seed(0)
    m = GPT(CFG).eval()
    with torch.no_grad():   # larger weights than the initialisation: peaked logits, few near-ties
        for p in m.parameters():
            p.mul_(8 if p.dim() >= 2 else 1)
    return m


@pytest.fixture
def model():
    return make_model()


def next_token_agreement(a: Decoder, b: Decoder, rounds: int, seed: int) -> tuple[int, int]:
    """Teacher-forced next-token choices of two decoders over `rounds` random 16-token texts (a batch
    of `a.max_batch`): (positions where their argmax agrees, positions)."""
    torch.manual_seed(seed)
    agree = total = 0
    for _ in range(rounds):
        idx = torch.randint(0, 300, (a.max_batch, 16))
        a.length = b.length = 0
        for t in range(16):
            agree += (a.step(idx[:, t: t + 1]).argmax(-1) == b.step(idx[:, t: t + 1]).argmax(-1)).sum().item()
            total += a.max_batch
    return agree, total


def test_logits_equal_the_models(model):
    idx = torch.randint(0, 300, (3, 10))
    dec = Decoder(model, max_batch=3)
    with torch.no_grad():
        torch.testing.assert_close(dec.step(idx[:, :6]), model(idx[:, :6])[:, -1], atol=1e-5, rtol=1e-5)
        for t in range(6, 10):                                       # one token at a time, from the cache
            torch.testing.assert_close(dec.step(idx[:, t: t + 1]), model(idx[:, : t + 1])[:, -1],
                                       atol=1e-5, rtol=1e-5)
        dec.length = 4                                               # several new tokens after cached ones
        torch.testing.assert_close(dec.step(idx[:, 4:9]), model(idx[:, :9])[:, -1], atol=1e-5, rtol=1e-5)


def test_greedy_tokens_equal_generate_also_past_the_context(model):
    prompt = torch.randint(0, 300, (2, 5))
    expected = generate(model, prompt, 40)                          # 45 tokens: outgrows the context of 16
    assert torch.equal(Decoder(model, max_batch=2).generate(prompt, 40), expected)


def test_sampling_and_end_of_text_follow_generate(model):
    prompt = torch.randint(0, 300, (1, 4))
    a = generate(model, prompt, 12, temperature=1.0, top_k=20, generator=torch.Generator().manual_seed(1))
    b = Decoder(model).generate(prompt, 12, temperature=1.0, top_k=20,
                                generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    eos = int(generate(model, prompt, 3)[0, -1])                    # the 3rd greedy token, as end-of-text
    assert Decoder(model).generate(prompt, 20, eos_id=eos).size(1) == 4 + 3


def test_bf16_copy_agrees_with_fp32_and_reads_half_the_bytes(model):
    fp32, bf16 = Decoder(model), Decoder(model, dtype=torch.bfloat16)
    assert fp32.weight_bytes_per_step() == weight_bytes_per_step(CFG)
    assert bf16.weight_bytes_per_step() < 0.52 * fp32.weight_bytes_per_step()    # the norms stay fp32
    agree, total = next_token_agreement(fp32, bf16, rounds=20, seed=1)
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
            torch.testing.assert_close(dec.step(idx[:, t: t + 1]), model(idx[:, : t + 1])[:, -1],
                                       atol=1e-5, rtol=1e-5)
        one = Decoder(model, layout=layout)                         # a batch of one: the matrix-vector path
        torch.testing.assert_close(one.step(idx[:1, :8]), model(idx[:1, :8])[:, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(one.step(idx[:1, 8:9]), model(idx[:1, :9])[:, -1], atol=1e-5, rtol=1e-5)
        if layout == "packed" and not onednn_available(torch.bfloat16):
            with pytest.raises(ValueError, match="layout must be 'auto' or one of"):
                Decoder(model, dtype=torch.bfloat16, max_batch=2, layout=layout)
            return                                                  # this CPU cannot pack bf16 weights
        bf16 = Decoder(model, dtype=torch.bfloat16, max_batch=2, layout=layout)
        agree = sum((bf16.step(idx[:, t: t + 1]).argmax(-1)
                     == model(idx[:, : t + 1])[:, -1].argmax(-1)).sum().item()
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


@pytest.fixture(scope="module")
def compiled():
    """An fp32 and a bf16 decoder compiled for batches of 2, of the same model as `model` (compiling
    takes seconds, so once for the module's tests)."""
    m = make_model()
    return (m, Decoder(m, max_batch=2, compile=True),
            Decoder(m, dtype=torch.bfloat16, max_batch=2, compile=True))


@pytest.mark.slow
def test_the_compiled_step_computes_the_models_logits_and_never_recompiles(compiled):
    model, dec, _ = compiled
    idx = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
        dec.length = 0
        torch.testing.assert_close(dec.step(idx[:, :8]), model(idx[:, :8])[:, -1], atol=1e-5, rtol=1e-5)
        for t in range(8, 12):                                       # one token each: the compiled graph
            torch.testing.assert_close(dec.step(idx[:, t: t + 1]), model(idx[:, : t + 1])[:, -1],
                                       atol=1e-4, rtol=1e-4)
        # its key/value cache is the decoder's: an eager step after compiled ones sees the same context
        dec.length = 11
        torch.testing.assert_close(dec.step(idx[:1, 11:12]), model(idx[:1, :12])[:, -1], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_greedy_tokens_equal_generate_also_past_the_context(compiled):
    model, dec, _ = compiled
    prompt = torch.randint(0, 300, (2, 5), generator=torch.Generator().manual_seed(3))
    with torch._dynamo.config.patch(error_on_recompile=True):
        assert torch.equal(dec.generate(prompt, 40), generate(model, prompt, 40))


@pytest.mark.slow
def test_compiled_bf16_agrees_with_the_eager_bf16_decoder(compiled):
    model, _, bf16 = compiled
    agree, total = next_token_agreement(Decoder(model, dtype=torch.bfloat16, max_batch=2), bf16,
                                        rounds=10, seed=4)
    print(f"compiled bf16 decoder: the same next token as the eager bf16 decoder "
          f"at {agree / total:.1%} of {total}")
    assert agree >= 0.95 * total


def test_compile_needs_the_models_own_layout(model):
    with pytest.raises(ValueError, match="compile=True keeps the weights in the model's own layout"):
        Decoder(model, layout="packed", compile=True)


@pytest.mark.slow
def test_each_compiled_decoder_gets_its_own_graph_beyond_the_recompile_limit(model):
    """torch.compile keeps at most `recompile_limit` graphs per function (8 by default); past it, it
    runs the function uncompiled without an error. Each decoder's step is its own function, so even
    with a limit of 1 a second decoder is compiled, and both compute their model's logits."""
    from torch._dynamo.utils import counters

    other = make_model()
    with torch.no_grad():
        other.lm_head.weight.mul_(-1)                               # another model: different logits
    idx = torch.randint(0, 300, (1, 7), generator=torch.Generator().manual_seed(5))
    with torch._dynamo.config.patch(recompile_limit=1):
        before = counters["stats"]["unique_graphs"]
        decoders = [(m, Decoder(m, compile=True)) for m in (model, other)]
        assert counters["stats"]["unique_graphs"] - before == 2
        with torch.no_grad():
            for m, dec in decoders:
                dec.step(idx[:, :6])
                torch.testing.assert_close(dec.step(idx[:, 6:]), m(idx)[:, -1], atol=1e-4, rtol=1e-4)


def test_a_failed_compile_says_what_failed(model, monkeypatch):
    def compile_without_a_compiler(module, **kwargs):
        def run(*args):
            raise OSError("g++: command not found")
        return run
    monkeypatch.setattr(torch, "compile", compile_without_a_compiler)
    with pytest.raises(RuntimeError, match=r"torch.compile could not compile .* C\+\+ compiler.*"
                                           r"OSError: g\+\+: command not found"):
        Decoder(model, compile=True)


def test_cached_attention_keeps_bf16_keys_exactly_in_an_fp32_cache_and_attends_over_them():
    """The bf16 decoder's cache is fp32 on a CPU. One cached step, checked against attention written
    out in float64: the new key and value land in the cache unchanged (bf16 -> fp32 is exact), and the
    output is softmax(q·kᵀ/√hd)·v over the cached positions and the new one."""
    model = make_model()
    dec = Decoder(model, dtype=torch.bfloat16, max_batch=2)
    assert dec.kv.dtype == torch.float32
    B, H, hd, start = 2, 4, 8, 5
    g = torch.Generator().manual_seed(6)
    kv = torch.zeros(2, B, H, 16, hd)
    kv[:, :, :, :start] = torch.randn(2, B, H, start, hd, generator=g)
    qkv = torch.randn(B, 3, H, hd, generator=g).to(torch.bfloat16)
    out = torch.ops.scratchgpt.cached_attention(qkv, kv, torch.tensor(start))
    assert out.dtype == torch.float32 and out.shape == (B, H * hd)
    assert torch.equal(kv[0, :, :, start], qkv[:, 1].float()) \
        and torch.equal(kv[1, :, :, start], qkv[:, 2].float())
    # nothing written past the new position
    assert not kv[:, :, :, start + 1:].any()
    q, k, v = qkv[:, 0].double(), kv[0, :, :, : start + 1].double(), kv[1, :, :, : start + 1].double()
    weights = torch.softmax(torch.einsum("bhd,bhtd->bht", q, k) / hd ** 0.5, dim=-1)
    expected = torch.einsum("bht,bhtd->bhd", weights, v).reshape(B, H * hd)
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("generator", ["generate", "decoder"])
def test_generate_and_the_decoder_refuse_the_same_bad_requests(model, generator):
    """One check (`generation.check_request`) for both: a negative or NaN temperature, ids outside the
    vocabulary (-1 would wrap to the last embedding row), a negative length, an empty prompt, top-k,
    top-p and the end-of-text id."""
    run = (lambda idx, n, **kw: generate(model, idx, n, **kw)) if generator == "generate" else \
        Decoder(model).generate
    ok = torch.tensor([[1, 2]])
    for idx, n, kw, message in [
        (ok, 2, {"temperature": -0.01}, "temperature must be a finite number >= 0, got -0.01"),
        (ok, 2, {"temperature": float("nan")}, "temperature must be a finite number >= 0, got nan"),
        (torch.tensor([[1, -1]]), 2, {}, r"token ids must lie in \[0, 300\); got min -1, max 1"),
        (torch.tensor([[1, 300]]), 2, {}, r"token ids must lie in \[0, 300\); got min 1, max 300"),
        (ok, -1, {}, "max_new_tokens must be 0 or more, got -1"),
        (torch.zeros(1, 0, dtype=torch.long), 2, {}, "at least one token"),
        (ok.float(), 2, {}, "the prompt must hold integer token ids, got torch.float32"),
        (ok, 2.5, {}, "max_new_tokens must be 0 or more, got 2.5"),
        # checked also where greedy decoding would not use them: a bad setting is a mistake either way
        (ok, 2, {"top_k": 0}, r"top_k must be at least 1 \(or None\), got 0"),
        (ok, 2, {"top_p": 1.5, "temperature": 1.0}, r"top_p must be in \(0, 1\] \(or None\), got 1.5"),
        (ok, 2, {"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        (ok, 2, {"eos_id": 300}, r"eos_id must be a token id in \[0, 300\) \(or None\), got 300"),
    ]:
        with pytest.raises(ValueError, match=message):
            run(idx, n, **kw)


def test_the_decoder_refuses_other_models_and_precisions_by_name(model):
    from scratchgpt.llama import Llama, LlamaConfig

    llama = Llama(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16))
    with pytest.raises(TypeError, match="Decoder lays out a GPT's weights .* not a Llama"):
        Decoder(llama)
    with pytest.raises(ValueError, match="torch.float32 or torch.bfloat16, not torch.float16"):
        Decoder(model, dtype=torch.float16)
