"""Plausible wrong answers to notebook 11's exercises (tests/exercise_harness.py tries each)."""

WRONG = {
    "ex11_1_solution": [
        # all of the attention's projections counted, queries and output included
        """cache_mib, kv_params = {}, {}
for n in (1, 2, 3, 4, 6, 12):
    cfg = LlamaConfig.like_gpt(GPT2_SIZES["124M"], num_key_value_heads=n)
    cache_mib[n] = kv_cache_bytes(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, 1024) / 2**20
    with torch.device("meta"):
        model = Llama(cfg)
    kv_params[n] = sum(p.numel() for name, p in model.named_parameters() if "self_attn" in name)""",
        # the cache computed with the query heads
        """cache_mib, kv_params = {}, {}
for n in (1, 2, 3, 4, 6, 12):
    cfg = LlamaConfig.like_gpt(GPT2_SIZES["124M"], num_key_value_heads=n)
    cache_mib[n] = kv_cache_bytes(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim, 1024) / 2**20
    with torch.device("meta"):
        model = Llama(cfg)
    kv_params[n] = sum(p.numel() for name, p in model.named_parameters()
                       if name.endswith(("k_proj.weight", "v_proj.weight")))""",
        # bytes, not MiB; keys only
        """cache_mib, kv_params = {}, {}
for n in (1, 2, 3, 4, 6, 12):
    cfg = LlamaConfig.like_gpt(GPT2_SIZES["124M"], num_key_value_heads=n)
    cache_mib[n] = kv_cache_bytes(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, 1024)
    with torch.device("meta"):
        model = Llama(cfg)
    kv_params[n] = sum(p.numel() for name, p in model.named_parameters()
                       if name.endswith("k_proj.weight"))""",
    ],
    "ex11_2_solution": [
        # the whole weight repeated: heads in the order 0, 1, 0, 1, 0, 1
        """mha = LlamaAttention(small.with_(num_key_value_heads=6))
with torch.no_grad():
    mha.q_proj.weight.copy_(gqa.q_proj.weight)
    mha.o_proj.weight.copy_(gqa.o_proj.weight)
    mha.k_proj.weight.copy_(gqa.k_proj.weight.repeat(3, 1))
    mha.v_proj.weight.copy_(gqa.v_proj.weight.repeat(3, 1))
    gqa_out, mha_out = gqa(x, cos, sin), mha(x, cos, sin)""",
        # rows repeated one by one instead of whole heads
        """mha = LlamaAttention(small.with_(num_key_value_heads=6))
with torch.no_grad():
    mha.q_proj.weight.copy_(gqa.q_proj.weight)
    mha.o_proj.weight.copy_(gqa.o_proj.weight)
    mha.k_proj.weight.copy_(gqa.k_proj.weight.repeat_interleave(3, dim=0))
    mha.v_proj.weight.copy_(gqa.v_proj.weight.repeat_interleave(3, dim=0))
    gqa_out, mha_out = gqa(x, cos, sin), mha(x, cos, sin)""",
        # the output projection forgotten
        """mha = LlamaAttention(small.with_(num_key_value_heads=6))
with torch.no_grad():
    mha.q_proj.weight.copy_(gqa.q_proj.weight)
    for name in ("k_proj", "v_proj"):
        heads = getattr(gqa, name).weight.view(2, small.head_dim, 48)
        getattr(mha, name).weight.copy_(heads.repeat_interleave(3, dim=0).reshape(6 * small.head_dim, 48))
    gqa_out, mha_out = gqa(x, cos, sin), mha(x, cos, sin)""",
    ],
    "ex11_3_solution": [
        # the key at the query's position: distance 0
        """def at(x, position):
    cos, sin = rope_angles(64, torch.tensor([position]))
    return apply_rope(x, cos, sin)


scores = {m: (at(q, m) * at(k, m)).sum().item() for m in (3, 10, 100, 1000)}
other = (at(q, 10) * at(k, 6)).sum().item()""",
        # only the query rotated
        """def at(x, position):
    cos, sin = rope_angles(64, torch.tensor([position]))
    return apply_rope(x, cos, sin)


scores = {m: (at(q, m) * k).sum().item() for m in (3, 10, 100, 1000)}
other = (at(q, 10) * k).sum().item()""",
        # the key 3 positions after the query
        """def at(x, position):
    cos, sin = rope_angles(64, torch.tensor([position]))
    return apply_rope(x, cos, sin)


scores = {m: (at(q, m) * at(k, m + 3)).sum().item() for m in (3, 10, 100, 1000)}
other = (at(q, 10) * at(k, 14)).sum().item()""",
    ],
}
