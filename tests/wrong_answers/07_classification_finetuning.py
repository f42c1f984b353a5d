"""Plausible wrong answers to notebook 07's exercises; `tests/exercise_harness.py` checks that each fails."""

WRONG = {
    "ex07_1_solution": [
        # the book's read-out: the scores at the last position of the batch, a padding token for most messages
        """
padded = {}
for name, max_length in [("longest", None), ("full", classifier.config.context_length)]:
    ds = SpamDataset(messages, max_length=max_length)
    with torch.no_grad():
        scores = classifier(ds.ids.to(device))[:, -1]
    padded[name] = (torch.softmax(scores, dim=-1)[:, 1], (ds.ids == EOT_ID).float().mean().item())
(p_longest, pad_share_longest), (p_full, pad_share_full) = padded["longest"], padded["full"]
""",
        # one batch computed, the other name aliased to it
        """
ds = SpamDataset(messages)
with torch.no_grad():
    scores = class_logits(classifier, ds.ids.to(device), ds.lengths)
p_longest = torch.softmax(scores, dim=-1)[:, 1]
p_full = p_longest
full = SpamDataset(messages, max_length=classifier.config.context_length)
pad_share_longest = (ds.ids == EOT_ID).float().mean().item()
pad_share_full = (full.ids == EOT_ID).float().mean().item()
""",
        # the softmax over the batch (dim 0) instead of over the two classes
        """
padded = {}
for name, max_length in [("longest", None), ("full", classifier.config.context_length)]:
    ds = SpamDataset(messages, max_length=max_length)
    with torch.no_grad():
        scores = class_logits(classifier, ds.ids.to(device), ds.lengths)
    padded[name] = (torch.softmax(scores, dim=0)[:, 1], (ds.ids == EOT_ID).float().mean().item())
(p_longest, pad_share_longest), (p_full, pad_share_full) = padded["longest"], padded["full"]
""",
        # max_length forgotten: both batches padded to the longest message
        """
padded = {}
for name in ("longest", "full"):
    ds = SpamDataset(messages)
    with torch.no_grad():
        scores = class_logits(classifier, ds.ids.to(device), ds.lengths)
    padded[name] = (torch.softmax(scores, dim=-1)[:, 1], (ds.ids == EOT_ID).float().mean().item())
(p_longest, pad_share_longest), (p_full, pad_share_full) = padded["longest"], padded["full"]
""",
    ],
    "ex07_2_solution": [
        # the classifiers built and counted, but evaluated before any training
        """
accuracy, trainable = {}, {}
for what in ("head", "last_block", "all"):
    torch.manual_seed(0)
    classifier = to_classifier(pretrained(), trainable=what)
    trainable[what] = sum(p.numel() for p in classifier.parameters() if p.requires_grad)
    if what != "all":
        accuracy[what] = val_accuracy(classifier)
""",
        # figures copied from the notebook's full fine-tuning, and every parameter counted
        """
accuracy = {"head": 0.5, "last_block": 0.97}
trainable = {}
for what in ("head", "last_block", "all"):
    classifier = to_classifier(pretrained(), trainable=what)
    trainable[what] = sum(p.numel() for p in classifier.parameters())
""",
        # a single optimizer step for each (the first batch only)
        """
accuracy, trainable = {}, {}
for what in ("head", "last_block", "all"):
    torch.manual_seed(0)
    classifier = to_classifier(pretrained(), trainable=what)
    params = [p for p in classifier.parameters() if p.requires_grad]
    trainable[what] = sum(p.numel() for p in params)
    if what == "all":
        continue
    optimizer = torch.optim.AdamW(params, lr=5e-4)
    ids, lengths, labels = batches[0]
    optimizer.zero_grad()
    F.cross_entropy(class_logits(classifier, ids, lengths), labels).backward()
    optimizer.step()
    accuracy[what] = val_accuracy(classifier)
""",
    ],
    "ex07_3_solution": [
        # evaluated without training: both heads are still random
        """
def accuracy_at(position):
    torch.manual_seed(0)
    classifier = to_classifier(pretrained(), trainable="last_block").eval()
    with torch.no_grad():
        scores = classifier(val_ids)[torch.arange(len(val_ids)), position(val_lengths)]
    return (scores.argmax(-1) == val_labels).float().mean().item()


acc_first = accuracy_at(lambda lengths: torch.zeros_like(lengths))
acc_last = accuracy_at(lambda lengths: lengths - 1)
""",
        # one accuracy measured and given to both names
        """
torch.manual_seed(0)
classifier = to_classifier(pretrained(), trainable="last_block").eval()
with torch.no_grad():
    scores = classifier(val_ids)[torch.arange(len(val_ids)), val_lengths - 1]
acc_first = acc_last = (scores.argmax(-1) == val_labels).float().mean().item()
""",
        # a single optimizer step for each (the first batch only)
        """
def fine_tune(position):
    torch.manual_seed(0)
    classifier = to_classifier(pretrained(), trainable="last_block")
    optimizer = torch.optim.AdamW([p for p in classifier.parameters() if p.requires_grad], lr=5e-4)
    ids, lengths, labels = batches[0]
    optimizer.zero_grad()
    F.cross_entropy(classifier(ids)[torch.arange(len(ids)), position(lengths)], labels).backward()
    optimizer.step()
    classifier.eval()
    with torch.no_grad():
        scores = classifier(val_ids)[torch.arange(len(val_ids)), position(val_lengths)]
    return (scores.argmax(-1) == val_labels).float().mean().item()


acc_first = fine_tune(lambda lengths: torch.zeros_like(lengths))
acc_last = fine_tune(lambda lengths: lengths - 1)
""",
    ],
}
