"""Plausible wrong answers to the exercises of 08_instruction_finetuning: each runs, and its check fails."""

# Exercise 8.2: the solution's experiment, with one piece changed in each wrong answer.
_RUNS = '''
response_loss, prompt_loss = {}, {}
for name, mask in (("masked", True), ("unmasked", False)):
    model = pretrained(PROFILE).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for batch in batches:
        x, y = collate(batch, mask_prompt=mask, device=device)
        optimizer.zero_grad()
        loss_batch(model, x, y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        response_loss[name] = loss_batch(model, x_held, response_targets).item()
        prompt_loss[name] = loss_batch(model, x_held, prompt_targets).item()
'''

WRONG = {
    "ex08_1_solution": [
        # the input's newline even when there is no input
        '''def format_phi3(entry):
    return f"<|user|>\\n{entry['instruction']}\\n{entry['input']}\\n<|assistant|>\\n{entry['output']}"''',
        # no newline after <|assistant|>
        '''def format_phi3(entry):
    user = entry["instruction"] + (f"\\n{entry['input']}" if entry["input"] else "")
    return f"<|user|>\\n{user}\\n<|assistant|>{entry['output']}"''',
        # the input forgotten
        '''def format_phi3(entry):
    return f"<|user|>\\n{entry['instruction']}\\n<|assistant|>\\n{entry['output']}"''',
    ],
    "ex08_2_solution": [
        # mask_prompt never passed: both runs train on the whole text
        _RUNS.replace("collate(batch, mask_prompt=mask, device=device)", "collate(batch, device=device)"),
        # the two runs swapped: the masking flag the wrong way round
        _RUNS.replace('(("masked", True), ("unmasked", False))', '(("masked", False), ("unmasked", True))'),
        # forgot the optimizer step: both models are still the pretrained one
        _RUNS.replace("        optimizer.step()\n", ""),
    ],
    "ex08_3_solution": [
        # the other reading: a share of the model with LoRA (its frozen weights plus the adapters)
        '''with torch.device("meta"):
    model = apply_lora(GPT(scratchgpt.GPT2_SIZES["124M"]), rank=8)
n_lora = count_trainable(model)
lora_share = n_lora / sum(p.numel() for p in model.parameters())''',
        # a percentage, not a fraction
        '''with torch.device("meta"):
    model = GPT(scratchgpt.GPT2_SIZES["124M"])
base_count = model.num_parameters()
apply_lora(model, rank=8)
n_lora = count_trainable(model)
lora_share = 100 * n_lora / base_count''',
        # every parameter counted, frozen ones too
        '''with torch.device("meta"):
    model = GPT(scratchgpt.GPT2_SIZES["124M"])
base_count = model.num_parameters()
apply_lora(model, rank=8)
n_lora = sum(p.numel() for p in model.parameters())
lora_share = n_lora / base_count''',
    ],
}
