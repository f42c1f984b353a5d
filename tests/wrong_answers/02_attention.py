"""Plausible wrong answers to the exercises of 02_attention: each must run, and its check must fail."""

# Exercise 2.1: the two modules of the solution, with one piece changed in each wrong answer.
_PARAMS = '''
class SelfAttentionParams(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query, self.W_key, self.W_value = (nn.Parameter(torch.rand(d_in, d_out)) for _ in range(3))

    def forward(self, x):
        q, k, v = x @ self.W_query, x @ self.W_key, x @ self.W_value
        weights = torch.softmax(q @ k.T / k.shape[-1] ** 0.5, dim=-1)
        return weights @ v
'''
_LINEAR = '''
class SelfAttentionLinear(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query, self.W_key, self.W_value = (nn.Linear(d_in, d_out, bias=False) for _ in range(3))

    def forward(self, x):
        q, k, v = self.W_query(x), self.W_key(x), self.W_value(x)
        weights = torch.softmax(q @ k.T / k.shape[-1] ** 0.5, dim=-1)
        return weights @ v
'''
_COPY = '''
def copy_weights(src, dst):
    with torch.no_grad():
        for name in ("W_query", "W_key", "W_value"):
            getattr(dst, name).copy_(getattr(src, name).weight.T)
'''

WRONG = {
    "ex02_1_solution": [
        # copied nn.Linear's weight without transposing it
        _PARAMS + _LINEAR + _COPY.replace(".weight.T)", ".weight)"),
        # forgot the scaling in one of the two modules
        _PARAMS.replace(" / k.shape[-1] ** 0.5", "") + _LINEAR + _COPY,
        # softmax over the queries (dim=0) instead of the keys, in both modules
        _PARAMS.replace("dim=-1", "dim=0") + _LINEAR.replace("dim=-1", "dim=0") + _COPY,
        # copied only the query and key weights
        _PARAMS + _LINEAR + _COPY.replace('("W_query", "W_key", "W_value")', '("W_query", "W_key")'),
    ],
    "ex02_2_solution": [
        # the second head twice
        """
def two_heads(x, heads):
    return torch.cat([heads[1](x), heads[1](x)], dim=-1)
""",
        # concatenated on the batch dimension
        """
def two_heads(x, heads):
    return torch.cat([head(x) for head in heads], dim=0)
""",
        # stacked: a new last dimension instead of joining on the last one
        """
def two_heads(x, heads):
    return torch.stack([head(x) for head in heads], dim=-1)
""",
        # the heads in the other order
        """
def two_heads(x, heads):
    return torch.cat([head(x) for head in reversed(heads)], dim=-1)
""",
        # added the heads instead of putting them side by side
        """
def two_heads(x, heads):
    return sum(head(x) for head in heads)
""",
    ],
    "ex02_3_solution": [
        # counted the causal mask (a buffer) as well
        """
mha = MultiHeadAttention(scratchgpt.GPT2_SIZES["124M"])
n_attention_params = sum(p.numel() for p in mha.parameters()) + sum(b.numel() for b in mha.buffers())
""",
        # the weights only, not the biases
        """
mha = MultiHeadAttention(scratchgpt.GPT2_SIZES["124M"])
n_attention_params = sum(p.numel() for name, p in mha.named_parameters() if name.endswith("weight"))
""",
        # one head's share
        """
mha = MultiHeadAttention(scratchgpt.GPT2_SIZES["124M"])
n_attention_params = sum(p.numel() for p in mha.parameters()) // 12
""",
        # built the configuration by hand and left out the biases
        """
from scratchgpt import GPTConfig

mha = MultiHeadAttention(GPTConfig(context_length=1024, n_embd=768, n_head=12, bias=False))
n_attention_params = sum(p.numel() for p in mha.parameters())
""",
    ],
    "ex02_4_solution": [
        # divided by d_k instead of its square root
        """
peak_unscaled, peak_scaled = {}, {}
for d_k in (4, 256):
    scores = queries[d_k] @ keys[d_k].T
    peak_unscaled[d_k] = torch.softmax(scores, dim=-1).max(dim=-1).values.mean().item()
    peak_scaled[d_k] = torch.softmax(scores / d_k, dim=-1).max(dim=-1).values.mean().item()
""",
        # softmax over the queries (dim=0)
        """
peak_unscaled, peak_scaled = {}, {}
for d_k in (4, 256):
    scores = queries[d_k] @ keys[d_k].T
    peak_unscaled[d_k] = torch.softmax(scores, dim=0).max(dim=-1).values.mean().item()
    peak_scaled[d_k] = torch.softmax(scores / d_k**0.5, dim=0).max(dim=-1).values.mean().item()
""",
        # the single largest weight of all queries, not the mean of each query's largest
        """
peak_unscaled, peak_scaled = {}, {}
for d_k in (4, 256):
    scores = queries[d_k] @ keys[d_k].T
    peak_unscaled[d_k] = torch.softmax(scores, dim=-1).max().item()
    peak_scaled[d_k] = torch.softmax(scores / d_k**0.5, dim=-1).max().item()
""",
        # the mean weight instead of the largest (always 1/16)
        """
peak_unscaled, peak_scaled = {}, {}
for d_k in (4, 256):
    scores = queries[d_k] @ keys[d_k].T
    peak_unscaled[d_k] = torch.softmax(scores, dim=-1).mean().item()
    peak_scaled[d_k] = torch.softmax(scores / d_k**0.5, dim=-1).mean().item()
""",
    ],
}
