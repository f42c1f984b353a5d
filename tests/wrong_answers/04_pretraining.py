"""Plausible wrong answers to notebook 04's exercises (see tests/exercise_harness.py)."""

WRONG = {
    "ex04_1_solution": [
        # the same model twice, and a checkpoint saved before any training
        """straight, opt = fresh()
save_checkpoint(path, straight, opt, step=0)
resumed = straight""",
        # the model's weights loaded, the optimizer started afresh
        """straight, opt = fresh()
for i in range(3):
    step(straight, opt, i)
save_checkpoint(path, straight, opt, step=3)
for i in range(3, 6):
    step(straight, opt, i)

resumed, opt2 = fresh()
load_checkpoint(path, resumed)
for i in range(3, 6):
    step(resumed, opt2, i)""",
        # the checkpoint saved at the end, after all 6 steps
        """straight, opt = fresh()
for i in range(6):
    step(straight, opt, i)
save_checkpoint(path, straight, opt, step=6)

resumed, opt2 = fresh()
load_checkpoint(path, resumed, opt2)""",
    ],
    "ex04_2_solution": [
        # the rate never set: every run trains at the peak from the first step
        """moved = {}
for warmup in (0, 4, 16):
    model = new_model()
    start = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(model, lr=1e-2)
    for s in range(8):
        train_step(model, opt, s)
    moved[warmup] = torch.sqrt(sum((p.detach() - q).pow(2).sum()
                                   for p, q in zip(model.parameters(), start))).item()""",
        # the start kept without a copy: it is the trained weights themselves
        """moved = {}
for warmup in (0, 4, 16):
    model = new_model()
    start = [p.detach() for p in model.parameters()]
    opt = make_optimizer(model, lr=1e-2)
    for s in range(8):
        set_lr(opt, lr_at(s, 1e-2, 32, warmup, 1e-2))
        train_step(model, opt, s)
    moved[warmup] = torch.sqrt(sum((p.detach() - q).pow(2).sum()
                                   for p, q in zip(model.parameters(), start))).item()""",
        # a tensor stored instead of a float
        """moved = {}
for warmup in (0, 4, 16):
    model = new_model()
    start = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(model, lr=1e-2)
    for s in range(8):
        set_lr(opt, lr_at(s, 1e-2, 32, warmup, 1e-2))
        train_step(model, opt, s)
    moved[warmup] = torch.sqrt(sum((p.detach() - q).pow(2).sum()
                                   for p, q in zip(model.parameters(), start)))""",
    ],
    "ex04_3_solution": [
        # "the others" measured over all parameters
        """norms = {}
for wd in (0.0, 0.1, 1.0):
    model = new_model()
    opt = make_optimizer(model, lr=1e-2, weight_decay=wd)
    for s in range(16):
        train_step(model, opt, s)
    norms[wd] = (norm(p for p in model.parameters() if p.dim() >= 2), norm(model.parameters()))""",
        # plain AdamW over all parameters: the biases and norms are decayed too
        """norms = {}
for wd in (0.0, 0.1, 1.0):
    model = new_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=wd)
    for s in range(16):
        train_step(model, opt, s)
    norms[wd] = (norm(p for p in model.parameters() if p.dim() >= 2),
                 norm(p for p in model.parameters() if p.dim() < 2))""",
        # one model trained on through all three settings
        """norms = {}
model = new_model()
for wd in (0.0, 0.1, 1.0):
    opt = make_optimizer(model, lr=1e-2, weight_decay=wd)
    for s in range(16):
        train_step(model, opt, s)
    norms[wd] = (norm(p for p in model.parameters() if p.dim() >= 2),
                 norm(p for p in model.parameters() if p.dim() < 2))""",
    ],
}
