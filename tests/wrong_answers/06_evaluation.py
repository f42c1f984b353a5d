"""Plausible wrong answers to notebook 06's exercises; `tests/exercise_harness.py` checks that each fails."""

WRONG = {
    "ex06_1_solution": [
        # forgot to exponentiate: the mean losses, not the perplexities
        """
ppl = {}
for name, text in texts.items():
    loader = create_dataloader(text, batch_size=4, max_length=128, stride=128, shuffle=False, drop_last=False)
    ppl[name] = loss_loader(model, loader)
""",
        # copy-paste: the held-out perplexity measured on the page the model was trained on
        """
ppl = {}
for name, text in texts.items():
    source = texts["seen"] if name == "held out" else text
    loader = create_dataloader(source, batch_size=4, max_length=128, stride=128, shuffle=False,
                               drop_last=False)
    ppl[name] = perplexity(loss_loader(model, loader))
""",
        # an untrained model of the same shape instead of the pretrained one
        """
import torch

from scratchgpt.model import GPT

torch.manual_seed(0)
fresh = GPT(model.config).eval()
ppl = {}
for name, text in texts.items():
    loader = create_dataloader(text, batch_size=4, max_length=128, stride=128, shuffle=False, drop_last=False)
    ppl[name] = perplexity(loss_loader(fresh, loader))
""",
    ],
    "ex06_2_solution": [
        # the pair in the wrong order: (per token, summed)
        """
picks = []
for item in items:
    summed, per_token = score_item(model, item)
    picks.append((per_token.index(max(per_token)), summed.index(max(summed))))
""",
        # the least likely ending instead of the most likely (min for max)
        """
picks = []
for item in items:
    summed, per_token = score_item(model, item)
    picks.append((summed.index(min(summed)), per_token.index(min(per_token))))
""",
        # normalised by the number of characters instead of tokens
        """
picks = []
for item in items:
    summed, _ = score_item(model, item)
    per_char = [s / len(choice) for s, choice in zip(summed, item.choices)]
    picks.append((summed.index(max(summed)), per_char.index(max(per_char))))
""",
    ],
    "ex06_3_solution": [
        # compares each run's count of right answers, not its accuracy, with the interval
        """
coverage = {}
for n in (60, 600):
    right = (torch.rand(10_000, n, generator=gen) < 0.25).sum(dim=1).float()
    low, high = accuracy_interval(n // 4, n)
    coverage[n] = ((right >= low) & (right <= high)).float().mean().item()
coverage_60, coverage_600 = coverage[60], coverage[600]
(low_60, high_60), (low_600, high_600) = accuracy_interval(15, 60), accuracy_interval(150, 600)
width_ratio = (high_60 - low_60) / (high_600 - low_600)
""",
        # one standard error (z = 1) instead of the 95% interval
        """
coverage = {}
for n in (60, 600):
    accuracy = (torch.rand(10_000, n, generator=gen) < 0.25).float().mean(dim=1)
    low, high = accuracy_interval(n // 4, n, z=1.0)
    coverage[n] = ((accuracy >= low) & (accuracy <= high)).float().mean().item()
coverage_60, coverage_600 = coverage[60], coverage[600]
(low_60, high_60), (low_600, high_600) = accuracy_interval(15, 60), accuracy_interval(150, 600)
width_ratio = (high_60 - low_60) / (high_600 - low_600)
""",
        # the ratio upside down: the 600-item width over the 60-item width
        """
coverage = {}
for n in (60, 600):
    accuracy = (torch.rand(10_000, n, generator=gen) < 0.25).float().mean(dim=1)
    low, high = accuracy_interval(n // 4, n)
    coverage[n] = ((accuracy >= low) & (accuracy <= high)).float().mean().item()
coverage_60, coverage_600 = coverage[60], coverage[600]
(low_60, high_60), (low_600, high_600) = accuracy_interval(15, 60), accuracy_interval(150, 600)
width_ratio = (high_600 - low_600) / (high_60 - low_60)
""",
    ],
}
