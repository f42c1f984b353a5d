"""The configuration's formulas: FLOPs per token against the model's own parameters, counted by torch."""


def test_flops_per_token_counts_the_models_own_parameters():
    """6 FLOPs per multiply-add weight (the model's real parameters, counted by torch, less the
    embeddings, which are look-ups, plus the output head, whose matmul is real work even when tied)
    and the attention scores' 12·L·d·T."""
    from scratchgpt.config import GPT2_SIZES, flops_per_token
    from scratchgpt.model import GPT

    for cfg, T in [(GPT2_SIZES["124M"], 256), (GPT2_SIZES["124M"].with_(n_layer=2, n_embd=64, n_head=4), 32)]:
        model = GPT(cfg)
        params = sum(p.numel() for p in model.parameters())             # tied head counted once
        embeddings = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
        head = model.lm_head.weight.numel()
        attention = 12 * cfg.n_layer * cfg.n_embd * T
        assert flops_per_token(cfg, T) == 6 * (params - embeddings + head) + attention
