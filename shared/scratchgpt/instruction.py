"""Instruction fine-tuning: data format, batching, response extraction, and evaluation metrics.

Built in notebook 08 (`stage3_finetuning/08_instruction_finetuning.ipynb`). Each example is an
instruction, an optional input and the desired output, written out in the Alpaca prompt format; the
model is trained to continue the prompt with the output, by ordinary next-token prediction.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter

import torch
from torch.utils.data import Dataset

from .data import fetch
from .tokenizer import EOT_ID, encode_text, gpt2_tokenizer

IGNORE_INDEX = -100   # cross_entropy skips targets with this value
PREAMBLE = ("Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.")
RESPONSE_HEADER = "\n\n### Response:\n"


def load_instructions() -> list[dict]:
    """The 1,100 examples of instruction-data.json (keys: instruction, input, output)."""
    return json.loads(fetch("instruction-data.json").read_text(encoding="utf-8"))


def check_entry(entry, index: int | None = None) -> None:
    """A clear error for an entry that is not a dict with text under `instruction` and `output`
    (`input` may be missing or empty)."""
    where = f"instruction entry {index}" if index is not None else "the instruction entry"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is a {type(entry).__name__}, "
                         "not a dict with 'instruction', 'input' and 'output'")
    for key in ("instruction", "output"):
        if key not in entry:
            raise ValueError(f"{where} has no {key!r} key (it has {sorted(entry)})")
    for key in ("instruction", "input", "output"):
        if key in entry and not isinstance(entry[key], str):
            raise ValueError(f"{where}: {key!r} must be text, got {type(entry[key]).__name__}")


def format_input(entry: dict) -> str:
    """The Alpaca-style prompt: preamble, instruction, and the input section only when there is one."""
    if "instruction" not in entry:
        check_entry(entry)
    text = f"{PREAMBLE}\n\n### Instruction:\n{entry['instruction']}"
    if entry.get("input"):
        text += f"\n\n### Input:\n{entry['input']}"
    return text


def format_example(entry: dict) -> str:
    """Prompt plus response: the full text the model is fine-tuned on."""
    check_entry(entry)
    return format_input(entry) + RESPONSE_HEADER + entry["output"]


def split_instructions(data: list, fractions=(0.85, 0.10, 0.05), seed: int = 123):
    """Shuffle with a fixed seed and cut into training, test and validation parts (85/10/5)."""
    data = data[:]
    random.Random(seed).shuffle(data)
    n_train, n_test = int(fractions[0] * len(data)), int(fractions[1] * len(data))
    return data[:n_train], data[n_train : n_train + n_test], data[n_train + n_test :]


class InstructionDataset(Dataset):
    """Token ids of each formatted example, with the length of its prompt (for prompt masking)."""

    def __init__(self, entries: list[dict], tokenizer=None):
        tokenizer = tokenizer or gpt2_tokenizer()
        for i, e in enumerate(entries):
            check_entry(e, i)
        self.examples = [(encode_text(format_example(e), tokenizer),
                          len(encode_text(format_input(e) + RESPONSE_HEADER, tokenizer)))
                         for e in entries]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        return self.examples[i]


def collate(batch, pad_id: int = EOT_ID, ignore_index: int = IGNORE_INDEX,
            allowed_max_length: int | None = None, mask_prompt: bool = False,
            device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch to its own longest example and build shifted targets.

    Each example gets one `<|endoftext|>` appended, so the model learns to stop; the inputs are the
    tokens without the last, the targets the tokens without the first. In the targets, the first
    `<|endoftext|>` stays (it is the signal to stop) and the rest of the padding becomes
    `ignore_index`, so padding adds nothing to the loss. With `mask_prompt=True` the prompt's targets
    are ignored too, and only the response is learnt. `allowed_max_length` truncates long examples.
    Items are token lists or `(tokens, prompt_length)` pairs.
    """
    if allowed_max_length is not None and allowed_max_length < 1:
        raise ValueError(f"allowed_max_length must be a positive number of tokens, got {allowed_max_length}")
    items = [(item, 0) if isinstance(item[0], int) else item for item in batch]
    longest = max(len(ids) + 1 for ids, _ in items)
    inputs, targets = [], []
    for ids, prompt_len in items:
        padded = ids + [pad_id] * (longest - len(ids))          # at least one <|endoftext|>
        x = torch.tensor(padded[:-1])
        y = torch.tensor(padded[1:])
        y[len(ids):] = ignore_index                              # padding after the first end-of-text
        if mask_prompt:
            y[: max(prompt_len - 1, 0)] = ignore_index           # target i is token i + 1
        if allowed_max_length is not None:
            x, y = x[:allowed_max_length], y[:allowed_max_length]
        inputs.append(x)
        targets.append(y)
    return torch.stack(inputs).to(device), torch.stack(targets).to(device)


def extract_response(generated: str, prompt: str | None = None) -> str:
    """The response part of a generated text: after the prompt and `### Response:`, before any
    following `###` section or `<|endoftext|>`, stripped."""
    text = generated[len(prompt):] if prompt and generated.startswith(prompt) else generated
    if "### Response:" in text:
        text = text.split("### Response:", 1)[1]
    text = text.split("<|endoftext|>", 1)[0]
    text = re.split(r"\n*###", text, maxsplit=1)[0]
    return text.strip()


# ---- metrics that need no other model -------------------------------------------------------
def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces: as SQuAD's evaluation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


# Words that nearly every response shares whatever it says ("is", "of", "to", ...): English function
# words (pronouns, auxiliaries, prepositions, conjunctions, determiners). F1 over the other words only
# (`content_f1`) tells whether a response carries the reference's content, not just its shape.
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every no all both either neither
i me my mine you your yours he him his she her hers it its we us our ours they them their theirs
is am are was were be been being do does did doing have has had having
will would shall should can could may might must
of to in on at by for with from into onto over under about as than then so too very
and or but nor if because while when where which who whom whose what how why
not there here also just only
""".split())  # noqa: SIM905 (a line per word class reads better than a list)


def content_words(text: str) -> list[str]:
    """The normalised words of `text` that are not function words, in order, with repeats."""
    return [w for w in normalize(text).split() if w not in FUNCTION_WORDS]


def _f1(pred: list[str], ref: list[str]) -> float:
    """F1 of two word lists counted with multiplicity; two empty lists agree (1.0)."""
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def content_f1(prediction: str, reference: str) -> float:
    """`token_f1` over content words only: 'It is of the' shares nothing with 'Paris is the capital'."""
    return _f1(content_words(prediction), content_words(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of precision and recall of the normalised words (counted with multiplicity)."""
    return _f1(normalize(prediction).split(), normalize(reference).split())


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row at a time)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common word subsequence, as precision and recall, combined."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_responses(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean exact match, token F1, content-word F1 and ROUGE-L over a set of responses."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need as many predictions as references, and some: "
                         f"{len(predictions)} vs {len(references)}")
    n = len(predictions)
    return {"exact_match": sum(map(exact_match, predictions, references)) / n,
            "token_f1": sum(map(token_f1, predictions, references)) / n,
            "content_f1": sum(map(content_f1, predictions, references)) / n,
            "rouge_l": sum(map(rouge_l, predictions, references)) / n}


# ---- the optional judge ---------------------------------------------------------------------
def ollama_available(url: str = "http://localhost:11434", timeout: float = 1.0) -> bool:
    """Whether an Ollama server answers (its root path says 'Ollama is running')."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def ollama_score(entry: dict, response: str, model: str = "llama3",
                 url: str = "http://localhost:11434") -> int | None:
    """Ask a local model through Ollama's REST API to score `response` 0-100; None if it gives no number."""
    import urllib.request

    prompt = (f"Given the input `{format_input(entry)}` and correct output `{entry['output']}`, "
              f"score the model response `{response}` on a scale from 0 to 100, where 100 is the best score. "
              "Respond with the integer number only.")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": False,
                       "options": {"seed": 123, "temperature": 0, "num_ctx": 2048}}).encode()
    request = urllib.request.Request(f"{url}/api/chat", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        answer = json.loads(r.read())["message"]["content"]
    match = re.search(r"\d+", answer)
    return min(100, int(match.group())) if match else None


def respond(model, entry: dict, max_new_tokens: int = 48, tokenizer=None) -> str:
    """The model's greedy response to an instruction (prompt = formatted input + response header)."""
    from .generation import generate

    tokenizer = tokenizer or gpt2_tokenizer()
    prompt = format_input(entry) + RESPONSE_HEADER
    device = next(model.parameters()).device
    ids = torch.tensor([encode_text(prompt, tokenizer)], device=device)
    out = generate(model, ids, max_new_tokens, eos_id=EOT_ID)
    return extract_response(tokenizer.decode(out[0, ids.size(1):].tolist()))


# ---- the fine-tuning recipe of notebook 08 (its cached result: scratchgpt.course.instruction_tuned) ----
SPLIT_SEED = 123
WARMUP_STEPS = 10


def instruction_loaders(p, train_data: list[dict], val_data: list[dict]):
    """Training (shuffled with a fixed generator, last partial batch dropped) and validation loaders,
    batches padded by `collate` to their own longest example, cut at the model's context length.
    The training set is cut to the profile's `tuning_examples` (all of it unless a profile says so)."""
    from functools import partial

    from torch.utils.data import DataLoader

    collate_fn = partial(collate, allowed_max_length=p.model.context_length, device=p.torch_device())
    g = torch.Generator().manual_seed(SPLIT_SEED)
    train_loader = DataLoader(InstructionDataset(train_data[: p.tuning_examples]),
                              batch_size=p.instruct_batch_size, shuffle=True, drop_last=True,
                              collate_fn=collate_fn, generator=g)
    val_loader = DataLoader(InstructionDataset(val_data), batch_size=p.instruct_batch_size,
                            collate_fn=collate_fn)
    return train_loader, val_loader


def finetune_instructions(model, p, train_loader, val_loader, log=print, progress: bool = True):
    """Notebook 04's training loop on instruction batches: AdamW, warmup, cosine decay to a tenth."""
    from .seeding import seed_everything
    from .training import make_optimizer, train

    seed_everything(SPLIT_SEED)
    optimizer = make_optimizer(model, lr=p.instruct_lr, weight_decay=0.1)
    return train(model, optimizer, train_loader, val_loader, epochs=p.instruct_epochs,
                 eval_every=max(1, len(train_loader) // 2), eval_batches=5, warmup_steps=WARMUP_STEPS,
                 min_lr=p.instruct_lr / 10, log=log, progress=progress)
