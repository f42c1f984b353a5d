"""Plausible wrong answers to notebook 03's exercises (see tests/exercise_harness.py)."""

WRONG = {
    "ex03_1_solution": [
        # weights only, the biases forgotten
        """block = Block(scratchgpt.GPT2_SIZES["124M"])
n_attn = sum(p.numel() for name, p in block.attn.named_parameters() if name.endswith("weight"))
n_ff = sum(p.numel() for name, p in block.mlp.named_parameters() if name.endswith("weight"))""",
        # the whole block counted as the feed-forward network
        """block = Block(scratchgpt.GPT2_SIZES["124M"])
n_attn = sum(p.numel() for p in block.attn.parameters())
n_ff = sum(p.numel() for p in block.parameters())""",
        # by hand, with q, k and v forgotten (one matrix, not three)
        """d = 768
n_attn = d * d + d + d * d + d
n_ff = d * 4 * d + 4 * d + 4 * d * d + d""",
    ],
    "ex03_2_solution": [
        # the last layer's gradient, not the first's
        """first_layer_grad = {}
for depth in (5, 10, 20):
    for use_shortcut in (False, True):
        torch.manual_seed(123)
        net = ExampleDeepNeuralNetwork([3] * depth + [1], use_shortcut)
        first_layer_grad[(depth, use_shortcut)] = gradient_sizes(net, sample_input)[-1]""",
        # use_shortcut never passed on: every network is built without shortcuts
        """first_layer_grad = {}
for depth in (5, 10, 20):
    for use_shortcut in (False, True):
        torch.manual_seed(123)
        net = ExampleDeepNeuralNetwork([3] * depth + [1], False)
        first_layer_grad[(depth, use_shortcut)] = gradient_sizes(net, sample_input)[0]""",
        # the key's two parts the other way round
        """first_layer_grad = {}
for depth in (5, 10, 20):
    for use_shortcut in (False, True):
        torch.manual_seed(123)
        net = ExampleDeepNeuralNetwork([3] * depth + [1], use_shortcut)
        first_layer_grad[(use_shortcut, depth)] = gradient_sizes(net, sample_input)[0]""",
    ],
    "ex03_3_solution": [
        # only the nn.Dropout modules: the fast attention's own rate (attn.dropout) is left at 0
        """def set_dropout(model, emb, shortcut, attn):
    model.transformer.drop.p = emb
    for block in model.transformer.h:
        block.attn.resid_dropout.p = shortcut
        block.mlp.dropout.p = shortcut
        block.attn.attn_dropout.p = attn
    return model""",
        # the feed-forward branch's dropout taken for an attention one
        """def set_dropout(model, emb, shortcut, attn):
    model.transformer.drop.p = emb
    for block in model.transformer.h:
        block.attn.resid_dropout.p = shortcut
        block.mlp.dropout.p = attn
        block.attn.attn_dropout.p = attn
        block.attn.dropout = attn
    return model""",
        # the first block only
        """def set_dropout(model, emb, shortcut, attn):
    model.transformer.drop.p = emb
    block = model.transformer.h[0]
    block.attn.resid_dropout.p = shortcut
    block.mlp.dropout.p = shortcut
    block.attn.attn_dropout.p = attn
    block.attn.dropout = attn
    return model""",
    ],
}
