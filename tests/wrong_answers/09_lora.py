"""Plausible wrong answers to the exercises of 09_lora: each runs, and its check fails."""

# Exercise 9.4: the solution's experiment, with one piece changed in each wrong answer.
_ALPHA = '''
loss_by_alpha = {}
for alpha in (1, 8, 64):
    model = apply_lora(copy.deepcopy(base), rank=4, alpha=alpha)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(10):
        optimizer.zero_grad()
        loss_batch(model, ids[:, :-1], ids[:, 1:]).backward()
        optimizer.step()
    with torch.no_grad():
        loss_by_alpha[alpha] = loss_batch(model, ids[:, :-1], ids[:, 1:]).item()
'''

WRONG = {
    "ex09_1_solution": [
        # the new head not kept trainable: it gets an adapter like every other Linear
        '''by_rank = {}
for rank in (2, 8, 32):
    with torch.device("meta"):
        model = apply_lora(to_classifier(GPT(scratchgpt.GPT2_SIZES["124M"])), rank)
    by_rank[rank] = count_trainable(model)''',
        # every parameter counted, the frozen ones too
        '''by_rank = {}
for rank in (2, 8, 32):
    with torch.device("meta"):
        model = to_classifier(GPT(scratchgpt.GPT2_SIZES["124M"]))
        apply_lora(model, rank, keep_trainable=("lm_head",))
    by_rank[rank] = sum(p.numel() for p in model.parameters())''',
        # the language model, not the classifier: the 50,257-word head gets an adapter
        '''by_rank = {}
for rank in (2, 8, 32):
    with torch.device("meta"):
        model = apply_lora(GPT(scratchgpt.GPT2_SIZES["124M"]), rank, keep_trainable=("lm_head",))
    by_rank[rank] = count_trainable(model)''',
    ],
    "ex09_2_solution": [
        # the LoRA model's logits copied from the base model's instead of computed
        '''adapted = apply_lora(copy.deepcopy(base), rank=4).eval()
with torch.no_grad():
    base_logits = base(ids)
lora_logits = base_logits''',
        # LoRA applied to base itself: no copy, so "both" models are the same one
        '''with torch.no_grad():
    base_logits = base(ids)
adapted = apply_lora(base, rank=4).eval()
with torch.no_grad():
    lora_logits = adapted(ids)''',
        # placeholders instead of logits
        '''adapted = apply_lora(copy.deepcopy(base), rank=4).eval()
base_logits, lora_logits = torch.zeros(1), torch.zeros(1)''',
    ],
    "ex09_3_solution": [
        # merged before training: nothing was learnt
        '''adapted.eval()
with torch.no_grad():
    lora_logits = adapted(ids)
    merged = merge_lora(adapted)
    merged_logits = merged(ids)
delta = merged.transformer.h[0].attn.c_attn.weight - base.transformer.h[0].attn.c_attn.weight''',
        # the merged weight itself, not its change
        '''optimizer = torch.optim.AdamW([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
for _ in range(5):
    optimizer.zero_grad()
    loss_batch(adapted, ids[:, :-1], ids[:, 1:]).backward()
    optimizer.step()
with torch.no_grad():
    lora_logits = adapted(ids)
    merged = merge_lora(adapted)
    merged_logits = merged(ids)
delta = merged.transformer.h[0].attn.c_attn.weight''',
        # the update as A B, without the transpose: (in, out) instead of the weight's (out, in)
        '''optimizer = torch.optim.AdamW([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
for _ in range(5):
    optimizer.zero_grad()
    loss_batch(adapted, ids[:, :-1], ids[:, 1:]).backward()
    optimizer.step()
adapter = adapted.transformer.h[0].attn.c_attn.lora
delta = (adapter.scaling * adapter.A @ adapter.B).detach()
with torch.no_grad():
    lora_logits = adapted(ids)
    merged = merge_lora(adapted)
    merged_logits = merged(ids)''',
    ],
    "ex09_4_solution": [
        # alpha never passed: every run uses the default
        _ALPHA.replace("apply_lora(copy.deepcopy(base), rank=4, alpha=alpha)",
                       "apply_lora(copy.deepcopy(base), rank=4)"),
        # rank and alpha swapped
        _ALPHA.replace("apply_lora(copy.deepcopy(base), rank=4, alpha=alpha)",
                       "apply_lora(copy.deepcopy(base), rank=alpha, alpha=4)"),
        # the loss measured before training
        _ALPHA.replace("        optimizer.step()\n", "        break\n"),
    ],
}
