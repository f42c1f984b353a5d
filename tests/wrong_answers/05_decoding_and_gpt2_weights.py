"""Plausible wrong answers to notebook 05's exercises (see tests/exercise_harness.py)."""

WRONG = {
    "ex05_1_solution": [
        # the temperature multiplies the logits instead of dividing them
        """torch.manual_seed(123)
pizza_counts = {}
for temperature in (1, 0.1, 5):
    probs = torch.softmax(logits * temperature, dim=0)
    draws = torch.multinomial(probs, 1000, replacement=True)
    pizza_counts[temperature] = int((draws == vocab.index("pizza")).sum())""",
        # the temperature forgotten: the same distribution three times
        """torch.manual_seed(123)
pizza_counts = {}
for temperature in (1, 0.1, 5):
    probs = torch.softmax(logits, dim=0)
    draws = torch.multinomial(probs, 1000, replacement=True)
    pizza_counts[temperature] = int((draws == vocab.index("pizza")).sum())""",
        # the word after the one before it counted: the index of "toward", not "pizza"
        """torch.manual_seed(123)
pizza_counts = {}
for temperature in (1, 0.1, 5):
    probs = torch.softmax(logits / temperature, dim=0)
    draws = torch.multinomial(probs, 1000, replacement=True)
    pizza_counts[temperature] = int((draws == 7).sum())""",
        # nothing counted yet
        """pizza_counts = {}""",
    ],
    "ex05_2_solution": [
        # sampling at temperature 1.5 without the top-k limit
        """greedy_a = generate(model, prompt, 10, temperature=0)
greedy_b = generate(model, prompt, 10, temperature=0)
top1 = generate(model, prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(0))""",
        # the second "greedy" run samples at temperature 1
        """greedy_a = generate(model, prompt, 10, temperature=0)
greedy_b = generate(model, prompt, 10, temperature=1.0, generator=torch.Generator().manual_seed(0))
top1 = generate(model, prompt, 10, temperature=1.5, top_k=1)""",
        # 9 new tokens instead of 10
        """greedy_a = generate(model, prompt, 9, temperature=0)
greedy_b = generate(model, prompt, 9, temperature=0)
top1 = generate(model, prompt, 9, temperature=1.5, top_k=1)""",
    ],
    "ex05_3_solution": [
        # the two loaders swapped
        """train_loss = loss_loader(model, val_loader)
val_loss = loss_loader(model, train_loader)""",
        # the loss of one batch (a tensor), taken for the loss of the loader
        """from scratchgpt.training import loss_batch

x, y = next(iter(train_loader))
train_loss = loss_batch(model, x, y)
x, y = next(iter(val_loader))
val_loss = loss_batch(model, x, y)""",
        # only the first batch of each loader
        """train_loss = loss_loader(model, train_loader, num_batches=1)
val_loss = loss_loader(model, val_loader, num_batches=1)""",
    ],
}
