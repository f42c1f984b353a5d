"""Plausible wrong answers to notebook 12's exercises (tests/exercise_harness.py tries each)."""

WRONG = {
    "ex12_1_solution": [
        # the two reference log-probabilities swapped
        """loss_at = {}
for beta in (0.05, 0.1, 0.5, 1.0):
    loss, _, _ = dpo_loss(policy_chosen, policy_rejected, reference_rejected, reference_chosen, beta)
    loss_at[beta] = loss.item()""",
        # the chosen reward stored instead of the loss
        """loss_at = {}
for beta in (0.05, 0.1, 0.5, 1.0):
    _, reward_chosen, _ = dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)
    loss_at[beta] = reward_chosen.item()""",
        # by hand, the margin taken the other way round
        """loss_at = {beta: math.log1p(math.exp(beta * 4)) for beta in (0.05, 0.1, 0.5, 1.0)}""",
    ],
    "ex12_2_solution": [
        # the gradient itself, not minus it
        """loss, _, _ = dpo_loss(policy_chosen, zeros, zeros, zeros, beta=0.1)
loss.backward()
weights = policy_chosen.grad * len(margins)""",
        # the batch size forgotten
        """loss, _, _ = dpo_loss(policy_chosen, zeros, zeros, zeros, beta=0.1)
loss.backward()
weights = -policy_chosen.grad""",
        # the margins put in the rejected response's place
        """loss, _, _ = dpo_loss(zeros, policy_chosen, zeros, zeros, beta=0.1)
loss.backward()
weights = -policy_chosen.grad * len(margins)""",
    ],
    "ex12_3_solution": [
        # the reward margin (with beta), not the log-ratio margin
        """margin = {}
for beta in (0.1, 0.5):
    policy = copy.deepcopy(reference).train()
    policy.requires_grad_(True)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-5)
    loss, _ = batch_loss(policy, reference, batch, beta)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        chosen, rejected = (response_logprobs(policy, *batch[k]) for k in ("chosen", "rejected"))
    margin[beta] = (beta * ((chosen - ref_chosen) - (rejected - ref_rejected))).mean().item()
margin_small, margin_large = margin[0.1], margin[0.5]""",
        # one copy for both: the second beta continues from the first one's step
        """margin = {}
policy = copy.deepcopy(reference).train()
policy.requires_grad_(True)
optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-5)
for beta in (0.1, 0.5):
    optimizer.zero_grad()
    loss, _ = batch_loss(policy, reference, batch, beta)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        chosen, rejected = (response_logprobs(policy, *batch[k]) for k in ("chosen", "rejected"))
    margin[beta] = ((chosen - ref_chosen) - (rejected - ref_rejected)).mean().item()
margin_small, margin_large = margin[0.1], margin[0.5]""",
        # plain SGD instead of AdamW
        """margin = {}
for beta in (0.1, 0.5):
    policy = copy.deepcopy(reference).train()
    policy.requires_grad_(True)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    loss, _ = batch_loss(policy, reference, batch, beta)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        chosen, rejected = (response_logprobs(policy, *batch[k]) for k in ("chosen", "rejected"))
    margin[beta] = ((chosen - ref_chosen) - (rejected - ref_rejected)).mean().item()
margin_small, margin_large = margin[0.1], margin[0.5]""",
    ],
}
