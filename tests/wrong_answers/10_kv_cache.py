"""Plausible wrong answers to notebook 10's exercises (tests/exercise_harness.py tries each)."""

WRONG = {
    "ex10_1_solution": [
        # keys only: the formula and the measurement both forget the values
        """predicted = cfg.n_layer * cfg.n_head * (cfg.n_embd // cfg.n_head) * ids.size(1) * 4
cache = model.new_cache()
with torch.no_grad():
    model(ids, cache)
measured = sum(layer.k.nbytes for layer in cache.layers)""",
        # numbers instead of bytes
        """predicted = cfg.n_layer * 2 * cfg.n_head * (cfg.n_embd // cfg.n_head) * ids.size(1)
cache = model.new_cache()
with torch.no_grad():
    model(ids, cache)
measured = sum(layer.k.numel() + layer.v.numel() for layer in cache.layers)""",
        # the head size taken as the whole width
        """predicted = cfg.n_layer * 2 * cfg.n_head * cfg.n_embd * ids.size(1) * 4
cache = model.new_cache()
with torch.no_grad():
    model(ids, cache)
measured = sum(layer.k.nbytes + layer.v.nbytes for layer in cache.layers)""",
        # the cache filled with all but the last token (as when generating), predicted for all 100
        """predicted = cfg.n_layer * 2 * cfg.n_head * (cfg.n_embd // cfg.n_head) * ids.size(1) * 4
cache = model.new_cache()
with torch.no_grad():
    model(ids[:, :-1], cache)
measured = sum(layer.k.nbytes + layer.v.nbytes for layer in cache.layers)""",
    ],
    "ex10_2_solution": [
        # the cached count includes filling the cache
        """with torch.no_grad():
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(ids, last_only=True)
    flops_without = counter.get_total_flops()
    with flop_counter.FlopCounterMode(display=False) as counter:
        cache = model.new_cache()
        model(ids[:, :-1], cache)
        model(ids[:, -1:], cache, last_only=True)
    flops_with = counter.get_total_flops()
saving = flops_without / flops_with""",
        # the output head over every position without the cache
        """with torch.no_grad():
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(ids)
    flops_without = counter.get_total_flops()
    cache = model.new_cache()
    model(ids[:, :-1], cache)
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(ids[:, -1:], cache, last_only=True)
    flops_with = counter.get_total_flops()
saving = flops_without / flops_with""",
        # off by one: the uncached step runs the 1,023 tokens before the new one
        """with torch.no_grad():
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(ids[:, :-1], last_only=True)
    flops_without = counter.get_total_flops()
    cache = model.new_cache()
    model(ids[:, :-1], cache)
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(ids[:, -1:], cache, last_only=True)
    flops_with = counter.get_total_flops()
saving = flops_without / flops_with""",
    ],
    "ex10_3_solution": [
        # one generator for both runs: the second run continues its random numbers
        """generator = torch.Generator(device=device).manual_seed(123)
cached = generate(model, prompt, 30, temperature=1.0, top_k=50, use_cache=True, generator=generator)
uncached = generate(model, prompt, 30, temperature=1.0, top_k=50, use_cache=False, generator=generator)""",
        # greedy: identical, but nothing was sampled
        """cached = generate(model, prompt, 30, use_cache=True)
uncached = generate(model, prompt, 30, use_cache=False)""",
        # the new tokens only
        """generated = []
for use_cache in (True, False):
    out = generate(model, prompt, 30, temperature=1.0, top_k=50, use_cache=use_cache,
                   generator=torch.Generator(device=device).manual_seed(123))
    generated.append(out[:, prompt.size(1):])
cached, uncached = generated""",
    ],
}
